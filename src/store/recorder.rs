//! The changes of one write transaction, for the change feed: one per
//! record, in the order first written, merged as the transaction goes on,
//! and undone with the savepoint of a call that failed.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use uuid::Uuid;

use crate::backend::{Node, Savepoint};
use crate::limits::MAX_CHANGES_PER_TRANSACTION;
use crate::model::{
    ChangeBatch, ChangeEntity, ChangeKind, ConversationId, FileId, MessageId, PendingChange,
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
    /// What rolling back the open savepoint restores, while one is open.
    savepoint: RefCell<Option<Journal>>,
}

/// How the changes stood when a savepoint was set, and the merges since
/// into changes recorded before it.
struct Journal {
    len: usize,
    /// (where, its kind before), oldest first.
    merged: Vec<(usize, ChangeKind)>,
    /// The call filled the list (nothing more is recorded in it).
    full: bool,
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
            savepoint: RefCell::default(),
        }
    }

    /// Takes a step of the savepoint of one call: a rolled-back call's
    /// changes are dropped and its merges into earlier ones undone; a call
    /// that filled the transaction's list overflows it only once it is
    /// kept.
    pub(super) fn step(&self, step: Savepoint) {
        let journal = match step {
            Savepoint::Begin => {
                let len = self.changes.borrow().len();
                *self.savepoint.borrow_mut() = Some(Journal {
                    len,
                    merged: Vec::new(),
                    full: false,
                });
                return;
            }
            Savepoint::Release | Savepoint::RollBack => self.savepoint.borrow_mut().take(),
        };
        let Some(Journal { len, merged, full }) = journal else {
            return;
        };
        if step == Savepoint::Release {
            if full {
                self.overflow_now();
            }
            return;
        }
        if self.overflow.get() {
            return;
        }
        let mut changes = self.changes.borrow_mut();
        changes.truncate(len);
        for (at, kind) in merged.into_iter().rev() {
            if let Some(change) = changes.get_mut(at) {
                change.kind = kind;
            }
        }
        // Rebuilt as `note` builds it: only past `SCANNED` changes.
        *self.index.borrow_mut() = (changes.len() > SCANNED).then(|| index_of(&changes));
    }

    /// Gives up the list: the transaction is announced as a resync.
    fn overflow_now(&self) {
        self.overflow.set(true);
        *self.changes.borrow_mut() = Vec::new();
        *self.index.borrow_mut() = None;
    }

    pub(super) fn note(
        &self,
        entity: ChangeEntity,
        id: Uuid,
        conversation_id: Option<ConversationId>,
        kind: ChangeKind,
    ) {
        let full_in_call = self.savepoint.borrow().as_ref().is_some_and(|j| j.full);
        if self.overflow.get() || full_in_call {
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
            if let Some(journal) = self.savepoint.borrow_mut().as_mut()
                && at < journal.len
            {
                journal.merged.push((at, earlier.kind));
            }
            earlier.kind = earlier.kind.then(kind);
            return;
        }
        if changes.len() == MAX_CHANGES_PER_TRANSACTION {
            drop(changes);
            match self.savepoint.borrow_mut().as_mut() {
                // Decided when the call ends: one rolled back overflowed nothing.
                Some(journal) => journal.full = true,
                None => self.overflow_now(),
            }
            return;
        }
        if changes.len() >= SCANNED {
            let mut index = self.index.borrow_mut();
            let index = index.get_or_insert_with(|| index_of(&changes));
            index.insert((entity, id), changes.len());
        }
        changes.push(PendingChange {
            entity,
            id,
            conversation_id,
            kind,
        });
    }

    pub(super) fn add(&self, change: PendingChange) {
        self.note(
            change.entity,
            change.id,
            change.conversation_id,
            change.kind,
        );
    }

    pub(super) fn conversation(&self, id: ConversationId, kind: ChangeKind) {
        self.add(conversation_change(id, kind));
    }

    pub(super) fn message(&self, id: MessageId, conversation: ConversationId, kind: ChangeKind) {
        self.note(
            ChangeEntity::Message,
            *id.as_uuid(),
            Some(conversation),
            kind,
        );
    }

    pub(super) fn nodes(&self, nodes: &[Node]) {
        for node in nodes {
            self.saw(node.id, node.conversation_id);
        }
    }

    /// Notes that message `id` is in `conversation`.
    pub(super) fn saw(&self, id: MessageId, conversation: ConversationId) {
        self.conversation_of
            .borrow_mut()
            .get_or_insert_with(HashMap::new)
            .insert(id, conversation);
    }

    /// The conversation of message `id`, if this transaction saw it.
    pub(super) fn seen_conversation_of(&self, id: MessageId) -> Option<ConversationId> {
        let known = self.conversation_of.borrow();
        known.as_ref().and_then(|known| known.get(&id).copied())
    }

    /// The conversation of message `id`, if this transaction wrote it.
    pub(super) fn recorded_conversation_of(&self, id: MessageId) -> Option<ConversationId> {
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

/// Where each change is, by its record.
fn index_of(changes: &[PendingChange]) -> HashMap<(ChangeEntity, Uuid), usize> {
    changes
        .iter()
        .enumerate()
        .map(|(at, c)| ((c.entity, c.id), at))
        .collect()
}

pub(super) fn conversation_change(id: ConversationId, kind: ChangeKind) -> PendingChange {
    PendingChange {
        entity: ChangeEntity::Conversation,
        id: *id.as_uuid(),
        conversation_id: Some(id),
        kind,
    }
}

pub(super) fn file_change(id: FileId, kind: ChangeKind) -> PendingChange {
    PendingChange {
        entity: ChangeEntity::File,
        id: *id.as_uuid(),
        conversation_id: None,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(recorder: Recorder) -> Vec<(Uuid, ChangeKind)> {
        match recorder.batch() {
            ChangeBatch::Changes(changes) => changes.iter().map(|c| (c.id, c.kind)).collect(),
            ChangeBatch::Resync => panic!("no overflow here"),
        }
    }

    /// A rolled-back call's new changes go, and its merges into earlier
    /// ones are undone, below and past the indexed size alike; a released
    /// call's stay.
    #[test]
    fn a_rolled_back_savepoint_restores_the_changes_as_they_were() {
        for earlier in [1, SCANNED + 8] {
            let recorder = Recorder::new();
            let ids: Vec<ConversationId> = (0..earlier).map(|_| ConversationId::new()).collect();
            for id in &ids {
                recorder.conversation(*id, ChangeKind::Changed);
            }
            recorder.step(Savepoint::Begin);
            recorder.conversation(ids[0], ChangeKind::Deleted);
            for _ in 0..SCANNED {
                recorder.conversation(ConversationId::new(), ChangeKind::Created);
            }
            recorder.step(Savepoint::RollBack);

            // Noted again after the roll back: merged with the earlier
            // change, found through the rebuilt index past `SCANNED`.
            recorder.conversation(ids[earlier - 1], ChangeKind::Archived);
            recorder.step(Savepoint::Begin);
            let kept = ConversationId::new();
            recorder.conversation(kept, ChangeKind::Created);
            recorder.step(Savepoint::Release);
            recorder.step(Savepoint::RollBack); // none open: nothing undone

            let mut expected: Vec<_> = ids
                .iter()
                .map(|id| (*id.as_uuid(), ChangeKind::Changed))
                .collect();
            expected[earlier - 1].1 = ChangeKind::Archived;
            expected.push((*kept.as_uuid(), ChangeKind::Created));
            assert_eq!(kinds(recorder), expected, "{earlier} earlier changes");
        }
    }

    /// A call that filled the transaction's list makes it a resync only
    /// when the call is kept; rolled back, the changes before it stay.
    #[test]
    fn a_call_that_fills_the_list_overflows_it_only_when_kept() {
        for kept in [false, true] {
            let recorder = Recorder::new();
            let before = ConversationId::new();
            recorder.conversation(before, ChangeKind::Created);
            recorder.step(Savepoint::Begin);
            for _ in 0..MAX_CHANGES_PER_TRANSACTION {
                recorder.conversation(ConversationId::new(), ChangeKind::Created);
            }
            recorder.conversation(before, ChangeKind::Deleted);
            recorder.step(if kept {
                Savepoint::Release
            } else {
                Savepoint::RollBack
            });
            let after = ConversationId::new();
            recorder.conversation(after, ChangeKind::Created);
            match recorder.batch() {
                ChangeBatch::Resync => assert!(kept),
                ChangeBatch::Changes(changes) => {
                    assert!(!kept);
                    let got: Vec<_> = changes.iter().map(|c| (c.id, c.kind)).collect();
                    let want = [before, after].map(|c| (*c.as_uuid(), ChangeKind::Created));
                    assert_eq!(got, want);
                }
            }
        }
    }
}
