-- Reverts V1__initial_schema (PostgreSQL dialect).
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE file_metadata;
