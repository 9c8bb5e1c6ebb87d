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
    BackendKind, ChangeBatch, Conversation, ConversationId, ConversationOrder, ConversationSummary,
    Counts, FileId, FileMetadata, HealthReport, IndexProgress, Message, MessageEdit, MessageId,
    Metadata, MigrationStatus, MigrationTarget, PendingChange, PlannedMigration, Snapshot,
};
use feed::{ChangeSink, Listening, LogRow, Transport};
use search::{Candidate, SearchFilter, TextKind};

// The SQL backends' shared macros and helpers; first, so that they see its macros.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[macro_use]
mod sql;

mod chat;
pub(crate) mod feed;
pub(crate) mod memory;
pub(crate) mod message_list;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub(crate) mod search;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
pub(crate) mod update;

/// What a write closure tells the backend to do with its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    Commit,
    Rollback,
}

/// A step of the savepoint around one call of a
/// [`Transaction`](crate::Transaction), so that a call that fails leaves
/// nothing of itself in the transaction. One at a time: a call never makes
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Savepoint {
    /// Set the savepoint before the call's first statement.
    Begin,
    /// Keep what the call wrote (it succeeded).
    Release,
    /// Undo what the call wrote (it failed), and drop the savepoint.
    RollBack,
}

pub(crate) use chat::Chat;

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

    /// How this backend carries the change feed between stores.
    fn transport(&self) -> Transport {
        Transport::Local
    }

    /// Starts delivering other stores' changes to `sink` (`instance`: this
    /// store's own id in the change log); `None` when nothing but this
    /// store writes (memory, in-memory SQLite). Events of transactions that
    /// commit after it returns are delivered.
    fn listen(
        &self,
        _instance: &str,
        _sink: std::sync::Arc<dyn ChangeSink>,
    ) -> Result<Option<Box<dyn Listening>>> {
        Ok(None)
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

    /// Indexes for search every text written before the index existed (a
    /// database migrated to V5), [`INDEX_BATCH`](search::INDEX_BATCH) texts
    /// per transaction, reporting after each; what it did. Nothing to do
    /// (the memory backend, a schema without the index): zero.
    fn build_search_index(&self, progress: &mut dyn FnMut(IndexProgress)) -> Result<IndexProgress> {
        search::build_index(self, progress)
    }

    /// Empties the search index in one transaction, then builds it again
    /// as [`build_search_index`](Self::build_search_index) does.
    fn rebuild_search_index(
        &self,
        progress: &mut dyn FnMut(IndexProgress),
    ) -> Result<IndexProgress> {
        self.write(&mut |session| {
            session.forget_search_index()?;
            Ok(Finish::Commit)
        })?;
        self.build_search_index(progress)
    }

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

/// A stored message with where it sits in its conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    /// Its place in the conversation's append order (a parent's is always
    /// lower than its children's).
    pub(crate) position: i64,
    /// On the current branch, from the first message to the current leaf.
    pub(crate) on_path: bool,
    pub(crate) message: Message,
}

/// Where a message sits in its conversation's tree, without its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) id: MessageId,
    pub(crate) conversation_id: ConversationId,
    pub(crate) parent_id: Option<MessageId>,
    pub(crate) position: i64,
    pub(crate) on_path: bool,
}

/// Which messages of a conversation a read walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Branches {
    /// The current branch only.
    Current,
    /// Every message of every branch.
    All,
}

/// Which messages of a conversation a page holds: positioned after `after`
/// (from the first when `None`), at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionRange {
    pub(crate) after: Option<i64>,
    pub(crate) limit: usize,
}

impl PositionRange {
    /// Every message.
    pub(crate) const ALL: PositionRange = PositionRange {
        after: None,
        limit: usize::MAX,
    };

    /// `after` as an SQL parameter.
    #[allow(dead_code)] // unused in a memory-only build
    pub(crate) fn after_param(self) -> i64 {
        self.after.unwrap_or(i64::MIN)
    }

    /// `limit` as an SQL parameter.
    #[allow(dead_code)] // unused in a memory-only build
    pub(crate) fn limit_param(self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}

/// The own fields of a conversation a write sets (`None`: kept).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fields<'a> {
    pub(crate) title: Option<&'a str>,
    pub(crate) metadata: Option<&'a Metadata>,
    pub(crate) archive: Option<Archive>,
}

