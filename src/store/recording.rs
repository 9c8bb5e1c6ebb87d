//! Records what a write transaction changes, for the change feed: a
//! [`Session`] that passes every call to the backend's and notes each record
//! written. Every write of the API, of a transaction, of an import or a copy
//! goes through one, so the feed says the same on every backend.

use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::{
    Archive, Branches, Fields, HeaderWrite, Node, PositionRange, Savepoint, Session, Stored,
    TimeKey, Touch,
};
use crate::error::Result;
use crate::model::{
    ChangeEntity, ChangeKind, Conversation, ConversationId, ConversationOrder, ConversationSummary,
    Counts, FileId, FileMetadata, Message, MessageEdit, MessageId,
};

use super::recorder::{Recorder, conversation_change, file_change};

/// The backend's session, recording into a [`Recorder`].
pub(crate) struct Recording<'a> {
    pub(crate) inner: &'a dyn Session,
    pub(crate) recorder: &'a Recorder,
}

impl Session for Recording<'_> {
    fn savepoint(&self, step: Savepoint) -> Result<()> {
        let result = self.inner.savepoint(step);
        if step != Savepoint::Begin || result.is_ok() {
            self.recorder.step(step);
        }
        result
    }

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

    fn insert_chain(&self, conversation: ConversationId, messages: &mut [Message]) -> Result<()> {
        self.inner.insert_chain(conversation, messages)?;
        for message in messages.iter() {
            self.recorder
                .message(message.id, conversation, ChangeKind::Created);
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

    fn update_message(&self, stored: &Stored, text_changed: bool) -> Result<()> {
        self.inner.update_message(stored, text_changed)?;
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

    fn grow_message(&self, id: MessageId, touch: Touch, delta: &str) -> Result<Option<Message>> {
        let grown = self.inner.grow_message(id, touch, delta)?;
        if let Some(message) = &grown {
            let conversation = message.conversation_id;
            self.recorder
                .conversation(conversation, ChangeKind::Changed);
            self.recorder.saw(id, conversation);
            self.recorder.message(id, conversation, ChangeKind::Changed);
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
