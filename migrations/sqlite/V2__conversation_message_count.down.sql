-- Reverts V2__conversation_message_count (SQLite).
ALTER TABLE conversations DROP COLUMN message_count;
