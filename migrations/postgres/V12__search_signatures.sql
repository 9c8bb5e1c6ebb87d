-- V12 (PostgreSQL): each message's token signature (src/search/signature.rs), a bit set of its
-- index tokens written by the crate beside search_tokens: a search walking messages by time
-- rejects most texts without its terms by a bit test, before it reads their content or tokens.
--
--   messages.search_bits   bytea (96 bytes) or NULL: not signed yet, which a walk checks the
--                          slow way; the texts indexed before this version are signed in
--                          batches (Store::open builds the index after it migrates), and stay
--                          found meanwhile.
ALTER TABLE messages ADD COLUMN search_bits bytea
    CONSTRAINT messages_search_bits_length CHECK (octet_length(search_bits) = 96);
DROP INDEX ix_messages_unindexed;
CREATE INDEX ix_messages_unindexed ON messages (id)
    WHERE search_tokens IS NULL OR search_bits IS NULL;

-- A statement that writes new tokens without a signature (from a store that has not seen this
-- version: an older build still running, or a connection that looked before the migration)
-- leaves a signature that no longer describes the tokens, which would hide the message from
-- walks: such a write takes the signature away, and the next index build signs the message
-- again. A statement that signs says so for its transaction (silmari.signs = 'on').
CREATE FUNCTION silmari_unsign_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_bits := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_unsign BEFORE UPDATE OF search_tokens ON messages
    FOR EACH ROW
    WHEN (current_setting('silmari.signs', true) IS DISTINCT FROM 'on'
          AND NEW.search_tokens IS DISTINCT FROM OLD.search_tokens)
    EXECUTE FUNCTION silmari_unsign_message();
