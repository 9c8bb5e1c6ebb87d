//! One subscriber's bounded queue of feed events, and the public
//! [`Subscription`] that reads it.

use std::collections::VecDeque;
use std::fmt;
use std::hint;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::hub::Hub;
use crate::model::{Change, FeedEvent};

/// Events a subscriber holds unread before it is [lagged](FeedEvent::Lagged),
/// unless it asked for another bound: about eight times what a receiver
/// takes after a nap (see [`Subscription::recv`]) behind the fastest writer
/// (an in-memory store appending without pause, about 2,000 events a
/// millisecond), so that such a receiver keeps its long nap.
pub const DEFAULT_CAPACITY: usize = 16_384;

/// How long a receiver that found its queue empty naps before it looks
/// again, and parks if nothing came. A busy writer's next transactions
/// come within it and are then taken together: the writer has no receiver
/// to wake (a wake is a system call on the writer's path, about as long as
/// an in-memory write), and the two cores trade the queue's cache lines
/// once per nap rather than once per event. Long enough that the reading
/// thread wakes rarely: each wake of a second core slows the writer's,
/// whatever the reader does (measured in BENCHMARKS.md, "Change feed": an
/// in-memory append with a subscriber 1.06–1.13x one without, against
/// 1.09–1.23x with a 200 µs nap). An event that comes
/// during a nap waits at most this long, well inside a screen's frame;
/// one that comes once the receiver parked wakes it at once.
const NAP_BEFORE_PARKING: Duration = Duration::from_millis(1);

/// The nap of a receiver whose last take filled more than a quarter of
/// its capacity: a subscriber with little room reads more often rather
/// than lag.
const SHORT_NAP: Duration = Duration::from_micros(200);

/// A subscriber's queue, shared by the hub (which pushes) and the
/// [`Subscription`] (which pops).
pub(super) struct Slot {
    queue: OwnLines<Mutex<Queue>>,
    /// Events a receiver took from `queue` in one go, oldest first; only
    /// receivers lock it (before `queue`, when it is empty).
    taken: OwnLines<Mutex<VecDeque<FeedEvent>>>,
    /// How many events `taken` holds: unread, so they count against
    /// `capacity` as much as those still in `queue`.
    taken_len: OwnLines<AtomicUsize>,
    ready: Condvar,
    capacity: usize,
    /// Counts pushes (and the close), so a receiver can watch for one
    /// without taking the queue's lock.
    pushes: OwnLines<AtomicU64>,
}

/// A value on cache lines of its own, so that what one core writes there
/// does not take lines another core is using from it: the receiver's
/// pops, the writer's pushes, and the counters each of them watches.
#[repr(align(128))]
struct OwnLines<T>(T);

impl<T> std::ops::Deref for OwnLines<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

struct Queue {
    events: VecDeque<FeedEvent>,
    /// Set when the queue was full: the first `seq` dropped. Everything
    /// after is dropped too until the subscriber reads the `Lagged` event.
    missed_from: Option<u64>,
    /// A resync dropped while full (or lagged): reported as soon as the
    /// queue is read, instead of `Lagged`; changes after it are dropped.
    resync_missed: bool,
    closed: bool,
    /// Receivers parked on `ready`: only they need a wake-up.
    parked: usize,
    /// How many events the last take moved to `taken`: no more are left
    /// there (only a take, under this lock, adds to it), so the writer
    /// reads the receivers' count only when this bound says the
    /// subscriber may be full.
    taken_at_most: usize,
}