/// What a write does to `archived_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Archive {
    /// Set it to this time, unless it is set already.
    At(OffsetDateTime),
    /// Clear it.
    Clear,
}

/// `update`'s header write: title and metadata of conversation `id`,
/// `updated_at` moved to `max(now, updated_at + 1µs)`, only if it is at
/// version `expected`.
pub(crate) struct HeaderWrite<'a> {
    pub(crate) id: ConversationId,
    pub(crate) expected: u64,
    pub(crate) title: &'a str,
    pub(crate) metadata: &'a Metadata,
    pub(crate) now: OffsetDateTime,
}

/// A keyset position in a newest-first list: (timestamp micros, id).
pub(crate) type TimeKey = (i64, Uuid);

/// Record-level operations on already validated input: what a backend
/// implements. What the API does with them, the same way on every backend,
/// is in [`Chat`].
pub(crate) trait Session {
    /// Takes one step of the savepoint of a call inside an open transaction.
    fn savepoint(&self, step: Savepoint) -> Result<()>;

    fn insert_file(&self, file: &FileMetadata) -> Result<()>;
    fn file(&self, id: FileId) -> Result<Option<FileMetadata>>;
    /// Newest first, strictly after `after`.
    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>>;
    fn delete_file(&self, id: FileId) -> Result<bool>;

    /// Inserts the conversation's row (its `messages` are empty).
    fn insert_conversation(&self, conversation: &Conversation) -> Result<()>;
    /// The conversation with its current branch.
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
    /// [`touch_conversation`](Self::touch_conversation) on the conversation
    /// of message `id`, found and locked in the same statement (so writes
    /// lock the conversation before its messages, on every path); the
    /// conversation, or `None` when there is no such message or its
    /// conversation is not at `touch.expected`.
    fn touch_conversation_of(&self, id: MessageId, touch: Touch) -> Result<Option<ConversationId>>;
    /// Sets `fields` of the conversation's row; the row as it is then, or
    /// `None` when there is no such conversation.
    fn set_fields(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
    ) -> Result<Option<ConversationSummary>>;
    /// `update`'s header write; the conversation's row as it is then, or
    /// `None` when no row matched (no such conversation, or another
    /// version). Holds the row for the rest of the transaction.
    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<ConversationSummary>>;
    /// Adds `delta` to the stored message count.
    fn adjust_count(&self, id: ConversationId, delta: i64) -> Result<()>;

