-- Reverts V7__search_in_batches (PostgreSQL): nothing to revert.
SELECT 1;
