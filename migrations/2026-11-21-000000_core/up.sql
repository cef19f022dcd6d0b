-- Chat core schema (issue 2). Every later migration must stay backward compatible
-- with the code of the previous release (expand, then contract).

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL,
    email         TEXT,
    -- bcrypt hash; NULL for users created without a password (door 001).
    password_hash TEXT,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'operator', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Usernames are unique case-insensitively; the text_pattern_ops index serves prefix search.
CREATE UNIQUE INDEX users_username_ci_key ON users (lower(username));
CREATE INDEX users_username_prefix_idx ON users (lower(username) text_pattern_ops);
CREATE UNIQUE INDEX users_email_ci_key ON users (lower(email)) WHERE email IS NOT NULL;

-- Refresh tokens are stored as SHA-256 of the opaque token; rotation revokes the used one.
CREATE TABLE refresh_tokens (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  BYTEA NOT NULL UNIQUE,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- One-way contact list (seed 002): user_id has friend_id in their list.
CREATE TABLE friendships (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);

CREATE TABLE chats (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('direct', 'group', 'support')),
    -- Optional unique address of a group (door 002 and 004 address groups by name).
    name            TEXT UNIQUE,
    title           TEXT NOT NULL DEFAULT '',
    is_private      BOOLEAN NOT NULL DEFAULT false,
    owner_id        BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- A direct chat's two users, lower id first: the unique pair makes "open or create" race-free.
    direct_user_lo  BIGINT REFERENCES users (id) ON DELETE CASCADE,
    direct_user_hi  BIGINT REFERENCES users (id) ON DELETE CASCADE,
    -- The customer of a support chat (door 003): one support chat per customer.
    support_user_id BIGINT UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    -- seq of the newest message; messages get last_seq + 1 in the inserting transaction.
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_message_at TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'direct') = (direct_user_lo IS NOT NULL AND direct_user_hi IS NOT NULL)),
    CHECK (direct_user_lo < direct_user_hi),
    CHECK ((kind = 'support') = (support_user_id IS NOT NULL)),
    UNIQUE (direct_user_lo, direct_user_hi)
);
-- No index on last_seq / last_message_at: every send updates them, and leaving them unindexed
-- keeps those updates HOT (no index writes). Chat lists reach a user's chats through
-- chat_members_user_idx and sort that set by activity.

CREATE TABLE chat_members (
    chat_id       BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    -- Read marker: the highest seq this member has read (never moves backwards).
    last_read_seq BIGINT NOT NULL DEFAULT 0,
    joined_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user_idx ON chat_members (user_id, chat_id);

CREATE TABLE messages (
    id         BIGSERIAL PRIMARY KEY,
    chat_id    BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- Gapless per chat, assigned in the inserting transaction.
    seq        BIGINT NOT NULL,
    -- NULL for system lines.
    author_id  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('text', 'system')),
    text       TEXT NOT NULL,
    -- Client-chosen key for idempotent sends, unique per author.
    client_id  TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at  TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    UNIQUE (chat_id, seq),
    CHECK (kind = 'text' OR author_id IS NULL)
);
CREATE UNIQUE INDEX messages_author_client_id_key ON messages (author_id, client_id)
    WHERE client_id IS NOT NULL;
