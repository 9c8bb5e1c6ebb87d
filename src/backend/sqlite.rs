//! The SQLite backend: rusqlite over an r2d2 pool.
//!
//! Every connection gets WAL (files), `synchronous=NORMAL`, `foreign_keys=ON`,
//! a busy timeout and a prepared-statement cache, and the pragmas are read
//! back. Writes run in `BEGIN IMMEDIATE` transactions, so concurrent writers
//! wait for each other instead of failing. In-memory databases use SQLite's
//! `memdb` VFS under a unique name, shared by all connections of the pool and
//! kept alive by one connection the backend holds.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::sync::plan;
use super::{Backend, BackendKind, Body, Finish, Session, TimeKey};
use crate::config::{PoolConfig, SqliteOptions};
use crate::error::{Entity, Error, Result};
use crate::migrate::{self, MigrationStatus, migration_error};
use crate::model::{
    Attachment, Conversation, ConversationId, ConversationOrder, ConversationSummary, FileId,
    FileMetadata, Message, from_micros, to_micros,
};

/// Where the database lives.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    File(PathBuf),
    Memory,
}

pub(crate) struct SqliteBackend {
    pool: Pool<Manager>,
    path: Option<PathBuf>,
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
    conn.busy_timeout(options.busy_timeout).map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(options.statement_cache_capacity);
    // Reads the header: a file that is not a database fails here, unwritten.
    conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
        .map_err(fail)?;
    if let Target::File(path) = target {
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

fn display_path(target: &Target) -> PathBuf {
    match target {
        Target::File(path) => path.clone(),
        Target::Memory => PathBuf::from(":memory:"),
    }
}

fn open_message(target: &Target, reason: String) -> Error {
    Error::Open {
        path: display_path(target),
        reason,
        source: None,
    }
}

/// Errors while opening, named for what the user can do about them.
fn open_error(target: &Target, e: rusqlite::Error) -> Error {
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            return Error::NotADatabase {
                path: display_path(target),
            };
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => return Error::from(e),
        Some(ErrorCode::ReadOnly) => "the database file or its directory is read-only",
        Some(ErrorCode::CannotOpen) => "the file cannot be opened (does its directory exist?)",
        Some(ErrorCode::PermissionDenied) => "permission denied",
        Some(ErrorCode::DatabaseCorrupt) => "the database file is corrupt",
        Some(ErrorCode::DiskFull) => "the disk is full",
        _ => "SQLite refused it",
    };
    Error::Open {
        path: display_path(target),
        reason: reason.to_owned(),
        source: Some(Box::new(e)),
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Unavailable {
                reason: "the database stayed locked by another connection for longer than the busy timeout"
                    .to_owned(),
                source: Some(Box::new(e)),
            },
            _ => Error::Backend(Box::new(e)),
        }
    }
}

/// Maps a unique-key violation to [`Error::Conflict`] on `entity` `id`.
fn conflict_on(
    entity: Entity,
    id: impl std::fmt::Display,
) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation)
            if matches!(
                e.sqlite_error().map(|s| s.extended_code),
                Some(
                    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                )
            ) =>
        {
            Error::conflict(entity, id)
        }
        _ => Error::from(e),
    }
}

impl SqliteBackend {
    pub(crate) fn open(
        target: Target,
        pool: &PoolConfig,
        options: &SqliteOptions,
        migrate_on_open: bool,
    ) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let inner = match &target {
            Target::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.is_dir()
                {
                    return Err(open_message(
                        &target,
                        format!("the directory {} does not exist", dir.display()),
                    ));
                }
                SqliteConnectionManager::file(path)
            }
            Target::Memory => SqliteConnectionManager::file(format!(
                "file:/silmari-{}?vfs=memdb",
                Uuid::new_v4().simple()
            )),
        }
        .with_flags(flags);
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
            let _lock = path.as_deref().map(MigrationLock::acquire).transpose()?;
            if migrate_on_open {
                migrate_up(&mut first)?;
            } else {
                migrate::check_not_newer(
                    migrate::sqlite::migrations::runner().get_migrations(),
                    &applied_migrations(&first)?,
                )?;
            }
        }
        let pool = Pool::builder()
            .max_size(pool.max_size())
            .min_idle(Some(pool.pool_size))
            .connection_timeout(pool.pool_timeout)
            .max_lifetime(pool.pool_recycle)
            .idle_timeout(None)
            .test_on_check_out(false)
            .build_unchecked(manager);
        let keeper = match target {
            Target::Memory => Some(Mutex::new(first)),
            Target::File(_) => None,
        };
        Ok(SqliteBackend {
            pool,
            path,
            _keeper: keeper,
        })
    }

    fn connection(&self) -> Result<PooledConnection<Manager>> {
        self.pool.get().map_err(|e| {
            log::warn!("no SQLite connection within the pool timeout: {e}");
            Error::Unavailable {
                reason: format!(
                    "no free connection within the pool timeout ({:?})",
                    self.pool.connection_timeout()
                ),
                source: Some(Box::new(e)),
            }
        })
    }
}

