//! The change feed: [`Store::subscribe`] and [`Store::changes_since`].
//!
//! Layer 4, on the facade's hub (which numbers and delivers changes) and
//! the backends' listeners (which bring other processes' changes).

use std::sync::Arc;

use crate::backend::Finish;
use crate::backend::feed::{ChangeSink, Transport};
use crate::error::{Error, Result};
use crate::limits::MAX_FEED_CAPACITY;
use crate::model::Change;
use crate::store::{DEFAULT_CAPACITY, Store, Subscription};

impl Store {
    /// Subscribes to this store's change feed: every change committed
    /// after this returns, by this store, by another store on the same
    /// SQLite file (another process: within 250 ms) or on the same
    /// PostgreSQL database (another app instance), arrives once, after its
    /// commit, in commit order. Holds [`DEFAULT_CAPACITY`] events unread
    /// before the subscriber is [lagged](crate::FeedEvent::Lagged).
    ///
    /// ```
    /// use silmari_store::prelude::*;
    /// use silmari_store::{ChangeEntity, ChangeKind, FeedEvent};
    ///
    /// # fn main() -> silmari_store::Result<()> {
    /// let store = Store::open("memory://")?;
    /// let feed = store.subscribe()?;
    /// let chat = store.conversations().create(NewConversation::titled("Draft"))?;
    /// match feed.try_recv() {
    ///     Some(FeedEvent::Change(change)) => {
    ///         assert_eq!(change.entity, ChangeEntity::Conversation);
    ///         assert_eq!(change.kind, ChangeKind::Created);
    ///         assert_eq!(change.id, *chat.id.as_uuid());
    ///     }
    ///     other => panic!("expected the change, got {other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> Result<Subscription> {
        self.subscribe_with_capacity(DEFAULT_CAPACITY)
    }

    /// [`subscribe`](Self::subscribe) with room for `capacity` unread
    /// events (1 to [`MAX_FEED_CAPACITY`]).
    pub fn subscribe_with_capacity(&self, capacity: usize) -> Result<Subscription> {
        if !(1..=MAX_FEED_CAPACITY).contains(&capacity) {
            return Err(Error::invalid(
                "capacity",
                format!("must be between 1 and {MAX_FEED_CAPACITY}"),
            ));
        }
        let backend = self.backend_ref()?;
        let subscription = self.hub().subscribe(capacity, |hub| {
            backend.listen(&hub.instance, Arc::clone(hub) as Arc<dyn ChangeSink>)
        })?;
        if backend.transport() != Transport::Notify {
            // A barrier: a write transaction that began before the count
            // went up (and so records nothing) ends before this returns.
            backend.write(&mut |_| Ok(Finish::Rollback))?;
        }
        Ok(subscription)
    }

    /// Every change after `seq` that this store delivered, oldest first,
    /// for a subscriber that was [lagged](crate::FeedEvent::Lagged);
    /// `None` when they are not all known any more (more than
    /// [`KEPT_EVENTS`](crate::limits::KEPT_EVENTS) ago, before a
    /// [resync](crate::FeedEvent::Resync), from a time with no
    /// subscriber, or a `seq` not delivered yet): reload instead.
    pub fn changes_since(&self, seq: u64) -> Option<Vec<Change>> {
        self.hub().changes_since(seq)
    }
}
