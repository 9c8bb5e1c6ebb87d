-- V7 (PostgreSQL): nothing. On SQLite, texts written one at a time are indexed for search in
-- batches (a mark of the texts indexed); PostgreSQL's GIN index already takes new entries
-- into its pending list and merges them later (fastupdate). This version keeps both
-- dialects at the same versions.
SELECT 1;
