//! W2's append with the change feed in use, beside W2 with none, in one
//! group so the ratios come from one run (each pair twice, alternating):
//!
//! * `none`: nobody subscribed (what every write pays for the feed: on an
//!   SQLite file, one look at `change_listeners` in the transaction);
//! * `one subscriber`: this store subscribed, its events drained by a thread;
//! * `another store listening` (SQLite file): a second store on the file
//!   subscribed, so every transaction also writes its `change_log` row.
//!   On PostgreSQL every write notifies anyway (`none` includes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use criterion::Criterion;
use silmari_store::prelude::*;

use super::data::{attachment, content};
use super::{Backends, group, sqlite_file};

/// A thread reading every event of a subscription to `store`'s feed; it
/// unsubscribes when dropped.
struct Drain {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drain {
    fn new(store: &Store) -> Drain {
        let feed = store.subscribe().expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                while !stop.load(Ordering::Relaxed) {
                    feed.recv_timeout(Duration::from_millis(20));
                }
            }
        });
        Drain {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("drain thread");
        }
    }
}

pub(super) fn w2_with_feed(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W2 append message, change feed");
    let text = content();
    let attachments = vec![attachment()];
    let append = |store: &Store, conversation: ConversationId| {
        store
            .conversations()
            .append_message(
                conversation,
                NewMessage::new(Role::User, text.clone()).with_attachments(attachments.clone()),
            )
            .expect("append")
    };
    let (_dir, path, sqlite) = sqlite_file();
    #[allow(unused_mut)]
    let mut stores: Vec<(&str, Store)> = vec![
        ("memory", Store::open("memory://").expect("memory")),
        ("sqlite", sqlite),
    ];
    #[cfg(feature = "postgres")]
    if let Some((store, _, _)) = &b.postgres {
        stores.push(("postgres", store.clone()));
    }
    let _ = &b;
    for (name, store) in &stores {
        let conversation = store
            .conversations()
            .create(NewConversation::titled("W2 feed"))
            .expect("create")
            .id;
        // Twice each, alternating: the conversation grows and the machine's
        // load drifts, and the second pair shows how much that moves them.
        for pass in ["", ", again"] {
            g.bench_function(format!("{name}, none{pass}"), |bench| {
                bench.iter(|| append(store, conversation))
            });
            let drain = Drain::new(store);
            g.bench_function(format!("{name}, one subscriber{pass}"), |bench| {
                bench.iter(|| append(store, conversation))
            });
            drop(drain);
        }
        if *name == "sqlite" {
            let other = Store::open(&format!("sqlite:///{}", path.display())).expect("open");
            let drain = Drain::new(&other);
            g.bench_function("sqlite, another store listening", |bench| {
                bench.iter(|| append(store, conversation))
            });
            drop(drain);
        }
    }
    g.finish();
}
