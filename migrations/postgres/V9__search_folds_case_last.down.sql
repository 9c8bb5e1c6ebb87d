-- Reverts V9__search_folds_case_last (PostgreSQL): the texts outside ASCII give up their tokens
-- again, to be indexed by the tokenizer of the version that opens the database next.
UPDATE messages SET search_tokens = NULL
WHERE search_tokens IS NOT NULL AND content ~ '[^\x01-\x7f]';
UPDATE conversations SET search_tokens = NULL
WHERE search_tokens IS NOT NULL AND title ~ '[^\x01-\x7f]';
