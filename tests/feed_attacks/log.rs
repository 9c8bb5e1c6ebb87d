//! SQLite's `change_log` made hostile (rows that are not text, a row at the
//! largest `seq`, garbage text), trimmed under a busy writer, and the
//! listener's locking and connection: the last subscription dropped inside
//! a transaction, a pool of one connection, a snapshot restored.

use std::thread;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;

use crate::{ACROSS, changes, conv, count, drain, has_change, now_micros, raw, until, url};

/// Whether `events` hold a `Resync`, then the change of `id` after it.
fn resync_then_change(events: &[FeedEvent], id: uuid::Uuid) -> bool {
    events
        .iter()
        .position(|e| *e == FeedEvent::Resync)
        .is_some_and(|at| has_change(&events[at..], id))
}

/// A `change_log` row whose `changes` is a BLOB: a subscribed store's
/// writes (which read the log in their transaction) still succeed, and its
/// subscriber gets a `Resync` for the row and the write's change.
#[test]
fn a_non_text_change_log_row_does_not_fail_a_subscribed_stores_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.db");
    let store = Store::open(&url(&path)).unwrap();
    let feed = store.subscribe().unwrap();
    raw(&path)
        .execute(
            "INSERT INTO change_log (instance, committed_at, changes) VALUES ('evil', ?1, X'00')",
            [now_micros()],
        )
        .unwrap();
    let written = store
        .conversations()
        .create(NewConversation::titled("after the bad row"));
    let id = *written
        .as_ref()
        .expect("a write of the subscribed store")
        .id
        .as_uuid();
    let events = until(&feed, Duration::from_secs(1), |e| {
        e.contains(&FeedEvent::Resync) && has_change(e, id)
    });
    assert!(events.contains(&FeedEvent::Resync), "{events:?}");
    assert!(has_change(&events, id), "{events:?}");
}

/// A `change_log` row whose text is not UTF-8: the listener reads past it
/// (a `Resync` for it), and another store's later change still arrives.
#[test]
fn after_a_non_utf8_change_log_row_other_stores_changes_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile2.db");
    let listener = Store::open(&url(&path)).unwrap();
    let writer = Store::open(&url(&path)).unwrap();
    let feed = listener.subscribe().unwrap();
    raw(&path)
        .execute(
            "INSERT INTO change_log (instance, committed_at, changes) \
             VALUES ('evil', ?1, CAST(X'FFFE' AS TEXT))",
            [now_micros()],
        )
        .unwrap();
    let c = *conv(&writer, "from another store").as_uuid();
    let events = until(&feed, Duration::from_secs(1), |e| resync_then_change(e, c));
    assert!(resync_then_change(&events, c), "{events:?}");
}

/// A row written by hand at the largest `seq` (SQLite then hands out random
/// smaller ones, which no cursor reads): the listener empties the log at
/// its next renewal (every 5 s), resyncs, and hears another store's
/// changes again.
#[test]
fn a_change_log_row_at_the_largest_seq_is_emptied_at_renewal_and_changes_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maxseq.db");
    let listener = Store::open(&url(&path)).unwrap();
    let writer = Store::open(&url(&path)).unwrap();
    let feed = listener.subscribe().unwrap();
    raw(&path)
        .execute(
            "INSERT INTO change_log (seq, instance, committed_at, changes) \
             VALUES (9223372036854775807, 'evil', ?1, 'R')",
            [now_micros()],
        )
        .unwrap();
    // The row itself asks for a reload; the listener's cursor is now at it.
    assert_eq!(
        feed.recv_timeout(Duration::from_secs(1)),
        Some(FeedEvent::Resync)
    );
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut events = Vec::new();
    let mut written = Vec::new();
    while Instant::now() < deadline {
        written.push(*conv(&writer, "after").as_uuid());
        events.extend(drain(&feed, Duration::from_millis(200)));
        if written.iter().any(|id| resync_then_change(&events, *id)) {
            break;
        }
    }
    assert!(
        written.iter().any(|id| resync_then_change(&events, *id)),
        "a Resync, then another store's change, within 12 s: {events:?}"
    );
    assert!(
        count(&path, "SELECT max(seq) FROM change_log") < i64::MAX / 2,
        "the log was started again"
    );
}

