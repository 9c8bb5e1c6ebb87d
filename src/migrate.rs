//! Schema migrations: refinery for the way up, down scripts for the way back.
//!
//! Each SQL dialect has its folder under `migrations/`. refinery embeds the
//! up scripts (`V{n}__{name}.sql`) and records applied versions in
//! `refinery_schema_history`; `build.rs` embeds the down scripts
//! (`V{n}__{name}.down.sql`, a name refinery skips). Both dialects hold the
//! same versions with the same names. A down step runs in one transaction
//! with the removal of its history row, so a failing down script leaves the
//! database at the version it was at; refinery applies each up script in a
//! transaction with its history row likewise.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::store::Store;

#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    refinery::embed_migrations!("migrations/sqlite");
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    refinery::embed_migrations!("migrations/postgres");
}

/// A down script embedded by `build.rs`.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) struct DownScript {
    pub(crate) version: i32,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

#[allow(dead_code)] // one table per dialect, whichever features are on
mod down {
    use super::DownScript;
    include!(concat!(env!("OUT_DIR"), "/down_migrations.rs"));
}

/// One SQL dialect's embedded migrations.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) struct Dialect {
    runner: fn() -> refinery::Runner,
    down: &'static [DownScript],
}

/// SQLite's migrations.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: Dialect = Dialect {
    runner: sqlite::migrations::runner,
    down: down::SQLITE,
};

/// PostgreSQL's migrations.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: Dialect = Dialect {
    runner: postgres::migrations::runner,
    down: down::POSTGRES,
};

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

/// One step of a migration plan: what [`Migrations::plan`] shows and what
/// [`Migrations::migrate`] runs.
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

/// Migration controls of a [`Store`], from [`Store::migrations`].
///
/// The in-memory backend has no schema: it lists no migrations, and moving
/// to a version is [`Error::Unsupported`].
#[derive(Debug, Clone, Copy)]
pub struct Migrations<'a> {
    pub(crate) store: &'a Store,
}

impl Migrations<'_> {
    /// Every migration this build embeds, oldest first, with its state.
    pub fn status(&self) -> Result<Vec<MigrationStatus>> {
        self.store.backend_ref().migration_status()
    }

    /// The database's version: the newest applied migration, 0 for none.
    pub fn current_version(&self) -> Result<i64> {
        Ok(self
            .status()?
            .iter()
            .filter(|m| m.is_applied())
            .map(|m| m.version)
            .max()
            .unwrap_or(0))
    }

    /// A dry run: the steps [`migrate`](Self::migrate) would run to reach
    /// `target`, in order, with their SQL. Nothing is changed.
    pub fn plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        self.store.backend_ref().migration_plan(target)
    }

    /// Moves the schema to `target`, up or down, one transaction per step,
    /// and returns the steps it ran. On an SQLite file that holds data, a
    /// [`Snapshot`] is taken first.
    pub fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        self.store.backend_ref().migrate(target)
    }

    /// Applies every pending migration (Alembic's `upgrade head`).
    pub fn up(&self) -> Result<Vec<PlannedMigration>> {
        self.migrate(MigrationTarget::Latest)
    }

    /// Applies pending migrations up to and including `version`.
    pub fn up_to(&self, version: i64) -> Result<Vec<PlannedMigration>> {
        if version < self.current_version()? {
            return Err(Error::invalid(
                "version",
                format!("{version} is below the current version; use down_to"),
            ));
        }
        self.migrate(MigrationTarget::Version(version))
    }

    /// Reverts the newest `steps` applied migrations (`downgrade -1` is `down(1)`).
    pub fn down(&self, steps: usize) -> Result<Vec<PlannedMigration>> {
        let mut applied: Vec<i64> = self
            .status()?
            .iter()
            .filter(|m| m.is_applied())
            .map(|m| m.version)
            .collect();
        applied.sort_unstable();
        if steps > applied.len() {
            return Err(Error::invalid(
                "steps",
                format!("only {} migrations are applied", applied.len()),
            ));
        }
        let target = match applied.len() - steps {
            0 => 0,
            keep => applied[keep - 1],
        };
        self.migrate(MigrationTarget::Version(target))
    }

    /// Reverts down to `version` (Alembic's `downgrade <rev>`); `0` removes
    /// the schema, leaving only refinery's history table.
    pub fn down_to(&self, version: i64) -> Result<Vec<PlannedMigration>> {
        if version > self.current_version()? {
            return Err(Error::invalid(
                "version",
                format!("{version} is above the current version; use up_to"),
            ));
        }
        self.migrate(MigrationTarget::Version(version))
    }

    /// Snapshots taken before migrations, newest first (SQLite files only).
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        self.store.backend_ref().snapshots()
    }

    /// Puts a snapshot's contents back into the live database, with SQLite's
    /// backup API. The schema goes back to the snapshot's version.
    pub fn restore_snapshot(&self, snapshot: &Path) -> Result<()> {
        self.store.backend_ref().restore_snapshot(snapshot)
    }
}

