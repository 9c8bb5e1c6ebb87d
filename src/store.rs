//! The `Store` facade: opening, transactions and the repository handles.

use std::cell::RefCell;
use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendKind, Finish, Session};
use crate::config::{Location, PoolConfig, SqliteOptions, StoreConfig};
use crate::error::{Entity, Error, Result};
use crate::health::{Counts, HealthReport};
use crate::migrate::Migrations;
use crate::model::{
    Conversation, ConversationId, ConversationOrder, ConversationQuery, ConversationSummary,
    Cursor, CursorKey, FileId, FileMetadata, Message, NewConversation, NewFile, NewMessage, Page,
    PageRequest, now, to_micros,
};
use crate::repo::{ConversationRepository, FileRepository};
use crate::transfer::{Progress, TransferOptions, TransferReport};
use crate::validate;

/// The URL [`Store::from_env`] uses when `DATABASE_URL` is not set: an SQLite
/// file `dev.db` in the working directory, as in the original plan.
pub const DEFAULT_URL: &str = "sqlite:///./dev.db";

/// A handle on one database: cheap to clone, `Send + Sync`, so it can sit in
/// a Tauri `State` or be handed to worker threads.
///
/// ```
/// use silmari_store::prelude::*;
///
/// # fn main() -> silmari_store::Result<()> {
/// let store = Store::open("memory://")?;
/// let conversation = store.conversations().create(NewConversation::titled("Draft"))?;
/// store
///     .conversations()
///     .append_message(conversation.id, NewMessage::new(Role::User, "Hello"))?;
/// let stored = store.conversations().get(conversation.id)?.expect("just created");
/// assert_eq!(stored.messages[0].content, "Hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn Backend>,
    location: Location,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("location", &self.inner.location)
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` with default settings, creating an SQLite
    /// file if needed and applying pending migrations. See
    /// [`config`](crate::config) for the URL forms.
    pub fn open(url: &str) -> Result<Store> {
        Store::builder().url(url).open()
    }

    /// Opens the store named by the `DATABASE_URL` environment variable, or
    /// [`DEFAULT_URL`] when it is not set.
    pub fn from_env() -> Result<Store> {
        Store::builder().url(url_from_env()?).open()
    }

    /// A builder for settings beyond the URL.
    pub fn builder() -> StoreBuilder {
        StoreBuilder::default()
    }

    /// Opens a store from a complete configuration.
    pub fn open_with(config: StoreConfig) -> Result<Store> {
        config.validate()?;
        let backend: Box<dyn Backend> = match &config.location {
            Location::Memory => Box::<MemoryBackend>::default(),
            #[cfg(feature = "sqlite")]
            Location::SqliteFile(path) => Box::new(crate::backend::sqlite::SqliteBackend::open(
                crate::backend::sqlite::Target::File(path.clone()),
                &config.pool,
                &config.sqlite,
                config.migrate_on_open,
            )?),
            #[cfg(feature = "sqlite")]
            Location::SqliteMemory => Box::new(crate::backend::sqlite::SqliteBackend::open(
                crate::backend::sqlite::Target::Memory,
                &config.pool,
                &config.sqlite,
                config.migrate_on_open,
            )?),
            #[cfg(not(feature = "sqlite"))]
            Location::SqliteFile(_) | Location::SqliteMemory => {
                return Err(Error::invalid(
                    "url",
                    "this build has no SQLite backend: enable the `sqlite` feature",
                ));
            }
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => Box::new(crate::backend::postgres::PostgresBackend::open(
                url,
                &config.pool,
                config.migrate_on_open,
            )?),
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => {
                return Err(Error::invalid(
                    "url",
                    "this build has no PostgreSQL backend: enable the `postgres` feature",
                ));
            }
        };
        log::info!("opened {} store at {}", backend.kind(), config.location);
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                location: config.location,
            }),
        })
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// Where the data lives (passwords masked when displayed).
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The database file, for SQLite file stores.
    pub fn path(&self) -> Option<&Path> {
        self.inner.backend.path()
    }

    /// Uploaded-file metadata.
    pub fn files(&self) -> Files<'_> {
        Files {
            target: Target::Store(self),
        }
    }

    /// Conversations and their messages.
    pub fn conversations(&self) -> Conversations<'_> {
        Conversations {
            target: Target::Store(self),
        }
    }

    /// Schema migrations: status, plan, up, down, snapshots.
    pub fn migrations(&self) -> Migrations<'_> {
        Migrations { store: self }
    }

    /// A structured health report: schema version and pending migrations,
    /// integrity and foreign-key checks and the pragmas in effect (SQLite),
    /// row counts, size on disk.
    pub fn check(&self) -> Result<HealthReport> {
        self.inner.backend.check()
    }

    /// Rows per table.
    pub fn counts(&self) -> Result<Counts> {
        self.run_read(|s| s.counts())
    }

    /// Copies everything of this store into `target` (any backend): see
    /// [`transfer::copy`](crate::transfer::copy).
    pub fn copy_to(
        &self,
        target: &Store,
        options: TransferOptions,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        crate::transfer::copy(self, target, options, progress)
    }

    /// Writes every record to `out` in the [JSON Lines format](crate::jsonl),
    /// a page at a time.
    pub fn export_jsonl(
        &self,
        mut out: impl Write,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        crate::jsonl::export(self, &mut out, progress)
    }

    /// Reads a [JSON Lines export](crate::jsonl) into this store in one
    /// transaction, checking every record with the API's rules. A file with
    /// a bad record writes nothing and fails with [`Error::Import`] naming
    /// the line. A store that holds data is refused unless `options.merge`.
    pub fn import_jsonl(
        &self,
        input: impl BufRead,
        options: TransferOptions,
        progress: impl FnMut(Progress),
    ) -> Result<TransferReport> {
        crate::jsonl::import(self, input, options, progress)
    }

    /// Copies the live database to a new file at `path` with SQLite's online
    /// backup API; the store stays usable meanwhile. An existing file is not
    /// overwritten. Other backends: [`Error::Unsupported`].
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<()> {
        self.inner.backend.backup_to(path.as_ref())
    }

    /// Runs `f` in one transaction: everything it wrote is committed when it
    /// returns `Ok`, and nothing is when it returns `Err` or panics.
    ///
    /// Use the handles of the [`Transaction`] inside `f`; calling the store
    /// itself there returns [`Error::InTransaction`]. Transactions that write
    /// are serialized: on SQLite this is `BEGIN IMMEDIATE`.
    ///
    /// ```
    /// use silmari_store::prelude::*;
    ///
    /// # fn main() -> silmari_store::Result<()> {
    /// let store = Store::open("memory://")?;
    /// let result: Result<(), Error> = store.transaction(|tx| {
    ///     tx.conversations().create(NewConversation::titled("kept?"))?;
    ///     Err(Error::InTransaction) // any error rolls everything back
    /// });
    /// assert!(result.is_err());
    /// assert!(store.conversations().list_all()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Transaction<'_>) -> Result<T, E>,
        E: From<Error>,
    {
        let _marker = OpenTransaction::enter(self)?;
        let mut f = Some(f);
        let mut outcome: Option<Result<T, E>> = None;
        let finished = self.inner.backend.write(&mut |session| {
            let f = f.take().ok_or_else(body_reentered)?;
            let result = f(&Transaction { session });
            let finish = if result.is_ok() {
                Finish::Commit
            } else {
                Finish::Rollback
            };
            outcome = Some(result);
            Ok(finish)
        });
        match (finished, outcome) {
            (_, Some(Err(e))) => Err(e),
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => Err(E::from(body_reentered())),
        }
    }

    pub(crate) fn backend_ref(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Runs one reading repository call. `f` may run again on a fresh
    /// connection when the first turns out dead, so it must only read.
    fn run_read<T>(&self, f: impl Fn(&dyn Session) -> Result<T>) -> Result<T> {
        if OpenTransaction::is_open(self) {
            return Err(Error::InTransaction);
        }
        let mut out = None;
        self.inner.backend.read(&mut |session| {
            out = Some(f(session)?);
            Ok(Finish::Commit)
        })?;
        out.ok_or_else(body_reentered)
    }

    /// Runs one writing repository call in its own transaction.
    pub(crate) fn run_write<T>(&self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        self.run_write_as(false, f)
    }

    /// Runs a repository call that writes with a single statement, which
    /// needs no explicit transaction.
    fn run_write_single<T>(&self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        self.run_write_as(true, f)
    }

    fn run_write_as<T>(
        &self,
        single_statement: bool,
        f: impl FnOnce(&dyn Session) -> Result<T>,
    ) -> Result<T> {
        if OpenTransaction::is_open(self) {
            return Err(Error::InTransaction);
        }
        let mut f = Some(f);
        let mut out = None;
        let mut body = |session: &dyn Session| {
            let f = f.take().ok_or_else(body_reentered)?;
            out = Some(f(session)?);
            Ok(Finish::Commit)
        };
        if single_statement {
            self.inner.backend.write_autocommit(&mut body)?;
        } else {
            self.inner.backend.write(&mut body)?;
        }
        out.ok_or_else(body_reentered)
    }
}

