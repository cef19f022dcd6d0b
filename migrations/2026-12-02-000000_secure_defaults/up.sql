-- Secure by default (issue "Secure by default"), expand step. Adds what the new code writes;
-- the username keys are filled by the server itself before the next migration (they are
-- computed in Rust: RFC 8265 + Unicode case folding, see chat_domain::Username), which then
-- makes them required and unique. Nothing is dropped here.

-- The canonical form of the username and its two TR39 confusable skeletons (a later lookalike
-- of an existing name is refused by a unique index on each; NULL for the few accounts
-- grandfathered in when two existing names looked alike).
ALTER TABLE users
    ADD COLUMN username_key TEXT,
    ADD COLUMN username_skeleton TEXT,
    ADD COLUMN username_skeleton_upper TEXT,
    -- Users of door 001 (no authentication): a namespace and a world of their own.
    ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT false,
    -- Every token issued before this time (unix s) is dead: logout-all, refresh-token reuse,
    -- disable-user move it forward.
    ADD COLUMN tokens_not_before BIGINT NOT NULL DEFAULT 0,
    -- A disabled user has no valid token and cannot log in (`chat-server disable-user`).
    ADD COLUMN disabled_at TIMESTAMPTZ;

-- A refresh token revoked because a newer one replaced it (rotation): presenting it again is a
-- reuse, which ends every session of its user, once per token (reuse_detected_at).
ALTER TABLE refresh_tokens
    ADD COLUMN rotated_at TIMESTAMPTZ,
    ADD COLUMN reuse_detected_at TIMESTAMPTZ;
-- Tokens revoked before this release were all revoked by rotation or by a reuse.
UPDATE refresh_tokens SET rotated_at = revoked_at WHERE revoked_at IS NOT NULL;

-- Chats of door 001: only its own users are in them, only it reaches them. Their name is kept in
-- `title` (unique among door 001's chats), so they take no group name of the other doors.
ALTER TABLE chats ADD COLUMN sandbox BOOLEAN NOT NULL DEFAULT false;

-- Door 001 created every user without a password; every other door (and the CLI) sets one.
UPDATE users SET sandbox = true WHERE password_hash IS NULL;
-- Its chats: groups whose members are all door 001 users. A group that has members of other
-- doors too stays with the other doors (door 001 no longer reaches it).
UPDATE chats c SET sandbox = true, name = NULL
WHERE c.kind = 'group'
  AND EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id)
  AND NOT EXISTS (
      SELECT 1 FROM chat_members m JOIN users u ON u.id = m.user_id
      WHERE m.chat_id = c.id AND NOT u.sandbox);
CREATE UNIQUE INDEX chats_sandbox_title_key ON chats (title) WHERE sandbox;
