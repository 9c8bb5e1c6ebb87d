-- V2 (SQLite): conversations.message_count, kept by the store on every
-- append, update and delete, so that listing conversations reads one row per
-- conversation instead of counting each one's messages.
ALTER TABLE conversations ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0);

UPDATE conversations
SET message_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id);
