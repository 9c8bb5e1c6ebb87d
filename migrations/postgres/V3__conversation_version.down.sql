-- Reverts V3__conversation_version (PostgreSQL).
ALTER TABLE conversations DROP COLUMN version;
