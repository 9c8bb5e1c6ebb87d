//! A store's change feed hub: numbers committed changes in commit order,
//! keeps the latest for [`changes_since`](crate::Store::changes_since), and
//! hands each to every subscriber's queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use super::subscription::{Slot, Slots, Subscription};
use crate::backend::feed::{ChangeSink, Listening, LogRow};
use crate::error::Result;
use crate::limits::KEPT_EVENTS;
use crate::model::{Change, ChangeBatch, ChangeEntity, ChangeKind, PendingChange};

/// The log cursor of a hub whose listener has not started.
const NOT_LISTENING: u64 = u64::MAX;

pub(crate) struct Hub {
    state: Mutex<State>,
    /// Live subscriptions: writers record and deliver only while there are.
    subscribers: AtomicUsize,
    /// Held while a subscriber is added or removed.
    membership: Mutex<()>,
    /// The last change log row delivered or written by this store;
    /// [`NOT_LISTENING`] while no listener reads the log (no row is then
    /// read or delivered, however old).
    log_cursor: AtomicU64,
    /// This store's id in the change log.
    pub(crate) instance: String,
}

pub(crate) struct State {
    /// The `seq` of the next event.
    next_seq: u64,
    /// The latest events, oldest first.
    kept: VecDeque<Change>,
    /// `changes_since(s)` is answered only for `s >= horizon`: changes
    /// in place of the skipped `seq` `horizon` may have gone unreported (no
    /// subscriber was recording, or a resync).
    horizon: u64,
    slots: Slots,
    listener: Option<Box<dyn Listening>>,
    closed: bool,
}

impl Hub {
    pub(crate) fn new() -> Hub {
        Hub {
            state: Mutex::new(State {
                next_seq: 1,
                kept: VecDeque::new(),
                horizon: 0,
                slots: Slots::default(),
                listener: None,
                closed: false,
            }),
            subscribers: AtomicUsize::new(0),
            membership: Mutex::new(()),
            log_cursor: AtomicU64::new(NOT_LISTENING),
            instance: Uuid::now_v7().simple().to_string(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Delivery never panics while holding it; a poisoned state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any subscription is live.
    pub(crate) fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::SeqCst) > 0
    }

    /// Adds a subscriber with a queue of `capacity`; `start` runs for the
    /// first one, before it counts (it starts the backend's listener).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        capacity: usize,
        start: impl FnOnce(&Arc<Hub>) -> Result<Option<Box<dyn Listening>>>,
    ) -> Result<Subscription> {
        // One subscribe or unsubscribe at a time: the first subscriber's
        // listener runs before any writer sees a subscriber.
        let _membership = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = Arc::new(Slot::new(capacity));
        let listener = if self.has_subscribers() {
            None
        } else {
            start(self)?
        };
        let mut state = self.lock();
        state.make_room_to_keep();
        if listener.is_some() {
            state.listener = listener;
        }
        state.slots.add(&slot);
        self.subscribers.store(state.slots.len(), Ordering::SeqCst);
        let started_after = state.next_seq - 1;
        drop(state);
        Ok(Subscription {
            slot,
            hub: Arc::downgrade(self),
            started_after,
        })
    }

    /// Removes a dropped subscriber; the last one stops the listener.
    pub(super) fn unsubscribe(&self, slot: &Arc<Slot>) {
        let _membership = self
            .membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut state = self.lock();
        let left = state.slots.remove(slot);
        self.subscribers.store(left, Ordering::SeqCst);
        let listener = if left == 0 {
            // Changes from now on are not recorded.
            state.skip_a_seq();
            self.log_cursor.store(NOT_LISTENING, Ordering::SeqCst);
            state.listener.take()
        } else {
            None
        };
        drop(state);
        // Joins the listener's thread, which may be waiting for this lock.
        drop(listener);
    }

    /// The store is gone: subscribers read what is queued, then `None`.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.slots.each(Slot::close);
        let listener = state.listener.take();
        drop(state);
        drop(listener);
    }

    /// Every change after `seq`, if they are all still kept.
    pub(crate) fn changes_since(&self, seq: u64) -> Option<Vec<Change>> {
        let state = self.lock();
        let latest = state.next_seq - 1;
        let oldest_kept = state.kept.front().map_or(state.next_seq, |c| c.seq);
        if seq < state.horizon || seq > latest || seq.saturating_add(1) < oldest_kept {
            return None;
        }
        Some(state.kept.iter().filter(|c| c.seq > seq).cloned().collect())
    }

    pub(crate) fn log_cursor(&self) -> u64 {
        self.log_cursor.load(Ordering::SeqCst)
    }
}

impl State {
    /// Gives the ring of kept changes room for [`KEPT_EVENTS`], once: a
    /// subscribed store fills it, and neither growing it (a copy) nor the
    /// first touch of its pages (a page fault each, fresh memory from the
    /// system) belongs on the write path. Every slot is written here, so the
    /// memory is the process's before the first write needs it.
    fn make_room_to_keep(&mut self) {
        if self.kept.capacity() >= KEPT_EVENTS {
            return;
        }
        let mut ring = VecDeque::with_capacity(KEPT_EVENTS);
        let blank = Change {
            seq: 0,
            entity: ChangeEntity::Message,
            id: Uuid::nil(),
            conversation_id: None,
            kind: ChangeKind::Changed,
        };
        ring.resize(KEPT_EVENTS, blank);
        ring.clear();
        ring.extend(self.kept.drain(..));
        self.kept = ring;
    }

