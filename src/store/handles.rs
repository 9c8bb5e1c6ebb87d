//! The repository handles of a store or a transaction, and what they check
//! before a backend sees a call.

use std::cell::RefCell;
use std::fmt;

use super::Store;
use crate::backend::update::update_conversation;
use crate::backend::{Chat, PositionRange, Savepoint, Session};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Conversation, ConversationEdit, ConversationId, ConversationOrder, ConversationQuery,
    ConversationSummary, ConversationTree, Cursor, CursorKey, FileId, FileMetadata, Message,
    MessageEdit, MessageId, NewConversation, NewFile, NewMessage, Page, PageRequest, now,
    to_micros,
};
use crate::repo::sealed::Sealed;
use crate::repo::{ConversationRepository, FileRepository};
use crate::validate;

/// An open transaction, handed to the closure of [`Store::transaction`].
///
/// Each call through its handles is atomic on its own, on every backend: a
/// call that fails leaves nothing of itself (a savepoint around its
/// writes), and the closure may handle the error and go on. Only a failure
/// of the database itself (see [`Error::TransactionAborted`]) ends the
/// transaction early.
pub struct Transaction<'a> {
    session: &'a dyn Session,
    /// Why the transaction can no longer be used, once it cannot.
    aborted: RefCell<Option<String>>,
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transaction")
    }
}

impl<'a> Transaction<'a> {
    pub(super) fn new(session: &'a dyn Session) -> Self {
        Transaction {
            session,
            aborted: RefCell::new(None),
        }
    }

    /// Uploaded-file metadata, inside this transaction.
    pub fn files(&self) -> Files<'_> {
        Files {
            target: Target::Transaction(self),
        }
    }

    /// Conversations, inside this transaction.
    pub fn conversations(&self) -> Conversations<'_> {
        Conversations {
            target: Target::Transaction(self),
        }
    }

    /// [`Error::TransactionAborted`] once an earlier call has ended the
    /// transaction.
    pub(super) fn usable(&self) -> Result<()> {
        match &*self.aborted.borrow() {
            Some(reason) => Err(Error::TransactionAborted {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Ends the transaction for `failure` (the first failure is the one
    /// kept).
    fn abort(&self, failure: &Error) {
        let mut aborted = self.aborted.borrow_mut();
        if aborted.is_none() {
            log::warn!("transaction aborted: {failure}");
            *aborted = Some(failure.to_string());
        }
    }

    /// Runs one reading call. A read the database failed (on PostgreSQL
    /// that aborts the transaction) ends it, on every backend alike.
    fn read<T>(&self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        self.usable()?;
        f(self.session).inspect_err(|e| {
            if e.is_database_failure() {
                self.abort(e);
            }
        })
    }

    /// Runs one writing call inside a savepoint: when it fails, what it
    /// wrote is rolled back and the transaction goes on; when even that
    /// fails, the transaction is ended.
    fn write<T>(&self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        self.usable()?;
        let session = self.session;
        session
            .savepoint(Savepoint::Begin)
            .inspect_err(|e| self.abort(e))?;
        match f(session) {
            Ok(value) => {
                session
                    .savepoint(Savepoint::Release)
                    .inspect_err(|e| self.abort(e))?;
                Ok(value)
            }
            Err(e) => {
                if let Err(undo) = session.savepoint(Savepoint::RollBack) {
                    self.abort(&undo);
                }
                Err(e)
            }
        }
    }
}

impl Store {
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
}

/// Where a repository handle sends its calls.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Each call in its own transaction.
    Store(&'a Store),
    /// Calls inside an open transaction, each atomic on its own.
    Transaction(&'a Transaction<'a>),
}

impl Target<'_> {
    fn read<T>(self, f: impl Fn(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_read(f),
            Target::Transaction(tx) => tx.read(f),
        }
    }

    fn write<T>(self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_write(f),
            Target::Transaction(tx) => tx.write(f),
        }
    }

    /// A write of one statement (see [`Store::run_write_single`]).
    fn write_single<T>(self, f: impl FnOnce(&dyn Session) -> Result<T>) -> Result<T> {
        match self {
            Target::Store(store) => store.run_write_single(f),
            Target::Transaction(tx) => tx.write(f),
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

impl Sealed for Files<'_> {}
impl Sealed for Conversations<'_> {}

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
        let mut message = validate::new_message(conversation, message, now)?;
        self.target.write(|s| {
            s.append_chain(conversation, std::slice::from_mut(&mut message), Some(now))
        })?;
        Ok(message)
    }

    fn append_messages(
        &self,
        conversation: ConversationId,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Message>> {
        let now = now();
        let mut messages = validate::new_messages(conversation, messages, now)?;
        if !messages.is_empty() {
            self.target
                .write(|s| s.append_chain(conversation, &mut messages, Some(now)))?;
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
            .read(|s| {
                s.branch_page(
                    conversation,
                    PositionRange {
                        after,
                        limit: limit + 1,
                    },
                )
            })?
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
            .read(|s| s.list_summaries(query.order, query.archived, after, limit + 1))?;
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
            .write(|s| update_conversation(s, &conversation, now))
    }

    fn delete(&self, id: ConversationId) -> Result<bool> {
        self.target.write_single(|s| s.delete_conversation(id))
    }

    fn edit_message(&self, id: MessageId, edit: MessageEdit) -> Result<Message> {
        let edit = validate::message_edit(edit)?;
        let now = now();
        self.target.write(|s| s.edit_one(id, &edit, now))
    }

    fn append_to_message(&self, id: MessageId, delta: &str) -> Result<Message> {
        validate::delta(delta)?;
        let now = now();
        self.target.write(|s| s.grow_one(id, delta, now))
    }

    fn delete_message(&self, id: MessageId) -> Result<bool> {
        let now = now();
        absent_is_false(self.target.write(|s| s.delete_one(id, now)))
    }

    fn delete_branch(&self, id: MessageId) -> Result<u64> {
        let now = now();
        match self.target.write(|s| s.delete_branch_one(id, now)) {
            Err(Error::NotFound { .. }) => Ok(0),
            result => result,
        }
    }

    fn branch_from(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        message: NewMessage,
    ) -> Result<Message> {
        let now = now();
        let mut message = validate::new_message(conversation, message, now)?;
        self.target
            .write(|s| s.branch_one(conversation, parent, &mut message, now))?;
        Ok(message)
    }

    fn alternatives(&self, id: MessageId) -> Result<Vec<Message>> {
        self.target.read(|s| s.alternatives_of(id))
    }

    fn switch_branch(&self, id: MessageId) -> Result<Conversation> {
        self.target.write(|s| s.switch_one(id))
    }

    fn tree(&self, id: ConversationId) -> Result<Option<ConversationTree>> {
        self.target.read(|s| s.tree_of(id))
    }

    fn edit(&self, id: ConversationId, edit: ConversationEdit) -> Result<ConversationSummary> {
        let edit = validate::conversation_edit(edit)?;
        let now = now();
        self.target.write(|s| s.edit_conversation(id, &edit, now))
    }

    fn archive(&self, id: ConversationId) -> Result<ConversationSummary> {
        let now = now();
        self.target.write(|s| s.archive_one(id, Some(now)))
    }

    fn unarchive(&self, id: ConversationId) -> Result<ConversationSummary> {
        self.target.write(|s| s.archive_one(id, None))
    }
}

/// `Ok(true)` for a write that was done, `Ok(false)` for one refused with
/// [`Error::NotFound`] (rolled back, nothing written).
fn absent_is_false(result: Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
