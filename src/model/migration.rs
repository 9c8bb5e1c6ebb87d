//! Migration plans and states, as the planner makes them and the
//! [`Migrations`](crate::Migrations) handle reports them.

use std::path::PathBuf;

use time::OffsetDateTime;

/// Where to migrate to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationTarget {
    /// The newest version this build knows.
    Latest,
    /// This version; 0 is no schema at all.
    Version(i64),
}

/// Which way a migration step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applying an up script.
    Up,
    /// Reverting with a down script.
    Down,
}

/// One step of a migration plan: what [`Migrations::plan`](crate::Migrations::plan)
/// shows and what [`Migrations::migrate`](crate::Migrations::migrate) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMigration {
    /// Version of the script.
    pub version: i64,
    /// Name of the script.
    pub name: String,
    /// Applying or reverting.
    pub direction: Direction,
    /// The SQL that runs.
    pub sql: String,
}

/// One known migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Version number (`V{n}`).
    pub version: i64,
    /// Name (`V{n}__{name}.sql`).
    pub name: String,
    /// When it was applied; `None` while pending.
    pub applied_on: Option<OffsetDateTime>,
    /// refinery's checksum of the up script.
    pub checksum: u64,
}

impl MigrationStatus {
    /// True once applied.
    pub fn is_applied(&self) -> bool {
        self.applied_on.is_some()
    }
}

/// A copy of an SQLite database taken before migrating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The snapshot file, beside the database.
    pub path: PathBuf,
    /// The schema version the database had when the snapshot was taken.
    pub version: i64,
    /// When it was taken.
    pub taken_at: OffsetDateTime,
}
