-- Contract step of "Secure by default". Runs only after the server has filled every
-- username_key (chat_selectors::run_migrations refuses to go on, naming the accounts, when two
-- existing accounts have the same canonical name). From here on the canonical key is the one
-- rule: unique per namespace (door 001's sandbox has its own), PostgreSQL's lower() no longer
-- decides who is who. A release before this one cannot register users on this schema (it does
-- not write username_key): stop old instances before migrating.
ALTER TABLE users ALTER COLUMN username_key SET NOT NULL;
CREATE UNIQUE INDEX users_username_key_uniq ON users (sandbox, username_key);
CREATE UNIQUE INDEX users_username_skeleton_uniq ON users (sandbox, username_skeleton);
CREATE UNIQUE INDEX users_username_skeleton_upper_uniq ON users (sandbox, username_skeleton_upper);
-- Prefix search of the canonical key.
CREATE INDEX users_username_key_prefix_idx ON users (username_key text_pattern_ops);
DROP INDEX users_username_ci_key;
DROP INDEX users_username_prefix_idx;
