//! The change feed on PostgreSQL: the tree cases of `trees`, payloads
//! split over several notifications, notifications sent by another role
//! (hints, not authority), a pool of one connection, a killed listener
//! connection, and two writing stores. Each test needs the server of
//! `SILMARI_TEST_POSTGRES_URL` (`scripts/with-postgres`); without one it
//! says so and returns (in CI it fails).

use std::thread;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{ChangeEntity, ChangeKind, PoolConfig, StoreConfig};
use uuid::Uuid;

use crate::common::pg::{self, Database};
use crate::{PATIENCE, changes, conv, drain, has_change, new_file, until, until_marker};

/// The channel of the stores on `schema` (the crate's FNV-1a of its name).
fn channel(schema: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("silmari_changes_{hash:016x}")
}

/// A login role of the test server, dropped afterwards (declare it before
/// the database it connects to, which is then dropped first).
struct OtherRole {
    server: String,
    name: String,
    password: String,
}

impl OtherRole {
    fn create(server: &str) -> OtherRole {
        let name = format!("silmari_r_{}", Uuid::new_v4().simple());
        let password = format!("Rol3-{}", Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .unwrap();
        OtherRole {
            server: server.to_owned(),
            name,
            password,
        }
    }

    /// A client on `database` as this role.
    fn client(&self, database: &Database) -> postgres::Client {
        let (_, rest) = database.url.split_once("://").unwrap();
        let (_, host_and_db) = rest.rsplit_once('@').unwrap();
        let url = format!("postgresql://{}:{}@{host_and_db}", self.name, self.password);
        postgres::Client::connect(&url, postgres::NoTls).unwrap()
    }
}

impl Drop for OtherRole {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

#[test]
fn pg_a_record_deleted_then_recreated_in_one_transaction_is_reported_changed() {
    let Some(db) = Database::create() else {
        return;
    };
    let store = pg::open(&db, Duration::from_secs(10));
    crate::trees::deleted_then_recreated_in_one_transaction_is_reported_changed(&store);
}

#[test]
fn pg_tree_operations_report_exactly_the_records_they_wrote() {
    let Some(db) = Database::create() else {
        return;
    };
    let store = pg::open(&db, Duration::from_secs(10));
    crate::trees::tree_operations_report_exactly_the_records_they_wrote(&store);
}

/// A transaction of 400 records (split over several notifications),
/// single statements that write nothing, a refused duplicate, a rollback:
/// the events are exactly the committed writes, in order, on this store
/// and on another one.
#[test]
fn pg_split_payloads_and_no_op_statements_deliver_exactly_the_committed_writes() {
    let Some(db) = Database::create() else {
        return;
    };
    let a = pg::open(&db, Duration::from_secs(10));
    let b = pg::open(&db, Duration::from_secs(10));
    let fa = a.subscribe().unwrap();
    let fb = b.subscribe().unwrap();
    let files = a
        .transaction(|tx| {
            (0..400)
                .map(|i| tx.files().create(new_file(&format!("{i}"))))
                .collect::<Result<Vec<_>, Error>>()
        })
        .unwrap();
    assert!(!a.files().delete(FileId::new()).unwrap());
    assert!(!a.conversations().delete(ConversationId::new()).unwrap());
    let dup = a.files().create(NewFile {
        id: Some(files[0].id),
        ..new_file("dup")
    });
    assert!(dup.is_err());
    let _: Result<(), Error> = a.transaction(|tx| {
        tx.files().create(new_file("rolled back"))?;
        Err(Error::InTransaction)
    });
    let expected: Vec<Uuid> = files.iter().map(|f| *f.id.as_uuid()).collect();
    let got_a: Vec<Uuid> = changes(&until_marker(&a, &fa))
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got_a, expected);
    let got_b: Vec<Uuid> = changes(&drain(&fb, Duration::from_secs(1)))
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(got_b.len(), expected.len() + 1, "the writes and the marker");
    assert_eq!(got_b[..got_b.len() - 1], expected[..]);
}

/// Another role that may connect notifies the channel: text the store
/// cannot read is a `Resync` each; a well-formed payload is delivered as
/// the change it names (events are hints, not authority: it carries no
/// data); the feed then goes on with the store's own changes.
#[test]
fn pg_notifications_by_another_role_are_resyncs_or_hints() {
    let Some(server) = crate::common::postgres_server() else {
        return;
    };
    let role = OtherRole::create(&server);
    let Some(db) = Database::create() else {
        return;
    };
    let store = pg::open(&db, Duration::from_secs(10));
    let feed = store.subscribe().unwrap();
    let mut client = role.client(&db);
    let ch = channel("public");
    let fake = Uuid::now_v7();
    for payload in [
        "garbage".to_owned(),
        "é".to_owned(),
        "x".repeat(7999),
        format!("dC{}", fake.simple()),
    ] {
        client
            .execute("SELECT pg_notify($1, $2)", &[&ch, &payload])
            .unwrap();
    }
    drop(client);
    let events = until(&feed, PATIENCE, |e| has_change(e, fake));
    let resyncs = events.iter().filter(|e| **e == FeedEvent::Resync).count();
    assert_eq!(resyncs, 3, "{events:?}");
    let hint = changes(&events);
    assert!(
        matches!(&hint[..], [c] if c.id == fake
            && c.entity == ChangeEntity::Conversation
            && c.kind == ChangeKind::Deleted),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&FeedEvent::Change(hint[0].clone())));
    let mine = *conv(&store, "after the hostile notifications").as_uuid();
    let events = until(&feed, PATIENCE, |e| has_change(e, mine));
    assert!(has_change(&events, mine), "{events:?}");
}

