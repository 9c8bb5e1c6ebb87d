-- V9 (SQLite): the tokenizer lowercases after it decomposes by compatibility
-- (src/search/tokenize.rs), so letters that decompose to capitals (𝐇, 🄰, Ⅻ) give lower-case
-- tokens, as every other letter does. Only a text with a character outside ASCII can have
-- tokens that changed: each such text gives up its entry and its search rowid here and is
-- indexed again, as a text from before the index is (Store::open builds the index after it
-- migrates, in batches). ASCII texts keep their entries. A title's entry is at minus its
-- rowid. length() counts characters up to a NUL and a blob's length counts bytes, so an
-- ASCII text with a NUL is indexed again too, which is harmless.
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
