//! Workloads W1–W9 on every backend (and W2 with the change feed in use), each beside a hand-written baseline
//! doing the same work, in the same group so the ratio comes from one run.
//!
//! ```text
//! cargo bench --features postgres-tls --bench workloads                 # the full run (< 10 min)
//! SILMARI_BENCH_QUICK=1 cargo bench --features postgres-tls --bench workloads   # a smoke run
//! scripts/with-postgres cargo bench --features postgres-tls --bench workloads   # with PostgreSQL
//! ```
//!
//! PostgreSQL runs when `SILMARI_TEST_POSTGRES_URL` names a server (each run
//! makes a database of its own and drops it).

#[path = "baseline/sqlite.rs"]
mod baseline_sqlite;
#[path = "workloads/data.rs"]
mod data;

#[cfg(feature = "postgres")]
#[path = "baseline/postgres.rs"]
mod baseline_postgres;

#[cfg(feature = "postgres")]
#[path = "../tests/common/mod.rs"]
mod common;

#[path = "workloads/bulk_import.rs"]
mod bulk_import;
#[path = "workloads/feed.rs"]
mod feed;
#[path = "workloads/files_and_threads.rs"]
mod files_and_threads;
#[path = "workloads/message_writes.rs"]
mod message_writes;
#[cfg(feature = "encryption")]
#[path = "workloads/open.rs"]
mod open;

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, measurement::WallTime};
use silmari_store::ConversationId;
use silmari_store::prelude::*;
use tempfile::TempDir;

use data::{attachment, content, file_create_get};
use message_writes::Edited;

fn quick() -> bool {
    std::env::var("SILMARI_BENCH_QUICK").is_ok_and(|v| v != "0")
}

/// A fresh migrated SQLite file in a temporary directory, with the crate's
/// default settings.
fn sqlite_file() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let store = Store::open(&format!("sqlite:///{}", path.display())).expect("open");
    (dir, path, store)
}

/// A fresh migrated SQLite file encrypted with a passphrase (the
/// `encryption` feature), otherwise with the crate's default settings.
#[cfg(feature = "encryption")]
fn sqlite_encrypted_file() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("encrypted.db");
    let store = Store::builder()
        .url(format!("sqlite:///{}", path.display()))
        .key(open::passphrase())
        .open()
        .expect("open");
    (dir, path, store)
}

