-- Reverts V10__search_word_pairs (SQLite): every text gives up its entry again and is indexed
-- again by the build that migrated (its pair tokens are never asked for below V10).
INSERT INTO search_index (search_index) VALUES ('delete-all');
DELETE FROM search_stale;
UPDATE messages SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
UPDATE conversations SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
