//! The store's change feed, forwarded to every window as `store-change`.

use silmari_store::{FeedEvent, Store};
use tauri::{AppHandle, Emitter};

/// The event every window listens to. Its payload is the feed's
/// [`FeedEvent`](silmari_store::FeedEvent) as serde writes it:
/// `{"type":"change","seq":…,"entity":"message","id":…,"conversation_id":…,"kind":"changed"}`,
/// `{"type":"lagged","missed_from":…}` or `{"type":"resync"}`.
pub const EVENT: &str = "store-change";

/// Subscribes to `store`'s feed and starts the thread that emits each event
/// to the web views. An event that cannot be sent is followed by a
/// `resync`, so the windows reload instead of falling out of step. It ends
/// when the store is closed (`recv` gives `None`) or the app is gone.
pub fn forward(app: AppHandle, store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let subscription = store.subscribe()?;
    std::thread::Builder::new()
        .name("store-feed".into())
        .spawn(move || {
            while let Some(event) = subscription.recv() {
                if let Err(e) = app.emit(EVENT, &event) {
                    // The windows missed a change: they reload everything,
                    // as after the feed's own `Resync`, and forwarding goes on.
                    eprintln!("silmari-tauri-app: cannot forward a store change ({e}); resync");
                    if let Err(e) = app.emit(EVENT, &FeedEvent::Resync) {
                        eprintln!("silmari-tauri-app: the windows are gone ({e})");
                        break;
                    }
                }
            }
        })?;
    Ok(())
}