impl Slot {
    pub(super) fn new(capacity: usize) -> Slot {
        Slot {
            queue: OwnLines(Mutex::new(Queue {
                events: VecDeque::new(),
                missed_from: None,
                resync_missed: false,
                closed: false,
                parked: 0,
                taken_at_most: 0,
            })),
            taken: OwnLines(Mutex::new(VecDeque::new())),
            taken_len: OwnLines(AtomicUsize::new(0)),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            pushes: OwnLines(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it; a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_taken(&self) -> MutexGuard<'_, VecDeque<FeedEvent>> {
        self.taken.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the subscriber holds `capacity` events unread.
    fn full(&self, queue: &Queue) -> bool {
        let queued = queue.events.len();
        queued + queue.taken_at_most >= self.capacity
            && queued + self.taken_len.load(Ordering::Acquire) >= self.capacity
    }

    /// Queues one transaction's changes, or notes them missed when the
    /// queue is full or the subscriber has not read its `Lagged` yet; one
    /// wake-up for them all. Never blocks on the subscriber.
    pub(super) fn push_changes<'c>(&self, changes: impl Iterator<Item = &'c Change>) {
        let mut queue = self.lock();
        if queue.closed {
            return;
        }
        let mut queued = false;
        for change in changes {
            if queue.resync_missed {
                // A reload is due, which covers this change too.
            } else if queue.missed_from.is_some() || self.full(&queue) {
                queue.missed_from.get_or_insert(change.seq);
            } else {
                queue.events.push_back(FeedEvent::Change(change.clone()));
                queued = true;
            }
        }
        if queued {
            self.pushed(queue);
        }
    }

    /// Announces a push to receivers watching the queue, and wakes the
    /// parked ones (every one: a subscription may be shared by threads).
    fn pushed(&self, queue: MutexGuard<'_, Queue>) {
        // Only a holder of the queue's lock counts: no locked instruction.
        let pushes = self.pushes.load(Ordering::Relaxed);
        self.pushes.store(pushes + 1, Ordering::Release);
        let parked = queue.parked > 0;
        drop(queue);
        if parked {
            self.ready.notify_all();
        }
    }

    /// Queues a resync; when the queue is full (or lagged), one is noted
    /// instead, reported once what is queued is read, in place of `Lagged`
    /// and of every change after it (a reload covers them).
    pub(super) fn push_resync(&self) {
        let mut queue = self.lock();
        if queue.closed {
            return;
        }
        if queue.missed_from.is_some() || self.full(&queue) {
            queue.resync_missed = true;
            return;
        }
        queue.events.push_back(FeedEvent::Resync);
        self.pushed(queue);
    }

    /// No more events: the store is gone.
    pub(super) fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        self.pushed(queue);
    }

    /// The oldest unread event: from those taken, else everything queued is
    /// taken at once (so the writer and this receiver meet once per batch,
    /// not once per event), else a missed resync or the lag.
    fn pop(&self, taken: &mut VecDeque<FeedEvent>, queue: &mut Queue) -> Option<FeedEvent> {
        if let Some(event) = self.pop_taken(taken) {
            return Some(event);
        }
        if !queue.events.is_empty() {
            std::mem::swap(taken, &mut queue.events);
            let event = taken.pop_front();
            queue.taken_at_most = taken.len();
            self.taken_len.store(taken.len(), Ordering::Release);
            return event;
        }
        if std::mem::take(&mut queue.resync_missed) {
            queue.missed_from = None;
            return Some(FeedEvent::Resync);
        }
        queue
            .missed_from
            .take()
            .map(|missed_from| FeedEvent::Lagged { missed_from })
    }

    /// The oldest event already taken, without the queue's lock.
    fn pop_taken(&self, taken: &mut VecDeque<FeedEvent>) -> Option<FeedEvent> {
        let event = taken.pop_front()?;
        self.taken_len.fetch_sub(1, Ordering::Release);
        Some(event)
    }

    /// The next event if one is waiting.
    fn try_pop(&self) -> Option<FeedEvent> {
        let mut taken = self.lock_taken();
        if let Some(event) = self.pop_taken(&mut taken) {
            return Some(event);
        }
        self.pop(&mut taken, &mut self.lock())
    }

    /// The next event, waiting until `deadline` (or for ever) for one.
    /// Neither lock is held while napping or parked: another receiver of
    /// the subscription (`try_recv` on another thread) never waits for
    /// this one. The locks are taken in one order, `taken` first.
    fn wait(&self, deadline: Option<Instant>) -> Option<FeedEvent> {
        let mut napped = false;
        loop {
            let mut taken = self.lock_taken();
            if let Some(event) = self.pop_taken(&mut taken) {
                return Some(event);
            }
            let mut queue = self.lock();
            if let Some(event) = self.pop(&mut taken, &mut queue) {
                return Some(event);
            }
            // Nothing is taken, and nothing can be while `queue` is held.
            drop(taken);
            if queue.closed {
                return None;
            }
            if !napped {
                napped = true;
                let seen = self.pushes.load(Ordering::Acquire);
                let nap = self.nap_length(&queue);
                drop(queue);
                self.nap(seen, nap, deadline);
                continue;
            }
            let left = match deadline {
                None => None,
                Some(deadline) => Some(deadline.checked_duration_since(Instant::now())?),
            };
            queue.parked += 1;
            let mut queue = match left {
                None => self
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.ready
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            queue.parked -= 1;
        }
    }

    /// How long a receiver naps before it parks: [`SHORT_NAP`] once its
    /// last take filled more than a quarter of the capacity, else
    /// [`NAP_BEFORE_PARKING`].
    fn nap_length(&self, queue: &Queue) -> Duration {
        if queue.taken_at_most > self.capacity / 4 {
            SHORT_NAP
        } else {
            NAP_BEFORE_PARKING
        }
    }

    /// Watches for a push after `seen` for a few spins, then sleeps for
    /// `nap` (never past `deadline`), without the queue's lock.
    fn nap(&self, seen: u64, nap: Duration, deadline: Option<Instant>) {
        for _ in 0..64 {
            if self.pushes.load(Ordering::Acquire) != seen {
                return;
            }
            hint::spin_loop();
        }
        let nap = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()).min(nap),
            None => nap,
        };
        thread::sleep(nap);
    }
}

