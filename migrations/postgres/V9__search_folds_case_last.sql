-- V9 (PostgreSQL): the tokenizer lowercases after it decomposes by compatibility
-- (src/search/tokenize.rs), so letters that decompose to capitals (𝐇, 🄰, Ⅻ) give lower-case
-- tokens, as every other letter does. Only a text with a character outside ASCII can have
-- tokens that changed: each such text gives up its tokens here and is indexed again, as a text
-- from before the index is (Store::open builds the index after it migrates, in batches). ASCII
-- texts keep their tokens. The pattern names characters by code, whatever the encoding.
UPDATE messages SET search_tokens = NULL
WHERE search_tokens IS NOT NULL AND content ~ '[^\x01-\x7f]';
UPDATE conversations SET search_tokens = NULL
WHERE search_tokens IS NOT NULL AND title ~ '[^\x01-\x7f]';
