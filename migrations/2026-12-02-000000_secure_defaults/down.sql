DROP INDEX IF EXISTS chats_sandbox_title_key;
UPDATE chats SET name = title WHERE sandbox AND name IS NULL
  AND NOT EXISTS (SELECT 1 FROM chats o WHERE o.name = chats.title);
ALTER TABLE chats DROP COLUMN sandbox;
ALTER TABLE refresh_tokens DROP COLUMN rotated_at, DROP COLUMN reuse_detected_at;
ALTER TABLE users
    DROP COLUMN username_key,
    DROP COLUMN username_skeleton,
    DROP COLUMN username_skeleton_upper,
    DROP COLUMN sandbox,
    DROP COLUMN tokens_not_before,
    DROP COLUMN disabled_at;
