-- V12 (SQLite): nothing. On PostgreSQL each message gets a token signature that walks by time
-- test before they read a text; SQLite's searches read FTS5's lists, not every text. This
-- version keeps both dialects at the same versions.
SELECT 1;
