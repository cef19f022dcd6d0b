-- Fails (and changes nothing) once a door 001 user and a user of the other doors share a name
-- in lower case, which the namespaces allow: rename one of them before rolling back.
CREATE INDEX users_username_prefix_idx ON users (lower(username) text_pattern_ops);
CREATE UNIQUE INDEX users_username_ci_key ON users (lower(username));
DROP INDEX users_username_key_prefix_idx;
DROP INDEX users_username_skeleton_upper_uniq;
DROP INDEX users_username_skeleton_uniq;
DROP INDEX users_username_key_uniq;
ALTER TABLE users ALTER COLUMN username_key DROP NOT NULL;
