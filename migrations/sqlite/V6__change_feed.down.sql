-- Reverts V6__change_feed (SQLite): the feed's tables go; no stored record changes.
DROP TABLE change_listeners;
DROP TABLE change_log;