#[allow(dead_code)] // unused in a memory-only build
impl Dialect {
    /// A dialect of the given scripts, for tests of failing migrations.
    #[cfg(test)]
    pub(crate) fn for_tests(runner: fn() -> refinery::Runner, down: &'static [DownScript]) -> Self {
        Dialect { runner, down }
    }

    /// This dialect's down scripts.
    #[cfg(test)]
    pub(crate) fn down_scripts(&self) -> &'static [DownScript] {
        self.down
    }

    /// refinery's runner over this dialect's embedded up scripts.
    pub(crate) fn runner(&self) -> refinery::Runner {
        (self.runner)()
    }

    fn known(&self) -> Vec<refinery::Migration> {
        let mut known = self.runner().get_migrations().clone();
        known.sort_by_key(|m| m.version());
        known
    }

    /// The newest version this build knows.
    pub(crate) fn latest(&self) -> i64 {
        self.known()
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0)
    }

    /// Refuses a history this build cannot work with: a version newer than
    /// it knows ([`Error::SchemaTooNew`]), an unknown or skipped version, or
    /// a script edited after it was applied ([`Error::Migration`]).
    pub(crate) fn verify(&self, applied: &[refinery::Migration]) -> Result<()> {
        let known = self.known();
        let supported = self.latest();
        let database = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        if database > supported {
            return Err(Error::SchemaTooNew {
                database,
                supported,
            });
        }
        for a in applied {
            let Some(k) = known.iter().find(|k| k.version() == a.version()) else {
                return Err(migration_message(format!(
                    "the database has version {} ({}), which this build does not know",
                    a.version(),
                    a.name()
                )));
            };
            if k.name() != a.name() || k.checksum() != a.checksum() {
                return Err(migration_message(format!(
                    "migration V{}__{} was changed after it was applied \
                     (checksum {} in the database, {} in this build)",
                    k.version(),
                    k.name(),
                    a.checksum(),
                    k.checksum()
                )));
            }
        }
        if let Some(skipped) = known.iter().find(|k| {
            i64::from(k.version()) < database && !applied.iter().any(|a| a.version() == k.version())
        }) {
            return Err(migration_message(format!(
                "migration V{}__{} was skipped: it is older than the database's version {database}",
                skipped.version(),
                skipped.name()
            )));
        }
        Ok(())
    }

    /// Every known migration with its state, after [`verify`](Self::verify).
    pub(crate) fn status(&self, applied: &[refinery::Migration]) -> Result<Vec<MigrationStatus>> {
        self.verify(applied)?;
        Ok(self
            .known()
            .iter()
            .map(|m| MigrationStatus {
                version: i64::from(m.version()),
                name: m.name().to_owned(),
                applied_on: applied
                    .iter()
                    .find(|a| a.version() == m.version())
                    .and_then(|a| a.applied_on().copied()),
                checksum: m.checksum(),
            })
            .collect())
    }

    /// The steps from the `applied` history to `target`, after [`verify`](Self::verify).
    pub(crate) fn plan(
        &self,
        applied: &[refinery::Migration],
        target: MigrationTarget,
    ) -> Result<Vec<PlannedMigration>> {
        self.verify(applied)?;
        let known = self.known();
        let current = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        let target = match target {
            MigrationTarget::Latest => self.latest(),
            MigrationTarget::Version(0) => 0,
            MigrationTarget::Version(v) if known.iter().any(|k| i64::from(k.version()) == v) => v,
            MigrationTarget::Version(v) => {
                return Err(Error::invalid(
                    "version",
                    format!(
                        "{v} is not a version this build knows (0..={})",
                        self.latest()
                    ),
                ));
            }
        };
        let step = |m: &refinery::Migration, direction, sql: &str| PlannedMigration {
            version: i64::from(m.version()),
            name: m.name().to_owned(),
            direction,
            sql: sql.to_owned(),
        };
        if target >= current {
            return Ok(known
                .iter()
                .filter(|k| (current + 1..=target).contains(&i64::from(k.version())))
                .map(|k| step(k, Direction::Up, k.sql().unwrap_or_default()))
                .collect());
        }
        known
            .iter()
            .rev()
            .filter(|k| (target + 1..=current).contains(&i64::from(k.version())))
            .map(|k| {
                let down = self
                    .down
                    .iter()
                    .find(|d| d.version == k.version() && d.name == k.name())
                    .ok_or_else(|| {
                        migration_message(format!(
                            "migration V{}__{} has no down script",
                            k.version(),
                            k.name()
                        ))
                    })?;
                Ok(step(k, Direction::Down, down.sql))
            })
            .collect()
    }
}

/// Runs `plan` on `conn`: the up steps through refinery (which records each
/// in its history in the step's transaction), the down steps through
/// `revert`, newest first.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn run_plan<C: refinery::Migrate>(
    conn: &mut C,
    dialect: &Dialect,
    plan: &[PlannedMigration],
    mut revert: impl FnMut(&mut C, &PlannedMigration) -> Result<()>,
) -> Result<()> {
    let Some(last) = plan.last() else {
        return Ok(());
    };
    match last.direction {
        Direction::Up => {
            let version = i32::try_from(last.version)
                .map_err(|_| Error::invalid("version", "out of range"))?;
            dialect
                .runner()
                .set_target(refinery::Target::Version(version))
                .run(conn)
                .map_err(migration_error)?;
        }
        Direction::Down => {
            for step in plan {
                revert(conn, step)?;
            }
        }
    }
    Ok(())
}

