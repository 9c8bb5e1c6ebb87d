-- Reverts V10__search_word_pairs (PostgreSQL): every text gives up its tokens again, to be
-- indexed by the tokenizer of the version that opens the database next (without pair tokens).
UPDATE messages SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
UPDATE conversations SET search_tokens = NULL WHERE search_tokens IS NOT NULL;
