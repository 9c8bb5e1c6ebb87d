//! The repository traits: what every backend offers, through the facade.
//!
//! [`Store::files`](crate::Store::files) and
//! [`Store::conversations`](crate::Store::conversations) return handles that
//! implement these traits, and so do the handles of a
//! [`Transaction`](crate::Transaction). Write code against the traits to run
//! it either way.
//!
//! Both traits are sealed, as rust-postgres seals its `GenericClient`: only
//! this crate implements them, so new methods can be added in a minor
//! release without breaking anyone. An app's test double is a real store in
//! memory, `Store::open("memory://")`: it passes the same conformance suite
//! as SQLite and PostgreSQL, so tests against it mean something.

use crate::error::Result;
use crate::model::{
    Conversation, ConversationEdit, ConversationId, ConversationQuery, ConversationSummary,
    ConversationTree, FileId, FileMetadata, Message, MessageEdit, MessageId, NewConversation,
    NewFile, NewMessage, Page, PageRequest,
};

/// Keeps the repository traits implemented only by this crate's handles.
pub(crate) mod sealed {
    /// Implemented by [`Files`](crate::Files) and
    /// [`Conversations`](crate::Conversations) only.
    pub trait Sealed {}
}

/// Uploaded-file metadata: the original plan's `FileRepository`.
///
/// Sealed: implemented by [`Files`](crate::Files) only, so methods can be
/// added without breaking anyone; use `Store::open("memory://")` as a test
/// double.
pub trait FileRepository: sealed::Sealed {
    /// Stores a new file record and returns it as stored.
    ///
    /// Errors: [`InvalidInput`](crate::Error::InvalidInput) for an empty or
    /// oversized filename, a content type that is not `type/subtype`, a NUL
    /// byte, a size over `i64::MAX`; [`Conflict`](crate::Error::Conflict)
    /// when the supplied id exists.
    fn create(&self, file: NewFile) -> Result<FileMetadata>;

    /// The record with this id, if any.
    fn get(&self, id: FileId) -> Result<Option<FileMetadata>>;

    /// A page of records, newest first (ties broken by id, descending).
    fn list(&self, page: PageRequest) -> Result<Page<FileMetadata>>;

    /// Deletes the record; `true` if it was there.
    fn delete(&self, id: FileId) -> Result<bool>;
}

/// Conversations and their messages: the original plan's
/// `ConversationRepository` and what the app needs beside it.
///
/// Sealed: implemented by [`Conversations`](crate::Conversations) only, so
/// methods can be added without breaking anyone; use
/// `Store::open("memory://")` as a test double.
pub trait ConversationRepository: sealed::Sealed {
    /// Stores a new conversation without messages.
    ///
    /// Errors: [`InvalidInput`](crate::Error::InvalidInput),
    /// [`Conflict`](crate::Error::Conflict) when the supplied id exists.
    fn create(&self, conversation: NewConversation) -> Result<Conversation>;

    /// The conversation with its current branch, from the first message to
    /// the current leaf, if it exists. In a conversation that never
    /// branched, that is every message in append order.
    fn get(&self, id: ConversationId) -> Result<Option<Conversation>>;

    /// Appends a message below the current leaf (it becomes the current
    /// leaf) and moves the conversation's `updated_at` forward, atomically.
    /// Returns the message as stored, with its `parent_id`.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) when the conversation does
    /// not exist, [`Conflict`](crate::Error::Conflict) when the supplied
    /// message id exists, [`InvalidInput`](crate::Error::InvalidInput).
    fn append_message(&self, conversation: ConversationId, message: NewMessage) -> Result<Message>;

