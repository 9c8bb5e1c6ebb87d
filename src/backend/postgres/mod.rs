//! The PostgreSQL backend: the sync `postgres` client over an r2d2 pool.
//!
//! Connections cache their prepared statements. A pooled connection is
//! probed on checkout without a round trip (the client reads whatever the
//! server already sent, such as the notice of a terminated backend), so
//! connections killed by a server restart are discarded instead of used; a
//! call whose first statement finds its connection dead anyway is retried
//! on a fresh one (at most once per pooled connection) when nothing of it
//! can have taken effect (a read, or the `BEGIN` of a write).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Statement};
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use super::feed::{ChangeSink, Listening, Transport};
use super::sql::pool_timeout;
use super::{Backend, Body, Finish, Session};
use crate::config::{PoolConfig, PostgresUrl, redact};
use crate::error::{Error, Result};
use crate::migrate::POSTGRES;
use crate::model::{
    BackendKind, Counts, HealthReport, MigrationStatus, MigrationTarget, PlannedMigration,
};

mod appends;
mod entries;
mod errors;
mod feed;
mod migrations;
#[macro_use]
mod queries;
mod rows;
mod search;
mod search_queries;
mod search_statistics;
mod session;
mod tls;

#[cfg(test)]
mod plans;
#[cfg(test)]
mod test_database;

use errors::{is_connection_error, open_error};
use queries::{
    BEGIN, COMMIT, COUNT_MISMATCHES, DATABASE_SIZE, MISPLACED_TABLES, ROLLBACK, SCHEMA_EXISTS,
};
use session::PgSession;

pub(crate) struct PostgresBackend {
    pool: Pool<Manager>,
    /// Opens the change feed listener's connections.
    feed_manager: Arc<Manager>,
    /// The schema every connection's `search_path` is pinned to.
    schema: String,
    /// Moves on after every migration; a connection whose statements were
    /// prepared under an older epoch drops them.
    schema_epoch: AtomicU64,
}

/// A pooled connection with its prepared statements.
pub(crate) struct PgConn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set while a transaction is open; a connection dropped with it set
    /// (after a failed rollback) is discarded by the pool.
    in_transaction: bool,
    /// The backend's schema epoch its statements were prepared under.
    epoch: u64,
    /// The change feed's channel ([`feed::channel`]).
    channel: Arc<str>,
    /// Notification payloads sent with this transaction's `COMMIT`.
    notify: Vec<String>,
    /// The payload the next single statement sends, outside a transaction.
    staged: Option<String>,
    /// Whether the database's encoding is UTF-8, once asked.
    utf8: Option<bool>,
    /// Whether the schema keeps messages' token signatures (V12 on), once
    /// asked under this epoch.
    signs: Option<bool>,
    /// What the planner's statistics say, as a search last read them.
    statistics: Option<search_statistics::SearchStatistics>,
}

impl PgConn {
    /// The cached prepared statement for `sql`.
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs a statement that returns no rows.
    fn run(&mut self, sql: &'static str) -> Result<u64> {
        let statement = self.statement(sql)?;
        Ok(self.client.execute(&statement, &[])?)
    }

    /// False when the server has closed this connection, found out without
    /// a round trip: the client reads what already arrived.
    fn is_alive(&mut self) -> bool {
        {
            let mut notifications = self.client.notifications();
            let mut pending = notifications.iter();
            loop {
                match pending.next() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => return false,
                }
            }
        }
        !self.client.is_closed()
    }
}

struct Manager {
    inner: PostgresConnectionManager<tls::Tls>,
    channel: Arc<str>,
}

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.inner.connect()?,
            statements: HashMap::new(),
            in_transaction: false,
            epoch: 0,
            channel: Arc::clone(&self.channel),
            notify: Vec::new(),
            staged: None,
            utf8: None,
            signs: None,
            statistics: None,
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        if conn.in_transaction {
            log::warn!("discarding a PostgreSQL connection left inside a transaction");
        }
        conn.in_transaction || conn.client.is_closed()
    }
}

/// The `options` a connection starts with (no extra round trip): a
/// generic plan for every statement, then the URL's own options, then the
/// pinned schema.
///
/// * `plan_cache_mode=force_generic_plan`: each statement is planned once
///   per connection. Left to choose, PostgreSQL compared a generic plan
///   (which assumes a bound `LIMIT` might be a tenth of the table) with
///   plans made for each call's values, found the latter cheaper, and so
///   planned every listing and page read again on every call: a fifth of a
///   listing's time. Every statement is keyed on an index whatever its
///   values (`plans::chat_statements_are_served_by_indexes`). The URL's
///   options come after it and may set another mode.
/// * `search_path`, last so that a `-c search_path` in the URL cannot undo
///   it: unqualified names resolve in this schema alone. The name was
///   checked to be a plain identifier when the URL was parsed.
fn startup_options(given: Option<&str>, schema: &str) -> String {
    let mut options = "-c plan_cache_mode=force_generic_plan".to_owned();
    if let Some(given) = given.map(str::trim).filter(|given| !given.is_empty()) {
        options.push(' ');
        options.push_str(given);
    }
    options.push_str(" -c search_path=");
    options.push_str(schema);
    options
}

