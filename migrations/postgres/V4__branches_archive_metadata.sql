-- V4 (PostgreSQL): branches, archive and metadata.
--
--   messages.parent_id          uuid or NULL: the message this one follows on its branch
--                               (NULL: a first message). Not a foreign key: the store keeps
--                               it inside the conversation and moves children up before it
--                               deletes a message, so deletes need no lookup per row.
--   messages.on_path            boolean: on the conversation's current branch, which runs
--                               from a first message to the current leaf (the last of them
--                               by position; a child's position is above its parent's).
--   messages.metadata           jsonb holding an object.
--   conversations.archived_at   timestamptz or NULL: not archived.
--   conversations.archived      whether archived_at is set (generated, for the list indexes).
--   conversations.metadata      jsonb holding an object.
ALTER TABLE messages ADD COLUMN parent_id uuid;
ALTER TABLE messages ADD COLUMN on_path boolean NOT NULL DEFAULT true;
ALTER TABLE messages ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object');
ALTER TABLE conversations ADD COLUMN archived_at timestamptz;
ALTER TABLE conversations ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object');

-- Existing conversations become single-branch trees in their order: each
-- message follows the one before it, every message is on the current
-- branch, the last one is the current leaf.
UPDATE messages SET parent_id = chain.previous
FROM (
    SELECT id, LAG(id) OVER (PARTITION BY conversation_id ORDER BY position) AS previous
    FROM messages
) AS chain
WHERE messages.id = chain.id AND chain.previous IS NOT NULL;

-- A message's children (alternatives), oldest first.
CREATE INDEX ix_messages_parent_id ON messages (conversation_id, parent_id, position);

-- conversations().list(): archived or not first, so each filter is one range of
-- the index. A generated column, not an index on the expression: PostgreSQL
-- rewrites `(archived_at IS NOT NULL) = false` to `archived_at IS NULL`, which
-- no longer matches such an index.
ALTER TABLE conversations ADD COLUMN archived boolean NOT NULL GENERATED ALWAYS AS (archived_at IS NOT NULL) STORED;
DROP INDEX ix_conversations_created_at;
DROP INDEX ix_conversations_updated_at;
CREATE INDEX ix_conversations_created_at ON conversations (archived, created_at, id);
CREATE INDEX ix_conversations_updated_at ON conversations (archived, updated_at, id);
