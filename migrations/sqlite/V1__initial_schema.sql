-- silmari-store schema, version 1 (SQLite dialect).
--
-- Column types:
--   ids          TEXT, the hyphenated lowercase UUID (its text order is the UUID's byte order)
--   timestamps   INTEGER, microseconds since 1970-01-01T00:00:00Z (UTC)
--   attachments  TEXT holding a JSON array
--   position     INTEGER, a message's place in its conversation (append order, no ties)

CREATE TABLE file_metadata (
    id           TEXT    NOT NULL PRIMARY KEY,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    created_at   INTEGER NOT NULL
);

-- files().list(): newest first, keyset on (created_at, id).
CREATE INDEX ix_file_metadata_created_at ON file_metadata (created_at, id);

CREATE TABLE conversations (
    id         TEXT    NOT NULL PRIMARY KEY,
    title      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- conversations().list() by created_at / by updated_at, keyset on (t, id).
CREATE INDEX ix_conversations_created_at ON conversations (created_at, id);
CREATE INDEX ix_conversations_updated_at ON conversations (updated_at, id);

CREATE TABLE messages (
    id              TEXT    NOT NULL PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attachments     TEXT    NOT NULL DEFAULT '[]'
);

-- A conversation's messages in append order; also serves the foreign key's cascade.
CREATE INDEX ix_messages_conversation_id ON messages (conversation_id, position);