    /// Numbers and delivers one transaction's changes.
    pub(crate) fn deliver(&mut self, batch: ChangeBatch) {
        match batch {
            ChangeBatch::Changes(mut pending) => self.deliver_changes(&mut pending),
            ChangeBatch::Resync => {
                if self.closed {
                    return;
                }
                self.skip_a_seq();
                self.slots.each(Slot::push_resync);
            }
        }
    }

    /// Numbers and delivers one transaction's changes, taking them out of
    /// `pending` (whose room the caller may use again).
    pub(crate) fn deliver_changes(&mut self, pending: &mut Vec<PendingChange>) {
        if self.closed {
            return;
        }
        let count = pending.len();
        if count <= KEPT_EVENTS {
            for pending in pending.drain(..) {
                let change = self.number(pending);
                self.keep(change);
            }
            // The newest kept are this batch: handed out from there.
            let batch = self.kept.range(self.kept.len() - count..);
            self.slots.each(|slot| slot.push_changes(batch.clone()));
        } else {
            let changes: Vec<Change> = pending.drain(..).map(|p| self.number(p)).collect();
            self.slots.each(|slot| slot.push_changes(changes.iter()));
            changes.into_iter().for_each(|change| self.keep(change));
        }
    }

    /// Gives `pending` the next `seq`.
    fn number(&mut self, pending: PendingChange) -> Change {
        let change = pending.numbered(self.next_seq);
        self.next_seq += 1;
        change
    }

    /// Keeps `change` for `changes_since`, forgetting the oldest kept.
    fn keep(&mut self, change: Change) {
        if self.kept.len() == KEPT_EVENTS {
            self.kept.pop_front();
        }
        self.kept.push_back(change);
    }

    /// Marks changes that went unnumbered (no subscriber recorded them, or
    /// a resync): one `seq` is skipped for them, and `changes_since` answers
    /// only from the one before the next event on.
    fn skip_a_seq(&mut self) {
        self.next_seq += 1;
        self.horizon = self.next_seq - 1;
    }

    /// Delivers the change log rows of other stores after the hub's cursor
    /// (a gap before them means rows were trimmed unread: a resync).
    pub(crate) fn deliver_log(&mut self, hub: &Hub, rows: Vec<LogRow>) {
        for row in rows {
            let cursor = hub.log_cursor();
            if row.seq <= cursor {
                continue;
            }
            if cursor > 0 && row.seq > cursor + 1 {
                self.deliver(ChangeBatch::Resync);
            }
            hub.log_cursor.store(row.seq, Ordering::SeqCst);
            if row.instance != hub.instance {
                self.deliver(row.batch);
            }
        }
    }

    /// Moves the log cursor past a row this store wrote itself.
    pub(crate) fn wrote_log(&mut self, hub: &Hub, seq: u64) {
        hub.log_cursor.fetch_max(seq, Ordering::SeqCst);
    }
}

/// The hub as the backend's listener sees it.
impl ChangeSink for Hub {
    fn deliver(&self, batch: ChangeBatch) {
        self.lock().deliver(batch);
    }

    fn deliver_log(&self, rows: Vec<LogRow>) {
        self.lock().deliver_log(self, rows);
    }

    fn log_cursor(&self) -> u64 {
        Hub::log_cursor(self)
    }

    fn log_starts_at(&self, seq: u64) {
        self.log_cursor.store(seq, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: u64) -> Change {
        PendingChange {
            entity: ChangeEntity::File,
            id: Uuid::now_v7(),
            conversation_id: None,
            kind: ChangeKind::Created,
        }
        .numbered(seq)
    }

    /// The ring gets its whole room once, keeping what it held, so the
    /// write path never grows it; a second call leaves it alone.
    #[test]
    fn the_kept_ring_gets_its_room_once_and_keeps_its_changes() {
        let hub = Hub::new();
        let mut state = hub.lock();
        let held: Vec<Change> = (1..=3).map(change).collect();
        state.kept.extend(held.iter().cloned());
        assert!(state.kept.capacity() < KEPT_EVENTS);
        state.make_room_to_keep();
        assert!(state.kept.capacity() >= KEPT_EVENTS);
        assert!(state.kept.iter().eq(held.iter()));
        let ring = state.kept.as_slices().0.as_ptr();
        state.make_room_to_keep();
        assert_eq!(state.kept.as_slices().0.as_ptr(), ring);
        for seq in 4..=(KEPT_EVENTS as u64 + 10) {
            state.keep(change(seq));
        }
        assert_eq!(state.kept.len(), KEPT_EVENTS);
        assert!(state.kept.capacity() < 2 * KEPT_EVENTS);
        assert_eq!(state.kept.front().map(|c| c.seq), Some(11));
    }
}