fn body_reentered() -> Error {
    Error::Backend("internal error: a transaction body ran more or less than once".into())
}

fn url_from_env() -> Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(url),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(DEFAULT_URL.to_owned()),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid("DATABASE_URL", "is not valid Unicode"))
        }
    }
}

thread_local! {
    /// Stores with a transaction open on this thread.
    static OPEN_TRANSACTIONS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks a store as inside a transaction on this thread until dropped, so
/// that a direct call on the store (which would wait for its own lock) is
/// refused instead.
struct OpenTransaction(usize);

impl OpenTransaction {
    fn is_open(store: &Store) -> bool {
        let id = store.id();
        OPEN_TRANSACTIONS.with(|open| open.borrow().contains(&id))
    }

    fn enter(store: &Store) -> Result<Self> {
        if Self::is_open(store) {
            return Err(Error::InTransaction);
        }
        let id = store.id();
        OPEN_TRANSACTIONS.with(|open| open.borrow_mut().push(id));
        Ok(OpenTransaction(id))
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        OPEN_TRANSACTIONS.with(|open| open.borrow_mut().retain(|id| *id != self.0));
    }
}

/// Builds a [`Store`] with settings beyond the URL.
///
/// Settings given here override those of the URL's query parameters.
///
/// ```
/// use silmari_store::{PoolConfig, Store};
///
/// # fn main() -> silmari_store::Result<()> {
/// let store = Store::builder()
///     .url("sqlite://")
///     .pool(PoolConfig { pool_size: 2, max_overflow: 2, ..PoolConfig::default() })
///     .migrate_on_open(true)
///     .open()?;
/// assert_eq!(store.backend(), silmari_store::BackendKind::Sqlite);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct StoreBuilder {
    url: Option<String>,
    pool: Option<PoolConfig>,
    sqlite: Option<SqliteOptions>,
    migrate_on_open: Option<bool>,
}

