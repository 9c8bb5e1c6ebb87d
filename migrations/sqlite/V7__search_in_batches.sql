-- V7 (SQLite): messages appended and conversations created one at a time are indexed for
-- search in batches.
--
--   search_progress.indexed_upto         every message whose search_rowid is at most this
--                                        is in search_index; those above it are not yet.
--   search_progress.titles_indexed_upto  the same for conversation titles.
--
-- A single append (or create) no longer writes FTS5 (a new segment and four records per
-- transaction, about five pages of the log): it takes the next search rowid above both every
-- one of its kind and the mark, and the write that leaves 128 texts above the mark indexes
-- them all in its own transaction, as one segment, and moves the mark past them
-- (src/backend/sqlite/indexer.rs). Searches read the index and, beside it, the texts above
-- the marks. Edits of indexed texts and batches of messages are indexed as they are written.
CREATE TABLE search_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL,
    titles_indexed_upto INTEGER NOT NULL
);
INSERT INTO search_progress (id, indexed_upto, titles_indexed_upto)
SELECT 1,
       (SELECT COALESCE(MAX(search_rowid), 0) FROM messages),
       (SELECT COALESCE(MAX(search_rowid), 0) FROM conversations);

-- A text above its mark has no entry to delete.
DROP TRIGGER messages_search_delete;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN old.search_rowid IS NOT NULL
 AND old.search_rowid <= (SELECT indexed_upto FROM search_progress WHERE id = 1) BEGIN
    DELETE FROM search_index WHERE rowid = old.search_rowid;
END;
DROP TRIGGER conversations_search_delete;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations
WHEN old.search_rowid IS NOT NULL
 AND old.search_rowid <= (SELECT titles_indexed_upto FROM search_progress WHERE id = 1) BEGIN
    DELETE FROM search_index WHERE rowid = -old.search_rowid;
END;
