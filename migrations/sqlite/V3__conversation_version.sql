-- V3 (SQLite): conversations.version, a counter every write to a
-- conversation moves forward (append, update, and later message edits).
-- `update` names the version its copy was read at and is refused when the
-- stored one moved, so a stale copy can never overwrite newer messages.
-- Existing rows start at 1 (the column default is the backfill).
ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1);