/// An exclusive lock on `<database>-migrate.lock`, held while one process
/// reads the migration history and applies what is pending, so that two
/// processes opening a fresh database at once do not both migrate.
struct MigrationLock(File);

impl MigrationLock {
    fn acquire(db: &Path) -> Result<Self> {
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
        Ok(MigrationLock(file))
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
fn applied_migrations(conn: &Connection) -> Result<Vec<refinery::Migration>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'refinery_schema_history')",
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
    let bad = |column: &'static str, reason: String| {
        Error::corrupt("refinery_schema_history", column, reason)
    };
    while let Some(row) = rows.next()? {
        let version: i32 = row.get(0)?;
        let name: String = row.get(1)?;
        let applied_on: String = row.get(2)?;
        let applied_on =
            OffsetDateTime::parse(&applied_on, &time::format_description::well_known::Rfc3339)
                .map_err(|e| bad("applied_on", e.to_string()))?;
        let checksum: String = row.get(3)?;
        let checksum = checksum
            .parse()
            .map_err(|_| bad("checksum", format!("{checksum:?} is not a number")))?;
        applied.push(refinery::Migration::applied(
            version, name, applied_on, checksum,
        ));
    }
    Ok(applied)
}

fn migrate_up(conn: &mut Connection) -> Result<()> {
    let runner = migrate::sqlite::migrations::runner();
    migrate::check_not_newer(runner.get_migrations(), &applied_migrations(conn)?)?;
    runner.run(conn).map_err(migration_error)?;
    Ok(())
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
        body(&SqliteSession::new(&conn, false)).map(drop)
    }

    fn write(&self, body: &mut Body<'_>) -> Result<()> {
        let conn = self.connection()?;
        let tx = Tx::begin(&conn)?;
        match body(&SqliteSession::new(&conn, true))? {
            Finish::Commit => tx.commit(),
            Finish::Rollback => tx.rollback(),
        }
    }

    fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        let conn = self.connection()?;
        migrate::status_of(
            migrate::sqlite::migrations::runner().get_migrations(),
            &applied_migrations(&conn)?,
        )
    }

    fn migrate_up(&self) -> Result<()> {
        let mut conn = self.connection()?;
        let _lock = self
            .path
            .as_deref()
            .map(MigrationLock::acquire)
            .transpose()?;
        migrate_up(&mut conn)
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
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }

    fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("ROLLBACK").map_err(Error::from)
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            // The pool's manager discards a connection still in a transaction.
            log::warn!("rollback failed: {e}");
        }
    }
}

struct SqliteSession<'c> {
    conn: &'c Connection,
    /// Inside a transaction already: multi-statement reads need no snapshot of their own.
    in_transaction: Cell<bool>,
}

impl<'c> SqliteSession<'c> {
    fn new(conn: &'c Connection, in_transaction: bool) -> Self {
        SqliteSession {
            conn,
            in_transaction: Cell::new(in_transaction),
        }
    }

    /// Runs `f` on one consistent snapshot.
    fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_transaction.get() {
            return f();
        }
        self.conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        self.in_transaction.set(true);
        let result = f();
        self.in_transaction.set(false);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn.prepare_cached(end)?.execute([])?;
        result
    }
}

fn uuid_at(row: &Row<'_>, i: usize, table: &'static str, column: &'static str) -> Result<Uuid> {
    let text = row.get_ref(i)?;
    let text = text
        .as_str()
        .map_err(|e| Error::corrupt(table, column, e))?;
    Uuid::try_parse(text).map_err(|e| Error::corrupt(table, column, e))
}

fn time_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<OffsetDateTime> {
    let micros: i64 = row.get(i)?;
    from_micros(micros)
        .ok_or_else(|| Error::corrupt(table, column, format!("{micros} is out of range")))
}

fn size_at(row: &Row<'_>, i: usize, table: &'static str) -> Result<u64> {
    let size: i64 = row.get(i)?;
    u64::try_from(size).map_err(|_| Error::corrupt(table, "size", format!("{size} is negative")))
}

const FILE_COLUMNS: &str = "id, filename, content_type, size, created_at";

fn file_at(row: &Row<'_>) -> Result<FileMetadata> {
    Ok(FileMetadata {
        id: FileId::from_uuid(uuid_at(row, 0, "file_metadata", "id")?),
        filename: row.get(1)?,
        content_type: row.get(2)?,
        size: size_at(row, 3, "file_metadata")?,
        created_at: time_at(row, 4, "file_metadata", "created_at")?,
    })
}

