-- Reverts V9__search_folds_case_last (SQLite): the texts outside ASCII give up their entries
-- again, to be indexed by the tokenizer of the version that opens the database next.
DELETE FROM search_index WHERE rowid IN (
    SELECT search_rowid FROM messages
    WHERE search_rowid <= (SELECT indexed_upto FROM search_progress WHERE id = 1)
      AND length(CAST(content AS BLOB)) <> length(content)
);
DELETE FROM search_index WHERE rowid IN (
    SELECT -search_rowid FROM conversations
    WHERE search_rowid <= (SELECT titles_indexed_upto FROM search_progress WHERE id = 1)
      AND length(CAST(title AS BLOB)) <> length(title)
);
UPDATE messages SET search_rowid = NULL
WHERE search_rowid IS NOT NULL AND length(CAST(content AS BLOB)) <> length(content);
UPDATE conversations SET search_rowid = NULL
WHERE search_rowid IS NOT NULL AND length(CAST(title AS BLOB)) <> length(title);
