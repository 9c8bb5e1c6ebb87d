//! Connections of the SQLite backend: opened, keyed and configured for the
//! pool, and counted, so that a store closing waits until the last of them
//! is closed (also one the pool was still opening in the background: its
//! code must not run on while the process exits, which SQLCipher's exit
//! handler turns into a crash).

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use r2d2::ManageConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use super::busy::{self, Waiting};
use super::cipher::Cipher;
use super::errors::{display_path, open_error, open_message};
use super::{Target, checkpointer, slow, wal_guard};
use crate::config::SqliteOptions;
use crate::error::{Error, Result};

/// A connection of the pool (or of the checkpointer, or the in-memory
/// database's keeper), counted while open.
pub(super) struct Pooled {
    conn: Connection,
    /// The store's busy timeout and lock holders, which the connection's
    /// busy handler reads: dropped after the connection.
    waiting: Arc<Waiting>,
    _open: OpenGuard,
}

impl Pooled {
    /// What the connection's busy handler decides by.
    pub(super) fn waiting(&self) -> &Waiting {
        &self.waiting
    }
}

impl Deref for Pooled {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// How many connections are open (or being opened).
#[derive(Default)]
pub(super) struct OpenConnections {
    count: Mutex<usize>,
    closed: Condvar,
}

impl OpenConnections {
    fn enter(this: &Arc<Self>) -> OpenGuard {
        *this.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        OpenGuard(Arc::clone(this))
    }

    /// Waits until every connection is closed, at most `patience`.
    pub(super) fn wait_closed(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "{} SQLite connection(s) still open as the store closes",
                    *count
                );
                return;
            }
            count = self
                .closed
                .wait_timeout(count, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Counts one connection while it lives; dropped after it closed (the
/// field order of [`Pooled`]).
struct OpenGuard(Arc<OpenConnections>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.0.closed.notify_all();
    }
}

/// r2d2 manager: opens and configures connections, and refuses to take back
/// a connection that is still inside a transaction.
pub(super) struct Manager {
    pub(super) inner: SqliteConnectionManager,
    pub(super) options: SqliteOptions,
    pub(super) cipher: Cipher,
    pub(super) target: Target,
    /// Counts the connections open, wherever they are.
    pub(super) open: Arc<OpenConnections>,
    /// The store's busy timeout and lock holders (`busy`).
    pub(super) waiting: Arc<Waiting>,
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = Error;

    fn connect(&self) -> Result<Pooled> {
        let derived_before = self.cipher.has_derived();
        match self.connect_once() {
            // The file changed under a key derived for it before (another
            // program re-keyed it while no connection held it): derived anew.
            Err(Error::Key { .. }) if derived_before && self.cipher.forget_derived() => {
                self.connect_once()
            }
            other => other,
        }
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<()> {
        conn.execute_batch("").map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        let in_transaction = !conn.is_autocommit();
        if in_transaction {
            log::warn!("discarding an SQLite connection left inside a transaction");
        }
        in_transaction
    }
}

impl Manager {
    fn connect_once(&self) -> Result<Pooled> {
        let open = OpenConnections::enter(&self.open);
        // A key for a plain file is refused before deriving anything.
        self.cipher.check_file(&self.target)?;
        let conn = self
            .inner
            .connect()
            .map_err(|e| open_error(&self.target, e))?;
        // Keyed first: SQLCipher reads the file only once it has the key.
        let path = display_path(&self.target);
        self.cipher
            .key(&conn, &path)
            .map_err(|e| open_error(&self.target, e))?;
        configure(&conn, &self.options, &self.target, &self.cipher)?;
        busy::install(&conn, &self.waiting).map_err(|e| open_error(&self.target, e))?;
        Ok(Pooled {
            conn,
            waiting: Arc::clone(&self.waiting),
            _open: open,
        })
    }
}

/// Sets and reads back the connection's pragmas; refuses files that are not
/// SQLite databases (or that the key does not fit) before anything is
/// written to them.
pub(super) fn configure(
    conn: &Connection,
    options: &SqliteOptions,
    target: &Target,
    cipher: &Cipher,
) -> Result<()> {
    let fail = |e: rusqlite::Error| open_error(target, e);
    wal_guard::refuse_orphaned_shm(target)?; // before the first read opens the -wal
    conn.busy_timeout(options.busy_timeout).map_err(fail)?; // until `busy::install`
    slow::watch(conn, options.slow_statement);
    conn.set_prepared_statement_cache_capacity(options.statement_cache_capacity);
    super::search::register_admits(conn).map_err(fail)?;
    // Reads the header: a file that is not a database (or a key that does
    // not fit) fails here, unwritten.
    conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => cipher.not_a_database(target),
            _ => fail(e),
        })?;
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
        // Not for an encrypted file: SQLCipher reads pages through the map
        // all the same once the file grows (only its pager stops fetching
        // through it), which would turn an I/O error into a fault for
        // nothing gained.
        if options.mmap_size > 0 && !cipher.encrypted() {
            // In range (validated), so SQLite takes it as it is.
            let bytes = i64::try_from(options.mmap_size).unwrap_or(0);
            conn.pragma_update(None, "mmap_size", bytes).map_err(fail)?;
        }
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(fail)?;
    // In KiB when negative; in range (validated).
    let cache_kib = -i64::try_from(options.cache_size / 1024).unwrap_or(0);
    conn.pragma_update(None, "cache_size", cache_kib)
        .map_err(fail)?;
    let cache: i64 = conn
        .query_row("PRAGMA cache_size", [], |r| r.get(0))
        .map_err(fail)?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(fail)?;
    let foreign_keys: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(fail)?;
    if synchronous != 1 || foreign_keys != 1 || cache != cache_kib {
        return Err(open_message(
            target,
            format!(
                "pragmas did not take effect (synchronous={synchronous}, \
                 foreign_keys={foreign_keys}, cache_size={cache})"
            ),
        ));
    }
    Ok(())
}
