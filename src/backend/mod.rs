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
use crate::limits::MAX_CONTENT_BYTES;
use crate::model::{
    BackendKind, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, HealthReport, Message, MessageEdit, MessageId, MigrationStatus,
    MigrationTarget, PlannedMigration, Snapshot,
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

/// What a write does to its conversation's row (beside moving the version
/// forward, which every write does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Touch {
    /// Move `updated_at` to [`bump`](crate::model::bump)`(updated_at, now)`;
    /// `None` leaves it (imports keep the stored value).
    pub(crate) bump: Option<OffsetDateTime>,
    /// Messages added (negative: removed), for the stored count.
    pub(crate) added: i64,
    /// Only if the conversation is at this version.
    pub(crate) expected: Option<u64>,
}

impl Touch {
    /// A write of `added` messages, bumping `updated_at` to `bump`.
    pub(crate) fn write(bump: Option<OffsetDateTime>, added: i64) -> Touch {
        Touch {
            bump,
            added,
            expected: None,
        }
    }
}

/// A message with its position in its conversation.
pub(crate) type Positioned = (i64, Message);

/// Which messages of a conversation a page holds: positioned after `after`
/// (from the first when `None`), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionRange {
    pub(crate) after: Option<i64>,
    pub(crate) limit: usize,
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
    /// Applies `touch` to the conversation's row and moves its version
    /// forward, holding the row for the rest of the transaction; `false`
    /// when the conversation does not exist or is not at `touch.expected`.
    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool>;
    /// [`touch_conversation`](Self::touch_conversation), or the error that
    /// says why not: [`Error::Stale`] when a version was expected and the
    /// conversation is there, else [`Error::NotFound`].
    fn touch(&self, id: ConversationId, touch: Touch) -> Result<()> {
        if self.touch_conversation(id, touch)? {
            return Ok(());
        }
        Err(
            if touch.expected.is_some() && self.conversation_exists(id)? {
                Error::stale(Entity::Conversation, id)
            } else {
                Error::not_found(Entity::Conversation, id)
            },
        )
    }
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
        let added = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        self.touch(conversation, Touch::write(bump, added))?;
        self.insert_messages(conversation, messages)
    }
    /// Messages positioned after `range.after`, at most `range.limit`, with
    /// their positions (none for a conversation that does not exist).
    fn message_page(&self, id: ConversationId, range: PositionRange) -> Result<Vec<Positioned>>;
    /// [`message_page`](Self::message_page), or `None` when the conversation
    /// does not exist. Messages imply their conversation: only an empty page asks.
    fn messages(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Option<Vec<(i64, Message)>>> {
        let page = self.message_page(conversation, PositionRange { after, limit })?;
        if page.is_empty() && !self.conversation_exists(conversation)? {
            return Ok(None);
        }
        Ok(Some(page))
    }
    /// Sets the content and attachments of message `id` that `edit` gives
    /// (not its version check); the message as stored, or `None` when there
    /// is no such message.
    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>>;
    /// Appends `delta` to message `id`'s content in one statement (a reader
    /// sees the old or the new text), unless it would then be longer than
    /// `max_bytes`; the message as stored, or `None` when there is no such
    /// message or it would grow too long.
    fn grow_message(&self, id: MessageId, delta: &str, max: usize) -> Result<Option<Message>>;
    fn message_exists(&self, id: MessageId) -> Result<bool>;
    /// Deletes message `id`; the conversation it was in, if it was there.
    fn remove_message(&self, id: MessageId) -> Result<Option<ConversationId>>;
    /// `edit_message` of the API: the row, then its conversation (version
    /// checked when the edit names one), in the caller's transaction.
    fn edit_one(&self, id: MessageId, edit: &MessageEdit, now: OffsetDateTime) -> Result<Message> {
        let message = self
            .edit_message(id, edit)?
            .ok_or_else(|| Error::not_found(Entity::Message, id))?;
        let touch = Touch {
            expected: edit.if_version,
            ..Touch::write(Some(now), 0)
        };
        self.touch(message.conversation_id, touch)?;
        Ok(message)
    }
    /// `append_to_message` of the API.
    fn grow_one(&self, id: MessageId, delta: &str, now: OffsetDateTime) -> Result<Message> {
        let Some(message) = self.grow_message(id, delta, MAX_CONTENT_BYTES)? else {
            return Err(if self.message_exists(id)? {
                Error::invalid(
                    "delta",
                    format!("would make the content longer than {MAX_CONTENT_BYTES} bytes"),
                )
            } else {
                Error::not_found(Entity::Message, id)
            });
        };
        self.touch(message.conversation_id, Touch::write(Some(now), 0))?;
        Ok(message)
    }
    /// `delete_message` of the API: `true` if it was there.
    fn delete_one(&self, id: MessageId, now: OffsetDateTime) -> Result<bool> {
        let Some(conversation) = self.remove_message(id)? else {
            return Ok(false);
        };
        self.touch(conversation, Touch::write(Some(now), -1))?;
        Ok(true)
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
