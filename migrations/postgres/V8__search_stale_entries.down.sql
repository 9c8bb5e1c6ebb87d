-- Reverts V8__search_stale_entries (PostgreSQL): nothing to revert.
SELECT 1;