/// A pool of one connection: subscribing leaves it to the store's writes
/// (the listener connects on its own), and the write arrives.
#[test]
fn pg_a_store_with_a_pool_of_one_connection_writes_and_listens_while_subscribed() {
    let Some(db) = Database::create() else {
        return;
    };
    let mut config: StoreConfig = db.url.parse().unwrap();
    config.pool = PoolConfig {
        pool_size: 1,
        max_overflow: 0,
        pool_timeout: Duration::from_secs(2),
        ..PoolConfig::default()
    };
    let store = Store::open_with(config).unwrap();
    conv(&store, "before");
    let feed = store.subscribe().unwrap();
    let written = store
        .conversations()
        .create(NewConversation::titled("while subscribed"))
        .expect("a write while subscribed");
    let id = *written.id.as_uuid();
    let events = until(&feed, PATIENCE, |e| has_change(e, id));
    assert!(has_change(&events, id), "{events:?}");
}

/// The listening connection killed by the server: `Resync`, then changes
/// arrive again.
#[test]
fn pg_a_killed_listener_connection_resyncs_then_changes_resume() {
    let Some(db) = Database::create() else {
        return;
    };
    let store = pg::open(&db, Duration::from_secs(10));
    let feed = store.subscribe().unwrap();
    let mut client = db.client();
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let mut events = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let c = loop {
        thread::sleep(Duration::from_millis(200));
        let c = *conv(&store, "after").as_uuid();
        events.extend(drain(&feed, Duration::from_millis(500)));
        if has_change(&events, c) || Instant::now() > deadline {
            break c;
        }
    };
    assert!(events.contains(&FeedEvent::Resync), "{events:?}");
    assert!(has_change(&events, c), "{events:?}");
}

/// Two stores writing at once from four threads, both listening: the same
/// sequence on both (the server's commit order), every write once.
#[test]
fn pg_two_writing_stores_hear_every_write_once_in_one_order() {
    let Some(db) = Database::create() else {
        return;
    };
    let x = pg::open(&db, Duration::from_secs(10));
    let y = pg::open(&db, Duration::from_secs(10));
    let fx = x.subscribe().unwrap();
    let fy = y.subscribe().unwrap();
    let mut written: Vec<Uuid> = thread::scope(|s| {
        let handles: Vec<_> = [&x, &y, &x, &y]
            .into_iter()
            .enumerate()
            .map(|(t, store)| {
                s.spawn(move || {
                    (0..40)
                        .map(|i| *conv(store, &format!("{t}/{i}")).as_uuid())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let ids = |feed| -> Vec<Uuid> {
        changes(&drain(feed, Duration::from_secs(1)))
            .iter()
            .map(|c| c.id)
            .collect()
    };
    let ex = ids(&fx);
    let ey = ids(&fy);
    assert_eq!(ex, ey, "one order");
    let mut sorted = ex.clone();
    sorted.sort();
    written.sort();
    assert_eq!(sorted, written, "each once");
}
