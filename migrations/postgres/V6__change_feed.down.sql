-- Reverts V6__change_feed (PostgreSQL): nothing was created.
SELECT 1;
