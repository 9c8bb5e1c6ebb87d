-- Reverts V11__search_rowid_blocks (PostgreSQL): nothing to revert.
SELECT 1;
