//! The memory backend's [`Session`]: record operations on the locked state,
//! each logging how to undo itself.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use time::OffsetDateTime;

use super::{Entry, State, Undo};
use crate::backend::message_list::plan;
use crate::backend::{PositionRange, Positioned, Session, TimeKey, Touch};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts, FileId,
    FileMetadata, Message, MessageEdit, MessageId, bump,
};

pub(super) struct MemorySession<'a> {
    state: RefCell<&'a mut State>,
    undo: RefCell<Vec<Undo>>,
}

impl Drop for MemorySession<'_> {
    /// Rolls back whatever was not committed, also while unwinding a panic.
    fn drop(&mut self) {
        let state = self.state.get_mut();
        while let Some(undo) = self.undo.get_mut().pop() {
            state.undo(undo);
        }
    }
}

impl<'a> MemorySession<'a> {
    /// A session on the locked state.
    pub(super) fn new(state: &'a mut State) -> Self {
        MemorySession {
            state: RefCell::new(state),
            undo: RefCell::new(Vec::new()),
        }
    }

    /// Keeps what the session wrote: nothing is undone when it drops.
    pub(super) fn commit(&mut self) {
        self.undo.get_mut().clear();
    }

    fn log(&self, undo: Undo) {
        self.undo.borrow_mut().push(undo);
    }

    /// Applies `change` to a copy of message `id` and stores it when
    /// `change` says so; the message as stored, or `None` (no such message,
    /// or `change` declined).
    fn change_message(
        &self,
        id: MessageId,
        change: impl FnOnce(&mut Message) -> bool,
    ) -> Result<Option<Message>> {
        let mut state = self.state.borrow_mut();
        let Some(&(conversation, position)) = state.message_at.get(&id) else {
            return Ok(None);
        };
        let Some(mut message) = state
            .conversations
            .get(&conversation)
            .and_then(|entry| entry.messages.get(&position))
            .cloned()
        else {
            return Ok(None);
        };
        if !change(&mut message) {
            return Ok(None);
        }
        let old = state.set_message(conversation, position, Some(message.clone()));
        self.log(Undo::Message(conversation, position, old));
        Ok(Some(message))
    }
}

/// Items of a newest-first index strictly after `after`.
fn newest_first<Id: Copy + Ord + From<uuid::Uuid>>(
    index: &BTreeSet<(i64, Id)>,
    after: Option<TimeKey>,
    limit: usize,
) -> Vec<Id> {
    let upper = match after {
        Some((t, id)) => Bound::Excluded((t, Id::from(id))),
        None => Bound::Unbounded,
    };
    index
        .range((Bound::Unbounded, upper))
        .rev()
        .take(limit)
        .map(|(_, id)| *id)
        .collect()
}