/// The fresh SQLite files the file-per-iteration workloads (W5) run on, by
/// name: plain, and encrypted with the `encryption` feature.
type FileMaker = fn() -> (TempDir, PathBuf, Store);
fn sqlite_files() -> Vec<(&'static str, FileMaker)> {
    #[allow(unused_mut)]
    let mut files: Vec<(&'static str, FileMaker)> = vec![("sqlite", sqlite_file)];
    #[cfg(feature = "encryption")]
    files.push(("sqlite encrypted", sqlite_encrypted_file));
    files
}

/// The backends under test: the store, and the baseline on the same database.
struct Backends {
    memory: Store,
    sqlite: Store,
    /// Beside `sqlite` in every group: what encryption costs.
    #[cfg(feature = "encryption")]
    sqlite_encrypted: (TempDir, Store),
    sqlite_baseline: baseline_sqlite::Baseline,
    _sqlite_dir: TempDir,
    #[cfg(feature = "postgres")]
    postgres: Option<(Store, baseline_postgres::Baseline, common::pg::Database)>,
}

impl Backends {
    fn new() -> Self {
        let (dir, path, sqlite) = sqlite_file();
        Backends {
            memory: Store::open("memory://").expect("memory"),
            sqlite,
            sqlite_baseline: baseline_sqlite::Baseline::open(&path),
            _sqlite_dir: dir,
            #[cfg(feature = "encryption")]
            sqlite_encrypted: {
                let (dir, _, store) = sqlite_encrypted_file();
                (dir, store)
            },
            #[cfg(feature = "postgres")]
            postgres: common::pg::Database::create().map(|database| {
                // Plain TCP like the baseline's client: TLS is not what is measured.
                let separator = if database.url.contains('?') { '&' } else { '?' };
                let url = format!("{}{separator}sslmode=disable", database.url);
                let store = Store::open(&url).expect("postgres");
                let baseline = baseline_postgres::Baseline::open(&database.url);
                let settings = database
                    .client()
                    .query_one(
                        "SELECT current_setting('server_version'), current_setting('fsync'), \
                         current_setting('synchronous_commit'), current_setting('full_page_writes'), \
                         current_setting('wal_sync_method'), current_setting('shared_buffers')",
                        &[],
                    )
                    .expect("settings");
                let setting = |i: usize| settings.get::<_, String>(i);
                eprintln!(
                    "PostgreSQL {}: fsync={} synchronous_commit={} full_page_writes={} \
                     wal_sync_method={} shared_buffers={}",
                    setting(0),
                    setting(1),
                    setting(2),
                    setting(3),
                    setting(4),
                    setting(5)
                );
                (store, baseline, database)
            }),
        }
    }

    /// Before the store named `name` is timed: on PostgreSQL,
    /// [`settle_database`] (analyze, then flush).
    fn settle(&self, name: &str) {
        #[cfg(feature = "postgres")]
        if let (true, Some((_, _, database))) = (name == "postgres", &self.postgres) {
            settle_database(database);
        }
        #[cfg(not(feature = "postgres"))]
        let _ = name;
    }

    /// The stores, by name.
    fn stores(&self) -> Vec<(&'static str, &Store)> {
        #[allow(unused_mut)]
        let mut stores = vec![("memory", &self.memory), ("sqlite", &self.sqlite)];
        #[cfg(feature = "encryption")]
        stores.push(("sqlite encrypted", &self.sqlite_encrypted.1));
        #[cfg(feature = "postgres")]
        if let Some((store, _, _)) = &self.postgres {
            stores.push(("postgres", store));
        }
        stores
    }
}

/// Before a function is timed on PostgreSQL: `VACUUM ANALYZE`, so that
/// its statements plan on statistics of the tables as they are (and
/// autovacuum has nothing of the setup left to do beside it), then
/// `CHECKPOINT`, so that what the setup and the functions before it wrote
/// is on disk and the function does not pay for the server flushing it.
/// A server that refuses (a role without the right) is said so once.
#[cfg(feature = "postgres")]
fn settle_database(database: &common::pg::Database) {
    static REFUSED: std::sync::Once = std::sync::Once::new();
    let mut client = database.client();
    // One at a time: VACUUM cannot run inside the transaction that a
    // string of statements makes.
    for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
        if let Err(e) = client.batch_execute(statement) {
            let why = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            REFUSED
                .call_once(|| eprintln!("{statement} refused ({why}): functions timed without it"));
        }
    }
}

/// Checks (untimed) that the baseline did the crate's work: the messages of
/// `conversation`, read through `store`, form one chain on the current
/// branch, each below the one before it.
fn assert_chain(store: &Store, conversation: ConversationId) {
    let c = store
        .conversations()
        .get(conversation)
        .expect("get")
        .expect("exists");
    let mut parent = None;
    for m in &c.messages {
        assert_eq!(
            m.parent_id, parent,
            "each message follows the one before it"
        );
        parent = Some(m.id);
    }
    assert_eq!(c.summary().message_count, c.messages.len() as u64);
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    if quick() {
        group.warm_up_time(Duration::from_millis(300));
        group.measurement_time(Duration::from_secs(1));
        group.sample_size(10);
    } else {
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        group.sample_size(30);
    }
    group
}

