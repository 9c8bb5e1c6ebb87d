//! W2's append with the change feed in use, beside W2 with none, in one
//! group so the ratios come from one run (each pair twice, alternating):
//!
//! * `none`: nobody subscribed (what every write pays for the feed: on an
//!   SQLite file, one look at `change_listeners` in the transaction);
//! * `one subscriber`: this store subscribed, its events drained by a thread;
//! * `another store listening` (SQLite file): a second store on the file
//!   subscribed, so every transaction also writes its `change_log` row.
//!   On PostgreSQL every write notifies anyway (`none` includes it).
//!
//! On memory and an SQLite file each times its appends 2,000 at a
//! time, each 2,000 on a fresh store made and subscribed to outside the
//! timing; on PostgreSQL each runs on a store of its own on the bench's
//! database. Before the group and after it, on memory and SQLite,
//! `paired` prints the ratio from 300 alternating rounds of 200 appends to
//! two fresh stores, one subscribed: a noisy machine's drift falls on both
//! sides alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use silmari_store::prelude::*;

use super::data::{attachment, content};
use super::{Backends, group, quick, sqlite_file};

/// A thread reading every event of a subscription to `store`'s feed, in
/// its loop by the time `new` returns (its start is not timed); it
/// unsubscribes when dropped.
struct Drain {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drain {
    fn new(store: &Store) -> Drain {
        let feed = store.subscribe().expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let (started, running) = std::sync::mpsc::channel();
        let thread = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                started.send(()).expect("bench thread");
                while !stop.load(Ordering::Relaxed) {
                    feed.recv_timeout(Duration::from_millis(20));
                }
            }
        });
        running.recv().expect("drain thread started");
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

/// A fresh store to append to (its directory and file, if it has one),
/// and the conversation appended to.
type Fresh = (Option<(tempfile::TempDir, PathBuf)>, Store, ConversationId);

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
    // Every 2,000 appends on a fresh store (memory, SQLite), or on a store
    // of its own (PostgreSQL): millions of appends would grow what they
    // append to, to a size that depends on how many iterations criterion
    // chose, and the pairs compared must be alike.
    #[allow(unused_mut)]
    let mut backends: Vec<&str> = vec!["memory", "sqlite"];
    #[cfg(feature = "postgres")]
    if b.postgres.is_some() {
        backends.push("postgres");
    }
    let fresh = |name: &str| -> Fresh {
        let _ = &b;
        let (dir, store) = match name {
            "memory" => (None, Store::open("memory://").expect("memory")),
            "sqlite" => {
                let (dir, path, store) = sqlite_file();
                (Some((dir, path)), store)
            }
            #[cfg(feature = "postgres")]
            // A store of its own on the bench's database: a subscriber
            // on one does not count for the other.
            _ => {
                let url = &b.postgres.as_ref().expect("postgres").2.url;
                (None, Store::open(url).expect("postgres"))
            }
            #[cfg(not(feature = "postgres"))]
            _ => unreachable!("{name}"),
        };
        let conversation = store
            .conversations()
            .create(NewConversation::titled("W2 feed"))
            .expect("create")
            .id;
        (dir, store, conversation)
    };
    // Not on PostgreSQL: a store listening there hears every store's
    // writes, the other side's too. Before the group (a fresh process) and
    // after it (a heap churned by millions of appends, as a long-running
    // app's is).
    let paired_backends: Vec<&str> = backends
        .iter()
        .copied()
        .filter(|&name| name != "postgres")
        .collect();
    if paired_wanted() {
        for &name in &paired_backends {
            paired(name, "in a fresh process", &fresh, &append);
        }
    }
    for &name in &backends {
        // Twice each, alternating: the machine's load drifts, and the
        // second pair shows how much that moves them.
        for pass in ["", ", again"] {
            for listener in [Listener::None, Listener::Subscriber] {
                let label = format!("{name}, {}{pass}", listener.label());
                if name == "postgres" {
                    // One store each (a new one would prepare its
                    // statements again); its conversation grows little.
                    let (_, store, conversation) = fresh(name);
                    let drain =
                        matches!(listener, Listener::Subscriber).then(|| Drain::new(&store));
                    g.bench_function(label, |bench| bench.iter(|| append(&store, conversation)));
                    drop(drain);
                } else {
                    g.bench_function(label, |bench| {
                        bench.iter_custom(|iters| {
                            on_fresh_stores(iters, name, listener, &fresh, &append)
                        })
                    });
                }
            }
        }
        if name == "sqlite" {
            g.bench_function("sqlite, another store listening", |bench| {
                bench.iter_custom(|iters| {
                    on_fresh_stores(iters, name, Listener::AnotherStore, &fresh, &append)
                })
            });
        }
    }
    g.finish();
    if paired_wanted() {
        for &name in &paired_backends {
            paired(name, "after the group", &fresh, &append);
        }
    }
}