/// The error of a failed down step.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn revert_failed(
    step: &PlannedMigration,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Migration {
        message: format!("reverting V{}__{} failed: {e}", step.version, step.name),
        source: Some(Box::new(e)),
    }
}

/// One row of refinery's history table, checked rather than trusted
/// (refinery's own readers panic on a malformed row).
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn history_entry(
    version: i32,
    name: String,
    applied_on: &str,
    checksum: &str,
) -> Result<refinery::Migration> {
    let bad = |column: &'static str, reason: String| {
        Error::corrupt("refinery_schema_history", column, reason)
    };
    let applied_on =
        OffsetDateTime::parse(applied_on, &time::format_description::well_known::Rfc3339)
            .map_err(|e| bad("applied_on", e.to_string()))?;
    let checksum = checksum
        .parse()
        .map_err(|_| bad("checksum", format!("{checksum:?} is not a number")))?;
    Ok(refinery::Migration::applied(
        version, name, applied_on, checksum,
    ))
}

fn migration_message(message: String) -> Error {
    Error::Migration {
        message,
        source: None,
    }
}

/// Wraps refinery's error as [`Error::Migration`].
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn migration_error(e: refinery::Error) -> Error {
    Error::Migration {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn every_version_has_a_down_script_in_both_dialects() {
        #[allow(unused_mut)]
        let mut dialects = vec![("sqlite", &SQLITE)];
        #[cfg(feature = "postgres")]
        dialects.push(("postgres", &POSTGRES));
        for (name, dialect) in dialects {
            let known: Vec<(i32, String)> = dialect
                .known()
                .iter()
                .map(|m| (m.version(), m.name().to_owned()))
                .collect();
            let down: Vec<(i32, String)> = dialect
                .down
                .iter()
                .map(|d| (d.version, d.name.to_owned()))
                .collect();
            assert_eq!(known, down, "{name}: up and down scripts pair up");
            assert!(known.len() >= 2, "{name}: at least V1 and V2");
        }
        #[cfg(feature = "postgres")]
        {
            let names = |d: &Dialect| -> Vec<(i32, String)> {
                d.known()
                    .iter()
                    .map(|m| (m.version(), m.name().to_owned()))
                    .collect()
            };
            assert_eq!(
                names(&SQLITE),
                names(&POSTGRES),
                "the dialects hold the same versions"
            );
        }
    }

    #[test]
    fn plans_go_up_and_down_in_order() {
        let none = SQLITE.plan(&[], MigrationTarget::Latest).unwrap();
        let versions: Vec<(i64, Direction)> =
            none.iter().map(|s| (s.version, s.direction)).collect();
        assert_eq!(versions, [(1, Direction::Up), (2, Direction::Up)]);
        assert!(none[0].sql.contains("CREATE TABLE"));
        let applied: Vec<refinery::Migration> = SQLITE
            .known()
            .into_iter()
            .map(|m| {
                refinery::Migration::applied(
                    m.version(),
                    m.name().to_owned(),
                    OffsetDateTime::UNIX_EPOCH,
                    m.checksum(),
                )
            })
            .collect();
        let down = SQLITE.plan(&applied, MigrationTarget::Version(0)).unwrap();
        let versions: Vec<(i64, Direction)> =
            down.iter().map(|s| (s.version, s.direction)).collect();
        assert_eq!(versions, [(2, Direction::Down), (1, Direction::Down)]);
        assert!(down[1].sql.contains("DROP TABLE"));
        assert!(
            SQLITE
                .plan(&applied, MigrationTarget::Latest)
                .unwrap()
                .is_empty()
        );
        assert!(SQLITE.plan(&applied, MigrationTarget::Version(7)).is_err());
    }

    /// A shipped migration is never edited: its checksum is pinned here.
    #[test]
    fn shipped_migrations_keep_their_checksums() {
        type Pins = &'static [(i32, u64)];
        let pinned: &[(&str, &Dialect, Pins)] = &[
            ("sqlite", &SQLITE, SQLITE_CHECKSUMS),
            #[cfg(feature = "postgres")]
            ("postgres", &POSTGRES, POSTGRES_CHECKSUMS),
        ];
        for (name, dialect, checksums) in pinned {
            for (version, checksum) in *checksums {
                let m = dialect
                    .known()
                    .into_iter()
                    .find(|m| m.version() == *version)
                    .unwrap();
                assert_eq!(
                    m.checksum(),
                    *checksum,
                    "{name} V{version} was edited after it shipped: add a new version instead"
                );
            }
        }
    }

    const SQLITE_CHECKSUMS: &[(i32, u64)] = &[
        (1, 13_637_810_636_776_134_596),
        (2, 2_539_034_352_414_106_656),
    ];
    #[cfg(feature = "postgres")]
    const POSTGRES_CHECKSUMS: &[(i32, u64)] =
        &[(1, 7_564_644_575_195_131_879), (2, 159_051_661_184_464_278)];
}