fn w1_create_conversation(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W1 create conversation");
    for (name, store) in b.stores() {
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                store
                    .conversations()
                    .create(NewConversation::titled("A new chapter"))
                    .expect("create")
            })
        });
    }
    let base = &b.sqlite_baseline;
    g.bench_function("sqlite baseline", |bench| {
        bench.iter(|| base.create_conversation("A new chapter"))
    });
    #[cfg(feature = "postgres")]
    if let Some((_, base, database)) = &mut b.postgres {
        settle_database(database);
        g.bench_function("postgres baseline", |bench| {
            bench.iter(|| base.create_conversation("A new chapter"))
        });
    }
    g.finish();
}

fn w2_append_message(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W2 append message");
    let text = content();
    let attachments = vec![attachment()];
    // PostgreSQL keeps a prepared statement's generic plan until the table
    // is next analyzed. Planned on the empty `messages` table, the append's
    // current-leaf lookup is a bitmap scan and sort of the whole
    // conversation; the run is shorter than autovacuum's interval, so W2
    // would measure that plan as the conversation grows, for the crate only
    // (the baseline plans later, on the grown table). Both plan here on a
    // table its statistics know, as in a store in use.
    #[cfg(feature = "postgres")]
    if let Some((store, _, database)) = &b.postgres {
        conversation_of(store, 100);
        database.client().batch_execute("ANALYZE").expect("analyze");
    }
    for (name, store) in b.stores() {
        let conversation = store
            .conversations()
            .create(NewConversation::titled("W2"))
            .expect("create");
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                store
                    .conversations()
                    .append_message(
                        conversation.id,
                        NewMessage::new(Role::User, text.clone())
                            .with_attachments(attachments.clone()),
                    )
                    .expect("append")
            })
        });
    }
    // The cost of SqliteOptions::slow_statement when on: every statement
    // goes through SQLite's profile callback (a threshold nothing reaches,
    // so nothing is logged). The default rows above have it off.
    let slow_dir = tempfile::tempdir().expect("temp dir");
    let slow = Store::open(&format!(
        "sqlite:///{}?slow_statement=86400",
        slow_dir.path().join("slow.db").display()
    ))
    .expect("open");
    let conversation = slow
        .conversations()
        .create(NewConversation::titled("W2"))
        .expect("create");
    g.bench_function("sqlite, slow_statement on", |bench| {
        bench.iter(|| {
            slow.conversations()
                .append_message(
                    conversation.id,
                    NewMessage::new(Role::User, text.clone()).with_attachments(attachments.clone()),
                )
                .expect("append")
        })
    });
    let base = &b.sqlite_baseline;
    let conversation = base.create_conversation("W2");
    g.bench_function("sqlite baseline", |bench| {
        bench.iter(|| base.append(conversation, &text, &attachments))
    });
    assert_chain(&b.sqlite, conversation.into());
    #[cfg(feature = "postgres")]
    if let Some((store, base, database)) = &mut b.postgres {
        let conversation = base.create_conversation("W2");
        settle_database(database);
        g.bench_function("postgres baseline", |bench| {
            bench.iter(|| base.append(conversation, &text, &attachments))
        });
        assert_chain(store, conversation.into());
    }
    g.finish();
}

/// A conversation of `n` W2-style messages.
fn conversation_of(store: &Store, n: usize) -> ConversationId {
    let conversation = store
        .conversations()
        .create(NewConversation::titled("W3"))
        .expect("create");
    let messages = (0..n)
        .map(|_| NewMessage::new(Role::Assistant, content()).with_attachments(vec![attachment()]))
        .collect();
    store
        .conversations()
        .append_messages(conversation.id, messages)
        .expect("append");
    conversation.id
}