/// Columns read by [`message_at`], after the position.
const MESSAGE_COLUMNS: &str =
    "position, id, conversation_id, role, content, created_at, attachments";

fn message_at(row: &Row<'_>) -> Result<(i64, Message)> {
    const T: &str = "messages";
    let role = row.get_ref(3)?;
    let role = role
        .as_str()
        .map_err(|e| Error::corrupt(T, "role", e))?
        .parse()
        .map_err(|e| Error::corrupt(T, "role", e))?;
    let attachments = row.get_ref(6)?;
    let attachments: Vec<Attachment> = serde_json::from_str(
        attachments
            .as_str()
            .map_err(|e| Error::corrupt(T, "attachments", e))?,
    )
    .map_err(|e| Error::corrupt(T, "attachments", e))?;
    Ok((
        row.get(0)?,
        Message {
            id: uuid_at(row, 1, T, "id")?.into(),
            conversation_id: uuid_at(row, 2, T, "conversation_id")?.into(),
            role,
            content: row.get(4)?,
            created_at: time_at(row, 5, T, "created_at")?,
            attachments,
        },
    ))
}

fn summary_at(row: &Row<'_>) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    let count: i64 = row.get(4)?;
    Ok(ConversationSummary {
        id: uuid_at(row, 0, T, "id")?.into(),
        title: row.get(1)?,
        created_at: time_at(row, 2, T, "created_at")?,
        updated_at: time_at(row, 3, T, "updated_at")?,
        message_count: count.max(0) as u64,
    })
}

fn attachments_json(attachments: &[Attachment]) -> Result<String> {
    serde_json::to_string(attachments).map_err(|e| Error::Backend(Box::new(e)))
}

/// Collects every row of `rows` through `decode`.
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

impl SqliteSession<'_> {
    fn insert_message(&self, position: i64, m: &Message) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO messages (position, id, conversation_id, role, content, created_at, attachments) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                position,
                m.id.to_string(),
                m.conversation_id.to_string(),
                m.role.as_str(),
                m.content,
                to_micros(m.created_at),
                attachments_json(&m.attachments)?,
            ])
            .map_err(conflict_on(Entity::Message, m.id))?;
        Ok(())
    }

    fn conversation_messages(&self, id: ConversationId) -> Result<Vec<(i64, Message)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY position"
        ))?;
        collect(stmt.query([id.to_string()])?, message_at)
    }

    fn conversation_row(&self, id: ConversationId) -> Result<Option<Conversation>> {
        const T: &str = "conversations";
        let mut stmt = self.conn.prepare_cached(
            "SELECT title, created_at, updated_at FROM conversations WHERE id = ?1",
        )?;
        let mut rows = stmt.query([id.to_string()])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        Ok(Some(Conversation {
            id,
            title: row.get(0)?,
            created_at: time_at(row, 1, T, "created_at")?,
            updated_at: time_at(row, 2, T, "updated_at")?,
            messages: Vec::new(),
        }))
    }
}

