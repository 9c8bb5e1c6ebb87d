//! Migrations of the SQLite backend: the cross-process lock, refinery's
//! history, down steps, and the snapshot taken before migrating a file
//! (see `snapshots`).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::errors::is_busy;
use crate::error::{Error, Result};
use crate::migrate::{Dialect, SQLITE, history_entry, revert_failed, run_plan};
use crate::model::{MigrationTarget, PlannedMigration};

/// An exclusive lock on `<database>-migrate.lock`, held while one process
/// reads the migration history and applies what is pending, so that two
/// processes opening a fresh database at once do not both migrate.
pub(super) struct MigrationLock(File);

impl MigrationLock {
    /// Takes the lock for the database at `db`; `None` for in-memory databases.
    pub(super) fn acquire(db: Option<&Path>) -> Result<Option<Self>> {
        let Some(db) = db else { return Ok(None) };
        let mut name = OsString::from(db.as_os_str());
        name.push("-migrate.lock");
        let path = PathBuf::from(name);
        let fail = |e: std::io::Error| Error::Open {
            path: path.clone(),
            reason: "cannot take the migration lock".to_owned(),
            source: Some(Box::new(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(Some(MigrationLock(file)))
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock() {
            log::warn!("could not release the migration lock: {e}");
        }
    }
}

/// refinery's history, read without trusting it (refinery's own reader
/// panics on a malformed row).
pub(super) fn applied_migrations(conn: &Connection) -> Result<Vec<refinery::Migration>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema \
         WHERE type = 'table' AND name = 'refinery_schema_history')",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version",
    )?;
    let mut rows = stmt.query([])?;
    let mut applied = Vec::new();
    while let Some(row) = rows.next()? {
        let applied_on: String = row.get(2)?;
        let checksum: String = row.get(3)?;
        applied.push(history_entry(
            row.get(0)?,
            row.get(1)?,
            &applied_on,
            &checksum,
        )?);
    }
    Ok(applied)
}

/// Moves the schema to `target`; the caller holds the [`MigrationLock`].
/// Takes a snapshot first when `db` is a file that holds data.
pub(super) fn migrate(
    conn: &mut Connection,
    dialect: &Dialect,
    db: Option<&Path>,
    snapshots_kept: usize,
    target: MigrationTarget,
) -> Result<Vec<PlannedMigration>> {
    let applied = applied_migrations(conn)?;
    let plan = dialect.plan(&applied, target)?;
    if plan.is_empty() {
        return Ok(plan);
    }
    if let Some(db) = db
        && snapshots_kept > 0
        && holds_data(conn, &applied)?
    {
        let current = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        super::snapshots::take(conn, db, current, snapshots_kept)?;
    }
    run_plan(conn, dialect, &plan, revert).map_err(held_lock)?;
    // V3's script restarts the versions itself (see its backfill), in the
    // same transaction as the column.
    Ok(plan)
}

/// Moves every conversation's version to at least `?1` (see
/// [`restart_version`](crate::migrate::restart_version)): after a restore
/// brought back older counts.
pub(super) const RESTART_VERSIONS: &str = "UPDATE conversations SET version = MAX(version, ?1)";

/// A migration refinery could not apply because another connection held
/// SQLite's lock past the busy timeout, as [`Error::Unavailable`]: nothing
/// was applied, and trying again later may work. Other errors as they are.
fn held_lock(e: Error) -> Error {
    let Error::Migration {
        message,
        source: Some(source),
    } = e
    else {
        return e;
    };
    let busy = source
        .downcast_ref::<refinery::Error>()
        .and_then(|e| match e.kind() {
            refinery::error::Kind::Connection(_, cause) => cause.downcast_ref::<rusqlite::Error>(),
            _ => None,
        })
        .is_some_and(is_busy);
    if busy {
        Error::Unavailable {
            reason: "the database stayed locked by another connection for longer than the \
                     busy timeout; no migration was applied"
                .to_owned(),
            source: Some(source),
        }
    } else {
        Error::Migration {
            message,
            source: Some(source),
        }
    }
}

