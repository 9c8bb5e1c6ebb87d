//! The backends behind the facade.
//!
//! The facade validates every input once and hands backends finished records
//! (ids chosen, timestamps normalized). A backend offers a [`Session`] of
//! record-level operations inside [`Backend::read`] or [`Backend::write`]; a
//! write session is one all-or-nothing transaction.

use std::path::Path;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;
use crate::error::Result;
use crate::health::{Counts, HealthReport};
use crate::migrate::{MigrationStatus, MigrationTarget, PlannedMigration, Snapshot};
use crate::model::{
    Conversation, ConversationId, ConversationOrder, ConversationSummary, FileId, FileMetadata,
    Message,
};

/// Declares a backend's SQL statements as constants, plus `ALL`, every
/// statement by name, for tests that check each one. (Defined before the
/// backend modules so that they see it.)
#[allow(unused_macros)] // unused when built without any SQL backend
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        $($(#[$doc])* pub(super) const $name: &str = $sql;)*
        /// Every statement, by name.
        #[cfg(test)]
        #[allow(dead_code)] // not every backend's tests need it
        pub(super) const ALL: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}

/// Column lists and query shapes both SQL dialects share (placeholders are
/// passed in, since the dialects write them differently).
#[allow(unused_macros)]
macro_rules! file_columns {
    () => {
        "id, filename, content_type, size, created_at"
    };
}

/// `position` first, then the columns of a message.
#[allow(unused_macros)]
macro_rules! message_columns {
    () => {
        "position, id, conversation_id, role, content, created_at, attachments"
    };
}

/// Conversation summaries by `$column`, newest first, keyset `$filter`.
#[allow(unused_macros)]
macro_rules! list_conversations {
    ($column:literal, $filter:literal, $limit:literal) => {
        concat!(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.message_count \
             FROM conversations c ",
            $filter,
            " ORDER BY c.",
            $column,
            " DESC, c.id DESC LIMIT ",
            $limit
        )
    };
}

pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
pub(crate) mod sync;

/// An r2d2 pool as [`PoolConfig`](crate::PoolConfig) says: `max_size =
/// pool_size + max_overflow`, `min_idle = pool_size`, `connection_timeout =
/// pool_timeout`, `max_lifetime = pool_recycle`. Connections are not tested
/// with a query on checkout (a round trip per call); backends check cheaply
/// themselves. Built without waiting: the caller has opened one connection
/// already, so errors surface at once.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn pool<M: r2d2::ManageConnection>(
    config: &crate::config::PoolConfig,
    manager: M,
) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(config.max_size())
        .min_idle(Some(config.pool_size))
        .connection_timeout(config.pool_timeout)
        .max_lifetime(config.pool_recycle)
        .idle_timeout(None)
        .test_on_check_out(false)
        .build_unchecked(manager)
}

/// Which backend a [`Store`](crate::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// The pure-Rust in-memory backend.
    Memory,
    /// Embedded SQLite (a file, or in memory).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Memory => "memory",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        })
    }
}

/// What a write closure tells the backend to do with its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Commit,
    Rollback,
}

/// A body run inside [`Backend::read`] or [`Backend::write`].
pub(crate) type Body<'a> = dyn FnMut(&dyn Session) -> Result<Finish> + 'a;

/// A store's backend.
pub(crate) trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// The database file, for file-backed stores.
    fn path(&self) -> Option<&Path> {
        None
    }

    /// Runs `body` on a session that only reads. Multi-statement reads see one
    /// consistent snapshot. `body` may run a second time, on a fresh
    /// connection, when the first connection turns out to be dead.
    fn read(&self, body: &mut Body<'_>) -> Result<()>;

    /// Runs `body` in one write transaction: committed when it returns
    /// `Ok(Finish::Commit)`, rolled back otherwise, and rolled back when it
    /// panics. Writers are serialized.
    fn write(&self, body: &mut Body<'_>) -> Result<()>;

    /// Runs `body`, which writes with at most one statement, without an
    /// explicit transaction: the statement commits by itself (one round trip
    /// instead of three on PostgreSQL).
    fn write_autocommit(&self, body: &mut Body<'_>) -> Result<()> {
        self.write(body)
    }

    /// Every embedded migration with whether it is applied.
    fn migration_status(&self) -> Result<Vec<MigrationStatus>>;

    /// The steps to `target`, changing nothing.
    fn migration_plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>>;

    /// Runs the steps to `target` under the cross-process migration lock.
    fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>>;

    /// Snapshots taken before migrations, newest first.
    fn snapshots(&self) -> Result<Vec<Snapshot>> {
        Ok(Vec::new())
    }

    /// Restores a snapshot into the live database.
    fn restore_snapshot(&self, _snapshot: &Path) -> Result<()> {
        Err(self.unsupported("restoring a snapshot"))
    }

    /// Copies the live database to `path`.
    fn backup_to(&self, _path: &Path) -> Result<()> {
        Err(self.unsupported("online backup"))
    }

    /// The health report.
    fn check(&self) -> Result<HealthReport>;

    /// [`Error::Unsupported`] for `operation` on this backend.
    fn unsupported(&self, operation: &'static str) -> Error {
        Error::Unsupported {
            operation,
            backend: self.kind(),
        }
    }
}

/// A keyset position in a newest-first list: (timestamp micros, id).
pub(crate) type TimeKey = (i64, Uuid);

/// Record-level operations on already validated input.
pub(crate) trait Session {
    fn insert_file(&self, file: &FileMetadata) -> Result<()>;
    fn file(&self, id: FileId) -> Result<Option<FileMetadata>>;
    /// Newest first, strictly after `after`.
    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>>;
    fn delete_file(&self, id: FileId) -> Result<bool>;

    /// Inserts the conversation's row (its `messages` are empty).
    fn insert_conversation(&self, conversation: &Conversation) -> Result<()>;
    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>>;
    fn conversation_exists(&self, id: ConversationId) -> Result<bool>;
    /// Inserts `messages` (all of `conversation`, ids unique among them) at
    /// the end of the conversation, in order. With `bump`, also sets the
    /// conversation's `updated_at` to [`bump`](crate::model::bump)`(updated_at, now)`;
    /// without, leaves it (imports keep the stored value).
    fn append_messages(
        &self,
        conversation: ConversationId,
        messages: &[Message],
        bump: Option<OffsetDateTime>,
    ) -> Result<()>;
    /// Messages with position after `after`, with their positions; `None` when
    /// the conversation does not exist.
    fn messages(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, Message)>>>;
    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>>;
    /// Every conversation with its messages, most recently updated first.
    fn all_conversations(&self) -> Result<Vec<Conversation>>;
    /// Writes title and messages as [`sync::plan`] says, bumps `updated_at`
    /// and returns the stored conversation.
    fn update_conversation(
        &self,
        conversation: &Conversation,
        now: OffsetDateTime,
    ) -> Result<Conversation>;
    fn delete_conversation(&self, id: ConversationId) -> Result<bool>;
    /// Rows per table.
    fn counts(&self) -> Result<Counts>;
}
