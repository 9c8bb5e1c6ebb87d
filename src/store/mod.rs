//! The `Store` facade: opening, transactions and the repository handles.
//!
//! Layer 3. Capabilities built on the facade (copy, JSON Lines, health,
//! migrations, backups) add their own `impl Store` blocks in their own
//! modules; this one imports none of them.

mod builder;
mod handles;
pub(crate) mod hub;
mod recorder;
mod recording;
mod subscription;
mod writing;

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, Finish, Session};
use crate::config::{Location, StoreConfig};
use crate::error::{Error, Result};
use crate::model::BackendKind;
use crate::search::tokenize::PAIRS_SINCE_VERSION;

pub use builder::{DEFAULT_URL, StoreBuilder};
pub use handles::{Conversations, Files, Transaction};
pub use subscription::{DEFAULT_CAPACITY, Subscription};

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
    hub: Arc<hub::Hub>,
    /// Whether the schema, when last seen, indexes word pairs (see
    /// [`Store::indexes_word_pairs`]).
    word_pairs: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Before the backend goes: stops the listener (and its connection).
        self.hub.close();
    }
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
    /// [`StoreConfig`](crate::StoreConfig) for the URL forms.
    pub fn open(url: &str) -> Result<Store> {
        Store::builder().url(url).open()
    }

    /// Opens the store named by the `DATABASE_URL` environment variable, or
    /// [`DEFAULT_URL`] when it is not set.
    pub fn from_env() -> Result<Store> {
        Store::builder().url(builder::url_from_env()?).open()
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
        // Read even when migrated on open: another process may have
        // moved the schema down since.
        let word_pairs = schema_indexes_word_pairs(&*backend)?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                location: config.location,
                hub: Arc::new(hub::Hub::new()),
                word_pairs: AtomicBool::new(word_pairs),
            }),
        })
    }

    /// Whether every index entry holds its text's word pairs, as the
    /// schema was when opened or last migrated by this store: then a
    /// phrase is asked of the index by its pairs, else by its words (a
    /// store opened with `migrate_on_open(false)` on an older schema).
    pub(crate) fn indexes_word_pairs(&self) -> bool {
        self.inner.word_pairs.load(Ordering::Relaxed)
    }

    /// Reads the schema's version again after a migration or a restore.
    /// When it cannot be read (the database busy or gone), what was known
    /// stays: the call that moved the schema has failed too, or a later
    /// one will read it.
    pub(crate) fn note_schema_moved(&self) {
        if let Ok(pairs) = schema_indexes_word_pairs(&*self.inner.backend) {
            self.inner.word_pairs.store(pairs, Ordering::Relaxed);
        }
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> BackendKind {
        self.inner.backend.kind()
    }

    /// Where the data lives (passwords masked when displayed).
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The database file, for SQLite file stores: the absolute path resolved
    /// once at open, used for every connection, snapshot, lock file and
    /// backup (a later change of working directory does not move it).
    pub fn path(&self) -> Option<&Path> {
        self.inner.backend.path()
    }

    /// Runs `f` in one transaction: everything it wrote is committed when it
    /// returns `Ok`, and nothing is when it returns `Err` or panics.
    ///
    /// Each call inside is atomic on its own: one that fails leaves nothing
    /// of itself, and `f` may handle its error and go on (the same on every
    /// backend). When the database itself fails inside (a lost connection,
    /// a read the database fails), the transaction ends there: later calls
    /// in it, and then the transaction itself, return
    /// [`Error::TransactionAborted`], and nothing of it is written.
    ///
    /// Each writing call is a savepoint; on PostgreSQL, a subtransaction.
    /// More than 64 writing calls in one transaction overflow PostgreSQL's
    /// per-session cache of subtransactions, which slows other sessions'
    /// reads while it runs: write many messages with one
    /// [`append_messages`](crate::ConversationRepository::append_messages).
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
        let finished = self.write_body(false, &mut |session| {
            let f = f.take().ok_or_else(body_reentered)?;
            let tx = Transaction::new(session);
            let result = f(&tx).and_then(|value| match tx.usable() {
                Ok(()) => Ok(value),
                Err(aborted) => Err(E::from(aborted)),
            });
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

    /// The backend, for capabilities that call it directly (health,
    /// migrations, backups); [`Error::InTransaction`] on a thread inside
    /// one of this store's transactions, where such a call would wait for
    /// the transaction's own lock.
    pub(crate) fn backend_ref(&self) -> Result<&dyn Backend> {
        if OpenTransaction::is_open(self) {
            return Err(Error::InTransaction);
        }
        Ok(&*self.inner.backend)
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// Runs one reading repository call. `f` may run again on a fresh
    /// connection when the first turns out dead, so it must only read.
    pub(crate) fn run_read<T>(&self, f: impl Fn(&dyn Session) -> Result<T>) -> Result<T> {
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
        self.write_body(single_statement, &mut body)?;
        out.ok_or_else(body_reentered)
    }
}

fn body_reentered() -> Error {
    Error::Backend("internal error: a transaction body ran more or less than once".into())
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
        // Destroyed (a write from a later thread-local's destructor):
        // nothing is open any more on this thread.
        OPEN_TRANSACTIONS
            .try_with(|open| open.borrow().contains(&id))
            .unwrap_or(false)
    }

    fn enter(store: &Store) -> Result<Self> {
        if Self::is_open(store) {
            return Err(Error::InTransaction);
        }
        let id = store.id();
        let _ = OPEN_TRANSACTIONS.try_with(|open| open.borrow_mut().push(id));
        Ok(OpenTransaction(id))
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        let _ = OPEN_TRANSACTIONS.try_with(|open| open.borrow_mut().retain(|id| *id != self.0));
    }
}

/// Whether `backend`'s schema indexes word pairs (a backend without
/// migrations, memory, always does).
fn schema_indexes_word_pairs(backend: &dyn Backend) -> Result<bool> {
    let status = backend.migration_status()?;
    Ok(status.is_empty()
        || status
            .iter()
            .any(|m| m.is_applied() && m.version >= PAIRS_SINCE_VERSION))
}
