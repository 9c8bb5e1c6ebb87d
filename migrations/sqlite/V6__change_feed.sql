-- V6 (SQLite): the change feed between processes sharing this file.
--
--   change_log        one row per write transaction that another process listened for:
--                     seq (the rowid: one more than the last row, so in commit order, as
--                     SQLite serializes writers, and without gaps; trimming never removes
--                     the newest row, so no seq is handed out twice), the writing store's
--                     random id, the commit time (microseconds since 1970, UTC), and the
--                     changes in the crate's text form (src/model/change.rs). Rows older
--                     than the retention (src/backend/sqlite/feed.rs) are trimmed by
--                     listeners. One B-tree, so a logged write adds one row to one table.
--   change_listeners  one row per store with a live subscriber: writers log their changes
--                     only while a row of another store has not expired; listeners renew
--                     theirs while they run and delete it when they stop.
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY,
    instance TEXT NOT NULL,
    committed_at INTEGER NOT NULL,
    changes TEXT NOT NULL
);

CREATE TABLE change_listeners (
    instance TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
