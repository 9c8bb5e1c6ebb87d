//! The change feed beyond one store: another process on the same SQLite
//! file (a child test process, the admin tool importing), the change log's
//! listeners, trimming and gaps, and the limits that keep memory bounded.

mod common;

use std::time::Duration;

use silmari_store::limits::MAX_CHANGES_PER_TRANSACTION;
use silmari_store::prelude::*;

#[test]
fn a_store_that_is_gone_ends_its_subscriptions() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe().unwrap();
    let clone = store.clone();
    drop(store);
    clone
        .conversations()
        .create(NewConversation::titled("last"))
        .unwrap();
    drop(clone);
    assert!(
        matches!(feed.recv(), Some(FeedEvent::Change(_))),
        "queued events are kept"
    );
    assert_eq!(feed.recv(), None);
    assert_eq!(feed.recv_timeout(Duration::from_secs(1)), None);
}

#[test]
fn a_subscriber_on_another_thread_blocks_until_a_change() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe().unwrap();
    let waiter = std::thread::spawn(move || feed.recv());
    std::thread::sleep(Duration::from_millis(50));
    let c = store
        .conversations()
        .create(NewConversation::titled("wake"))
        .unwrap();
    match waiter.join().unwrap() {
        Some(FeedEvent::Change(change)) => assert_eq!(change.id, *c.id.as_uuid()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_huge_transaction_is_one_resync_and_memory_stays_bounded() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe().unwrap();
    store
        .transaction(|tx| {
            for i in 0..=MAX_CHANGES_PER_TRANSACTION {
                tx.files().create(NewFile {
                    filename: format!("{i}.txt"),
                    content_type: "text/plain".into(),
                    size: 1,
                    ..Default::default()
                })?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!(feed.try_recv(), Some(FeedEvent::Resync));
    assert_eq!(feed.try_recv(), None);
    assert_eq!(store.changes_since(feed.started_after()), None, "reload");
}

#[test]
fn changes_since_forgets_what_came_while_nobody_listened() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe().unwrap();
    store
        .conversations()
        .create(NewConversation::titled("a"))
        .unwrap();
    let seen = match feed.try_recv() {
        Some(FeedEvent::Change(c)) => c.seq,
        other => panic!("{other:?}"),
    };
    drop(feed);
    store
        .conversations()
        .create(NewConversation::titled("unseen"))
        .unwrap();
    let again = store.subscribe().unwrap();
    assert_eq!(
        store.changes_since(seen),
        None,
        "the write in between went unrecorded"
    );
    assert_eq!(store.changes_since(again.started_after()), Some(Vec::new()));
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::time::Instant;

    use silmari_store::{Change, ChangeEntity, ChangeKind, Subscription};

    use super::*;

    /// The bound for a change by another process.
    const ACROSS_PROCESSES: Duration = Duration::from_millis(250);

    fn next_within(feed: &Subscription, within: Duration) -> Change {
        match feed.recv_timeout(within) {
            Some(FeedEvent::Change(change)) => change,
            other => panic!("expected a change within {within:?}, got {other:?}"),
        }
    }

    fn raw(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    fn count(path: &Path, table: &str) -> i64 {
        raw(path)
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// The child of `another_process_is_heard_within_250_ms`: one write per
    /// line read from standard input, a line out after each commit.
    fn writer_child(path: &str) {
        let store = Store::open(&common::sqlite_url(Path::new(path))).unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("child"))
            .unwrap();
        println!("CREATED {}", c.id);
        for i in 0..5 {
            let m = store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, format!("line {i}")))
                .unwrap();
            println!("APPENDED {}", m.id);
            std::thread::sleep(Duration::from_millis(100));
        }
        store.conversations().archive(c.id).unwrap();
        println!("ARCHIVED {}", c.id);
    }

    #[test]
    fn another_process_is_heard_within_250_ms() {
        const NAME: &str = "sqlite::another_process_is_heard_within_250_ms";
        if common::in_child() {
            if let Ok(path) = std::env::var(common::CHILD_VAR) {
                writer_child(&path);
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let store = Store::open(&common::sqlite_url(&path)).unwrap();
        let feed = store.subscribe().unwrap();
        let mut child = common::child(NAME, path.to_str().unwrap());
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut heard = Vec::new();
        for line in lines.map(Result::unwrap) {
            // The test harness may print its own text before the child's.
            let words: Vec<&str> = line.split_whitespace().collect();
            let [.., what, id] = words[..] else {
                continue;
            };
            let reported = Instant::now();
            let expected: &[(ChangeEntity, ChangeKind)] = match what {
                "CREATED" => &[(ChangeEntity::Conversation, ChangeKind::Created)],
                "APPENDED" => &[
                    (ChangeEntity::Conversation, ChangeKind::Changed),
                    (ChangeEntity::Message, ChangeKind::Created),
                ],
                "ARCHIVED" => &[(ChangeEntity::Conversation, ChangeKind::Archived)],
                _ => continue,
            };
            let id: uuid::Uuid = id.parse().unwrap();
            for (entity, kind) in expected {
                let change = next_within(&feed, ACROSS_PROCESSES);
                assert_eq!((change.entity, change.kind), (*entity, *kind), "{line}");
                heard.push((change, reported.elapsed()));
            }
            assert_eq!(heard.last().unwrap().0.id, id, "{line}");
        }
        assert!(child.wait().unwrap().success());
        assert_eq!(heard.len(), 1 + 5 * 2 + 1);
        assert!(heard.windows(2).all(|w| w[1].0.seq == w[0].0.seq + 1));
        let slowest = heard.iter().map(|(_, t)| *t).max().unwrap();
        println!("slowest event after the child's line: {slowest:?}");
        assert_eq!(feed.try_recv(), None, "each once");
        // The child logged because this store listened; it stopped listening.
        assert_eq!(count(&path, "change_log"), 7, "a row per transaction");
        drop(feed);
        // The listener unregisters as it stops, soon after the last drop.
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&path, "change_listeners") > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            count(&path, "change_listeners"),
            0,
            "unregistered after the last drop"
        );
    }

    #[test]
    fn an_import_by_the_admin_tool_reaches_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let source = Store::open(&common::sqlite_url(&dir.path().join("source.db"))).unwrap();
        let c = source
            .conversations()
            .create(NewConversation::titled("imported"))
            .unwrap();
        let m = source
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "from a dump"))
            .unwrap();
        let dump = dir.path().join("dump.jsonl");
        source
            .export_jsonl(std::fs::File::create(&dump).unwrap(), |_| {})
            .unwrap();

        let path = dir.path().join("app.db");
        let app = Store::open(&common::sqlite_url(&path)).unwrap();
        let feed = app.subscribe().unwrap();
        let out = std::process::Command::new(common::admin_tool())
            .args([
                "--url",
                &common::sqlite_url(&path),
                "import",
                dump.to_str().unwrap(),
            ])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut seen = Vec::new();
        while let Some(FeedEvent::Change(change)) = feed.recv_timeout(ACROSS_PROCESSES) {
            seen.push((change.entity, change.kind, change.id));
        }
        assert!(
            seen.contains(&(
                ChangeEntity::Conversation,
                ChangeKind::Created,
                *c.id.as_uuid()
            )),
            "{seen:?}"
        );
        assert!(
            seen.contains(&(ChangeEntity::Message, ChangeKind::Created, *m.id.as_uuid())),
            "{seen:?}"
        );
    }

    #[test]
    fn the_admin_tool_watches_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watched.db");
        let store = Store::open(&common::sqlite_url(&path)).unwrap();
        let mut watch = std::process::Command::new(common::admin_tool())
            .args(["--url", &common::sqlite_url(&path), "watch", "--count", "3"])
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It says so once it is subscribed.
        let mut ready = String::new();
        BufReader::new(watch.stderr.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.starts_with("watching"), "{ready}");
        let c = store
            .conversations()
            .create(NewConversation::titled("seen"))
            .unwrap();
        let m = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "hi"))
            .unwrap();
        let out = watch.wait_with_output().unwrap();
        assert!(out.status.success());
        let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary: Vec<(&str, &str, String)> = events
            .iter()
            .map(|e| {
                assert_eq!(e["type"], "change");
                (
                    e["entity"].as_str().unwrap(),
                    e["kind"].as_str().unwrap(),
                    e["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("conversation", "created", c.id.to_string()),
                ("conversation", "changed", c.id.to_string()),
                ("message", "created", m.id.to_string()),
            ]
        );
    }

    #[test]
    fn writers_log_only_while_another_store_listens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let writer = Store::open(&common::sqlite_url(&path)).unwrap();
        writer
            .conversations()
            .create(NewConversation::titled("unheard"))
            .unwrap();
        assert_eq!(
            count(&path, "change_log"),
            0,
            "nobody listens: nothing logged"
        );

        // A store listening for itself alone: still nothing logged.
        let own = writer.subscribe().unwrap();
        writer
            .conversations()
            .create(NewConversation::titled("own"))
            .unwrap();
        assert!(matches!(own.try_recv(), Some(FeedEvent::Change(_))));
        assert_eq!(count(&path, "change_log"), 0);

        // A listener whose process died long ago (its row expired): ignored.
        raw(&path)
            .execute("INSERT INTO change_listeners VALUES ('dead', 0)", [])
            .unwrap();
        writer
            .conversations()
            .create(NewConversation::titled("still unheard"))
            .unwrap();
        assert_eq!(count(&path, "change_log"), 0);

        let other = Store::open(&common::sqlite_url(&path)).unwrap();
        let feed = other.subscribe().unwrap();
        let c = writer
            .conversations()
            .create(NewConversation::titled("heard"))
            .unwrap();
        assert_eq!(count(&path, "change_log"), 1, "one row per transaction");
        assert_eq!(next_within(&feed, ACROSS_PROCESSES).id, *c.id.as_uuid());
        assert_eq!(
            count(&path, "change_listeners"),
            2,
            "the expired row was forgotten"
        );
    }

    #[test]
    fn a_gap_in_the_log_is_a_resync_and_old_rows_are_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gap.db");
        let writer = Store::open(&common::sqlite_url(&path)).unwrap();
        let reader = Store::open(&common::sqlite_url(&path)).unwrap();
        let feed = reader.subscribe().unwrap();
        writer
            .conversations()
            .create(NewConversation::titled("one"))
            .unwrap();
        let first = next_within(&feed, ACROSS_PROCESSES);
        // Rows that another listener would have read were trimmed before
        // this one did: the next row it sees is not the one after its last.
        let conn = raw(&path);
        let last: i64 = conn
            .query_row("SELECT max(seq) FROM change_log", [], |r| r.get(0))
            .unwrap();
        let skipped = format!("cC{}", uuid::Uuid::now_v7().simple());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64;
        conn.execute(
            "INSERT INTO change_log (seq, instance, committed_at, changes) VALUES (?1, 'x', ?2, ?3)",
            rusqlite::params![last + 3, now, skipped],
        )
        .unwrap();
        assert_eq!(feed.recv_timeout(ACROSS_PROCESSES), Some(FeedEvent::Resync));
        assert!(
            matches!(feed.recv_timeout(ACROSS_PROCESSES), Some(FeedEvent::Change(c)) if c.seq == first.seq + 2)
        );
        // Rows older than the retention go at the next renewal (every 5 s).
        let recent = count(&path, "change_log");
        conn.execute(
            "UPDATE change_log SET committed_at = 0 WHERE seq < ?1",
            [last + 3],
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while count(&path, "change_log") > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(recent > 1);
        assert_eq!(
            count(&path, "change_log"),
            1,
            "only the row within the retention is kept"
        );
        // A listener that could not renew in time (its process stopped,
        // the laptop slept): writers stopped logging for it meanwhile, so
        // its next renewal sends a resync.
        conn.execute("UPDATE change_listeners SET expires_at = 0", [])
            .unwrap();
        let mut events = Vec::new();
        while let Some(event) = feed.recv_timeout(Duration::from_secs(15)) {
            events.push(event);
            if events.last() == Some(&FeedEvent::Resync) {
                break;
            }
        }
        assert_eq!(events.last(), Some(&FeedEvent::Resync), "{events:?}");
        assert_eq!(count(&path, "change_listeners"), 1, "registered again");
    }
}
