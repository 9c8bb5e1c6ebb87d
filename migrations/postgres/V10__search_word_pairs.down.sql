-- Reverts V10__search_word_pairs (PostgreSQL): every text gives up its tokens again and is indexed
-- again by the build that migrated (its pair tokens are never asked for below V10).
UPDATE messages SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
UPDATE conversations SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
