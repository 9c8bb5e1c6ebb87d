-- V10 (PostgreSQL): the index also holds, for each two words one right after the other, a pair
-- token (src/search/tokenize.rs), so a phrase of common words is answered by the texts holding
-- it rather than every text holding its words. Every text gives up its tokens here and is
-- indexed again, as a text from before the index is (Store::open builds the index after it
-- migrates, in batches; a search does not find a text until its batch has run).
UPDATE messages SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
UPDATE conversations SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