impl Session for SqliteSession<'_> {
    fn insert_file(&self, f: &FileMetadata) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO file_metadata ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))?
            .execute(params![
                f.id.to_string(),
                f.filename,
                f.content_type,
                f.size as i64,
                to_micros(f.created_at),
            ])
            .map_err(conflict_on(Entity::File, f.id))?;
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {FILE_COLUMNS} FROM file_metadata WHERE id = ?1"
        ))?;
        let mut rows = stmt.query([id.to_string()])?;
        rows.next()?.map(file_at).transpose()
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let limit = limit as i64;
        match after {
            None => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {FILE_COLUMNS} FROM file_metadata ORDER BY created_at DESC, id DESC LIMIT ?1"
                ))?;
                collect(stmt.query([limit])?, file_at)
            }
            Some((t, id)) => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {FILE_COLUMNS} FROM file_metadata WHERE (created_at, id) < (?1, ?2) \
                     ORDER BY created_at DESC, id DESC LIMIT ?3"
                ))?;
                collect(
                    stmt.query(params![t, id.hyphenated().to_string(), limit])?,
                    file_at,
                )
            }
        }
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM file_metadata WHERE id = ?1")?
            .execute([id.to_string()])?;
        Ok(n > 0)
    }

    fn insert_conversation(&self, c: &Conversation) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                c.id.to_string(),
                c.title,
                to_micros(c.created_at),
                to_micros(c.updated_at),
            ])
            .map_err(conflict_on(Entity::Conversation, c.id))?;
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.snapshot(|| {
            let Some(mut conversation) = self.conversation_row(id)? else {
                return Ok(None);
            };
            conversation.messages = self
                .conversation_messages(id)?
                .into_iter()
                .map(|(_, m)| m)
                .collect();
            Ok(Some(conversation))
        })
    }

    fn append_message(&self, m: &Message, now: OffsetDateTime) -> Result<()> {
        let conversation = m.conversation_id.to_string();
        // Bumping first also locks the conversation against a concurrent append.
        let n = self
            .conn
            .prepare_cached(
                "UPDATE conversations SET updated_at = MAX(?2, updated_at + 1) WHERE id = ?1",
            )?
            .execute(params![conversation, to_micros(now)])?;
        if n == 0 {
            return Err(Error::not_found(Entity::Conversation, m.conversation_id));
        }
        let position: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE conversation_id = ?1",
            )?
            .query_row([&conversation], |r| r.get(0))?;
        self.insert_message(position, m)
    }

    fn messages(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, Message)>>> {
        self.snapshot(|| {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND position > ?2 \
                 ORDER BY position LIMIT ?3"
            ))?;
            let page = collect(
                stmt.query(params![
                    conversation.to_string(),
                    after.unwrap_or(i64::MIN),
                    limit as i64
                ])?,
                message_at,
            )?;
            if page.is_empty() && self.conversation_row(conversation)?.is_none() {
                return Ok(None);
            }
            Ok(Some(page))
        })
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        macro_rules! list_sql {
            ($column:literal, $filter:literal, $limit:literal) => {
                concat!(
                    "SELECT c.id, c.title, c.created_at, c.updated_at, \
                     (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) \
                     FROM conversations c ",
                    $filter,
                    " ORDER BY c.",
                    $column,
                    " DESC, c.id DESC LIMIT ",
                    $limit
                )
            };
        }
        let limit = limit as i64;
        let Some((t, id)) = after else {
            let sql = match order {
                ConversationOrder::UpdatedAt => list_sql!("updated_at", "", "?1"),
                ConversationOrder::CreatedAt => list_sql!("created_at", "", "?1"),
            };
            return collect(self.conn.prepare_cached(sql)?.query([limit])?, summary_at);
        };
        let sql = match order {
            ConversationOrder::UpdatedAt => {
                list_sql!("updated_at", "WHERE (c.updated_at, c.id) < (?1, ?2)", "?3")
            }
            ConversationOrder::CreatedAt => {
                list_sql!("created_at", "WHERE (c.created_at, c.id) < (?1, ?2)", "?3")
            }
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        collect(
            stmt.query(params![t, id.hyphenated().to_string(), limit])?,
            summary_at,
        )
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.snapshot(|| {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY conversation_id, position"
            ))?;
            let mut messages: HashMap<ConversationId, Vec<Message>> = HashMap::new();
            for (_, m) in collect(stmt.query([])?, message_at)? {
                messages.entry(m.conversation_id).or_default().push(m);
            }
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, title, created_at, updated_at, 0 FROM conversations \
                 ORDER BY updated_at DESC, id DESC",
            )?;
            Ok(collect(stmt.query([])?, summary_at)?
                .into_iter()
                .map(|s| Conversation {
                    messages: messages.remove(&s.id).unwrap_or_default(),
                    id: s.id,
                    title: s.title,
                    created_at: s.created_at,
                    updated_at: s.updated_at,
                })
                .collect())
        })
    }

    fn update_conversation(
        &self,
        conversation: &Conversation,
        now: OffsetDateTime,
    ) -> Result<Conversation> {
        let id = conversation.id;
        let stored = self
            .conversation_row(id)?
            .ok_or_else(|| Error::not_found(Entity::Conversation, id))?;
        let stored_messages = self.conversation_messages(id)?;
        let plan = plan(&stored_messages, &conversation.messages);
        let updated_at = crate::model::bump(stored.updated_at, now);
        self.conn
            .prepare_cached("UPDATE conversations SET title = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![
                id.to_string(),
                conversation.title,
                to_micros(updated_at)
            ])?;
        for message in &plan.delete {
            self.conn
                .prepare_cached("DELETE FROM messages WHERE id = ?1")?
                .execute([message.to_string()])?;
        }
        for (position, m) in &plan.update {
            self.conn
                .prepare_cached(
                    "UPDATE messages SET position = ?2, role = ?3, content = ?4, created_at = ?5, \
                     attachments = ?6 WHERE id = ?1",
                )?
                .execute(params![
                    m.id.to_string(),
                    position,
                    m.role.as_str(),
                    m.content,
                    to_micros(m.created_at),
                    attachments_json(&m.attachments)?,
                ])?;
        }
        for (position, m) in &plan.insert {
            self.insert_message(*position, m)?;
        }
        Ok(Conversation {
            title: conversation.title.clone(),
            updated_at,
            messages: conversation.messages.clone(),
            ..stored
        })
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM conversations WHERE id = ?1")?
            .execute([id.to_string()])?;
        Ok(n > 0)
    }
}