/// A subscriber to a store's change feed, from
/// [`Store::subscribe`](crate::Store::subscribe): a receiver of
/// [`FeedEvent`]s, in commit order, each once. `Send`, so it can be moved
/// to the thread that forwards events (to a web view, say).
///
/// Events wait in a bounded queue; a subscriber that falls behind gets
/// [`FeedEvent::Lagged`] instead of holding writers back or growing
/// without bound. Dropping the subscription unsubscribes.
pub struct Subscription {
    pub(super) slot: Arc<Slot>,
    pub(super) hub: Weak<Hub>,
    pub(super) started_after: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.slot.lock();
        let queued = queue.events.len() + self.slot.taken_len.load(Ordering::Acquire);
        f.debug_struct("Subscription")
            .field("queued", &queued)
            .field("capacity", &self.slot.capacity)
            .field("closed", &queue.closed)
            .finish()
    }
}

impl Subscription {
    /// The `seq` of the store's last event before this subscription began
    /// (0: none): [`Store::changes_since`](crate::Store::changes_since)
    /// from here covers everything this subscriber should have received.
    pub fn started_after(&self) -> u64 {
        self.started_after
    }

    /// The next event, waiting for one; `None` once the store is closed
    /// (every clone of it dropped) and nothing is left to read.
    ///
    /// A receiver that finds nothing queued naps for 1 ms (200 µs when its
    /// last take filled a quarter of its capacity) and looks again before
    /// it sleeps until woken: a busy writer's next events usually
    /// come within the nap, are taken together, and the writer need not
    /// wake anyone. `recv_timeout` does the same.
    pub fn recv(&self) -> Option<FeedEvent> {
        self.slot.wait(None)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<FeedEvent> {
        self.slot.try_pop()
    }

    /// The next event, waiting at most `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<FeedEvent> {
        // An event already taken is handed out without reading the clock.
        if let Some(event) = self.slot.pop_taken(&mut self.slot.lock_taken()) {
            return Some(event);
        }
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.slot.wait(Some(deadline)),
            None => self.recv(),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.slot.close();
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(&self.slot);
        }
    }
}

/// The slots of a hub's subscribers; a subscription removes its own when
/// dropped.
#[derive(Default)]
pub(super) struct Slots(Vec<Arc<Slot>>);

impl Slots {
    pub(super) fn add(&mut self, slot: &Arc<Slot>) {
        self.0.push(Arc::clone(slot));
    }

    /// Removes `slot`; how many are left.
    pub(super) fn remove(&mut self, slot: &Arc<Slot>) -> usize {
        self.0.retain(|s| !Arc::ptr_eq(s, slot));
        self.0.len()
    }

    /// How many there are.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Every live slot.
    pub(super) fn each(&self, mut f: impl FnMut(&Slot)) {
        for slot in &self.0 {
            f(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver whose takes stay small beside its capacity naps long (its
    /// core wakes rarely); one whose last take filled more than a quarter
    /// of it naps short, so that it reads before it lags.
    #[test]
    fn a_receiver_naps_short_once_its_takes_fill_a_quarter_of_its_room() {
        let slot = Slot::new(16);
        assert_eq!(slot.nap_length(&slot.lock()), NAP_BEFORE_PARKING);
        slot.lock().taken_at_most = 4;
        assert_eq!(slot.nap_length(&slot.lock()), NAP_BEFORE_PARKING);
        slot.lock().taken_at_most = 5;
        assert_eq!(slot.nap_length(&slot.lock()), SHORT_NAP);
        assert!(SHORT_NAP < NAP_BEFORE_PARKING);
    }
}
