-- Reverts V10__search_word_pairs (SQLite): every text gives up its entry again, to be indexed
-- by the tokenizer of the version that opens the database next (without pair tokens).
INSERT INTO search_index (search_index) VALUES ('delete-all');
DELETE FROM search_stale;
UPDATE messages SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
UPDATE conversations SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
