-- Reverts V8__search_stale_entries (SQLite): the entries no text holds any more are dropped
-- (V7 keeps none), then their list.
DELETE FROM search_index WHERE rowid IN (SELECT rowid FROM search_stale);
DROP TABLE search_stale;