/// Whether the paired rounds are asked for: with no filter on the command
/// line, or one naming the change feed (criterion does not see them, so
/// it cannot filter them).
fn paired_wanted() -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty() || filters.iter().any(|f| f.contains("change feed"))
}

/// Appends timed on each store before it gets another.
const APPENDS_PER_STORE: u64 = 2_000;

/// Who listens to the store appended to.
#[derive(Clone, Copy)]
enum Listener {
    None,
    /// The store itself, its events drained by a thread.
    Subscriber,
    /// A second store on the same SQLite file.
    AnotherStore,
}

impl Listener {
    fn label(self) -> &'static str {
        match self {
            Listener::None => "none",
            Listener::Subscriber => "one subscriber",
            Listener::AnotherStore => "another store listening",
        }
    }
}

/// The time of `iters` appends, [`APPENDS_PER_STORE`] to each fresh store
/// (made, subscribed to and dropped outside the timing).
fn on_fresh_stores(
    iters: u64,
    name: &str,
    listener: Listener,
    fresh: &dyn Fn(&str) -> Fresh,
    append: &dyn Fn(&Store, ConversationId) -> Message,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let appends = left.min(APPENDS_PER_STORE);
        let (file, store, conversation) = fresh(name);
        let other = match (listener, &file) {
            (Listener::AnotherStore, Some((_, path))) => Some(
                Store::open(&format!("sqlite:///{}", path.display())).expect("open the file again"),
            ),
            _ => None,
        };
        let drain = match listener {
            Listener::None => None,
            Listener::Subscriber => Some(Drain::new(&store)),
            Listener::AnotherStore => Some(Drain::new(other.as_ref().expect("an SQLite file"))),
        };
        let started = Instant::now();
        for _ in 0..appends {
            append(&store, conversation);
        }
        total += started.elapsed();
        drop(drain);
        left -= appends;
    }
    total
}

/// The cost of a subscriber as a ratio that a drifting machine moves
/// less: two fresh stores, one subscribed, appended to in alternating
/// rounds (alternating which goes first); prints the median and quartiles
/// of the per-round ratios (subscribed / none).
fn paired(
    name: &str,
    when: &str,
    fresh: &dyn Fn(&str) -> Fresh,
    append: &dyn Fn(&Store, ConversationId) -> Message,
) {
    let (rounds, per_round) = if quick() { (20, 20) } else { (300, 200) };
    let (_a_dir, none, a) = fresh(name);
    let (_b_dir, subscribed, b) = fresh(name);
    let _drain = Drain::new(&subscribed);
    let time = |store: &Store, conversation| {
        let t = Instant::now();
        for _ in 0..per_round {
            append(store, conversation);
        }
        t.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..rounds + 10)
        .map(|round| {
            if round % 2 == 0 {
                let base = time(&none, a);
                time(&subscribed, b) / base
            } else {
                let with = time(&subscribed, b);
                with / time(&none, a)
            }
        })
        .skip(10)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    println!(
        "W2 append message, change feed/{name}: one subscriber / none, {rounds} paired rounds of \
         {per_round} {when}: median {:.3} (quartiles {:.3}–{:.3})",
        at(0.5),
        at(0.25),
        at(0.75)
    );
}
