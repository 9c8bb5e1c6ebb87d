-- V3 (PostgreSQL): conversations.version, a counter every write to a
-- conversation moves forward (append, update, and later message edits).
-- `update` names the version its copy was read at and is refused when the
-- stored one moved, so a stale copy can never overwrite newer messages.
-- Existing rows start at 1 (the column default is the backfill; adding a
-- column with a constant default rewrites no rows on PostgreSQL 11+).
ALTER TABLE conversations ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version >= 1);
