//! A real server restart under an open Store. In a test binary of its own,
//! because restarting the shared server would break other tests running
//! beside it (cargo runs test binaries one after another).
#![cfg(feature = "postgres")]

mod common;

use std::time::{Duration, Instant};

use common::pg::{Database, append, open};
use silmari_store::prelude::*;

/// The command that restarts the test server; `None` (said) without one,
/// a failure in CI.
fn restart_command() -> Option<String> {
    match std::env::var(common::POSTGRES_RESTART_VAR) {
        Ok(command) => Some(command),
        Err(_) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must set {} to restart its server",
                common::POSTGRES_RESTART_VAR
            );
            println!(
                "{} not set: restart not tested",
                common::POSTGRES_RESTART_VAR
            );
            None
        }
    }
}

/// Runs the restart command; it must succeed.
fn restart_server(restart: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", restart])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "restart command failed");
}

/// The tests here restart the one server: one at a time.
static SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_restarted_server_is_recovered_without_reopening() {
    let _server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(database) = Database::create() else {
        return;
    };
    let Some(restart) = restart_command() else {
        return;
    };
    let store = open(&database, Duration::from_secs(10));
    let c = store
        .conversations()
        .create(NewConversation::titled("restart"))
        .unwrap();
    append(&store, c.id, "before").unwrap();
    restart_server(&restart);
    let started = Instant::now();
    // The server is back: calls succeed on the same Store.
    for i in 0..10 {
        append(&store, c.id, &format!("after {i}")).unwrap();
    }
    assert_eq!(
        store
            .conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        11
    );
    println!(
        "recovered after a server restart in {:?}",
        started.elapsed()
    );
}

/// Four threads write while the server restarts: calls during the outage
/// return `Unavailable` within the pool timeout (no hang, no panic), every
/// thread writes again afterwards on the same Store, and nothing
/// acknowledged is lost.
#[test]
fn four_writers_survive_a_server_restart() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let _server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(database) = Database::create() else {
        return;
    };
    let Some(restart) = restart_command() else {
        return;
    };
    let pool_timeout = Duration::from_secs(2);
    let store = open(&database, pool_timeout);
    let restarted = Arc::new(AtomicBool::new(false));
    // Created before the restart can begin (on a loaded machine a thread's
    // first call could meet it otherwise): the writes are what is tested.
    let conversations: Vec<_> = (0..4)
        .map(|t| {
            store
                .conversations()
                .create(NewConversation::titled(format!("writer {t}")))
                .unwrap()
        })
        .collect();
    let writers: Vec<_> = conversations
        .into_iter()
        .map(|c| {
            let (store, restarted) = (store.clone(), restarted.clone());
            std::thread::spawn(move || {
                let (mut acknowledged, mut unavailable, mut slowest) =
                    (Vec::new(), 0, Duration::ZERO);
                let mut after_restart = 0;
                let deadline = Instant::now() + Duration::from_secs(60);
                while after_restart < 20 && Instant::now() < deadline {
                    let started = Instant::now();
                    match append(&store, c.id, "during") {
                        Ok(m) => {
                            acknowledged.push(m.id);
                            if restarted.load(Ordering::SeqCst) {
                                after_restart += 1;
                            }
                        }
                        Err(e) => {
                            assert!(e.is_unavailable(), "only unavailable errors: {e:?}");
                            unavailable += 1;
                        }
                    }
                    slowest = slowest.max(started.elapsed());
                }
                assert_eq!(after_restart, 20, "writes succeed again after the restart");
                (c.id, acknowledged, unavailable, slowest)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    restart_server(&restart);
    restarted.store(true, Ordering::SeqCst);
    let (mut total, mut failed, mut slowest) = (0, 0, Duration::ZERO);
    for writer in writers {
        let (id, acknowledged, unavailable, slow) = writer.join().expect("no panic");
        let stored: Vec<MessageId> = store
            .conversations()
            .get(id)
            .unwrap()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id)
            .collect();
        for m in &acknowledged {
            assert!(stored.contains(m), "acknowledged message {m} lost");
        }
        total += acknowledged.len();
        failed += unavailable;
        slowest = slowest.max(slow);
    }
    // One call may wait for a connection (pool_timeout) and then for the
    // server's connect timeout (pool_timeout too).
    assert!(slowest < pool_timeout * 3, "a call hung for {slowest:?}");
    println!(
        "restart under 4 writers: {total} appends acknowledged, {failed} unavailable during the \
         outage, slowest call {slowest:?}, 0 lost"
    );
}

/// The change feed between two stores (two app instances) on one
/// database: a write by one reaches the other's subscriber; when the
/// server restarts, the subscriber hears a resync (notifications sent
/// while it reconnected are lost), then changes again.
#[test]
fn the_feed_reaches_another_store_and_resyncs_after_a_restart() {
    use silmari_store::{ChangeEntity, ChangeKind, FeedEvent};

    let _server = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(database) = Database::create() else {
        return;
    };
    let Some(restart) = restart_command() else {
        return;
    };
    let writer = open(&database, Duration::from_secs(5));
    let reader = open(&database, Duration::from_secs(5));
    let feed = reader.subscribe().unwrap();
    let heard = |what: &str| match feed.recv_timeout(Duration::from_secs(20)) {
        Some(FeedEvent::Change(change)) => (change.entity, change.kind, change.id),
        other => panic!("{what}: expected a change, got {other:?}"),
    };
    let c = writer
        .conversations()
        .create(NewConversation::titled("across"))
        .unwrap();
    let c_id = *c.id.as_uuid();
    assert_eq!(
        heard("create"),
        (ChangeEntity::Conversation, ChangeKind::Created, c_id)
    );
    let m = append(&writer, c.id, "hello").unwrap();
    assert_eq!(
        heard("append"),
        (ChangeEntity::Conversation, ChangeKind::Changed, c_id)
    );
    assert_eq!(
        heard("append"),
        (ChangeEntity::Message, ChangeKind::Created, *m.id.as_uuid())
    );

    restart_server(&restart);
    let started = Instant::now();
    assert_eq!(
        feed.recv_timeout(Duration::from_secs(30)),
        Some(FeedEvent::Resync),
        "the subscriber is told it may have missed changes"
    );
    println!("resync {:?} after the restart", started.elapsed());
    // Listening again: the writer's next changes arrive.
    let after = append(&writer, c.id, "after").unwrap();
    assert_eq!(
        heard("after"),
        (ChangeEntity::Conversation, ChangeKind::Changed, c_id)
    );
    assert_eq!(
        heard("after"),
        (
            ChangeEntity::Message,
            ChangeKind::Created,
            *after.id.as_uuid()
        )
    );
    assert_eq!(feed.recv_timeout(Duration::from_millis(500)), None);
}
