//! The memory backend's [`Session`]: record operations on the locked state,
//! each logging how to undo itself.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use super::access::{MemorySession, newest_first, node_of};
use super::{Entry, Slot, Undo};
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::{
    Archive, Branches, Fields, HeaderWrite, Node, PositionRange, Savepoint, Session, Stored,
    TimeKey, Touch,
};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts, FileId,
    FileMetadata, Message, MessageEdit, MessageId, bump,
};

impl Session for MemorySession<'_> {
    fn savepoint(&self, step: Savepoint) -> Result<()> {
        self.step(step);
        Ok(())
    }

    fn insert_file(&self, file: &FileMetadata) -> Result<()> {
        let mut state = self.state.borrow_mut();
        if state.files.contains_key(&file.id) {
            return Err(Error::conflict(Entity::File, file.id));
        }
        state.set_file(file.id, Some(file.clone()));
        self.log(Undo::File(file.id, None));
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        Ok(self.state.borrow().files.get(&id).cloned())
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let state = self.state.borrow();
        Ok(newest_first(&state.files_by_created, after)
            .take(limit)
            .filter_map(|id| state.files.get(&id).cloned())
            .collect())
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        let old = self.state.borrow_mut().set_file(id, None);
        let existed = old.is_some();
        if existed {
            self.log(Undo::File(id, old));
        }
        Ok(existed)
    }

    fn insert_conversation(&self, conversation: &Conversation) -> Result<()> {
        let mut state = self.state.borrow_mut();
        if state.conversations.contains_key(&conversation.id) {
            return Err(Error::conflict(Entity::Conversation, conversation.id));
        }
        let entry = Entry {
            header: Conversation {
                messages: Vec::new(),
                ..conversation.clone()
            },
            messages: BTreeMap::new(),
        };
        state.set_conversation(conversation.id, Some(entry));
        self.log(Undo::Conversation(conversation.id, None));
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let state = self.state.borrow();
        Ok(state.conversations.get(&id).map(Entry::to_conversation))
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        Ok(self.state.borrow().conversations.contains_key(&id))
    }

    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool> {
        // Message counts are derived from the messages themselves here.
        let mut state = self.state.borrow_mut();
        let Some(entry) = state.conversations.get(&id) else {
            return Ok(false);
        };
        let (updated_at, version) = (entry.header.updated_at, entry.header.version);
        if touch.expected.is_some_and(|expected| expected != version) {
            return Ok(false);
        }
        if let Some(now) = touch.bump {
            state.set_updated_at(id, bump(updated_at, now));
        }
        if let Some(entry) = state.conversations.get_mut(&id) {
            entry.header.version = version + 1;
        }
        self.log(Undo::Touched(id, updated_at, version));
        Ok(true)
    }

    fn touch_conversation_of(&self, id: MessageId, touch: Touch) -> Result<Option<ConversationId>> {
        let Some((conversation, _, _)) = self.find(id) else {
            return Ok(None);
        };
        Ok(self
            .touch_conversation(conversation, touch)?
            .then_some(conversation))
    }

    fn set_fields(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
    ) -> Result<Option<ConversationSummary>> {
        Ok(self.change_header(id, |header| {
            if let Some(title) = fields.title {
                header.title = title.to_owned();
            }
            if let Some(metadata) = fields.metadata {
                header.metadata.clone_from(metadata);
            }
            match fields.archive {
                Some(Archive::At(t)) => header.archived_at = header.archived_at.or(Some(t)),
                Some(Archive::Clear) => header.archived_at = None,
                None => {}
            }
        }))
    }

    fn write_header(&self, write: HeaderWrite<'_>) -> Result<Option<ConversationSummary>> {
        let at_version = self
            .state
            .borrow()
            .conversations
            .get(&write.id)
            .is_some_and(|e| e.header.version == write.expected);
        if !at_version {
            return Ok(None);
        }
        Ok(self.change_header(write.id, |header| {
            header.title = write.title.to_owned();
            header.metadata.clone_from(write.metadata);
            header.updated_at = bump(header.updated_at, write.now);
            header.version += 1;
        }))
    }

    fn adjust_count(&self, _id: ConversationId, _delta: i64) -> Result<()> {
        Ok(()) // counted from the messages themselves
    }

    fn append_message(&self, id: ConversationId, message: &Message) -> Result<Option<MessageId>> {
        let parent = self.current_leaf(id)?;
        let message = Message {
            parent_id: parent,
            ..message.clone()
        };
        self.insert_messages(id, std::slice::from_ref(&message), &[true])?;
        Ok(parent)
    }

    fn current_leaf(&self, id: ConversationId) -> Result<Option<MessageId>> {
        let state = self.state.borrow();
        Ok(state.conversations.get(&id).and_then(|e| {
            e.messages
                .iter()
                .rev()
                .find(|(_, slot)| slot.on_path)
                .map(|(key, _)| key.1)
        }))
    }

    fn insert_messages(
        &self,
        id: ConversationId,
        messages: &[Message],
        on_path: &[bool],
    ) -> Result<()> {
        if !self.conversation_exists(id)? {
            return Err(Error::not_found(Entity::Conversation, id));
        }
        if let Some(taken) = messages
            .iter()
            .find(|m| self.state.borrow().message_at.contains_key(&m.id))
        {
            return Err(Error::conflict(Entity::Message, taken.id));
        }
        let first = self.last_position(id) + 1;
        for ((position, message), on_path) in (first..).zip(messages).zip(on_path) {
            self.insert_message(&Stored {
                position,
                on_path: *on_path,
                message: message.clone(),
            })?;
        }
        Ok(())
    }

    fn insert_message(&self, stored: &Stored) -> Result<()> {
        let m = &stored.message;
        if self.state.borrow().message_at.contains_key(&m.id) {
            return Err(Error::conflict(Entity::Message, m.id));
        }
        let slot = Slot {
            on_path: stored.on_path,
            message: m.clone(),
        };
        self.put(m.conversation_id, None, (stored.position, m.id), Some(slot));
        Ok(())
    }

    fn update_message(&self, stored: &Stored, _text_changed: bool) -> Result<()> {
        let id = stored.message.id;
        if let Some((conversation, old, _)) = self.find(id) {
            let slot = Slot {
                on_path: stored.on_path,
                message: stored.message.clone(),
            };
            self.put(conversation, Some(old), (stored.position, id), Some(slot));
        }
        Ok(())
    }

    fn message_page(
        &self,
        id: ConversationId,
        branches: Branches,
        range: PositionRange,
    ) -> Result<Vec<Stored>> {
        let state = self.state.borrow();
        let Some(entry) = state.conversations.get(&id) else {
            return Ok(Vec::new());
        };
        let lower = match range.after {
            Some(after) => Bound::Excluded((after, MessageId::from(uuid::Uuid::max()))),
            None => Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(range.limit.min(entry.messages.len()));
        page.extend(
            entry
                .messages
                .range((lower, Bound::Unbounded))
                .filter(|(_, slot)| branches == Branches::All || slot.on_path)
                .take(range.limit)
                .map(|(key, slot)| Stored {
                    position: key.0,
                    on_path: slot.on_path,
                    message: slot.message.clone(),
                }),
        );
        Ok(page)
    }

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        Ok(self.change(id, |slot| {
            let m = &mut slot.message;
            if let Some(content) = &edit.content {
                m.content.clone_from(content);
            }
            if let Some(attachments) = &edit.attachments {
                m.attachments.clone_from(attachments);
            }
            if let Some(metadata) = &edit.metadata {
                m.metadata.clone_from(metadata);
            }
            true
        }))
    }

    fn grow_message(&self, id: MessageId, touch: Touch, delta: &str) -> Result<Option<Message>> {
        if self.touch_conversation_of(id, touch)?.is_none() {
            return Ok(None);
        }
        let max = crate::limits::MAX_CONTENT_BYTES;
        Ok(self.change(id, |slot| {
            let content = &mut slot.message.content;
            let fits = content.len().saturating_add(delta.len()) <= max;
            if fits {
                content.push_str(delta);
            }
            fits
        }))
    }

    fn node(&self, id: MessageId) -> Result<Option<Node>> {
        Ok(self.find(id).map(|(_, key, slot)| node_of(key, &slot)))
    }

    fn path_to(&self, id: MessageId) -> Result<Vec<Node>> {
        let mut up = Vec::new();
        let mut next = Some(id);
        while let Some(node) = next.map(|id| self.node(id)).transpose()?.flatten() {
            up.push(node);
            if node.on_path {
                break;
            }
            next = node.parent_id;
        }
        Ok(up)
    }

    fn set_path(&self, id: ConversationId, after: Option<i64>, mark: &[MessageId]) -> Result<()> {
        for (key, mut slot) in self.slots(id) {
            let off = slot.on_path && after.is_none_or(|after| key.0 > after);
            if off {
                slot.on_path = false;
                self.put(id, None, key, Some(slot));
            }
        }
        for message in mark {
            self.change(*message, |slot| {
                slot.on_path = true;
                true
            });
        }
        Ok(())
    }

    fn subtree(&self, id: MessageId) -> Result<Vec<Node>> {
        let Some((conversation, key, slot)) = self.find(id) else {
            return Ok(Vec::new());
        };
        let mut below = vec![node_of(key, &slot)];
        let mut inside: BTreeSet<MessageId> = BTreeSet::from([id]);
        // Children come after their parents: one pass in position order.
        for (key, slot) in self.slots(conversation) {
            if slot.message.parent_id.is_some_and(|p| inside.contains(&p)) && inside.insert(key.1) {
                below.push(node_of(key, &slot));
            }
        }
        Ok(below)
    }

    fn children(&self, id: ConversationId, parent: Option<MessageId>) -> Result<Vec<Message>> {
        Ok(self
            .slots(id)
            .into_iter()
            .filter(|(_, slot)| slot.message.parent_id == parent)
            .map(|(_, slot)| slot.message)
            .collect())
    }

    fn reparent(&self, id: ConversationId, from: MessageId, to: Option<MessageId>) -> Result<()> {
        for (key, mut slot) in self.slots(id) {
            if slot.message.parent_id == Some(from) {
                slot.message.parent_id = to;
                self.put(id, None, key, Some(slot));
            }
        }
        Ok(())
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        if let Some((conversation, key, _)) = self.find(id) {
            self.put(conversation, None, key, None);
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
        let state = self.state.borrow();
        let index = match order {
            ConversationOrder::UpdatedAt => &state.by_updated,
            ConversationOrder::CreatedAt => &state.by_created,
        };
        let mut page = Vec::with_capacity(limit.min(state.conversations.len()));
        for id in newest_first(index, after) {
            if page.len() == limit {
                break;
            }
            match state.conversations.get(&id) {
                Some(entry) if entry.header.archived_at.is_some() == archived => {
                    page.push(entry.summary());
                }
                _ => {}
            }
        }
        Ok(page)
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        let state = self.state.borrow();
        Ok(state
            .by_updated
            .iter()
            .rev()
            .filter_map(|(_, id)| state.conversations.get(id))
            .map(Entry::to_conversation)
            .collect())
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let old = self.state.borrow_mut().set_conversation(id, None);
        let existed = old.is_some();
        if existed {
            self.log(Undo::Conversation(id, old.map(Box::new)));
        }
        Ok(existed)
    }

    fn counts(&self) -> Result<Counts> {
        Ok(self.state.borrow().counts())
    }

    fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        Ok(self
            .state
            .borrow()
            .search_candidates(kind, filter, before, limit))
    }
}
