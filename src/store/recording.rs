//! Records what a write transaction changes, for the change feed: a
//! [`Session`] that passes every call to the backend's and notes each record
//! written. Every write of the API, of a transaction, of an import or a copy
//! goes through one, so the feed says the same on every backend.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use uuid::Uuid;

use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::{
    Archive, Branches, Fields, HeaderWrite, Node, PositionRange, Session, Stored, TimeKey, Touch,
};
use crate::error::Result;
use crate::limits::MAX_CHANGES_PER_TRANSACTION;
use crate::model::{
    ChangeBatch, ChangeEntity, ChangeKind, Conversation, ConversationId, ConversationOrder,
    ConversationSummary, Counts, FileId, FileMetadata, Message, MessageEdit, MessageId,
    PendingChange,
};

/// The changes of one transaction, one per record, in the order first written.
pub(crate) struct Recorder {
    changes: RefCell<Vec<PendingChange>>,
    /// Where each record's change is, once there are more than
    /// [`SCANNED`] (fewer are found by a scan, with no allocation).
    index: RefCell<Option<HashMap<(ChangeEntity, Uuid), usize>>>,
    overflow: Cell<bool>,
    /// Conversations of messages seen, for a deleted message's event
    /// (made on the first).
    conversation_of: RefCell<Option<HashMap<MessageId, ConversationId>>>,
}

/// Changes of a transaction found by a scan rather than an index.
const SCANNED: usize = 32;

thread_local! {
    /// An empty change list left by this thread's last delivered
    /// transaction: the next one records into it without allocating.
    static SPARE: Cell<Vec<PendingChange>> = const { Cell::new(Vec::new()) };
}

/// Hands a delivered transaction's change list back for the next one on
/// this thread (emptied; only a small one is kept).
pub(crate) fn recycle(mut changes: Vec<PendingChange>) {
    if changes.capacity() <= SCANNED {
        changes.clear();
        // In a thread-local's destructor, after `SPARE`'s: nothing kept.
        let _ = SPARE.try_with(|spare| spare.set(changes));
    }
}

impl Recorder {
    /// A recorder with nothing recorded, in this thread's spare list.
    pub(crate) fn new() -> Recorder {
        Recorder {
            // A write from a thread-local's destructor may come after
            // `SPARE`'s: a new list then.
            changes: RefCell::new(SPARE.try_with(Cell::take).unwrap_or_default()),
            index: RefCell::default(),
            overflow: Cell::new(false),
            conversation_of: RefCell::default(),
        }
    }

    fn note(
        &self,
        entity: ChangeEntity,
        id: Uuid,
        conversation_id: Option<ConversationId>,
        kind: ChangeKind,
    ) {
        if self.overflow.get() {
            return;
        }
        let mut changes = self.changes.borrow_mut();
        let found = if changes.len() <= SCANNED {
            changes
                .iter()
                .position(|c| c.entity == entity && c.id == id)
        } else {
            let index = self.index.borrow();
            index
                .as_ref()
                .and_then(|index| index.get(&(entity, id)).copied())
        };
        if let Some(at) = found {
            let earlier = &mut changes[at];
            earlier.kind = earlier.kind.then(kind);
            return;
        }
        if changes.len() == MAX_CHANGES_PER_TRANSACTION {
            self.overflow.set(true);
            *changes = Vec::new();
            *self.index.borrow_mut() = None;
            return;
        }
        if changes.len() >= SCANNED {
            let mut index = self.index.borrow_mut();
            let index = index.get_or_insert_with(|| {
                changes
                    .iter()
                    .enumerate()
                    .map(|(at, c)| ((c.entity, c.id), at))
                    .collect()
            });
            index.insert((entity, id), changes.len());
        }
        changes.push(PendingChange {
            entity,
            id,
            conversation_id,
            kind,
        });
    }

    fn add(&self, change: PendingChange) {
        self.note(
            change.entity,
            change.id,
            change.conversation_id,
            change.kind,
        );
    }

    fn conversation(&self, id: ConversationId, kind: ChangeKind) {
        self.add(conversation_change(id, kind));
    }

    fn message(&self, id: MessageId, conversation: ConversationId, kind: ChangeKind) {
        self.note(
            ChangeEntity::Message,
            *id.as_uuid(),
            Some(conversation),
            kind,
        );
    }