impl StoreBuilder {
    /// The database URL; [`DEFAULT_URL`] if never set.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Pool settings.
    pub fn pool(mut self, pool: PoolConfig) -> Self {
        self.pool = Some(pool);
        self
    }

    /// SQLite settings.
    pub fn sqlite(mut self, options: SqliteOptions) -> Self {
        self.sqlite = Some(options);
        self
    }

    /// Whether to apply pending migrations on open (default `true`). When
    /// off, call [`Migrations::up`] before using a fresh database.
    pub fn migrate_on_open(mut self, migrate: bool) -> Self {
        self.migrate_on_open = Some(migrate);
        self
    }

    /// The configuration this builder describes.
    pub fn config(&self) -> Result<StoreConfig> {
        let mut config: StoreConfig = self.url.as_deref().unwrap_or(DEFAULT_URL).parse()?;
        if let Some(pool) = self.pool {
            config.pool = pool;
        }
        if let Some(sqlite) = &self.sqlite {
            config.sqlite = sqlite.clone();
        }
        if let Some(migrate) = self.migrate_on_open {
            config.migrate_on_open = migrate;
        }
        Ok(config)
    }

    /// Opens the store.
    pub fn open(self) -> Result<Store> {
        Store::open_with(self.config()?)
    }
}

/// An open transaction, handed to the closure of [`Store::transaction`].
pub struct Transaction<'a> {
    session: &'a dyn Session,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transaction")
    }
}

impl Transaction<'_> {
    /// Uploaded-file metadata, inside this transaction.
    pub fn files(&self) -> Files<'_> {
        Files {
            target: Target::Transaction(self.session),
        }
    }

    /// Conversations, inside this transaction.
    pub fn conversations(&self) -> Conversations<'_> {
        Conversations {
            target: Target::Transaction(self.session),
        }
    }
}

/// Where a repository handle sends its calls.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Each call in its own transaction.
    Store(&'a Store),
    /// Calls inside an open transaction.
    Transaction(&'a dyn Session),
}

impl Target<'_> {
    fn read<T>(self, f: impl Fn(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_read(f),
            Target::Transaction(session) => f(session),
        }
    }

    fn write<T>(self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_write(f),
            Target::Transaction(session) => f(session),
        }
    }

    /// A write of one statement (see [`Store::run_write_single`]).
    fn write_single<T>(self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_write_single(f),
            Target::Transaction(session) => f(session),
        }
    }
}

/// The [`FileRepository`] of a store or transaction.
#[derive(Clone, Copy)]
pub struct Files<'a> {
    target: Target<'a>,
}

/// The [`ConversationRepository`] of a store or transaction.
#[derive(Clone, Copy)]
pub struct Conversations<'a> {
    target: Target<'a>,
}

impl fmt::Debug for Files<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Files")
    }
}

impl fmt::Debug for Conversations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Conversations")
    }
}