/// Runs one down script and forgets its version, in one transaction.
fn revert(conn: &mut Connection, step: &PlannedMigration) -> Result<()> {
    // Another connection held the lock past the busy timeout: nothing was
    // reverted, and trying again later may work (`Unavailable`).
    let failed = |e: rusqlite::Error| {
        if is_busy(&e) {
            Error::from(e)
        } else {
            revert_failed(step, e)
        }
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    tx.execute_batch(&step.sql).map_err(failed)?;
    tx.execute(
        "DELETE FROM refinery_schema_history WHERE version = ?1",
        [step.version],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)?;
    log::info!("reverted migration V{}__{}", step.version, step.name);
    Ok(())
}

/// `e` named for what it is when a statement met a schema other than this
/// build's (no such table or column, or no column of that name): another process migrated the
/// database while this store was open, or someone changed it by hand.
/// [`Error::SchemaTooNew`] when the database is now above this build's
/// latest version, else [`Error::Migration`] saying where it stands. Any
/// other error is returned as it is.
pub(super) fn schema_moved(conn: &Connection, e: Error) -> Error {
    let Error::Backend(source) = e else { return e };
    let schema_error = match source.downcast_ref::<rusqlite::Error>() {
        Some(
            rusqlite::Error::SqliteFailure(_, Some(message))
            | rusqlite::Error::SqlInputError { msg: message, .. },
        ) => {
            message.starts_with("no such table")
                || message.starts_with("no such column")
                || message.contains("has no column named")
        }
        _ => false,
    };
    let applied = match applied_migrations(conn) {
        Ok(applied) if schema_error => applied,
        _ => return Error::Backend(source),
    };
    let database = applied
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    let supported = SQLITE.latest();
    if database > supported {
        return Error::SchemaTooNew {
            database,
            supported,
        };
    }
    let now = if database < supported {
        format!("is at schema version {database}, below version {supported} this build works with")
    } else {
        format!("was not at schema version {supported} when the statement ran")
    };
    Error::Migration {
        message: format!(
            "the database {now}: another process migrated it while this store was open \
             (store.migrations().up() brings it to the latest version)"
        ),
        source: Some(source),
    }
}

fn holds_data(conn: &Connection, applied: &[refinery::Migration]) -> Result<bool> {
    if applied.is_empty() {
        return Ok(false);
    }
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM conversations) OR EXISTS (SELECT 1 FROM file_metadata)",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<i32> {
        applied_migrations(conn)
            .expect("history")
            .iter()
            .map(|m| m.version())
            .collect()
    }

    fn has(conn: &Connection, sql: &str) -> bool {
        conn.query_row(sql, [], |r| r.get(0)).expect("query")
    }

    fn migrated_with_data() -> (tempfile::TempDir, PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.db");
        let mut conn = Connection::open(&path).expect("open");
        migrate(&mut conn, &SQLITE, Some(&path), 0, MigrationTarget::Latest).expect("migrate");
        conn.execute_batch(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('c', 'kept', 0, 0)",
        )
        .expect("insert");
        (dir, path, conn)
    }

    /// An up step's script and its history row commit together: when the
    /// row cannot be written (a trigger refuses it here; a crash between the
    /// two did it before), the script's changes are rolled back with it.
    #[test]
    fn an_up_step_and_its_history_row_commit_together() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("atomic.db");
        let mut conn = Connection::open(&path).expect("open");
        migrate(
            &mut conn,
            &SQLITE,
            Some(&path),
            0,
            MigrationTarget::Version(2),
        )
        .expect("V2");
        conn.execute_batch(
            "CREATE TRIGGER refuse_v3 BEFORE INSERT ON refinery_schema_history \
             WHEN NEW.version = 3 BEGIN SELECT RAISE(ABORT, 'history row refused'); END;",
        )
        .expect("trigger");
        let err = migrate(&mut conn, &SQLITE, Some(&path), 0, MigrationTarget::Latest)
            .expect_err("the history row is refused");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(versions(&conn), [1, 2]);
        assert!(
            !has(
                &conn,
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('conversations') WHERE name = 'version')"
            ),
            "V3's column was rolled back with its history row"
        );
        conn.execute_batch("DROP TRIGGER refuse_v3")
            .expect("drop trigger");
        migrate(&mut conn, &SQLITE, Some(&path), 0, MigrationTarget::Latest).expect("V3");
        assert_eq!(
            versions(&conn),
            (1..=SQLITE.latest()).map(|v| v as i32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let (_dir, path, mut conn) = migrated_with_data();
        let before = versions(&conn);
        let broken = SQLITE.with_failing_next_version();
        let err = migrate(&mut conn, &broken, Some(&path), 0, MigrationTarget::Latest)
            .expect_err("the next version fails");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(versions(&conn), before, "still at the version it was at");
        assert!(!has(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'half_done')"
        ));
        assert!(has(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE title = 'kept')"
        ));
    }

    #[test]
    fn a_failing_down_script_leaves_the_version_it_was_at() {
        let (_dir, path, mut conn) = migrated_with_data();
        let broken = SQLITE.with_failing_v2_down();
        let err = migrate(
            &mut conn,
            &broken,
            Some(&path),
            0,
            MigrationTarget::Version(1),
        )
        .expect_err("the down script fails");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(
            versions(&conn),
            [1, 2],
            "the steps above V2 were reverted, V2 not"
        );
        assert!(has(
            &conn,
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('conversations') WHERE name = 'message_count')"
        ));
    }
}