    fn nodes(&self, nodes: &[Node]) {
        for node in nodes {
            self.saw(node.id, node.conversation_id);
        }
    }

    /// Notes that message `id` is in `conversation`.
    fn saw(&self, id: MessageId, conversation: ConversationId) {
        self.conversation_of
            .borrow_mut()
            .get_or_insert_with(HashMap::new)
            .insert(id, conversation);
    }

    /// The conversation of message `id`, if this transaction saw it.
    fn seen_conversation_of(&self, id: MessageId) -> Option<ConversationId> {
        let known = self.conversation_of.borrow();
        known.as_ref().and_then(|known| known.get(&id).copied())
    }

    /// The conversation of message `id`, if this transaction wrote it.
    fn recorded_conversation_of(&self, id: MessageId) -> Option<ConversationId> {
        let changes = self.changes.borrow();
        changes
            .iter()
            .find(|c| c.entity == ChangeEntity::Message && c.id == *id.as_uuid())
            .and_then(|c| c.conversation_id)
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        !self.overflow.get() && self.changes.borrow().is_empty()
    }

    /// What the transaction changed.
    pub(crate) fn batch(self) -> ChangeBatch {
        if self.overflow.get() {
            ChangeBatch::Resync
        } else {
            ChangeBatch::Changes(self.changes.into_inner())
        }
    }
}

fn conversation_change(id: ConversationId, kind: ChangeKind) -> PendingChange {
    PendingChange {
        entity: ChangeEntity::Conversation,
        id: *id.as_uuid(),
        conversation_id: Some(id),
        kind,
    }
}

fn file_change(id: FileId, kind: ChangeKind) -> PendingChange {
    PendingChange {
        entity: ChangeEntity::File,
        id: *id.as_uuid(),
        conversation_id: None,
        kind,
    }
}

/// The backend's session, recording into a [`Recorder`].
pub(crate) struct Recording<'a> {
    pub(crate) inner: &'a dyn Session,
    pub(crate) recorder: &'a Recorder,
}