    /// Appends several messages at once, in order, each below the one
    /// before, in one transaction (the fast path for bulk work: one
    /// statement per message on SQLite; on PostgreSQL one multi-row INSERT,
    /// or a binary COPY from 1,000 messages on). Moves `updated_at`
    /// forward once. At most [`MAX_BATCH`](crate::limits::MAX_BATCH)
    /// messages; an empty list does nothing.
    ///
    /// Errors as [`append_message`](Self::append_message), with fields named
    /// `messages[i].…`; nothing is written when any message is refused.
    fn append_messages(
        &self,
        conversation: ConversationId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Message>>;

    /// A page of a conversation's current branch, in order, without loading
    /// the rest. [`NotFound`](crate::Error::NotFound) if the conversation
    /// does not exist.
    fn messages(&self, conversation: ConversationId, page: PageRequest) -> Result<Page<Message>>;

    /// A page of conversation summaries, newest first by the query's order.
    /// Archived conversations are left out unless the query asks for them
    /// ([`include_archived`](crate::ConversationQuery::include_archived),
    /// [`only_archived`](crate::ConversationQuery::only_archived)). Each
    /// page is an index scan, whatever the filter.
    fn list(&self, query: ConversationQuery) -> Result<Page<ConversationSummary>>;

    /// Every conversation, archived or not, with its current branch, most
    /// recently updated first: the original plan's `list_all`. It loads the
    /// whole store; prefer [`list`](Self::list) for anything that can grow.
    fn list_all(&self) -> Result<Vec<Conversation>>;

    /// Writes the title, the metadata and the current branch atomically: the
    /// message list becomes the current branch (each message below the one
    /// before it, the last the current leaf); messages not in the store are
    /// inserted, changed ones updated, ones missing from the list deleted,
    /// and the stored order becomes the list's order. `created_at` and
    /// `archived_at` are kept as stored; `updated_at` and the
    /// [`version`](crate::Conversation::version) move forward. Returns the
    /// conversation as stored (with its new version, ready for the next
    /// `update`).
    ///
    /// Other branches are left as they are, with one exception: a branch
    /// that hangs from a message the list drops moves up to hang from the
    /// nearest message above it that the list keeps (the first messages,
    /// when none is). Where other branches exist, the current branch can be
    /// changed, shortened and extended at the end, but not reordered: that
    /// is refused with [`InvalidInput`](crate::Error::InvalidInput) on
    /// `messages`.
    ///
    /// Only a copy of the current version is written: when anything wrote to
    /// the conversation since `conversation` was read (an append from another
    /// window, process or app instance), the call fails with
    /// [`Stale`](crate::Error::Stale) and writes nothing, so a stale copy can
    /// never delete what was acknowledged in between. The check is made in
    /// the write transaction on every backend. On `Stale`, read the
    /// conversation again, re-apply the change, and retry (see
    /// [`Error::Stale`](crate::Error::Stale) for the loop).
    ///
    /// Errors: [`Stale`](crate::Error::Stale) as above,
    /// [`NotFound`](crate::Error::NotFound) when the conversation does not
    /// exist, [`Conflict`](crate::Error::Conflict) when a new message's id
    /// belongs to another conversation or to another branch, [`InvalidInput`](crate::Error::InvalidInput)
    /// (also for a `version` the store never hands out: 0, or above `i64::MAX`).
    fn update(&self, conversation: &Conversation) -> Result<Conversation>;

    /// Deletes the conversation and its messages; `true` if it was there.
    fn delete(&self, id: ConversationId) -> Result<bool>;

    /// Changes one message in place: the parts of `edit` that are set (its
    /// text, its attachment list, its metadata), nothing else. Its conversation's version
    /// and `updated_at` move forward. One row and one conversation row are
    /// written, however long the conversation. Returns the message as stored.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) (entity `Message`) when
    /// there is no such message; [`Stale`](crate::Error::Stale) when `edit`
    /// names a version ([`MessageEdit::if_version`](crate::MessageEdit::if_version))
    /// the conversation is no longer at; [`InvalidInput`](crate::Error::InvalidInput)
    /// for content, attachments or metadata a new message could not have.
    /// Nothing is written on error.
    fn edit_message(&self, id: MessageId, edit: MessageEdit) -> Result<Message>;

    /// Appends `delta` to a message's text: the way to store an assistant
    /// reply as it streams in, token by token, without sending or reading
    /// the rest of the conversation. Done in one statement, so a reader sees
    /// the text before or after the delta, never a torn one. The
    /// conversation's version and `updated_at` move forward. Returns the
    /// message as stored.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) (entity `Message`);
    /// [`InvalidInput`](crate::Error::InvalidInput) on `delta` for a NUL byte
    /// or when the content would grow beyond
    /// [`MAX_CONTENT_BYTES`](crate::limits::MAX_CONTENT_BYTES) (nothing is
    /// appended then).
    ///
    /// ```
    /// use silmari_store::prelude::*;
    ///
    /// # fn main() -> silmari_store::Result<()> {
    /// let store = Store::open("memory://")?;
    /// let chat = store.conversations().create(NewConversation::titled("Plot"))?;
    /// let reply = store
    ///     .conversations()
    ///     .append_message(chat.id, NewMessage::new(Role::Assistant, ""))?;
    /// for token in ["Once", " upon", " a", " time"] {
    ///     store.conversations().append_to_message(reply.id, token)?;
    /// }
    /// let chat = store.conversations().get(chat.id)?.expect("exists");
    /// assert_eq!(chat.messages[0].content, "Once upon a time");
    /// # Ok(()) }
    /// ```
    fn append_to_message(&self, id: MessageId, delta: &str) -> Result<Message>;

    /// Deletes one message; `true` if it was there. Its children, if any,
    /// move up to its parent (a conversation that never branched keeps its
    /// other messages in order, as before). When it was the current leaf,
    /// its parent becomes the current leaf; when it was on the current
    /// branch above the leaf, the branch closes over the gap. The
    /// conversation's message count goes down by one and its version and
    /// `updated_at` move forward.
    fn delete_message(&self, id: MessageId) -> Result<bool>;

    /// Deletes a message and every message below it, on every branch: "delete
    /// this reply and what followed". Returns how many messages went (0:
    /// there was no such message). When the current branch ran through it,
    /// its parent becomes the current leaf.
    fn delete_branch(&self, id: MessageId) -> Result<u64>;

    /// Adds `message` as a new child of `parent` (`None`: a new first
    /// message) and makes it the current leaf: the old children of `parent`
    /// stay, as alternatives. To regenerate a reply, branch from the prompt
    /// it answers; to edit a prompt and resend it, branch from the prompt's
    /// parent. The conversation's version and `updated_at` move forward.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound) for a missing
    /// conversation or parent; [`InvalidInput`](crate::Error::InvalidInput)
    /// on `parent_id` when the parent is in another conversation, and for
    /// anything `append_message` refuses.
    fn branch_from(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        message: NewMessage,
    ) -> Result<Message>;

    /// The alternatives at a message: it and its siblings (the messages with
    /// the same parent), oldest first. What a "2 / 3" switcher steps through.
    /// [`NotFound`](crate::Error::NotFound) when there is no such message.
    fn alternatives(&self, id: MessageId) -> Result<Vec<Message>>;

    /// Makes the branch through message `id` the current one: the current
    /// leaf becomes the newest message at or below it (where that branch was
    /// left). Returns the conversation with its new current branch. Moves
    /// the version forward, not `updated_at` (nothing was written).
    fn switch_branch(&self, id: MessageId) -> Result<Conversation>;

    /// The conversation with every message of every branch, if it exists.
    /// It loads them all, in one consistent read; for a long conversation
    /// on a screen, page its current branch with [`messages`](Self::messages).
    fn tree(&self, id: ConversationId) -> Result<Option<ConversationTree>>;

    /// Changes the conversation's own fields that `edit` sets (title,
    /// metadata), without reading or writing its messages. The version and
    /// `updated_at` move forward. Returns the conversation's row.
    ///
    /// Errors: [`NotFound`](crate::Error::NotFound),
    /// [`Stale`](crate::Error::Stale) when `edit` names a version the
    /// conversation is no longer at, [`InvalidInput`](crate::Error::InvalidInput).
    fn edit(&self, id: ConversationId, edit: ConversationEdit) -> Result<ConversationSummary>;

    /// Archives the conversation: [`list`](Self::list) leaves it out unless
    /// asked. Archiving an archived conversation keeps its first
    /// `archived_at`. Nothing is deleted; the version moves forward,
    /// `updated_at` does not (restored, it returns to its place).
    /// [`NotFound`](crate::Error::NotFound) when it does not exist.
    fn archive(&self, id: ConversationId) -> Result<ConversationSummary>;

    /// Restores an archived conversation to the lists (a conversation that
    /// is not archived stays as it is). [`NotFound`](crate::Error::NotFound)
    /// when it does not exist.
    fn unarchive(&self, id: ConversationId) -> Result<ConversationSummary>;
}
