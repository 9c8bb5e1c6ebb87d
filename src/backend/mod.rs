//! The backends behind the facade.
//!
//! The facade validates every input once and hands backends finished records
//! (ids chosen, timestamps normalized). A backend offers a [`Session`] of
//! record-level operations inside [`Backend::read`] or [`Backend::write`]; a
//! write session is one all-or-nothing transaction.

use std::path::Path;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Entity, Error, Result};
use crate::model::{
    BackendKind, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, HealthReport, Message, MigrationStatus, MigrationTarget,
    PlannedMigration, Snapshot,
};

// The SQL backends' shared macros and helpers; first, so that they see its macros.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod sql;

pub(crate) mod memory;
pub(crate) mod message_list;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

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
    /// Counts `added` new messages and, with `bump`, moves `updated_at` to
    /// [`bump`](crate::model::bump)`(updated_at, now)`, holding the
    /// conversation's row for the rest of the transaction; `false` when the
    /// conversation does not exist.
    fn touch_conversation(
        &self,
        id: ConversationId,
        bump: Option<OffsetDateTime>,
        added: usize,
    ) -> Result<bool>;
    /// Inserts `messages` (all of `conversation`, ids unique among them)
    /// after its last message, in order. Run after
    /// [`touch_conversation`](Self::touch_conversation), which holds the row.
    fn insert_messages(&self, conversation: ConversationId, messages: &[Message]) -> Result<()>;
    /// Appends `messages` at the end of the conversation, in order. With
    /// `bump`, moves `updated_at` forward; without, leaves it (imports keep
    /// the stored value). [`Error::NotFound`] when the conversation is not there.
    fn append_messages(
        &self,
        conversation: ConversationId,
        messages: &[Message],
        bump: Option<OffsetDateTime>,
    ) -> Result<()> {
        if !self.touch_conversation(conversation, bump, messages.len())? {
            return Err(Error::not_found(Entity::Conversation, conversation));
        }
        self.insert_messages(conversation, messages)
    }
    /// Messages with position after `after`, with their positions (none for
    /// a conversation that does not exist).
    fn message_page(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>>;
    /// [`message_page`](Self::message_page), or `None` when the conversation
    /// does not exist. Messages imply their conversation: only an empty page asks.
    fn messages(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, Message)>>> {
        let page = self.message_page(conversation, after, limit)?;
        if page.is_empty() && !self.conversation_exists(conversation)? {
            return Ok(None);
        }
        Ok(Some(page))
    }
    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>>;
    /// Every conversation with its messages, most recently updated first.
    fn all_conversations(&self) -> Result<Vec<Conversation>>;
    /// Writes title and messages as [`message_list::plan`] says, bumps `updated_at`
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
