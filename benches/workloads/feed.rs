//! W2's append with the change feed in use, beside W2 with none, in one
//! group so the ratios come from one run (each pair twice, alternating):
//!
//! * `none`: nobody subscribed (what every write pays for the feed: on an
//!   SQLite file, one look at `change_listeners` in the transaction);
//! * `one subscriber`: this store subscribed, its events drained by a thread
//!   (one for the whole run, as an app's forwarding thread is);
//! * `another store listening` (SQLite file): a second store on the file
//!   subscribed, so every transaction also writes its `change_log` row.
//!   On PostgreSQL every write notifies anyway (`none` includes it).
//!
//! On memory and an SQLite file each times its appends 2,000 at a time,
//! each 2,000 on a fresh store made and subscribed to outside the timing
//! and kept until the sample's last append (so every store's memory is new
//! to the process, as a growing store's is); on PostgreSQL each runs on a
//! store of its own on the bench's database. Each backend's part runs in
//! turn, with `paired` before and after it: the ratio from alternating
//! rounds of appends to two fresh stores, one subscribed (on PostgreSQL
//! each on a database of its own), so that a noisy machine's drift falls
//! on both sides alike.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use silmari_store::Subscription;
use silmari_store::prelude::*;

use super::data::{attachment, content};
use super::{Backends, group, quick, sqlite_file};

/// One subscription's events read by the bench's reading thread, from
/// `new` (once the thread has it) until dropped (which unsubscribes).
///
/// One thread reads every subscription in turn, as an app's thread that
/// forwards events (to a web view, say) lives as long as the app.
struct Drain {
    reader: &'static Reader,
}

/// The bench's reading thread, and what it is told.
struct Reader {
    subscriptions: Mutex<mpsc::Sender<Subscription>>,
    /// Set to stop reading the current subscription (and drop it).
    detach: AtomicBool,
    /// Gets a message when the thread has a subscription, and another when
    /// it has dropped it.
    acknowledged: Mutex<mpsc::Receiver<()>>,
}

impl Reader {
    fn get() -> &'static Reader {
        static READER: OnceLock<Reader> = OnceLock::new();
        READER.get_or_init(|| {
            let (subscriptions, to_read) = mpsc::channel::<Subscription>();
            let (acknowledge, acknowledged) = mpsc::channel();
            thread::spawn(move || {
                for feed in to_read {
                    acknowledge.send(()).expect("bench thread");
                    let reader = Reader::get();
                    while !reader.detach.load(Ordering::Acquire) {
                        feed.recv_timeout(Duration::from_millis(2));
                    }
                    drop(feed);
                    acknowledge.send(()).expect("bench thread");
                }
            });
            Reader {
                subscriptions: Mutex::new(subscriptions),
                detach: AtomicBool::new(false),
                acknowledged: Mutex::new(acknowledged),
            }
        })
    }

    fn acknowledged(&self) {
        let acknowledged = self.acknowledged.lock().expect("bench reader");
        acknowledged.recv().expect("bench reading thread");
    }
}

impl Drain {
    fn new(store: &Store) -> Drain {
        let reader = Reader::get();
        reader.detach.store(false, Ordering::Release);
        let feed = store.subscribe().expect("subscribe");
        let sent = reader
            .subscriptions
            .lock()
            .expect("bench reader")
            .send(feed);
        sent.expect("bench reading thread");
        reader.acknowledged();
        Drain { reader }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.reader.detach.store(true, Ordering::Release);
        self.reader.acknowledged();
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
    // Each backend's part in turn, so that no other backend's work (an
    // SQLite file's writeback, a server) runs beside memory's. The paired
    // rounds come before its criterion part (memory's in a fresh process)
    // and after it (a heap churned by millions of appends, as a
    // long-running app's is).
    for &name in &backends {
        let paired_here = paired_wanted();
        if paired_here {
            paired(name, "before its criterion part", &fresh, &append);
        }
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
                    b.settle(name);
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
        if paired_here {
            paired(name, "after its criterion part", &fresh, &append);
        }
    }
    g.finish();
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
/// (made, subscribed to and dropped outside the timing, the last after
/// the sample's last append).
fn on_fresh_stores(
    iters: u64,
    name: &str,
    listener: Listener,
    fresh: &dyn Fn(&str) -> Fresh,
    append: &dyn Fn(&Store, ConversationId) -> Message,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    // Dropped after the timing: a store freed between two others would
    // hand its memory to the next (or back to the system, to be faulted in
    // again), so what one side's appends pay for fresh memory would depend
    // on how much the store before it held, not on the feed.
    let mut done = Vec::new();
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
        done.push((file, other, store));
        left -= appends;
    }
    drop(done);
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
    let (rounds, per_round) = match (quick(), name) {
        (true, _) => (20, 20),
        (false, "postgres") => (150, 20),
        (false, _) => (300, 200),
    };
    // On PostgreSQL each store is on a database of its own, both made
    // alike: a store listening on the bench's database would hear the
    // other side's writes too (notifications stay within a database).
    #[cfg(feature = "postgres")]
    let databases = (name == "postgres").then(|| {
        [(); 2].map(|()| crate::common::pg::Database::create().expect("a database of its own"))
    });
    let on = |side: usize| -> Fresh {
        #[cfg(feature = "postgres")]
        if let Some(databases) = &databases {
            let store = Store::open(&databases[side].url).expect("postgres");
            let conversation = store
                .conversations()
                .create(NewConversation::titled("W2 feed"))
                .expect("create")
                .id;
            return (None, store, conversation);
        }
        let _ = side;
        fresh(name)
    };
    let (_a_dir, none, a) = on(0);
    let (_b_dir, subscribed, b) = on(1);
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
