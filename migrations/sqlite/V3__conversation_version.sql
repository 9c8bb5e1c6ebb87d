-- V3 (SQLite): conversations.version, a counter every write to a
-- conversation moves forward (append, update, message edits). `update`
-- names the version its copy was read at and is refused when the stored one
-- moved, so a stale copy can never overwrite newer messages.
ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1);

-- Backfill: existing conversations start at the clock in microseconds, not
-- at 1. If this version was reverted and applied again, a copy read before
-- (at any version handed out then, far fewer than one write per
-- microsecond) stays stale. In this script, so it commits with the column.
UPDATE conversations
SET version = MAX(1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
