//! W5: a bulk import of many messages, beside SQLite's and PostgreSQL's
//! fastest hand-written paths.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use silmari_store::ConversationId;
use silmari_store::prelude::*;

use super::baseline_sqlite;
#[cfg(feature = "postgres")]
use super::settle_database;
use super::{Backends, attachment, content, quick, sqlite_file, sqlite_files};

pub(crate) fn w5_bulk_import(c: &mut Criterion, b: &mut Backends) {
    let (conversations, per) = if quick() { (20, 1000) } else { (100, 1000) };
    let total = (conversations * per) as u64;
    let mut g = c.benchmark_group(format!("W5 bulk import of {total} messages"));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(if quick() { 2 } else { 8 }));
    g.throughput(Throughput::Elements(total));
    let contents: Vec<String> = (0..per)
        .map(|i| format!("{i} {}", &content()[..200]))
        .collect();
    let import = |store: &Store, ids: &[ConversationId]| {
        for id in ids {
            let batch = contents
                .iter()
                .map(|t| NewMessage::new(Role::User, t.clone()))
                .collect();
            store
                .conversations()
                .append_messages(*id, batch)
                .expect("bulk");
        }
    };
    let targets = |store: &Store| new_conversations(store, conversations);
    g.bench_function("memory", |bench| {
        bench.iter_batched(
            || {
                let store = Store::open("memory://").expect("memory");
                let ids = targets(&store);
                (store, ids)
            },
            |(store, ids)| import(&store, &ids),
            BatchSize::PerIteration,
        )
    });
    for (name, file) in sqlite_files() {
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter_batched(
                || {
                    let (dir, _, store) = file();
                    let ids = targets(&store);
                    (dir, store, ids)
                },
                |(_dir, store, ids)| import(&store, &ids),
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("sqlite baseline", |bench| {
        bench.iter_batched(
            || {
                let (dir, path, store) = sqlite_file();
                drop(store);
                let base = baseline_sqlite::Baseline::open(&path);
                let ids: Vec<_> = (0..conversations)
                    .map(|_| base.create_conversation("W5"))
                    .collect();
                (dir, base, ids)
            },
            |(_dir, base, ids)| {
                for id in ids {
                    base.bulk(id, &contents);
                }
            },
            BatchSize::PerIteration,
        )
    });
    #[cfg(feature = "postgres")]
    if let Some((store, base, database)) = &mut b.postgres {
        let store = &*store;
        settle_database(database);
        g.bench_function("postgres", |bench| {
            bench.iter_batched(
                || targets(store),
                |ids| import(store, &ids),
                BatchSize::PerIteration,
            )
        });
        let base = std::cell::RefCell::new(base);
        settle_database(database);
        g.bench_function("postgres baseline", |bench| {
            bench.iter_batched(
                || baseline_targets(&base, conversations),
                |ids| {
                    for id in ids {
                        base.borrow_mut().bulk(id, &contents);
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    #[cfg(not(feature = "postgres"))]
    let _ = b;
    g.finish();
}

/// W5 as an app writes it: 100 conversations of 1,000 messages (500 bytes
/// of text and one attachment each) in one `transaction`, by
/// `append_messages` batches of 1,000; beside the hand-written baselines
/// doing the same in one transaction (SQLite: one cached INSERT; PostgreSQL:
/// one binary COPY of every row).
pub(crate) fn w5_app_import(c: &mut Criterion, b: &mut Backends) {
    let (conversations, per) = if quick() { (20, 1000) } else { (100, 1000) };
    let total = (conversations * per) as u64;
    let mut g = c.benchmark_group(format!(
        "W5 app import of {total} messages with an attachment, one transaction"
    ));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(if quick() { 2 } else { 8 }));
    g.throughput(Throughput::Elements(total));
    let contents: Vec<String> = (0..per).map(|i| format!("{i} {}", content())).collect();
    let attachments = vec![attachment()];
    let import = |store: &Store, ids: &[ConversationId]| {
        store
            .transaction(|tx| -> silmari_store::Result<()> {
                for id in ids {
                    let batch = contents
                        .iter()
                        .map(|t| {
                            NewMessage::new(Role::User, t.clone())
                                .with_attachments(attachments.clone())
                        })
                        .collect();
                    tx.conversations().append_messages(*id, batch)?;
                }
                Ok(())
            })
            .expect("import");
    };
    let targets = |store: &Store| new_conversations(store, conversations);
    for (name, file) in sqlite_files() {
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter_batched(
                || {
                    let (dir, _, store) = file();
                    let ids = targets(&store);
                    (dir, store, ids)
                },
                // Returned, so that closing the store (its final checkpoint)
                // happens outside the timing, on both sides.
                |(dir, store, ids)| {
                    import(&store, &ids);
                    (dir, store)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.bench_function("sqlite baseline", |bench| {
        bench.iter_batched(
            || {
                let (dir, path, store) = sqlite_file();
                drop(store);
                let base = baseline_sqlite::Baseline::open(&path);
                let ids: Vec<_> = (0..conversations)
                    .map(|_| base.create_conversation("W5"))
                    .collect();
                (dir, base, ids)
            },
            |(dir, base, ids)| {
                base.import(&ids, &contents, &attachments);
                (dir, base)
            },
            BatchSize::PerIteration,
        )
    });
    #[cfg(feature = "postgres")]
    if let Some((store, base, database)) = &mut b.postgres {
        let store = &*store;
        settle_database(database);
        g.bench_function("postgres", |bench| {
            bench.iter_batched(
                || targets(store),
                |ids| import(store, &ids),
                BatchSize::PerIteration,
            )
        });
        // The baseline writing the store's rows writes its search tokens:
        // checked against a message the store wrote.
        let probe = new_conversations(store, 1)[0];
        store
            .conversations()
            .append_message(probe, NewMessage::new(Role::User, contents[1].clone()))
            .expect("probe");
        assert!(
            base.writes_the_stores_tokens(&contents[1]),
            "the baseline's rows are the store's"
        );
        let base = std::cell::RefCell::new(base);
        // The baseline as issue 12 set it (no search tokens: the store's
        // rows hold them since search), writing the store's rows, and
        // writing them in a copy per conversation, as the store does.
        use super::baseline_postgres::Rows;
        for (name, rows) in [
            ("postgres baseline", Rows::Plain),
            ("postgres baseline with search tokens", Rows::WithTokens),
            ("postgres copy per conversation", Rows::CopyPerConversation),
        ] {
            settle_database(database);
            g.bench_function(name, |bench| {
                bench.iter_batched(
                    || baseline_targets(&base, conversations),
                    |ids| {
                        base.borrow_mut()
                            .import(&ids, &contents, &attachments, rows)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    #[cfg(not(feature = "postgres"))]
    let _ = b;
    g.finish();
}

/// `n` new conversations of `store` to import into.
fn new_conversations(store: &Store, n: usize) -> Vec<ConversationId> {
    (0..n)
        .map(|_| {
            store
                .conversations()
                .create(NewConversation::titled("W5"))
                .expect("create")
                .id
        })
        .collect()
}

/// `n` new conversations of the PostgreSQL baseline, to import into.
#[cfg(feature = "postgres")]
fn baseline_targets(
    base: &std::cell::RefCell<&mut super::baseline_postgres::Baseline>,
    n: usize,
) -> Vec<uuid::Uuid> {
    (0..n)
        .map(|_| base.borrow_mut().create_conversation("W5"))
        .collect()
}
