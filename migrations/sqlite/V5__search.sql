-- V5 (SQLite): full-text search over message contents and conversation titles.
--
--   search_index                  FTS5, contentless: the tokens the crate's tokenizer makes of
--                                 a text (src/search/tokenize.rs), joined by spaces; the `ascii`
--                                 tokenizer splits them back exactly (tokens hold only letters
--                                 and digits). Only which texts hold a token is kept
--                                 (detail=none): the crate checks every candidate itself.
--   messages.search_rowid         INTEGER or NULL (not indexed yet): its rowid in search_index.
--   conversations.search_rowid    INTEGER or NULL: minus its title's rowid in search_index.
--
-- Rowids are columns, not SQLite's own rowids, so VACUUM cannot renumber them.
-- Texts are indexed by the crate (it tokenizes them in Rust), in batches
-- after this migration for an existing database and on every write after;
-- the triggers drop a deleted row's entry (a conversation's cascade included).
ALTER TABLE messages ADD COLUMN search_rowid INTEGER;
ALTER TABLE conversations ADD COLUMN search_rowid INTEGER;
CREATE UNIQUE INDEX ix_messages_search_rowid ON messages (search_rowid);
CREATE UNIQUE INDEX ix_conversations_search_rowid ON conversations (search_rowid);

-- Newest-first search walks messages by time.
CREATE INDEX ix_messages_created_at ON messages (created_at, id);

CREATE VIRTUAL TABLE search_index USING fts5 (
    tokens, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN old.search_rowid IS NOT NULL BEGIN
    DELETE FROM search_index WHERE rowid = old.search_rowid;
END;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations
WHEN old.search_rowid IS NOT NULL BEGIN
    DELETE FROM search_index WHERE rowid = -old.search_rowid;
END;
