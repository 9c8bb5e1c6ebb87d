-- V11 (SQLite): for each block of 1,024 search rowids (a message's `search_rowid >> 10`), the
-- newest and the oldest `created_at` of the messages indexed at a rowid in it. A search reads the
-- index's matches newest rowid first (FTS5 gives them in rowid order at no cost) and stops once the
-- blocks below hold nothing newer than the hits it has (src/backend/sqlite/search_blocks.rs): as
-- rowids are given in the order texts are written, that is after the newest hits, not after all
-- of a common word's. The crate widens a block as it indexes a message (a trigger would make
-- every insert keep a statement journal: three times the time of a batch); a row deleted or
-- moved leaves its block's range as wide as it was, which only makes a search read further.
CREATE TABLE search_blocks (
    block INTEGER PRIMARY KEY,
    newest INTEGER NOT NULL,
    oldest INTEGER NOT NULL
);

INSERT INTO search_blocks (block, newest, oldest)
SELECT search_rowid >> 10, max(created_at), min(created_at) FROM messages
WHERE search_rowid IS NOT NULL GROUP BY search_rowid >> 10;
