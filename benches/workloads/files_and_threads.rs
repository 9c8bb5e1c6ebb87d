//! W6 (file records created and read) and W7 (four threads appending at
//! once).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use silmari_store::ConversationId;
use silmari_store::prelude::*;

use super::baseline_sqlite;
#[cfg(feature = "postgres")]
use super::settle_database;
use super::{Backends, attachment, content, file_create_get, group};

pub(crate) fn w6_file_create_get(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W6 create file then get it");
    // As in a store in use (and as W2 does for messages): files already
    // there when statistics are taken (`settle` analyzes before the
    // functions run). Planned on an analyzed table of a few pages (up to a
    // few hundred files), the lookup by id is a scan of the table, kept by the connection's cached plan while
    // the bench grows the table: the store's W6 took 390 µs, then 530,
    // then 700 in three rounds of 2,000 (BENCHMARKS.md).
    #[cfg(feature = "postgres")]
    if let Some((store, _, _)) = &b.postgres {
        for _ in 0..1_000 {
            file_create_get(store);
        }
    }
    for (name, store) in b.stores() {
        b.settle(name);
        g.bench_function(name, |bench| bench.iter(|| file_create_get(store)));
    }
    let base = &b.sqlite_baseline;
    g.bench_function("sqlite baseline", |bench| {
        bench.iter(|| base.create_and_get_file("chapter-1.pdf"))
    });
    #[cfg(feature = "postgres")]
    if let Some((_, base, database)) = &mut b.postgres {
        settle_database(database);
        g.bench_function("postgres baseline", |bench| {
            bench.iter(|| base.create_and_get_file("chapter-1.pdf"))
        });
    }
    g.finish();
}

/// Runs `per_thread` on 4 threads at once, `iters` operations in all, and
/// returns the wall time.
fn four_threads(iters: u64, per_thread: impl Fn(u64) + Sync) -> Duration {
    let barrier = Barrier::new(4);
    let each = iters.div_ceil(4);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let started = Instant::now();
                    per_thread(each);
                    started
                })
            })
            .collect();
        let started = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .min()
            .unwrap_or_else(Instant::now);
        started.elapsed()
    })
}

pub(crate) fn w7_four_writers(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W7 four threads appending");
    g.throughput(Throughput::Elements(1));
    let text = content();
    let attachments = vec![attachment()];
    for (name, store) in b.stores() {
        let store = store.clone();
        let conversations: Vec<ConversationId> = (0..4)
            .map(|_| {
                store
                    .conversations()
                    .create(NewConversation::titled("W7"))
                    .expect("create")
                    .id
            })
            .collect();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                next.store(0, std::sync::atomic::Ordering::SeqCst);
                four_threads(iters, |n| {
                    let own =
                        conversations[next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 4];
                    for _ in 0..n {
                        black_box(
                            store
                                .conversations()
                                .append_message(
                                    own,
                                    NewMessage::new(Role::User, text.clone())
                                        .with_attachments(attachments.clone()),
                                )
                                .expect("no busy or locked error reaches the caller"),
                        );
                    }
                })
            })
        });
    }
    let path = b._sqlite_dir.path().join("bench.db");
    g.bench_function("sqlite baseline", |bench| {
        bench.iter_custom(|iters| {
            four_threads(iters, |n| {
                let base = baseline_sqlite::Baseline::open(&path);
                let own = base.create_conversation("W7");
                for _ in 0..n {
                    base.append(own, &text, &attachments);
                }
            })
        })
    });
    g.finish();
}
