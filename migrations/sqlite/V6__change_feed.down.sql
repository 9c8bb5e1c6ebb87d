-- Reverts V6__change_feed (SQLite): the feed's tables go; no stored record changes.
DROP TABLE change_listeners;
DROP INDEX ix_change_log_committed_at;
DROP TABLE change_log;