impl Session for Recording<'_> {
    fn insert_file(&self, file: &FileMetadata) -> Result<()> {
        let change = file_change(file.id, ChangeKind::Created);
        self.inner.stage_single(&change);
        self.inner.insert_file(file)?;
        self.recorder.add(change);
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        self.inner.file(id)
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        self.inner.files(after, limit)
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        let change = file_change(id, ChangeKind::Deleted);
        self.inner.stage_single(&change);
        let deleted = self.inner.delete_file(id)?;
        if deleted {
            self.recorder.add(change);
        }
        Ok(deleted)
    }

    fn insert_conversation(&self, conversation: &Conversation) -> Result<()> {
        let change = conversation_change(conversation.id, ChangeKind::Created);
        self.inner.stage_single(&change);
        self.inner.insert_conversation(conversation)?;
        self.recorder.add(change);
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        self.inner.conversation(id)
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        self.inner.conversation_exists(id)
    }

    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool> {
        let touched = self.inner.touch_conversation(id, touch)?;
        if touched {
            self.recorder.conversation(id, ChangeKind::Changed);
        }
        Ok(touched)
    }

    fn touch_conversation_of(&self, id: MessageId, touch: Touch) -> Result<Option<ConversationId>> {
        let touched = self.inner.touch_conversation_of(id, touch)?;
        if let Some(conversation) = touched {
            self.recorder
                .conversation(conversation, ChangeKind::Changed);
            self.recorder.saw(id, conversation);
        }
        Ok(touched)
    }

    fn set_fields(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
    ) -> Result<Option<ConversationSummary>> {
        let set = self.inner.set_fields(id, fields)?;
        if set.is_some() {
            let kind = match fields.archive {
                Some(Archive::At(_)) => ChangeKind::Archived,
                Some(Archive::Clear) => ChangeKind::Unarchived,
                None => ChangeKind::Changed,
            };
            self.recorder.conversation(id, kind);
        }
        Ok(set)
    }

    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<ConversationSummary>> {
        let id = header.id;
        let written = self.inner.write_header(header)?;
        if written.is_some() {
            self.recorder.conversation(id, ChangeKind::Changed);
        }
        Ok(written)
    }

    fn adjust_count(&self, id: ConversationId, delta: i64) -> Result<()> {
        self.inner.adjust_count(id, delta)
    }

    fn append_message(
        &self,
        conversation: ConversationId,
        message: &Message,
    ) -> Result<Option<MessageId>> {
        let parent = self.inner.append_message(conversation, message)?;
        self.recorder
            .message(message.id, conversation, ChangeKind::Created);
        Ok(parent)
    }

    fn current_leaf(&self, conversation: ConversationId) -> Result<Option<MessageId>> {
        self.inner.current_leaf(conversation)
    }

    fn insert_messages(
        &self,
        conversation: ConversationId,
        messages: &[Message],
        on_path: &[bool],
    ) -> Result<()> {
        self.inner
            .insert_messages(conversation, messages, on_path)?;
        for message in messages {
            self.recorder.note(
                ChangeEntity::Message,
                *message.id.as_uuid(),
                Some(conversation),
                ChangeKind::Created,
            );
        }
        Ok(())
    }

    fn insert_message(&self, stored: &Stored) -> Result<()> {
        self.inner.insert_message(stored)?;
        let message = &stored.message;
        self.recorder
            .message(message.id, message.conversation_id, ChangeKind::Created);
        Ok(())
    }

    fn update_message(&self, stored: &Stored) -> Result<()> {
        self.inner.update_message(stored)?;
        let message = &stored.message;
        self.recorder
            .message(message.id, message.conversation_id, ChangeKind::Changed);
        Ok(())
    }

    fn message_page(
        &self,
        id: ConversationId,
        branches: Branches,
        range: PositionRange,
    ) -> Result<Vec<Stored>> {
        self.inner.message_page(id, branches, range)
    }

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        let edited = self.inner.edit_message(id, edit)?;
        if let Some(message) = &edited {
            self.recorder
                .message(id, message.conversation_id, ChangeKind::Changed);
        }
        Ok(edited)
    }

    fn grow_message(&self, id: MessageId, delta: &str, max: usize) -> Result<Option<Message>> {
        let grown = self.inner.grow_message(id, delta, max)?;
        if let Some(message) = &grown {
            self.recorder
                .message(id, message.conversation_id, ChangeKind::Changed);
        }
        Ok(grown)
    }

    fn node(&self, id: MessageId) -> Result<Option<Node>> {
        let node = self.inner.node(id)?;
        self.recorder.nodes(node.as_slice());
        Ok(node)
    }

    fn path_to(&self, id: MessageId) -> Result<Vec<Node>> {
        self.inner.path_to(id)
    }

    fn set_path(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        mark: &[MessageId],
    ) -> Result<()> {
        self.inner.set_path(conversation, after, mark)
    }

    fn subtree(&self, id: MessageId) -> Result<Vec<Node>> {
        let nodes = self.inner.subtree(id)?;
        self.recorder.nodes(&nodes);
        Ok(nodes)
    }

    fn children(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
    ) -> Result<Vec<Message>> {
        self.inner.children(conversation, parent)
    }

    fn reparent(
        &self,
        conversation: ConversationId,
        from: MessageId,
        to: Option<MessageId>,
    ) -> Result<()> {
        self.inner.reparent(conversation, from, to)
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        let known = self.recorder.seen_conversation_of(id);
        let known = known.or_else(|| self.recorder.recorded_conversation_of(id));
        let conversation = match known {
            Some(conversation) => Some(conversation),
            None => self.inner.node(id)?.map(|n| n.conversation_id),
        };
        self.inner.delete_message(id)?;
        if let Some(conversation) = conversation {
            self.recorder.message(id, conversation, ChangeKind::Deleted);
        }
        Ok(())
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        archived: bool,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        self.inner.conversations(order, archived, after, limit)
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.inner.all_conversations()
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let change = conversation_change(id, ChangeKind::Deleted);
        self.inner.stage_single(&change);
        let deleted = self.inner.delete_conversation(id)?;
        if deleted {
            self.recorder.add(change);
        }
        Ok(deleted)
    }

    fn counts(&self) -> Result<Counts> {
        self.inner.counts()
    }

    fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        self.inner.search_candidates(kind, filter, before, limit)
    }

    fn unindexed(&self) -> Result<Option<u64>> {
        self.inner.unindexed()
    }

    fn forget_search_index(&self) -> Result<()> {
        self.inner.forget_search_index()
    }

    fn index_unindexed(&self, limit: usize) -> Result<u64> {
        self.inner.index_unindexed(limit)
    }

    fn in_snapshot(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.inner.in_snapshot(read)
    }
}
