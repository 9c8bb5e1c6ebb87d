-- Reverts V5__search (SQLite): the index goes; no stored record changes.
DROP TRIGGER conversations_search_delete;
DROP TRIGGER messages_search_delete;
DROP TABLE search_index;
DROP INDEX ix_messages_created_at;
DROP INDEX ix_conversations_search_rowid;
DROP INDEX ix_messages_search_rowid;
ALTER TABLE conversations DROP COLUMN search_rowid;
ALTER TABLE messages DROP COLUMN search_rowid;
