//! The one error type of the crate.

use std::fmt;
use std::path::PathBuf;

mod serialize;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of record an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A conversation.
    Conversation,
    /// A message of a conversation.
    Message,
    /// An uploaded file's metadata.
    File,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Entity::Conversation => "conversation",
            Entity::Message => "message",
            Entity::File => "file",
        })
    }
}

/// Everything that can go wrong in silmari-store.
///
/// Match on the variant, never on the message: messages are for people and may
/// change between releases. No message ever contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The record the call needs does not exist (for example `update` of a
    /// conversation that was deleted, or a message for a missing conversation).
    #[error("{entity} {id} not found")]
    NotFound {
        /// What kind of record was looked for.
        entity: Entity,
        /// Its id.
        id: String,
    },

    /// A record with this id already exists.
    #[error("{entity} {id} already exists")]
    Conflict {
        /// What kind of record collided.
        entity: Entity,
        /// The duplicate id.
        id: String,
    },

    /// A whole-conversation write was based on a copy that is no longer
    /// current: another write (from this or another thread, process or app
    /// instance) moved the conversation's
    /// [`version`](crate::Conversation::version) since the copy was read.
    /// Nothing was written. Read the conversation again, re-apply the change
    /// to the fresh copy, and write that:
    ///
    /// ```
    /// use silmari_store::prelude::*;
    ///
    /// # fn main() -> silmari_store::Result<()> {
    /// # let store = Store::open("memory://")?;
    /// # let id = store.conversations().create(NewConversation::titled("Draft"))?.id;
    /// let renamed = loop {
    ///     let mut fresh = store.conversations().get(id)?.expect("it exists");
    ///     fresh.title = "Chapter one".into();
    ///     match store.conversations().update(&fresh) {
    ///         Err(Error::Stale { .. }) => continue, // someone wrote first: retry
    ///         other => break other?,
    ///     }
    /// };
    /// assert_eq!(renamed.title, "Chapter one");
    /// # Ok(()) }
    /// ```
    #[error("{entity} {id} changed since this copy of it was read; read it again and retry")]
    Stale {
        /// What kind of record.
        entity: Entity,
        /// Its id.
        id: String,
    },

    /// An input was refused before anything was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field that was refused, e.g. `filename` or `attachments[2].content_type`.
        field: String,
        /// Why it was refused.
        reason: String,
    },

    /// The database was migrated by a newer build of this crate.
    #[error(
        "database schema is at version {database}, newer than the newest this build knows ({supported}); \
         upgrade the application"
    )]
    SchemaTooNew {
        /// The newest version recorded in the database.
        database: i64,
        /// The newest version this build embeds.
        supported: i64,
    },

    /// Applying or checking migrations failed; the database stays at the last
    /// version that applied completely.
    #[error("migration failed: {message}{}", ServerSaid(.source))]
    Migration {
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The database could not be reached in time: pool timeout, server down,
    /// or a lock held by another process for longer than the busy timeout.
    #[error("database unavailable: {reason}{}", ServerSaid(.source))]
    Unavailable {
        /// What was unavailable.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The disk (or the database's size limit) is full. The call that met it
    /// wrote nothing; everything written before is intact.
    #[error("the disk is full: {reason}{}", ServerSaid(.source))]
    DiskFull {
        /// What the database reported.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The database at `path` could not be opened.
    #[error("cannot open database {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why, in words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The database server refused the connection for a reason that waiting
    /// will not fix: a wrong password, an unknown user or database.
    #[error("cannot connect to {location}: {reason}{}", ServerSaid(.source))]
    Connect {
        /// The server, shown without its password.
        location: String,
        /// Why, in words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The file at `path` exists but is not an SQLite database. It was left untouched.
    #[error("{} is not an SQLite database (left untouched)", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },

    /// The SQLite file at `path` and the key it was opened with do not go
    /// together (the `encryption` feature): a key is missing, wrong, or
    /// given for a file that is not encrypted. Nothing was written to it.
    #[error("cannot open database {}: {problem} (left untouched)", path.display())]
    Key {
        /// The database file.
        path: PathBuf,
        /// Which of the three.
        problem: KeyProblem,
    },

    /// A stored value could not be decoded (for example a tampered row).
    #[error("corrupt row in {table}.{column}: {reason}")]
    CorruptRow {
        /// Table of the bad value.
        table: &'static str,
        /// Column of the bad value.
        column: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },

    /// The store was used directly, or a nested transaction was started, on a
    /// thread that holds an open transaction of the same store. Use the
    /// transaction's own handles inside the closure.
    #[error(
        "the store was called directly inside one of its own transactions on this thread; \
         use the transaction's handles instead"
    )]
    InTransaction,

    /// The transaction can no longer be used, and is rolled back whatever
    /// its closure returns: an earlier call in it failed in a way that
    /// could not be undone on its own (the connection was lost, the
    /// database failed to read or to roll the call back), so nothing of the
    /// transaction is written. A call that fails for its input (not found,
    /// conflict, stale, invalid) never does this: it leaves nothing of
    /// itself, and the transaction goes on.
    #[error("the transaction was rolled back: an earlier call in it failed ({reason})")]
    TransactionAborted {
        /// The failure, in words.
        reason: String,
    },

    /// This backend cannot do that (for example an online backup of PostgreSQL).
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// The backend that was asked.
        backend: crate::model::BackendKind,
    },

    /// A record of an import file was refused; nothing of the file was written.
    #[error("line {line}: {reason}")]
    Import {
        /// Line number (1-based) of the first bad record.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading or writing a file (export, import, snapshot, backup) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// Any other error of the database driver. A PostgreSQL server's error
    /// shows as the server's message and SQLSTATE, e.g. `database error:
    /// permission denied for table conversations (42501)`.
    #[error("database error: {}", Described(.0.as_ref()))]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The words of the PostgreSQL server in `error`'s source chain (`error`
/// itself included): its message and SQLSTATE. These never hold a password
/// (the server does not repeat one, and the store never sends one in a
/// statement).
fn server_words(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    #[cfg(feature = "postgres")]
    {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(db) = e.downcast_ref::<postgres::error::DbError>() {
                return Some(format!("{} ({})", db.message(), db.code().code()));
            }
            next = e.source();
        }
    }
    #[cfg(not(feature = "postgres"))]
    let _ = error;
    None
}

/// Shows `: <server message> (<SQLSTATE>)` when the source chain holds a
/// PostgreSQL server's error, nothing otherwise.
struct ServerSaid<'a>(&'a Option<Box<dyn std::error::Error + Send + Sync>>);

