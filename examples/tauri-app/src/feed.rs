//! The store's change feed, forwarded to every window as `store-change`.

use std::fmt::Display;

use silmari_store::{FeedEvent, Store};
use tauri::{AppHandle, Emitter};

/// The event every window listens to. Its payload is the feed's
/// [`FeedEvent`](silmari_store::FeedEvent) as serde writes it:
/// `{"type":"change","seq":…,"entity":"message","id":…,"conversation_id":…,"kind":"changed"}`,
/// `{"type":"lagged","missed_from":…}` or `{"type":"resync"}`.
pub const EVENT: &str = "store-change";

/// Subscribes to `store`'s feed and starts the thread that emits each event
/// to the web views ([`pump`]). It ends when the store is closed (`recv`
/// gives `None`) or the app is gone.
pub fn forward(app: AppHandle, store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let subscription = store.subscribe()?;
    std::thread::Builder::new()
        .name("store-feed".into())
        .spawn(move || pump(|| subscription.recv(), |event| app.emit(EVENT, event)))?;
    Ok(())
}

/// Sends each event `next` gives through `emit` until `next` gives `None`.
/// An event that cannot be sent is followed by a `resync`, so the windows
/// reload instead of falling out of step, and forwarding goes on; it stops
/// when the `resync` cannot be sent either (the windows are gone).
fn pump<E: Display>(
    mut next: impl FnMut() -> Option<FeedEvent>,
    mut emit: impl FnMut(&FeedEvent) -> Result<(), E>,
) {
    while let Some(event) = next() {
        if let Err(e) = emit(&event) {
            eprintln!("silmari-tauri-app: cannot forward a store change ({e}); resync");
            if let Err(e) = emit(&FeedEvent::Resync) {
                eprintln!("silmari-tauri-app: the windows are gone ({e})");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use silmari_store::prelude::*;

    /// Three real events of a store: a conversation created, a message
    /// appended, the conversation deleted.
    fn events() -> Vec<FeedEvent> {
        let store = Store::open("memory://").unwrap();
        let subscription = store.subscribe().unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("fed"))
            .unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "hello"))
            .unwrap();
        store.conversations().delete(c.id).unwrap();
        let mut events = Vec::new();
        while events.len() < 3 {
            let timeout = std::time::Duration::from_secs(5);
            events.push(subscription.recv_timeout(timeout).expect("an event"));
        }
        assert!(events.iter().all(|e| matches!(e, FeedEvent::Change(_))));
        events
    }

    /// Runs `pump` over `events` with an `emit` that refuses the calls
    /// whose numbers (from 0) are in `refused`; what it sent, in order.
    fn pumped(events: &[FeedEvent], refused: &[usize]) -> Vec<FeedEvent> {
        let mut source = events.iter().cloned();
        let (mut calls, mut sent) = (0, Vec::new());
        pump(
            || source.next(),
            |event| {
                calls += 1;
                if refused.contains(&(calls - 1)) {
                    return Err("refused");
                }
                sent.push(event.clone());
                Ok(())
            },
        );
        sent
    }

    #[test]
    fn every_event_is_sent_in_order() {
        let events = events();
        assert_eq!(pumped(&events, &[]), events);
    }

    #[test]
    fn a_refused_event_is_followed_by_a_resync_and_forwarding_goes_on() {
        let events = events();
        // Call 1 (the second event) is refused; call 2 is its resync.
        let sent = pumped(&events, &[1]);
        assert_eq!(
            sent,
            [events[0].clone(), FeedEvent::Resync, events[2].clone()]
        );
    }

    #[test]
    fn forwarding_stops_when_the_resync_is_refused_too() {
        let events = events();
        let sent = pumped(&events, &[1, 2]);
        assert_eq!(sent, [events[0].clone()]);
    }
}