impl PostgresBackend {
    pub(crate) fn open(
        url: &PostgresUrl,
        pool: &PoolConfig,
        migrate_on_open: bool,
    ) -> Result<Self> {
        let mut config: postgres::Config = url.expose().parse().map_err(|e: postgres::Error| {
            Error::invalid(
                "url",
                format!(
                    "{}: {}",
                    redact(url.expose()),
                    e.to_string().replace(url.expose(), "")
                ),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(pool.pool_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("silmari-store");
        }
        config.options(&startup_options(config.get_options(), url.schema()));
        let tls = tls::connector(url, config.get_ssl_mode())?;
        let channel: Arc<str> = feed::channel(url.schema()).into();
        // The change feed's listener connects on its own, outside the pool
        // (which may be a single connection).
        // `Tls` is `NoTls`, a `Copy` type, without the `postgres-tls` feature.
        #[allow(clippy::clone_on_copy)]
        let feed_tls = tls.clone();
        let feed_manager = Arc::new(Manager {
            inner: PostgresConnectionManager::new(config.clone(), feed_tls),
            channel: Arc::clone(&channel),
        });
        let manager = Manager {
            inner: PostgresConnectionManager::new(config, tls),
            channel,
        };
        let mut first = manager.connect().map_err(|e| open_error(url, e))?;
        let statement = first.statement(SCHEMA_EXISTS)?;
        let exists: bool = first
            .client
            .query_one(&statement, &[&url.schema()])?
            .try_get(0)?;
        if !exists {
            return Err(Error::invalid(
                "schema",
                format!(
                    "this database has no schema {:?}: create it first (CREATE SCHEMA {}), \
                     or name another with schema=",
                    url.schema(),
                    url.schema()
                ),
            ));
        }
        migrations::locked(&mut first, |conn| {
            if migrate_on_open {
                migrations::migrate(conn, &POSTGRES, MigrationTarget::Latest).map(drop)
            } else {
                POSTGRES.verify(&migrations::applied_migrations(conn)?)
            }
        })?;
        let pool = super::sql::pool(pool, manager);
        let backend = PostgresBackend {
            pool,
            feed_manager,
            schema: url.schema().to_owned(),
            schema_epoch: AtomicU64::new(0),
        };
        if migrate_on_open {
            backend.build_search_index(&mut super::search::log_progress())?;
        }
        Ok(backend)
    }

    /// A live connection: dead ones found on checkout are discarded.
    fn connection(&self) -> Result<PooledConnection<Manager>> {
        // After a restart every idle connection may be dead: try each once.
        for _ in 0..=self.pool.max_size() {
            let mut conn = self
                .pool
                .get()
                .map_err(|e| pool_timeout(&self.pool, "PostgreSQL", e))?;
            if conn.is_alive() {
                let epoch = self.schema_epoch.load(Ordering::SeqCst);
                if conn.epoch != epoch {
                    conn.statements.clear();
                    conn.signs = None;
                    conn.epoch = epoch;
                }
                return Ok(conn);
            }
            log::warn!("discarding a PostgreSQL connection the server has closed");
        }
        Err(Error::Unavailable {
            reason: "every pooled connection was closed by the server".to_owned(),
            source: None,
        })
    }
}

impl PostgresBackend {
    /// A live connection with `BEGIN` sent. `BEGIN` changes nothing, so when
    /// it meets a dead connection (one the server closed an instant before,
    /// too late for the checkout probe) it is safe to try the next one.
    fn connection_in_transaction(&self) -> Result<PooledConnection<Manager>> {
        let mut last = None;
        for _ in 0..=self.pool.max_size() {
            let mut conn = self.connection()?;
            match begin(&mut conn) {
                Ok(()) => return Ok(conn),
                Err(e) if retryable(&e) => {
                    log::warn!("BEGIN met a dead connection, trying another: {e}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable {
            reason: "no live connection".to_owned(),
            source: None,
        }))
    }
}

/// Sends `BEGIN`; the returned guard rolls back when dropped uncommitted.
fn begin(conn: &mut PgConn) -> Result<()> {
    conn.notify.clear();
    conn.run(BEGIN)?;
    conn.in_transaction = true;
    Ok(())
}

/// An open transaction on a pooled connection, rolled back when dropped
/// uncommitted (on error and while unwinding a panic).
struct Tx<'c> {
    conn: &'c mut PgConn,
}

impl Tx<'_> {
    fn finish(self, finish: Finish) -> Result<()> {
        let notify = std::mem::take(&mut self.conn.notify);
        // On failure `in_transaction` stays set and Drop tries a rollback.
        match finish {
            Finish::Commit if !notify.is_empty() => {
                let sql = feed::notify_and_commit(&self.conn.channel, &notify)?;
                self.conn.client.batch_execute(&sql)?;
            }
            Finish::Commit => drop(self.conn.run(COMMIT)?),
            Finish::Rollback => drop(self.conn.run(ROLLBACK)?),
        }
        self.conn.in_transaction = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.conn.in_transaction {
            match self.conn.client.batch_execute(ROLLBACK) {
                Ok(()) => self.conn.in_transaction = false,
                Err(e) => log::warn!("rollback failed, discarding the connection: {e}"),
            }
        }
    }
}

/// Whether a failed first attempt may be retried on a fresh connection.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Unavailable { source: Some(s), .. }
        if s.downcast_ref::<postgres::Error>().is_some_and(is_connection_error))
}

