-- Reverts V3__conversation_version (SQLite).
ALTER TABLE conversations DROP COLUMN version;
