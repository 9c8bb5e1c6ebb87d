-- Reverts V4__branches_archive_metadata (SQLite). Every message is kept:
-- a conversation with branches becomes one list of all its messages in the
-- order they were written (applying V4 again makes that list one branch).
DROP INDEX ix_conversations_updated_at;
DROP INDEX ix_conversations_created_at;
CREATE INDEX ix_conversations_created_at ON conversations (created_at, id);
CREATE INDEX ix_conversations_updated_at ON conversations (updated_at, id);
DROP INDEX ix_messages_parent_id;
ALTER TABLE conversations DROP COLUMN archived;
ALTER TABLE conversations DROP COLUMN metadata;
ALTER TABLE conversations DROP COLUMN archived_at;
ALTER TABLE messages DROP COLUMN metadata;
ALTER TABLE messages DROP COLUMN on_path;
ALTER TABLE messages DROP COLUMN parent_id;
