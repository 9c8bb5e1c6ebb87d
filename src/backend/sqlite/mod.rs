//! The SQLite backend: rusqlite over an r2d2 pool.
//!
//! Every connection gets WAL (files), `synchronous=NORMAL`, `foreign_keys=ON`,
//! a busy timeout and a prepared-statement cache, and the pragmas are read
//! back. Writes run in `BEGIN IMMEDIATE` transactions, so concurrent writers
//! wait for each other instead of failing. In-memory databases use SQLite's
//! `memdb` VFS under a unique name, shared by all connections of the pool and
//! kept alive by one connection the backend holds.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use super::sql::pool_timeout;
use super::{Backend, Body, Finish};
use crate::config::{Checkpoint, PoolConfig, SqliteOptions};
use crate::error::{Error, Result};
use crate::migrate::SQLITE;
use crate::model::{
    BackendKind, HealthReport, MigrationStatus, MigrationTarget, PlannedMigration, Snapshot,
};
use errors::{conflict_on, open_error, open_message};
use migrations::{MigrationLock, applied_migrations, schema_moved};

mod checkpointer;
mod errors;
mod maintenance;
mod migrations;
mod queries;
mod restore;
mod rows;
mod search;
mod session;
mod slow;
mod snapshots;
mod wal_guard;

use queries::{BEGIN_IMMEDIATE, COMMIT, ROLLBACK};
use session::SqliteSession;

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

pub(crate) struct SqliteBackend {
    /// Stopped (when the store closes) before the pool's connections close.
    checkpointer: Option<checkpointer::Checkpointer>,
    pool: Pool<Manager>,
    path: Option<PathBuf>,
    snapshots_kept: usize,
    /// [`SqliteOptions::slow_statement`].
    slow_statement: Option<std::time::Duration>,
    /// Keeps a shared in-memory database alive while the pool recycles connections.
    _keeper: Option<Mutex<Connection>>,
}

/// r2d2 manager: opens and configures connections, and refuses to take back
/// a connection that is still inside a transaction.
struct Manager {
    inner: SqliteConnectionManager,
    options: SqliteOptions,
    target: Target,
}

impl ManageConnection for Manager {
    type Connection = Connection;
    type Error = Error;

