//! The memory backend's session: the locked state, the undo log, and the
//! record lookups its [`Session`](crate::backend::Session) operations share.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ops::Bound;

use super::{Entry, Key, Slot, State, Undo};
use crate::backend::{Node, Savepoint, TimeKey};
use crate::model::{Conversation, ConversationId, ConversationSummary, Message, MessageId};

pub(crate) struct MemorySession<'a> {
    pub(super) state: RefCell<&'a mut State>,
    undo: RefCell<Vec<Undo>>,
    /// The undo log's length when the open savepoint was set.
    savepoint: Cell<Option<usize>>,
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

pub(super) fn node_of(key: Key, slot: &Slot) -> Node {
    Node {
        id: key.1,
        conversation_id: slot.message.conversation_id,
        parent_id: slot.message.parent_id,
        position: key.0,
        on_path: slot.on_path,
    }
}

impl<'a> MemorySession<'a> {
    /// A session on the locked state.
    pub(super) fn new(state: &'a mut State) -> Self {
        MemorySession {
            state: RefCell::new(state),
            undo: RefCell::new(Vec::new()),
            savepoint: Cell::new(None),
        }
    }

    /// Takes a step of the savepoint of one call: undoing the log back to
    /// where it was set rolls back what the call wrote.
    pub(super) fn step(&self, step: Savepoint) {
        match step {
            Savepoint::Begin => self.savepoint.set(Some(self.undo.borrow().len())),
            Savepoint::Release => self.savepoint.set(None),
            Savepoint::RollBack => {
                let Some(mark) = self.savepoint.take() else {
                    return;
                };
                let mut state = self.state.borrow_mut();
                let mut undo = self.undo.borrow_mut();
                while undo.len() > mark {
                    if let Some(last) = undo.pop() {
                        state.undo(last);
                    }
                }
            }
        }
    }

    /// Keeps what the session wrote: nothing is undone when it drops.
    pub(super) fn commit(&mut self) {
        self.undo.get_mut().clear();
    }

    pub(super) fn log(&self, undo: Undo) {
        self.undo.borrow_mut().push(undo);
    }

    /// The conversation and key of message `id`, with its slot.
    pub(super) fn find(&self, id: MessageId) -> Option<(ConversationId, Key, Slot)> {
        let state = self.state.borrow();
        let &(conversation, position) = state.message_at.get(&id)?;
        let slot = state
            .conversations
            .get(&conversation)?
            .messages
            .get(&(position, id))?;
        Some((conversation, (position, id), slot.clone()))
    }

    /// Writes `slot` at `key` of `conversation` (clearing `old` first when
    /// the message moves), logging the undo.
    pub(super) fn put(
        &self,
        conversation: ConversationId,
        old: Option<Key>,
        key: Key,
        slot: Option<Slot>,
    ) {
        let mut state = self.state.borrow_mut();
        if let Some(old) = old.filter(|old| *old != key) {
            let was = state.set_message(conversation, old, None);
            self.log(Undo::Message(conversation, old, was));
        }
        let was = state.set_message(conversation, key, slot);
        self.log(Undo::Message(conversation, key, was));
    }

    /// Applies `change` to a copy of message `id`'s slot and stores it when
    /// `change` says so; the message as stored, or `None` (no such message,
    /// or `change` declined).
    pub(super) fn change(
        &self,
        id: MessageId,
        change: impl FnOnce(&mut Slot) -> bool,
    ) -> Option<Message> {
        let (conversation, key, mut slot) = self.find(id)?;
        if !change(&mut slot) {
            return None;
        }
        let message = slot.message.clone();
        self.put(conversation, None, key, Some(slot));
        Some(message)
    }

    /// Every (key, slot) of a conversation, in order.
    pub(super) fn slots(&self, conversation: ConversationId) -> Vec<(Key, Slot)> {
        self.state
            .borrow()
            .conversations
            .get(&conversation)
            .map(|e| e.messages.iter().map(|(k, s)| (*k, s.clone())).collect())
            .unwrap_or_default()
    }

    /// Changes a conversation's row with `change`, logging the undo; the
    /// row as it is then.
    pub(super) fn change_header(
        &self,
        id: ConversationId,
        change: impl FnOnce(&mut Conversation),
    ) -> Option<ConversationSummary> {
        let mut state = self.state.borrow_mut();
        let mut header = state.conversations.get(&id)?.header.clone();
        change(&mut header);
        let old = state.set_header(header)?;
        self.log(Undo::Header(Box::new(old)));
        state.conversations.get(&id).map(Entry::summary)
    }

    pub(super) fn last_position(&self, conversation: ConversationId) -> i64 {
        let state = self.state.borrow();
        state
            .conversations
            .get(&conversation)
            .and_then(|e| e.messages.keys().next_back())
            .map_or(0, |k| k.0)
    }
}

/// The ids of a newest-first index strictly after `after`, newest first.
pub(super) fn newest_first<Id: Copy + Ord + From<uuid::Uuid>>(
    index: &BTreeSet<(i64, Id)>,
    after: Option<TimeKey>,
) -> impl Iterator<Item = Id> + '_ {
    let upper = match after {
        Some((t, id)) => Bound::Excluded((t, Id::from(id))),
        None => Bound::Unbounded,
    };
    index
        .range((Bound::Unbounded, upper))
        .rev()
        .map(|(_, id)| *id)
}
