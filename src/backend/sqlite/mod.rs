//! The SQLite backend: rusqlite over an r2d2 pool.
//!
//! Every connection gets WAL (files), `synchronous=NORMAL`, `foreign_keys=ON`,
//! a busy timeout and a prepared-statement cache, and the pragmas are read
//! back. Writes run in `BEGIN IMMEDIATE` transactions, so concurrent writers
//! wait for each other instead of failing. In-memory databases use SQLite's
//! `memdb` VFS under a unique name, shared by all connections of the pool and
//! kept alive by one connection the backend holds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use uuid::Uuid;

use super::feed::{ChangeSink, Listening, Transport};
use super::sql::pool_timeout;
use super::{Backend, Body, Finish};
use crate::config::{Checkpoint, PoolConfig, SqliteOptions};
use crate::error::{Error, Result};
use crate::migrate::SQLITE;
use crate::model::{
    BackendKind, HealthReport, MigrationStatus, MigrationTarget, PlannedMigration, Snapshot,
};
use errors::conflict_on;
use migrations::{MigrationLock, applied_migrations, schema_moved};

mod busy;
mod checkpointer;
mod cipher;
mod connect;
mod errors;
mod feed;
mod indexer;
mod maintenance;
mod migrations;
mod queries;
#[cfg(feature = "encryption")]
pub(crate) mod reencrypt;
mod restore;
mod rows;
mod search;
mod search_blocks;
mod session;
mod slow;
mod snapshots;
mod wal_guard;

use cipher::Cipher;
use connect::{Manager, OpenConnections, Pooled};
use queries::{BEGIN_IMMEDIATE, COMMIT, ROLLBACK};
use session::SqliteSession;

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

pub(crate) struct SqliteBackend {
    /// Opens the change feed listener's connection (file targets only).
    feed_manager: Option<Manager>,
    /// Stopped (when the store closes) before the pool's connections close.
    checkpointer: Option<checkpointer::Checkpointer>,
    pool: Pool<Manager>,
    path: Option<PathBuf>,
    snapshots_kept: usize,
    /// The key of the file (copies and snapshots are keyed with it).
    cipher: Cipher,
    /// [`SqliteOptions::slow_statement`].
    slow_statement: Option<std::time::Duration>,
    /// How long a connection waits for another's lock (`busy`).
    busy_timeout: std::time::Duration,
    /// Keeps a shared in-memory database alive while the pool recycles connections.
    _keeper: Option<Mutex<Pooled>>,
    /// Dropped last: waits until every connection above is closed.
    _closing: Closing,
}

/// Waits, when the store closes, until every connection of its pool is
/// closed, also one the pool was still opening in the background.
struct Closing(Arc<OpenConnections>);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.wait_closed(std::time::Duration::from_secs(30));
    }
}

/// The absolute path of the database file `path` names now: relative to the
/// current working directory, with its directory made canonical (symbolic
/// links resolved), so that a later change of directory does not move it.
pub(super) fn resolve(path: &Path) -> Result<PathBuf> {
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
        let cipher = Cipher::new(options);
        let open = Arc::<OpenConnections>::default();
        let waiting = busy::Waiting::new(options.busy_timeout);
        let manager = Manager {
            inner,
            options: options.clone(),
            cipher: cipher.clone(),
            target: target.clone(),
            open: Arc::clone(&open),
            waiting: Arc::clone(&waiting),
        };
        // The change feed's listener gets a connection of its own, outside
        // the pool (which may be a single connection).
        let feed_manager = match &target {
            Target::File(path) => Some(Manager {
                inner: SqliteConnectionManager::file(path).with_flags(flags),
                options: options.clone(),
                cipher: cipher.clone(),
                target: target.clone(),
                open: Arc::clone(&open),
                waiting: Arc::clone(&waiting),
            }),
            Target::Memory => None,
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
            Target::File(_) => {
                // Closed now: the backend, dropped on an error below, waits
                // for every connection to close.
                drop(first);
                None
            }
        };
        let backend = SqliteBackend {
            checkpointer,
            feed_manager,
            pool,
            path,
            snapshots_kept: options.snapshots_kept,
            cipher,
            slow_statement: options.slow_statement,
            busy_timeout: waiting.timeout(),
            _keeper: keeper,
            _closing: Closing(open),
        };
        if migrate_on_open
            && let Err(e) = backend.build_search_index(&mut crate::backend::search::log_progress())
        {
            // Another process migrated the file down since this open
            // migrated it (the build runs after the migration lock): the
            // store's calls say so, typed, as they would a moment later.
            if !backend.schema_moved_below_latest() {
                return Err(errors::while_opening(&target, e));
            }
            log::warn!("the schema moved while the search index was built at open: {e}");
        }
        Ok(backend)
    }

    /// Whether the file is now below the latest version (another process
    /// migrated it down).
    fn schema_moved_below_latest(&self) -> bool {
        let applied = self.connection().and_then(|conn| applied_migrations(&conn));
        applied.is_ok_and(|applied| {
            let version = applied.iter().map(|m| i64::from(m.version())).max();
            version.unwrap_or(0) < SQLITE.latest()
        })
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

    fn transport(&self) -> Transport {
        // An in-memory database has no other process to tell.
        if self.path.is_some() {
            Transport::Log
        } else {
            Transport::Local
        }
    }

    fn listen(
        &self,
        instance: &str,
        sink: Arc<dyn ChangeSink>,
    ) -> Result<Option<Box<dyn Listening>>> {
        let Some(manager) = &self.feed_manager else {
            return Ok(None);
        };
        // A connection of its own, held while anyone subscribes: `PRAGMA
        // data_version` moves for commits by every other connection.
        let listener = feed::listen(manager.connect()?, instance, sink)?;
        Ok(Some(Box::new(listener)))
    }

    fn read(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        body(&SqliteSession::new(&conn, false))
            .map(drop)
            .map_err(|e| schema_moved(&conn, e))
    }

    fn write(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        let written = Tx::begin(&conn).and_then(|tx| {
            // Holding the write lock: the store's waiters wait as SQLite does.
            let _holding = conn.waiting().hold();
            match body(&SqliteSession::new(&conn, true))? {
                Finish::Commit => tx.commit(),
                Finish::Rollback => tx.rollback(),
            }
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
        restore::restore(&mut conn, &self.cipher, live, snapshot, self.busy_timeout)
    }

    fn backup_to(&self, path: &Path) -> Result<()> {
        maintenance::backup(&*self.connection()?, &self.cipher, path, self.busy_timeout)
    }

    fn check(&self) -> Result<HealthReport> {
        maintenance::check(
            &*self.connection()?,
            self.path.as_deref(),
            self.busy_timeout,
        )
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
mod tests;
