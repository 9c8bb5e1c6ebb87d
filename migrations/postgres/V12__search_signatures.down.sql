-- Reverts V12__search_signatures (PostgreSQL).
DROP TRIGGER messages_unsign ON messages;
DROP FUNCTION silmari_unsign_message();
DROP INDEX ix_messages_unindexed;
ALTER TABLE messages DROP COLUMN search_bits;
CREATE INDEX ix_messages_unindexed ON messages (id) WHERE search_tokens IS NULL;