/// A store that subscribes after a row at the largest `seq` was written
/// starts the log again as it registers: another store's change arrives
/// within the README's bound.
#[test]
fn a_listener_registering_after_a_row_at_the_largest_seq_hears_changes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maxseq2.db");
    let listener = Store::open(&url(&path)).unwrap();
    let writer = Store::open(&url(&path)).unwrap();
    raw(&path)
        .execute(
            "INSERT INTO change_log (seq, instance, committed_at, changes) \
             VALUES (9223372036854775807, 'evil', ?1, 'R')",
            [now_micros()],
        )
        .unwrap();
    let feed = listener.subscribe().unwrap();
    let c = *conv(&writer, "after").as_uuid();
    let events = until(&feed, ACROSS * 2, |e| has_change(e, c));
    assert!(has_change(&events, c), "{events:?}");
}

/// Garbage in `change_log` (empty, malformed, not this build's text, 1 MiB,
/// a negative `seq`): each unreadable row is a `Resync`, never a panic, and
/// changes of another store and of this one still arrive.
#[test]
fn garbage_change_log_text_is_a_resync_and_changes_still_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let listener = Store::open(&url(&path)).unwrap();
    let writer = Store::open(&url(&path)).unwrap();
    let feed = listener.subscribe().unwrap();
    let conn = raw(&path);
    for text in [
        "",
        ",",
        "R,R",
        "cC",
        "cCzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "uM0123456789abcdef0123456789abcdef",
        "é",
        "cC0123456789abcdef0123456789abcdé",
        &"x".repeat(1 << 20),
    ] {
        conn.execute(
            "INSERT INTO change_log (instance, committed_at, changes) VALUES ('evil', ?1, ?2)",
            rusqlite::params![now_micros(), text],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO change_log (seq, instance, committed_at, changes) VALUES (-5, 'evil', 0, 'R')",
        [],
    )
    .unwrap();
    let c = *conv(&writer, "after garbage").as_uuid();
    let events = until(&feed, Duration::from_secs(1), |e| resync_then_change(e, c));
    assert!(resync_then_change(&events, c), "{events:?}");
    let mine = *conv(&listener, "own write").as_uuid();
    let events = until(&feed, Duration::from_secs(1), |e| has_change(e, mine));
    assert!(has_change(&events, mine), "{events:?}");
}

/// Dropping the last subscription inside a transaction returns at once
/// (well under the busy timeout of 3 s), and the listener unregisters once
/// it can take the write lock: after the transaction.
#[test]
fn dropping_the_last_subscription_inside_a_transaction_returns_at_once_and_unregisters_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drop.db");
    let store = Store::open(&format!("{}?busy_timeout=3", url(&path))).unwrap();
    let feed = store.subscribe().unwrap();
    let listeners = || count(&path, "SELECT count(*) FROM change_listeners");
    assert_eq!(listeners(), 1);
    let mut dropped_in = Duration::ZERO;
    store
        .transaction(|tx| {
            let t = Instant::now();
            drop(feed);
            dropped_in = t.elapsed();
            tx.conversations().create(NewConversation::titled("x"))?;
            Ok::<_, Error>(())
        })
        .unwrap();
    assert!(
        dropped_in < Duration::from_millis(500),
        "dropping a Subscription blocked {dropped_in:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while listeners() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(listeners(), 0, "unregistered after the transaction");
}

/// A pool of one connection: subscribing leaves it to the store's writes
/// (the listener has a connection of its own), and both the store's own
/// write and another store's arrive.
#[test]
fn a_store_with_a_pool_of_one_connection_writes_and_listens_while_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool1.db");
    let store = Store::open(&format!(
        "{}?pool_size=1&max_overflow=0&pool_timeout=2",
        url(&path)
    ))
    .unwrap();
    conv(&store, "works before");
    let feed = store.subscribe().expect("subscribe on a pool of one");
    let own = store
        .conversations()
        .create(NewConversation::titled("while subscribed"))
        .expect("a write while subscribed");
    let other = Store::open(&url(&path)).unwrap();
    let far = *conv(&other, "from another store").as_uuid();
    let events = until(&feed, Duration::from_secs(1), |e| has_change(e, far));
    assert!(has_change(&events, *own.id.as_uuid()), "{events:?}");
    assert!(has_change(&events, far), "{events:?}");
}

