-- V12 (PostgreSQL): each message's token signature (src/search/signature.rs), a bit set of its
-- index tokens written by the crate beside search_tokens: a search walking messages by time
-- rejects most texts without its terms by a bit test, before it reads their content or tokens.
--
--   messages.search_bits   bytea (96 bytes) or NULL: not signed yet, which a walk checks the
--                          slow way; the texts indexed before this version are signed again in
--                          batches (Store::open builds the index after it migrates), and stay
--                          found meanwhile.
ALTER TABLE messages ADD COLUMN search_bits bytea
    CONSTRAINT messages_search_bits_length CHECK (octet_length(search_bits) = 96);
DROP INDEX ix_messages_unindexed;
CREATE INDEX ix_messages_unindexed ON messages (id)
    WHERE search_tokens IS NULL OR search_bits IS NULL;
