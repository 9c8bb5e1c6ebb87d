-- silmari-store schema, version 1 (PostgreSQL dialect).
--
-- Column types:
--   ids          uuid
--   timestamps   timestamptz (microsecond precision, UTC on the wire)
--   attachments  jsonb holding an array
--   position     bigint, a message's place in its conversation (append order, no ties)
-- Same tables, columns, keys and indexes as migrations/sqlite/V1__initial_schema.sql.

CREATE TABLE file_metadata (
    id           uuid        NOT NULL PRIMARY KEY,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL CHECK (size >= 0),
    created_at   timestamptz NOT NULL
);

-- files().list(): newest first, keyset on (created_at, id).
CREATE INDEX ix_file_metadata_created_at ON file_metadata (created_at, id);

CREATE TABLE conversations (
    id         uuid        NOT NULL PRIMARY KEY,
    title      text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- conversations().list() by created_at / by updated_at, keyset on (t, id).
CREATE INDEX ix_conversations_created_at ON conversations (created_at, id);
CREATE INDEX ix_conversations_updated_at ON conversations (updated_at, id);

CREATE TABLE messages (
    id              uuid        NOT NULL PRIMARY KEY,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        bigint      NOT NULL,
    role            text        NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         text        NOT NULL,
    created_at      timestamptz NOT NULL,
    attachments     jsonb       NOT NULL DEFAULT '[]'
);

-- A conversation's messages in append order; also serves the foreign key's cascade.
CREATE INDEX ix_messages_conversation_id ON messages (conversation_id, position);
