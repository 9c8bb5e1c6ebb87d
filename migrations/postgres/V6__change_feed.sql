-- V6 (PostgreSQL): the change feed. On PostgreSQL it needs no table: a write transaction
-- sends its changes with NOTIFY on the channel `silmari_changes` (delivered at commit, in
-- commit order, never for a rolled-back transaction) and listeners LISTEN on it
-- (src/backend/postgres/feed.rs). This version keeps both dialects at the same versions.
SELECT 1;