fn w3_get_conversation(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W3 get conversation of 100 messages");
    let mut ids = Vec::new();
    for (name, store) in b.stores() {
        let id = conversation_of(store, 100);
        ids.push((name, id));
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                let c = store.conversations().get(id).expect("get").expect("exists");
                assert_eq!(c.messages.len(), 100);
                c
            })
        });
    }
    let sqlite_id = ids
        .iter()
        .find(|(n, _)| *n == "sqlite")
        .map(|(_, id)| *id.as_uuid());
    if let Some(id) = sqlite_id {
        let base = &b.sqlite_baseline;
        let crate_read = b.sqlite.conversations().get(id.into()).expect("get");
        assert_eq!(
            Some(base.get(id)),
            crate_read,
            "the baseline reads what the crate reads"
        );
        g.bench_function("sqlite baseline", |bench| bench.iter(|| base.get(id)));
    }
    #[cfg(feature = "postgres")]
    if let (Some((store, base, database)), Some((_, id))) =
        (&mut b.postgres, ids.iter().find(|(n, _)| *n == "postgres"))
    {
        let id = *id.as_uuid();
        let crate_read = store.conversations().get(id.into()).expect("get");
        assert_eq!(
            Some(base.get(id)),
            crate_read,
            "the baseline reads what the crate reads"
        );
        settle_database(database);
        g.bench_function("postgres baseline", |bench| bench.iter(|| base.get(id)));
    }
    g.finish();
}

/// Adds `n` conversations in one transaction.
fn conversations(store: &Store, n: usize) {
    store
        .transaction(|tx| -> silmari_store::Result<()> {
            for i in 0..n {
                tx.conversations()
                    .create(NewConversation::titled(format!("conversation {i}")))?;
            }
            Ok(())
        })
        .expect("conversations");
}

fn w4_list_recent(c: &mut Criterion, b: &mut Backends, total: usize) {
    let mut g = group(c, &format!("W4 list 50 most recent of {total}"));
    for (name, store) in b.stores() {
        let have = store.counts().expect("counts").conversations as usize;
        conversations(store, total.saturating_sub(have));
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter(|| {
                store
                    .conversations()
                    .list(ConversationQuery::recent(50))
                    .expect("list")
            })
        });
    }
    let listed = |store: &Store| {
        store
            .conversations()
            .list(ConversationQuery::recent(50))
            .expect("list")
            .items
    };
    let base = &b.sqlite_baseline;
    assert_eq!(
        base.recent(50),
        listed(&b.sqlite),
        "the baseline lists what the crate lists"
    );
    g.bench_function("sqlite baseline", |bench| bench.iter(|| base.recent(50)));
    #[cfg(feature = "postgres")]
    if let Some((store, base, database)) = &mut b.postgres {
        assert_eq!(
            base.recent(50),
            listed(store),
            "the baseline lists what the crate lists"
        );
        settle_database(database);
        g.bench_function("postgres baseline", |bench| bench.iter(|| base.recent(50)));
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut b = Backends::new();
    #[cfg(feature = "postgres")]
    if b.postgres.is_none() {
        eprintln!("PostgreSQL not benchmarked: SILMARI_TEST_POSTGRES_URL is not set");
    }
    w1_create_conversation(&mut c, &mut b);
    w2_append_message(&mut c, &mut b);
    w3_get_conversation(&mut c, &mut b);
    w4_list_recent(&mut c, &mut b, 10_000);
    if !quick() {
        w4_list_recent(&mut c, &mut b, 100_000);
    }
    bulk_import::w5_bulk_import(&mut c, &mut b);
    bulk_import::w5_app_import(&mut c, &mut b);
    files_and_threads::w6_file_create_get(&mut c, &mut b);
    files_and_threads::w7_four_writers(&mut c, &mut b);
    message_writes::w8_edit_message(&mut c, &mut b, 100, Edited::TheFirst);
    message_writes::w8_edit_message(&mut c, &mut b, 10_000, Edited::TheFirst);
    message_writes::w8_edit_message(&mut c, &mut b, 10_000, Edited::EachInTurn);
    message_writes::w9_stream_reply(&mut c, &mut b);
    feed::w2_with_feed(&mut c, &mut b);
    #[cfg(feature = "encryption")]
    open::open_and_first_query(&mut c);
    c.final_summary();
}
