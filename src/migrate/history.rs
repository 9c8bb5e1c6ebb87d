//! Running a plan on a connection, and reading refinery's history safely.

use time::OffsetDateTime;

use super::Dialect;
use crate::error::{Error, Result};
use crate::model::{Direction, PlannedMigration};

/// Runs `plan` on `conn`: the up steps through refinery, all of them with
/// their history rows in one transaction; the down steps through `revert`,
/// newest first, each with the removal of its history row.
///
/// refinery's default runs a script and the insert of its history row in two
/// transactions: a crash between them left a schema its history does not
/// name, which no later open could migrate past ("duplicate column"). Grouped,
/// an up migration is all or nothing.
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
                .set_grouped(true)
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

/// The version whose up script adds `conversations.version` (and starts
/// existing conversations at the clock, so that reverting and applying it
/// again cannot bring back a version a stale copy holds). A restored
/// snapshot at this version or later restarts them likewise.
#[cfg(feature = "sqlite")]
pub(crate) const VERSIONS_ADDED: i64 = 3;

/// The version every conversation moves to when its count of writes was
/// reset (the column re-created, or a snapshot restored): the clock in
/// microseconds, and at least `at_least`. Above any version handed out
/// before, since a conversation sees far fewer than one write per
/// microsecond, so that every copy read before the reset stays stale.
#[cfg(feature = "sqlite")]
pub(crate) fn restart_version(at_least: i64) -> i64 {
    let micros = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    i64::try_from(micros)
        .unwrap_or(i64::MAX)
        .max(at_least)
        .max(1)
}

/// The error of a failed down step.
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

pub(super) fn migration_message(message: String) -> Error {
    Error::Migration {
        message,
        source: None,
    }
}

/// Wraps refinery's error as [`Error::Migration`].
fn migration_error(e: refinery::Error) -> Error {
    Error::Migration {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}