fn wrong_cursor() -> Error {
    Error::invalid("cursor", "it belongs to a different list")
}

/// Cuts `items` (fetched with one extra) to `limit` and makes the cursor of
/// the next page from the last item kept.
fn page<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> CursorKey) -> Page<T> {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| Cursor(key(last)))
    } else {
        None
    };
    Page { items, next }
}

impl FileRepository for Files<'_> {
    fn create(&self, file: NewFile) -> Result<FileMetadata> {
        let file = validate::new_file(file, now())?;
        self.target.write_single(|s| s.insert_file(&file))?;
        Ok(file)
    }

    fn get(&self, id: FileId) -> Result<Option<FileMetadata>> {
        self.target.read(|s| s.file(id))
    }

    fn list(&self, request: PageRequest) -> Result<Page<FileMetadata>> {
        let limit = validate::page_limit(request.limit)?;
        let after = match request.after {
            None => None,
            Some(Cursor(CursorKey::Files(t, id))) => Some((t, id)),
            Some(_) => return Err(wrong_cursor()),
        };
        let items = self.target.read(|s| s.files(after, limit + 1))?;
        Ok(page(items, limit, |f| {
            CursorKey::Files(to_micros(f.created_at), *f.id.as_uuid())
        }))
    }

    fn delete(&self, id: FileId) -> Result<bool> {
        self.target.write_single(|s| s.delete_file(id))
    }
}

impl ConversationRepository for Conversations<'_> {
    fn create(&self, conversation: NewConversation) -> Result<Conversation> {
        let conversation = validate::new_conversation(conversation, now())?;
        self.target
            .write_single(|s| s.insert_conversation(&conversation))?;
        Ok(conversation)
    }

    fn get(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.target.read(|s| s.conversation(id))
    }

    fn append_message(&self, conversation: ConversationId, message: NewMessage) -> Result<Message> {
        let now = now();
        let message = validate::new_message(conversation, message, now)?;
        self.target.write(|s| {
            s.append_messages(conversation, std::slice::from_ref(&message), Some(now))
        })?;
        Ok(message)
    }

    fn append_messages(
        &self,
        conversation: ConversationId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Message>> {
        let now = now();
        let messages = validate::new_messages(conversation, messages, now)?;
        if !messages.is_empty() {
            self.target
                .write(|s| s.append_messages(conversation, &messages, Some(now)))?;
        }
        Ok(messages)
    }

    fn messages(
        &self,
        conversation: ConversationId,
        request: PageRequest,
    ) -> Result<Page<Message>> {
        let limit = validate::page_limit(request.limit)?;
        let after = match request.after {
            None => None,
            Some(Cursor(CursorKey::Messages(position))) => Some(position),
            Some(_) => return Err(wrong_cursor()),
        };
        let items = self
            .target
            .read(|s| s.messages(conversation, after, limit + 1))?
            .ok_or_else(|| Error::not_found(Entity::Conversation, conversation))?;
        let Page { items, next } = page(items, limit, |(p, _)| CursorKey::Messages(*p));
        Ok(Page {
            items: items.into_iter().map(|(_, m)| m).collect(),
            next,
        })
    }

    fn list(&self, query: ConversationQuery) -> Result<Page<ConversationSummary>> {
        let limit = validate::page_limit(query.page.limit)?;
        let after = match (query.order, query.page.after) {
            (_, None) => None,
            (ConversationOrder::UpdatedAt, Some(Cursor(CursorKey::ByUpdated(t, id))))
            | (ConversationOrder::CreatedAt, Some(Cursor(CursorKey::ByCreated(t, id)))) => {
                Some((t, id))
            }
            (_, Some(_)) => return Err(wrong_cursor()),
        };
        let items = self
            .target
            .read(|s| s.conversations(query.order, after, limit + 1))?;
        Ok(page(items, limit, |c| match query.order {
            ConversationOrder::UpdatedAt => {
                CursorKey::ByUpdated(to_micros(c.updated_at), *c.id.as_uuid())
            }
            ConversationOrder::CreatedAt => {
                CursorKey::ByCreated(to_micros(c.created_at), *c.id.as_uuid())
            }
        }))
    }

    fn list_all(&self) -> Result<Vec<Conversation>> {
        self.target.read(|s| s.all_conversations())
    }

    fn update(&self, conversation: &Conversation) -> Result<Conversation> {
        let conversation = validate::conversation(conversation)?;
        let now = now();
        self.target
            .write(|s| s.update_conversation(&conversation, now))
    }

    fn delete(&self, id: ConversationId) -> Result<bool> {
        self.target.write_single(|s| s.delete_conversation(id))
    }
}