    fn connect(&self) -> Result<Connection> {
        let conn = self
            .inner
            .connect()
            .map_err(|e| open_error(&self.target, e))?;
        configure(&conn, &self.options, &self.target)?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<()> {
        conn.execute_batch("").map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        let in_transaction = !conn.is_autocommit();
        if in_transaction {
            log::warn!("discarding an SQLite connection left inside a transaction");
        }
        in_transaction
    }
}

/// Sets and reads back the connection's pragmas; refuses files that are not
/// SQLite databases before anything is written to them.
fn configure(conn: &Connection, options: &SqliteOptions, target: &Target) -> Result<()> {
    let fail = |e: rusqlite::Error| open_error(target, e);
    wal_guard::refuse_orphaned_shm(target)?; // before the first read opens the -wal
    conn.busy_timeout(options.busy_timeout).map_err(fail)?;
    slow::watch(conn, options.slow_statement);
    conn.set_prepared_statement_cache_capacity(options.statement_cache_capacity);
    // Reads the header: a file that is not a database fails here, unwritten.
    conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
        .map_err(fail)?;
    if let Target::File(path) = target {
        // SQLite opens a file it may not write read-only, without a word.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(fail)? {
            return Err(open_message(
                target,
                "the database file is read-only (check its permissions)".to_owned(),
            ));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            if options.require_wal {
                return Err(Error::Open {
                    path: path.clone(),
                    reason: format!(
                        "SQLite could not enable the WAL journal (it kept {mode:?}); \
                         set SqliteOptions::require_wal = false to accept that"
                    ),
                    source: None,
                });
            }
            log::warn!(
                "{}: WAL journal unavailable, using {mode:?} (concurrent readers will block writers)",
                path.display()
            );
        }
        checkpointer::configure(conn, options.checkpoint).map_err(fail)?;
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(fail)?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(fail)?;
    let foreign_keys: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(fail)?;
    if synchronous != 1 || foreign_keys != 1 {
        return Err(open_message(
            target,
            format!(
                "pragmas did not take effect (synchronous={synchronous}, foreign_keys={foreign_keys})"
            ),
        ));
    }
    Ok(())
}

/// The absolute path of the database file `path` names now: relative to the
/// current working directory, with its directory made canonical (symbolic
/// links resolved), so that a later change of directory does not move it.
fn resolve(path: &Path) -> Result<PathBuf> {
    let refuse = |reason: String| Error::Open {
        path: path.to_path_buf(),
        reason,
        source: None,
    };
    let absolute = std::path::absolute(path).map_err(|e| Error::Open {
        path: path.to_path_buf(),
        reason: "cannot make the path absolute (is the working directory still there?)".to_owned(),
        source: Some(Box::new(e)),
    })?;
    let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        return Err(refuse("the path names no file".to_owned()));
    };
    match dir.canonicalize() {
        Ok(dir) if dir.is_dir() => Ok(dir.join(name)),
        Ok(_) => Err(refuse(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(refuse(format!(
            "the directory {} does not exist",
            dir.display()
        ))),
        Err(e) => Err(Error::Open {
            path: path.to_path_buf(),
            reason: format!("cannot resolve the directory {}", dir.display()),
            source: Some(Box::new(e)),
        }),
    }
}

impl SqliteBackend {
    /// Opens the pool on `target` (a file path is made absolute here, once).
    pub(crate) fn open(
        target: Target,
        pool: &PoolConfig,
        options: &SqliteOptions,
        migrate_on_open: bool,
    ) -> Result<Self> {
        slow::enter(options.slow_statement);
        // File paths are never read as `file:` URIs; only the memdb name is one.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // Resolved once: every connection, snapshot, lock file and backup
        // uses this path, whatever the working directory becomes later.
        let target = match target {
            Target::File(path) => Target::File(resolve(&path)?),
            Target::Memory => Target::Memory,
        };
        let inner = match &target {
            Target::File(path) => SqliteConnectionManager::file(path).with_flags(flags),
            Target::Memory => SqliteConnectionManager::file(format!(
                "file:/silmari-{}?vfs=memdb",
                Uuid::new_v4().simple()
            ))
            .with_flags(flags | OpenFlags::SQLITE_OPEN_URI),
        };
        let manager = Manager {
            inner,
            options: options.clone(),
            target: target.clone(),
        };
        let mut first = manager.connect()?;
        let path = match &target {
            Target::File(path) => Some(path.clone()),
            Target::Memory => None,
        };
        {
            let _lock = MigrationLock::acquire(path.as_deref())?;
            if migrate_on_open {
                migrations::migrate(
                    &mut first,
                    &SQLITE,
                    path.as_deref(),
                    options.snapshots_kept,
                    MigrationTarget::Latest,
                )?;
            } else {
                SQLITE.verify(&applied_migrations(&first)?)?;
            }
        }
        let checkpointer = match (&target, options.checkpoint) {
            (Target::File(_), Checkpoint::Background { pages }) => Some(
                checkpointer::Checkpointer::start(manager.connect()?, pages)?,
            ),
            _ => None,
        };
        let pool = super::sql::pool(pool, manager);
        let keeper = match target {
            Target::Memory => Some(Mutex::new(first)),
            Target::File(_) => None,
        };
        let backend = SqliteBackend {
            checkpointer,
            pool,
            path,
            snapshots_kept: options.snapshots_kept,
            slow_statement: options.slow_statement,
            _keeper: keeper,
        };
        if migrate_on_open {
            backend.build_search_index(&mut crate::backend::search::log_progress())?;
        }
        Ok(backend)
    }

    fn connection(&self) -> Result<PooledConnection<Manager>> {
        slow::enter(self.slow_statement);
        self.pool
            .get()
            .map_err(|e| pool_timeout(&self.pool, "SQLite", e))
    }

    /// After a commit on this thread: the checkpointer, if any, looks at
    /// how long it left the log.
    fn after_commit(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_commit();
        }
    }
}

impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn read(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        body(&SqliteSession::new(&conn, false))
            .map(drop)
            .map_err(|e| schema_moved(&conn, e))
    }

    fn write(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        let written =
            Tx::begin(&conn).and_then(|tx| match body(&SqliteSession::new(&conn, true))? {
                Finish::Commit => tx.commit(),
                Finish::Rollback => tx.rollback(),
            });
        self.after_commit();
        written.map_err(|e| schema_moved(&conn, e))
    }

    fn write_autocommit(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        let written = body(&SqliteSession::new(&conn, false)).map(drop);
        self.after_commit();
        written.map_err(|e| schema_moved(&conn, e))
    }

    fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        SQLITE.status(&applied_migrations(&*self.connection()?)?)
    }

    fn migration_plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        SQLITE.plan(&applied_migrations(&*self.connection()?)?, target)
    }

    fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        let mut conn = self.connection()?;
        let _lock = MigrationLock::acquire(self.path.as_deref())?;
        migrations::migrate(
            &mut conn,
            &SQLITE,
            self.path.as_deref(),
            self.snapshots_kept,
            target,
        )
    }

    fn snapshots(&self) -> Result<Vec<Snapshot>> {
        match &self.path {
            Some(db) => snapshots::list(db),
            None => Ok(Vec::new()),
        }
    }

    fn restore_snapshot(&self, snapshot: &Path) -> Result<()> {
        let Some(live) = self.path.as_deref() else {
            return Err(self.unsupported("restoring a snapshot into an in-memory database"));
        };
        let mut conn = self.connection()?;
        let _lock = MigrationLock::acquire(Some(live))?;
        restore::restore(&mut conn, live, snapshot)
    }

    fn backup_to(&self, path: &Path) -> Result<()> {
        maintenance::backup(&*self.connection()?, path)
    }

    fn check(&self) -> Result<HealthReport> {
        maintenance::check(&*self.connection()?, self.path.as_deref())
    }
}

/// A `BEGIN IMMEDIATE` transaction on a borrowed connection, rolled back
/// when dropped uncommitted (on error and while unwinding a panic).
struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection) -> Result<Self> {
        conn.prepare_cached(BEGIN_IMMEDIATE)?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> Result<()> {
        self.conn.prepare_cached(COMMIT)?.execute([])?;
        self.open = false;
        Ok(())
    }

    fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch(ROLLBACK).map_err(Error::from)
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch(ROLLBACK)
        {
            // The pool's manager discards a connection still in a transaction.
            log::warn!("rollback failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::queries::ALL;
    use super::*;

    /// A file that cannot get WAL (here: memdb, which has none) is refused,
    /// or accepted with the documented fallback.
    #[test]
    fn no_wal_is_an_error_unless_allowed() -> Result<()> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags("file:/no-wal?vfs=memdb", flags)?;
        let target = Target::File(PathBuf::from("no-wal.db"));
        let mut options = SqliteOptions::default();
        match configure(&conn, &options, &target) {
            Err(Error::Open { reason, .. }) => assert!(reason.contains("WAL"), "{reason}"),
            other => panic!("expected an Open error naming WAL, got {other:?}"),
        }
        options.require_wal = false;
        configure(&conn, &options, &target)
    }

    /// No read is parsed and planned again on each run: every statement
    /// that reads runs twice with new bindings and is never re-prepared
    /// (a bare `LIMIT ?n` was, on every call).
    #[test]
    fn no_statement_is_prepared_again() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn, &SQLITE, None, 0, MigrationTarget::Latest)?;
        for (name, sql) in ALL {
            if !sql.starts_with("SELECT") && !sql.starts_with("WITH") {
                continue;
            }
            let mut stmt = conn.prepare(sql)?;
            for run in 1..=3_i64 {
                for i in 1..=stmt.parameter_count() {
                    stmt.raw_bind_parameter(i, run)?;
                }
                let mut rows = stmt.raw_query();
                while rows.next()?.is_some() {}
            }
            let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(again, 0, "{name} was prepared again on {again} runs");
        }
        Ok(())
    }

    /// Every statement of the backend stays index-driven: no full table scan
    /// and no sort outside an index (`EXPLAIN QUERY PLAN`).
    #[test]
    fn every_statement_uses_an_index() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn, &SQLITE, None, 0, MigrationTarget::Latest)?;
        for (name, sql) in ALL {
            let walk = sql.starts_with("WITH RECURSIVE");
            if !sql.starts_with("SELECT")
                && !sql.starts_with("UPDATE")
                && !sql.starts_with("DELETE")
                && !walk
            {
                continue;
            }
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let details: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
                .collect::<rusqlite::Result<_>>()?;
            assert!(!details.is_empty(), "{name}: no plan");
            for detail in &details {
                // A walk up or down the tree reads the rows it found (`SCAN
                // up`) and sorts them; every step into `messages` is indexed.
                let walked = walk
                    && (["SCAN up", "SCAN down", "SCAN d"].contains(&detail.as_str())
                        || detail == "USE TEMP B-TREE FOR ORDER BY");
                // A search read by the full-text index sorts what it found
                // (few texts: it is chosen for rare tokens, or one
                // conversation); a prefix's count reads at most 64 tokens.
                let searched = (["MESSAGES_BY_INDEX", "MESSAGES_IN_CONVERSATION", "TITLES"]
                    .contains(name)
                    && detail == "USE TEMP B-TREE FOR ORDER BY")
                    || (*name == "COUNT_INDEXED" && detail == "SCAN (subquery-1)");
                let full_scan = detail.starts_with("SCAN")
                    && !detail.contains("INDEX")
                    && detail != "SCAN CONSTANT ROW";
                assert!(
                    walked || searched || (!full_scan && !detail.contains("TEMP B-TREE")),
                    "{name} is not index-driven: {details:?}"
                );
            }
        }
        Ok(())
    }
}