impl Backend for PostgresBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn transport(&self) -> Transport {
        Transport::Notify
    }

    fn listen(
        &self,
        _instance: &str,
        sink: Arc<dyn ChangeSink>,
    ) -> Result<Option<Box<dyn Listening>>> {
        let listener = feed::listen(Arc::clone(&self.feed_manager), sink)?;
        Ok(Some(Box::new(listener)))
    }

    fn read(&self, body: &mut Body<'_>) -> Result<()> {
        // A read that met a dead connection runs again on another: after a
        // restart every idle connection may be dead, and the server's
        // notice may reach some only after the checkout's probe, so each
        // may need a try (as for `BEGIN`).
        let mut attempt = 0;
        loop {
            let mut conn = self.connection()?;
            match body(&PgSession::new(&mut conn, false)) {
                Err(e) if retryable(&e) && attempt < self.pool.max_size() => {
                    log::warn!("retrying a read on a fresh connection: {e}");
                    attempt += 1;
                }
                other => return other.map(drop),
            }
        }
    }

    fn write(&self, body: &mut Body<'_>) -> Result<()> {
        let mut conn = self.connection_in_transaction()?;
        let tx = Tx { conn: &mut conn };
        let finish = body(&PgSession::new(&mut *tx.conn, true))?;
        tx.finish(finish)
    }

    fn write_autocommit(&self, body: &mut Body<'_>) -> Result<()> {
        // Not retried: the statement may have reached the server.
        let mut conn = self.connection()?;
        let written = body(&PgSession::new(&mut conn, false)).map(drop);
        conn.staged = None;
        written
    }

    fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        POSTGRES.status(&migrations::applied_migrations(&mut *self.connection()?)?)
    }

    fn migration_plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        POSTGRES.plan(
            &migrations::applied_migrations(&mut *self.connection()?)?,
            target,
        )
    }

    fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        let mut conn = self.connection()?;
        let plan = migrations::locked(&mut conn, |conn| {
            migrations::migrate(conn, &POSTGRES, target)
        });
        // Cached statements may describe the old schema: every connection
        // prepares afresh from now on.
        self.schema_epoch.fetch_add(1, Ordering::SeqCst);
        plan
    }

    fn check(&self) -> Result<HealthReport> {
        let mut conn = self.connection()?;
        let applied = migrations::applied_migrations(&mut conn)?;
        let schema_version = applied
            .iter()
            .map(|m| i64::from(m.version()))
            .max()
            .unwrap_or(0);
        let pending_migrations = POSTGRES
            .plan(&applied, MigrationTarget::Latest)?
            .iter()
            .map(|step| step.version)
            .collect();
        let misplaced_tables = if schema_version >= 1 {
            let statement = conn.statement(MISPLACED_TABLES)?;
            conn.client
                .query(&statement, &[&self.schema])?
                .iter()
                .map(|row| row.try_get::<_, String>(0))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        // Counting needs every table where it should be.
        let tables_sound = misplaced_tables.is_empty();
        let number = |conn: &mut PgConn, sql: &'static str| -> Result<u64> {
            let statement = conn.statement(sql)?;
            let n: i64 = conn.client.query_one(&statement, &[])?.try_get(0)?;
            Ok(n.max(0) as u64)
        };
        let message_count_mismatches = if schema_version >= 2 && tables_sound {
            number(&mut conn, COUNT_MISMATCHES)?
        } else {
            0
        };
        let tree_mismatches = if schema_version >= 4 && tables_sound {
            number(&mut conn, crate::backend::sql::TREE_MISMATCHES)?
        } else {
            0
        };
        let search_index_mismatches = if schema_version >= 5 && tables_sound {
            search::backlog(&mut conn)?
        } else {
            0
        };
        let size_bytes = Some(number(&mut conn, DATABASE_SIZE)?);
        let counts = if schema_version >= 1 && tables_sound {
            PgSession::new(&mut conn, false).counts()?
        } else {
            Counts::default()
        };
        Ok(HealthReport {
            backend: BackendKind::Postgres,
            schema_version,
            pending_migrations,
            integrity_check: None,
            foreign_key_violations: None,
            pragmas: None,
            counts,
            message_count_mismatches,
            tree_mismatches,
            search_index_mismatches,
            size_bytes,
            schema: Some(self.schema.clone()),
            misplaced_tables,
        })
    }
}
