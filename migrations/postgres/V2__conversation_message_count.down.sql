-- Reverts V2__conversation_message_count (PostgreSQL).
ALTER TABLE conversations DROP COLUMN message_count;
