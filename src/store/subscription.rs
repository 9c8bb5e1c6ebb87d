//! One subscriber's bounded queue of feed events, and the public
//! [`Subscription`] that reads it.

use std::collections::VecDeque;
use std::fmt;
use std::hint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::hub::Hub;
use crate::model::{Change, FeedEvent};

/// Events a subscriber holds unread before it is [lagged](FeedEvent::Lagged),
/// unless it asked for another bound.
pub const DEFAULT_CAPACITY: usize = 1024;

/// How long a receiver that found its queue empty watches for the next
/// event before it parks. A busy writer's next transaction usually comes
/// within it, and then the writer has no receiver to wake (a wake is a
/// system call on the writer's path, about as long as an in-memory write).
const WATCH_BEFORE_PARKING: Duration = Duration::from_micros(50);

/// A subscriber's queue, shared by the hub (which pushes) and the
/// [`Subscription`] (which pops).
pub(super) struct Slot {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
    /// Counts pushes (and the close), so a receiver can watch for one
    /// without taking the queue's lock.
    pushes: OwnLine,
}

/// A counter on a cache line of its own: a receiver watching it does not
/// slow the writer's use of the lock and counts beside it.
#[repr(align(128))]
struct OwnLine(AtomicU64);

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
}

impl Slot {
    pub(super) fn new(capacity: usize) -> Slot {
        Slot {
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                missed_from: None,
                resync_missed: false,
                closed: false,
                parked: 0,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            pushes: OwnLine(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it; a poisoned queue is still whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
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
            } else if queue.missed_from.is_some() || queue.events.len() >= self.capacity {
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
        self.pushes.0.fetch_add(1, Ordering::Release);
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
        if queue.missed_from.is_some() || queue.events.len() >= self.capacity {
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

    fn pop(queue: &mut Queue) -> Option<FeedEvent> {
        if let Some(event) = queue.events.pop_front() {
            return Some(event);
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

    fn wait(&self, deadline: Option<Instant>) -> Option<FeedEvent> {
        let mut queue = self.lock();
        let mut watched = false;
        loop {
            if let Some(event) = Self::pop(&mut queue) {
                return Some(event);
            }
            if queue.closed {
                return None;
            }
            if !watched {
                watched = true;
                let seen = self.pushes.0.load(Ordering::Acquire);
                drop(queue);
                self.watch(seen, deadline);
                queue = self.lock();
                continue;
            }
            let left = match deadline {
                None => None,
                Some(deadline) => Some(deadline.checked_duration_since(Instant::now())?),
            };
            queue.parked += 1;
            queue = match left {
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

    /// Watches for a push after `seen` for a short while (spinning, then
    /// yielding the processor), without the queue's lock.
    fn watch(&self, seen: u64, deadline: Option<Instant>) {
        let start = Instant::now();
        let until = match deadline {
            Some(deadline) => deadline.min(start + WATCH_BEFORE_PARKING),
            None => start + WATCH_BEFORE_PARKING,
        };
        let mut round = 0u32;
        while self.pushes.0.load(Ordering::Acquire) == seen {
            if round < 64 {
                hint::spin_loop();
            } else if Instant::now() >= until {
                return;
            } else {
                thread::yield_now();
            }
            round += 1;
        }
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
        f.debug_struct("Subscription")
            .field("queued", &queue.events.len())
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
    /// A receiver that finds nothing queued watches for up to 50 µs
    /// (spinning briefly, then yielding the processor) before it sleeps:
    /// a busy writer's next event usually comes within it, and then the
    /// writer need not wake anyone. `recv_timeout` does the same.
    pub fn recv(&self) -> Option<FeedEvent> {
        self.slot.wait(None)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<FeedEvent> {
        Slot::pop(&mut self.slot.lock())
    }

    /// The next event, waiting at most `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<FeedEvent> {
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
