-- V10 (SQLite): the index also holds, for each two words one right after the other, a pair
-- token (src/search/tokenize.rs), so a phrase of common words is answered by the texts holding
-- it rather than every text holding its words. Every text gives up its entry and its search
-- rowid here and is indexed again, as a text from before the index is (Store::open builds the
-- index after it migrates, in batches; a search does not find a text until its batch has run).
-- 'delete-all' empties a contentless table at once; the stale list named entries it held.
INSERT INTO search_index (search_index) VALUES ('delete-all');
DELETE FROM search_stale;
UPDATE messages SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
UPDATE conversations SET search_rowid = NULL WHERE search_rowid IS NOT NULL;