impl Session for MemorySession<'_> {
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
        Ok(newest_first(&state.files_by_created, after, limit)
            .into_iter()
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
            header: conversation.clone(),
            messages: BTreeMap::new(),
        };
        state.set_conversation(conversation.id, Some(entry));
        self.log(Undo::Conversation(conversation.id, None));
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self
            .state
            .borrow()
            .conversations
            .get(&id)
            .map(Entry::to_conversation))
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

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        self.change_message(id, |m| {
            if let Some(content) = &edit.content {
                m.content.clone_from(content);
            }
            if let Some(attachments) = &edit.attachments {
                m.attachments.clone_from(attachments);
            }
            true
        })
    }

    fn grow_message(&self, id: MessageId, delta: &str, max: usize) -> Result<Option<Message>> {
        self.change_message(id, |m| {
            let fits = m.content.len().saturating_add(delta.len()) <= max;
            if fits {
                m.content.push_str(delta);
            }
            fits
        })
    }

    fn message_exists(&self, id: MessageId) -> Result<bool> {
        Ok(self.state.borrow().message_at.contains_key(&id))
    }

    fn remove_message(&self, id: MessageId) -> Result<Option<ConversationId>> {
        let mut state = self.state.borrow_mut();
        let Some(&(conversation, position)) = state.message_at.get(&id) else {
            return Ok(None);
        };
        let old = state.set_message(conversation, position, None);
        self.log(Undo::Message(conversation, position, old));
        Ok(Some(conversation))
    }

    fn insert_messages(&self, id: ConversationId, messages: &[Message]) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let state = &mut **state;
        let entry = state
            .conversations
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(Entity::Conversation, id))?;
        if let Some(taken) = messages
            .iter()
            .find(|m| state.message_at.contains_key(&m.id))
        {
            return Err(Error::conflict(Entity::Message, taken.id));
        }
        let first = entry.messages.keys().next_back().map_or(1, |p| p + 1);
        for (position, message) in (first..).zip(messages) {
            entry.messages.insert(position, message.clone());
            state.message_at.insert(message.id, (id, position));
        }
        self.log(Undo::Appended(id, first..first + messages.len() as i64));
        Ok(())
    }

    fn message_page(&self, id: ConversationId, range: PositionRange) -> Result<Vec<Positioned>> {
        let state = self.state.borrow();
        let Some(entry) = state.conversations.get(&id) else {
            return Ok(Vec::new());
        };
        let lower = range.after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(entry
            .messages
            .range((lower, Bound::Unbounded))
            .take(range.limit)
            .map(|(p, m)| (*p, m.clone()))
            .collect())
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let state = self.state.borrow();
        let index = match order {
            ConversationOrder::UpdatedAt => &state.by_updated,
            ConversationOrder::CreatedAt => &state.by_created,
        };
        Ok(newest_first(index, after, limit)
            .into_iter()
            .filter_map(|id| state.conversations.get(&id))
            .map(|entry| ConversationSummary {
                message_count: entry.messages.len() as u64,
                ..entry.header.summary()
            })
            .collect())
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

    fn update_conversation(
        &self,
        conversation: &Conversation,
        now: OffsetDateTime,
    ) -> Result<Conversation> {
        let mut state = self.state.borrow_mut();
        let old = state
            .conversations
            .get(&conversation.id)
            .ok_or_else(|| Error::not_found(Entity::Conversation, conversation.id))?;
        if old.header.version != conversation.version {
            return Err(Error::stale(Entity::Conversation, conversation.id));
        }
        let stored: Vec<(i64, Message)> =
            old.messages.iter().map(|(p, m)| (*p, m.clone())).collect();
        let plan = plan(&stored, &conversation.messages);
        if let Some((_, taken)) = plan.insert.iter().find(|(_, m)| {
            state
                .message_at
                .get(&m.id)
                .is_some_and(|(owner, _)| *owner != conversation.id)
        }) {
            return Err(Error::conflict(Entity::Message, taken.id));
        }
        let mut entry = old.clone();
        entry.header.title = conversation.title.clone();
        entry.header.updated_at = bump(old.header.updated_at, now);
        entry.header.version = old.header.version + 1;
        for id in &plan.delete {
            entry.messages.retain(|_, m| m.id != *id);
        }
        let mut messages: BTreeMap<i64, Message> = BTreeMap::new();
        let changed: HashMap<MessageId, i64> = plan
            .insert
            .iter()
            .chain(&plan.update)
            .map(|(p, m)| (m.id, *p))
            .collect();
        for (position, message) in std::mem::take(&mut entry.messages) {
            if !changed.contains_key(&message.id) {
                messages.insert(position, message);
            }
        }
        for (position, message) in plan.insert.iter().chain(&plan.update) {
            messages.insert(*position, (*message).clone());
        }
        entry.messages = messages;
        let stored = entry.to_conversation();
        let old = state.set_conversation(conversation.id, Some(entry));
        self.log(Undo::Conversation(conversation.id, old.map(Box::new)));
        Ok(stored)
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
}
