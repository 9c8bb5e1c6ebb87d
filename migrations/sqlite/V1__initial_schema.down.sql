-- Reverts V1__initial_schema (SQLite dialect).
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE file_metadata;
