-- Reverts V5__search (PostgreSQL): the index goes; no stored record changes.
DROP INDEX ix_messages_created_at;
DROP INDEX ix_conversations_unindexed;
DROP INDEX ix_messages_unindexed;
DROP INDEX ix_conversations_search;
DROP INDEX ix_messages_search;
ALTER TABLE conversations DROP COLUMN search_tokens;
ALTER TABLE messages DROP COLUMN search_tokens;