impl fmt::Display for ServerSaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_deref().and_then(|e| server_words(e)) {
            Some(words) => write!(f, ": {words}"),
            None => Ok(()),
        }
    }
}

/// Shows the PostgreSQL server's words for an error that holds them (the
/// driver's own text is just "db error"), the error itself otherwise.
struct Described<'a>(&'a (dyn std::error::Error + Send + Sync + 'static));

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match server_words(self.0) {
            Some(words) => f.write_str(&words),
            None => fmt::Display::fmt(self.0, f),
        }
    }
}

impl Error {
    /// Whether the database failed (rather than the call's input being
    /// refused): a read that fails so ends its transaction.
    pub(crate) fn is_database_failure(&self) -> bool {
        matches!(
            self,
            Error::Backend(_)
                | Error::Unavailable { .. }
                | Error::DiskFull { .. }
                | Error::Migration { .. }
                | Error::SchemaTooNew { .. }
        )
    }

    /// Builds an [`Error::InvalidInput`].
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(entity: Entity, id: impl fmt::Display) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn stale(entity: Entity, id: impl fmt::Display) -> Self {
        Error::Stale {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn conflict(entity: Entity, id: impl fmt::Display) -> Self {
        Error::Conflict {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn corrupt(
        table: &'static str,
        column: &'static str,
        reason: impl fmt::Display,
    ) -> Self {
        Error::CorruptRow {
            table,
            column,
            reason: reason.to_string(),
        }
    }

    /// The same error with `prefix` before the field name of an
    /// [`Error::InvalidInput`] (for fields inside lists, like `messages[2].`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field: format!("{prefix}{field}"),
                reason,
            },
            other => other,
        }
    }

    /// True for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True for [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    /// True for [`Error::Stale`].
    pub fn is_stale(&self) -> bool {
        matches!(self, Error::Stale { .. })
    }

    /// True for [`Error::InvalidInput`].
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::InvalidInput { .. })
    }

    /// True for [`Error::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. })
    }
}

/// Why an SQLite file and a key do not go together ([`Error::Key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The file is encrypted (or is not a database at all) and no key was given.
    Missing,
    /// The key does not open the file: another key encrypted it, or it is not a database.
    Wrong,
    /// A key was given, but the file is a plain, unencrypted SQLite database.
    NotEncrypted,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::Missing => "it is encrypted (or not a database) and no key was given",
            KeyProblem::Wrong => "the key does not open it (a wrong key, or not a database)",
            KeyProblem::NotEncrypted => {
                "a key was given but the file is not encrypted (encrypt it first)"
            }
        })
    }
}
