-- V5 (PostgreSQL): full-text search over message contents and conversation titles.
--
--   messages.search_tokens        text[] or NULL (not indexed yet): the distinct tokens the
--                                 crate's tokenizer makes of the content (src/search/tokenize.rs)
--   conversations.search_tokens   text[] or NULL: the same for the title
--
-- Each is indexed by GIN as `array_to_tsvector(search_tokens)`: the tokens as they are,
-- no dictionary, no positions (the crate checks every candidate itself), so a search
-- finds the same texts as on SQLite. Texts are tokenized by the crate, in batches after
-- this migration for an existing database and on every write after.
ALTER TABLE messages ADD COLUMN search_tokens text[];
ALTER TABLE conversations ADD COLUMN search_tokens text[];
CREATE INDEX ix_messages_search ON messages USING gin (array_to_tsvector(search_tokens));
CREATE INDEX ix_conversations_search ON conversations USING gin (array_to_tsvector(search_tokens));
-- Texts not indexed yet, for the batches.
CREATE INDEX ix_messages_unindexed ON messages (id) WHERE search_tokens IS NULL;
CREATE INDEX ix_conversations_unindexed ON conversations (id) WHERE search_tokens IS NULL;

-- Newest-first search walks messages by time.
CREATE INDEX ix_messages_created_at ON messages (created_at, id);
