-- Reverts V12__search_signatures (SQLite): nothing to revert.
SELECT 1;
