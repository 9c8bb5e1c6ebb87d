-- V8 (PostgreSQL): nothing. On SQLite, an edit of an indexed text waits for its batch and its
-- old entry is listed for that batch to drop; PostgreSQL updates a row's search tokens in place
-- and its GIN index takes the change into its pending list (fastupdate). This version keeps
-- both dialects at the same versions.
SELECT 1;
