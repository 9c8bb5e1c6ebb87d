-- Reverts V7__search_in_batches (SQLite): texts not indexed yet lose their search rowid, which
-- V6 reads as "not indexed" (the build that follows a migration indexes them).
UPDATE messages SET search_rowid = NULL
WHERE search_rowid > (SELECT indexed_upto FROM search_progress WHERE id = 1);
UPDATE conversations SET search_rowid = NULL
WHERE search_rowid > (SELECT titles_indexed_upto FROM search_progress WHERE id = 1);
DROP TRIGGER messages_search_delete;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
WHEN old.search_rowid IS NOT NULL BEGIN
    DELETE FROM search_index WHERE rowid = old.search_rowid;
END;
DROP TRIGGER conversations_search_delete;
CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations
WHEN old.search_rowid IS NOT NULL BEGIN
    DELETE FROM search_index WHERE rowid = -old.search_rowid;
END;
DROP TABLE search_progress;