/// Rows past the retention (five minutes of streaming's worth) are all
/// trimmed at the listener's first renewal (5 s after subscribing), while a
/// writer logs a transaction per streamed token before, during and after
/// the trim, and none of its writes fails.
#[test]
fn rows_past_the_retention_are_trimmed_at_one_renewal_despite_a_busy_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trim.db");
    let writer = Store::open(&url(&path)).unwrap();
    let c = conv(&writer, "stream");
    let m = writer
        .conversations()
        .append_message(c, NewMessage::new(Role::Assistant, ""))
        .unwrap();
    {
        let mut conn = raw(&path);
        let tx = conn.transaction().unwrap();
        for _ in 0..3000 {
            tx.execute(
                "INSERT INTO change_log (instance, committed_at, changes) VALUES ('old', 0, 'R')",
                [],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let listener = Store::open(&url(&path)).unwrap();
    let _feed = listener.subscribe().unwrap();
    // The writer streams into its reply (a delta a millisecond, as a reply
    // comes in) until the old rows are gone, and on after: the trim (at the
    // renewal, 5 s after subscribing) runs while it writes, and none of its
    // writes fails or waits past its busy timeout.
    let old_left = || {
        count(
            &path,
            "SELECT count(*) FROM change_log WHERE committed_at = 0",
        )
    };
    let (t, deadline) = (Instant::now(), Instant::now() + Duration::from_secs(30));
    let (mut writes, mut slowest, mut trimmed_after) = (0u32, Duration::ZERO, None);
    while trimmed_after.is_none_or(|at| writes < at + 200) {
        assert!(
            Instant::now() < deadline,
            "the old rows are trimmed within a renewal"
        );
        let one = Instant::now();
        writer.conversations().append_to_message(m.id, "x").unwrap();
        slowest = slowest.max(one.elapsed());
        writes += 1;
        if trimmed_after.is_none() && writes % 50 == 0 && old_left() == 0 {
            trimmed_after = Some(writes);
        }
        thread::sleep(Duration::from_millis(1));
    }
    let trimmed_after = trimmed_after.unwrap();
    assert!(
        trimmed_after > 1000,
        "the writer wrote while the rows were kept"
    );
    println!(
        "3,000 rows past the retention trimmed after {:.1} s and {trimmed_after} writes beside \
         them; {writes} writes, none failed, the slowest {slowest:?}",
        t.elapsed().as_secs_f64()
    );
}

/// Restores a snapshot that lacks a conversation written while subscribed;
/// the subscriber's events after the restore, and those of a subscriber of
/// another store on the file (when `with_other_listener`).
fn restore(with_other_listener: bool) -> (Vec<FeedEvent>, Option<Vec<FeedEvent>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restore.db");
    let store = Store::open(&url(&path)).unwrap();
    conv(&store, "in the snapshot");
    // A snapshot of the file at the latest version with that conversation.
    store.migrations().down_to(5).unwrap();
    store.migrations().up().unwrap();
    let snapshot = store
        .migrations()
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|s| s.version == crate::common::LATEST)
        .expect("a snapshot at the latest version");
    let other = Store::open(&url(&path)).unwrap();
    let feed = store.subscribe().unwrap();
    let far = with_other_listener.then(|| other.subscribe().unwrap());
    let gone = conv(&store, "not in the snapshot");
    assert_eq!(changes(&drain(&feed, Duration::from_millis(50))).len(), 1);
    if let Some(far) = &far {
        let heard = until(far, ACROSS * 2, |e| has_change(e, *gone.as_uuid()));
        assert!(has_change(&heard, *gone.as_uuid()), "{heard:?}");
    }
    store.migrations().restore_snapshot(&snapshot.path).unwrap();
    assert!(store.conversations().get(gone).unwrap().is_none());
    let resynced = |e: &[FeedEvent]| e.contains(&FeedEvent::Resync);
    let mine = until(&feed, ACROSS, resynced);
    let theirs = far.map(|far| until(&far, ACROSS * 2, resynced));
    (mine, theirs)
}

/// A snapshot restored while another store on the file listens: the
/// restoring store's subscriber and the other store's both get `Resync`.
#[test]
fn restoring_a_snapshot_resyncs_this_stores_and_another_stores_subscribers() {
    let (mine, theirs) = restore(true);
    assert!(mine.contains(&FeedEvent::Resync), "{mine:?}");
    let theirs = theirs.unwrap();
    assert!(theirs.contains(&FeedEvent::Resync), "{theirs:?}");
}

/// A snapshot restored with the restoring store's subscriber the only one
/// on the file (its writes are not logged): that subscriber gets `Resync`.
#[test]
fn restoring_a_snapshot_resyncs_a_lone_subscriber() {
    let (mine, _) = restore(false);
    assert!(mine.contains(&FeedEvent::Resync), "{mine:?}");
}
