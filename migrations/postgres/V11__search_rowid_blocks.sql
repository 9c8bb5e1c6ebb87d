-- V11 (PostgreSQL): nothing. On SQLite, a table of the newest and oldest message in each block of
-- search rowids lets a search read the index's matches newest first and stop early; PostgreSQL's
-- GIN index returns its matches in no order of time. This version keeps both dialects at the same
-- versions.
SELECT 1;