    /// Inserts `message` as the child of the current leaf, after the last
    /// message, on the current branch (so it becomes the current leaf); its
    /// parent. Run after [`touch_conversation`](Self::touch_conversation),
    /// which holds the row.
    fn append_message(
        &self,
        conversation: ConversationId,
        message: &Message,
    ) -> Result<Option<MessageId>>;
    /// The last message of the current branch.
    fn current_leaf(&self, conversation: ConversationId) -> Result<Option<MessageId>>;
    /// Inserts `messages` (all of `conversation`, ids unique among them,
    /// parents as they say) after its last message, in order, each on the
    /// current branch or off it as `on_path` (one flag per message) says.
    /// Run after [`touch_conversation`](Self::touch_conversation).
    fn insert_messages(
        &self,
        conversation: ConversationId,
        messages: &[Message],
        on_path: &[bool],
    ) -> Result<()>;
    /// Appends `messages` (at least two) as a chain below the current leaf
    /// (the last becomes the current leaf), setting their parents. Run
    /// after [`touch_conversation`](Self::touch_conversation).
    fn insert_chain(&self, conversation: ConversationId, messages: &mut [Message]) -> Result<()> {
        message_list::link_branch(messages, self.current_leaf(conversation)?);
        self.insert_messages(conversation, messages, &vec![true; messages.len()])
    }
    /// Inserts one message where `stored` says; [`Error::Conflict`] when its
    /// id is taken.
    fn insert_message(&self, stored: &Stored) -> Result<()>;
    /// Rewrites the message with `stored.message.id`: its place and fields.
    /// `text_changed`: whether its text differs from the stored one's (a
    /// search index keeps the entry of a text that did not change).
    fn update_message(&self, stored: &Stored, text_changed: bool) -> Result<()>;
    /// Messages positioned after `range.after`, at most `range.limit`, of
    /// the current branch or of all (none for a conversation that does not
    /// exist).
    fn message_page(
        &self,
        id: ConversationId,
        branches: Branches,
        range: PositionRange,
    ) -> Result<Vec<Stored>>;
    /// Sets the content, attachments and metadata of message `id` that
    /// `edit` gives (not its version check); the message as stored, or
    /// `None` when there is no such message.
    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>>;
    /// Touches the conversation of message `id` as
    /// [`touch_conversation_of`](Self::touch_conversation_of) does (its row
    /// locked first), then appends `delta` to the message's content in one
    /// statement (a reader sees the old or the new text), unless it would
    /// then be longer than [`MAX_CONTENT_BYTES`](crate::limits::MAX_CONTENT_BYTES);
    /// the message as stored, or `None` when there is no such message or it
    /// would grow too long (the caller then fails, and its transaction or
    /// savepoint undoes the touch).
    fn grow_message(&self, id: MessageId, touch: Touch, delta: &str) -> Result<Option<Message>>;
    fn node(&self, id: MessageId) -> Result<Option<Node>>;
    /// Message `id` and its ancestors, upwards, up to and including the
    /// first on the current branch (all of them when none is).
    fn path_to(&self, id: MessageId) -> Result<Vec<Node>>;
    /// Takes every message positioned after `after` (every one: `None`) off
    /// the current branch, then puts `mark` on it.
    fn set_path(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        mark: &[MessageId],
    ) -> Result<()>;
    /// Message `id` and every message below it.
    fn subtree(&self, id: MessageId) -> Result<Vec<Node>>;
    /// The messages whose parent is `parent` (`None`: the first messages),
    /// oldest first.
    fn children(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
    ) -> Result<Vec<Message>>;
    /// Makes the children of `from` children of `to`.
    fn reparent(
        &self,
        conversation: ConversationId,
        from: MessageId,
        to: Option<MessageId>,
    ) -> Result<()>;
    fn delete_message(&self, id: MessageId) -> Result<()>;

    /// Summaries of archived (or not archived) conversations, newest first
    /// by `order`, strictly after `after`.
    fn conversations(
        &self,
        order: ConversationOrder,
        archived: bool,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>>;
    /// Every conversation with its current branch, most recently updated first.
    fn all_conversations(&self) -> Result<Vec<Conversation>>;
    fn delete_conversation(&self, id: ConversationId) -> Result<bool>;
    /// Rows per table.
    fn counts(&self) -> Result<Counts>;

    /// Texts of `kind` (message contents, or conversation titles) whose
    /// index tokens meet `filter.index` and that pass `filter`, newest first
    /// by `(created_at, id)`, strictly before `before`, at most `limit`.
    fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<Candidate>>;

    /// Texts (message contents and titles) not in the search index yet;
    /// `None` when the schema has no search index (or needs none: memory).
    fn unindexed(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Empties the search index: every text is then not indexed (a rebuild
    /// follows).
    fn forget_search_index(&self) -> Result<()> {
        Ok(())
    }

    /// Indexes up to `limit` messages and `limit` titles not in the search
    /// index yet; how many.
    fn index_unindexed(&self, _limit: usize) -> Result<u64> {
        Ok(0)
    }

    /// The change that the next statement, a single statement writing
    /// outside a transaction, makes if it writes a row: a backend that
    /// publishes inside the statement itself takes it (PostgreSQL).
    fn stage_single(&self, _change: &PendingChange) {}

    /// Whether a store other than `instance` listens for changes, so that
    /// this transaction must publish its own (read in the transaction).
    fn remote_listeners(&self, _instance: &str) -> Result<bool> {
        Ok(false)
    }

    /// Publishes this transaction's changes to other stores, as part of
    /// the transaction; the change log's sequence number of the row
    /// written, where there is one.
    fn publish(&self, _instance: &str, _batch: &ChangeBatch) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Change log rows after `after` (other stores' changes committed
    /// before this transaction).
    fn log_since(&self, _after: u64) -> Result<Vec<LogRow>> {
        Ok(Vec::new())
    }

    /// Runs `read` on one consistent snapshot (inside a transaction, the
    /// transaction's own).
    fn in_snapshot(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        read()
    }
}
