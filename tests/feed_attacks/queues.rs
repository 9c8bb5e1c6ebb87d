//! Subscription semantics: who is woken, catching up after `Lagged` as the
//! README does, where a `Resync` that finds the queue full lands, extreme
//! arguments, subscribe/unsubscribe churn, the store dropped under a
//! waiting receiver, and a write racing `subscribe`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use silmari_store::DEFAULT_CAPACITY;
use silmari_store::limits::{KEPT_EVENTS, MAX_CHANGES_PER_TRANSACTION, MAX_FEED_CAPACITY};
use silmari_store::prelude::*;
use uuid::Uuid;

use crate::{changes, conv, count, drain, has_change, new_file, raw, url};

/// Two threads waiting in `recv_timeout` on one (shared) subscription: a
/// commit of two changes wakes both, each gets one event at once (with
/// `recv()`, a receiver left asleep would sleep for good).
#[test]
fn a_two_change_commit_wakes_both_receivers_waiting_on_one_subscription() {
    let store = Store::open("memory://").unwrap();
    let c = conv(&store, "shared");
    let feed = store.subscribe().unwrap();
    let (a, b) = thread::scope(|s| {
        let wait = || {
            let t = Instant::now();
            let event = feed.recv_timeout(Duration::from_secs(3));
            (event.is_some(), t.elapsed())
        };
        let a = s.spawn(wait);
        let b = s.spawn(wait);
        thread::sleep(Duration::from_millis(300));
        // One transaction, two changes: the conversation and the message.
        store
            .conversations()
            .append_message(c, NewMessage::new(Role::User, "two events"))
            .unwrap();
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.0 && b.0, "both got an event: {a:?} {b:?}");
    let slowest = a.1.max(b.1);
    assert!(
        slowest < Duration::from_secs(1),
        "a receiver slept {slowest:?} with an event queued"
    );
}

/// The README's loop on a queue of one: it tracks `last` (from
/// `started_after`), catches up on `Lagged` with `changes_since(last)`
/// while another write lands between reading `Lagged` and catching up, and
/// skips a change whose `seq` is not above `last`. Each change is handled
/// exactly once, in commit order.
#[test]
fn the_readme_catch_up_after_lagged_handles_each_change_once_in_order() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe_with_capacity(1).unwrap();
    let mut written: Vec<Uuid> = (0..3)
        .map(|i| *conv(&store, &format!("c{i}")).as_uuid())
        .collect();
    let mut last = feed.started_after();
    let mut handled: Vec<(u64, Uuid)> = Vec::new();
    let (mut lagged, mut skipped) = (0, 0);
    while let Some(event) = feed.recv_timeout(Duration::from_millis(100)) {
        let changes = match event {
            FeedEvent::Change(change) => vec![change],
            FeedEvent::Lagged { .. } => {
                lagged += 1;
                if lagged == 1 {
                    // Another thread's write, between reading `Lagged` and
                    // catching up (in line, so it is deterministic).
                    written.push(*conv(&store, "meanwhile").as_uuid());
                }
                store
                    .changes_since(last)
                    .expect("the missed changes are kept")
            }
            FeedEvent::Resync => panic!("nothing here asks for a reload"),
        };
        for change in changes {
            if change.seq <= last {
                skipped += 1;
                continue;
            }
            last = change.seq;
            handled.push((change.seq, change.id));
        }
    }
    assert_eq!(lagged, 1, "a queue of one lags on three changes");
    assert!(
        skipped > 0,
        "the catch-up and the queue overlapped (the case the filter is for)"
    );
    let ids: Vec<Uuid> = handled.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, written, "each change once, in commit order");
    assert!(handled.windows(2).all(|w| w[0].0 < w[1].0), "{handled:?}");
}

/// A transaction too large to list (one `Resync`) writes to a full queue
/// of one; a change commits after it. The subscriber reads what was queued,
/// then the `Resync`, never the later change before it (the reload covers
/// it); a change written after that arrives as usual.
#[test]
fn a_resync_on_a_full_queue_comes_after_the_queued_events_and_before_later_changes() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe_with_capacity(1).unwrap();
    let first = conv(&store, "first");
    store
        .transaction(|tx| {
            for i in 0..=MAX_CHANGES_PER_TRANSACTION {
                tx.files().create(new_file(&format!("{i}.txt")))?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    let later = conv(&store, "later");
    let name = |e: FeedEvent| match e {
        FeedEvent::Change(c) if c.id == *first.as_uuid() => "first".to_owned(),
        FeedEvent::Change(c) if c.id == *later.as_uuid() => "later".to_owned(),
        other => format!("{other:?}"),
    };
    let order: Vec<String> = std::iter::from_fn(|| feed.try_recv()).map(name).collect();
    assert_eq!(order, ["first", "Resync"], "queued events, then the resync");
    let after = conv(&store, "after");
    let events = drain(&feed, Duration::from_millis(50));
    assert!(
        matches!(&events[..], [FeedEvent::Change(c)] if c.id == *after.as_uuid()),
        "changes resume after the resync: {events:?}"
    );
}

/// A transaction of more changes than the store keeps for
/// `changes_since` (but few enough to be listed): a subscriber with room
/// for them all gets every one, numbered without a gap, in the order
/// written; one with the default queue gets its fill, then `Lagged` from
/// the first it missed; `changes_since` answers only from the kept ones.
#[test]
fn a_transaction_larger_than_the_kept_events_reaches_a_roomy_subscriber_whole() {
    let store = Store::open("memory://").unwrap();
    let count = KEPT_EVENTS.max(DEFAULT_CAPACITY) + 100;
    let roomy = store.subscribe_with_capacity(count).unwrap();
    let default = store.subscribe().unwrap();
    let written: Vec<Uuid> = store
        .transaction(|tx| {
            (0..count)
                .map(|i| {
                    Ok(*tx
                        .files()
                        .create(new_file(&format!("{i}.txt")))?
                        .id
                        .as_uuid())
                })
                .collect::<Result<Vec<_>, Error>>()
        })
        .unwrap();
    let got = changes(&std::iter::from_fn(|| roomy.try_recv()).collect::<Vec<_>>());
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), written);
    let first = roomy.started_after() + 1;
    assert!(got.iter().zip(first..).all(|(c, seq)| c.seq == seq));
    let events: Vec<FeedEvent> = std::iter::from_fn(|| default.try_recv()).collect();
    assert_eq!(events.len(), DEFAULT_CAPACITY + 1);
    assert_eq!(
        events.last(),
        Some(&FeedEvent::Lagged {
            missed_from: first + DEFAULT_CAPACITY as u64
        })
    );
    let last = got.last().unwrap().seq;
    assert!(store.changes_since(first - 1).is_none(), "not all kept");
    let tail = store.changes_since(last - 10).expect("the newest are kept");
    assert_eq!(tail, got[got.len() - 10..]);
}

/// A `Resync` while the subscriber is lagged (it has not read `Lagged`
/// yet) is reported in place of `Lagged`, after the queued events; the
/// changes after it are covered by the reload, not queued.
#[test]
fn a_resync_while_lagged_is_reported_in_place_of_lagged() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe_with_capacity(1).unwrap();
    let queued = conv(&store, "queued");
    conv(&store, "missed");
    store
        .transaction(|tx| {
            for i in 0..=MAX_CHANGES_PER_TRANSACTION {
                tx.files().create(new_file(&format!("{i}.txt")))?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
    conv(&store, "covered by the reload");
    let events: Vec<FeedEvent> = std::iter::from_fn(|| feed.try_recv()).collect();
    assert!(
        matches!(&events[..], [FeedEvent::Change(c), FeedEvent::Resync] if c.id == *queued.as_uuid()),
        "{events:?}"
    );
}

/// Extreme arguments are refused or answered, never a panic: a `seq` not
/// delivered yet, capacities out of range, a zero and an endless timeout.
#[test]
fn extreme_arguments_are_refused_or_answered() {
    let store = Store::open("memory://").unwrap();
    assert!(store.changes_since(u64::MAX).is_none());
    assert!(store.subscribe_with_capacity(usize::MAX).is_err());
    assert!(store.subscribe_with_capacity(0).is_err());
    let feed = store.subscribe_with_capacity(MAX_FEED_CAPACITY).unwrap();
    assert_eq!(feed.recv_timeout(Duration::ZERO), None);
    let c = conv(&store, "x");
    assert!(matches!(
        feed.recv_timeout(Duration::MAX),
        Some(FeedEvent::Change(x)) if x.id == *c.as_uuid()
    ));
    assert_eq!(store.changes_since(0).map(|v| v.len()), Some(1));
}

/// Subscriptions made and dropped in a loop while a writer writes (memory
/// and an SQLite file): no deadlock, and a subscriber present throughout
/// sees every write once, in order.
#[test]
#[cfg(feature = "sqlite")]
fn a_steady_subscriber_sees_every_write_once_in_order_during_subscription_churn() {
    let dir = tempfile::tempdir().unwrap();
    for store in [
        Store::open("memory://").unwrap(),
        Store::open(&url(&dir.path().join("churn.db"))).unwrap(),
    ] {
        let steady = store.subscribe().unwrap();
        let done = AtomicBool::new(false);
        let turns = AtomicUsize::new(0);
        let (written, churned) = thread::scope(|s| {
            let churn = s.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    let a = store.subscribe_with_capacity(2).unwrap();
                    let _ = a.try_recv();
                    let _ = store.changes_since(a.started_after());
                    drop(a);
                    turns.fetch_add(1, Ordering::SeqCst);
                }
            });
            let writer = s.spawn(|| {
                (0..200)
                    .map(|i| {
                        // Every 20 writes wait for a subscription made and
                        // dropped since: the churn overlaps the writes
                        // however the threads are scheduled (200 in-memory
                        // writes take less than a millisecond).
                        if i % 20 == 0 {
                            let seen = turns.load(Ordering::SeqCst);
                            let deadline = Instant::now() + Duration::from_secs(30);
                            while turns.load(Ordering::SeqCst) == seen {
                                assert!(Instant::now() < deadline, "the churn goes on");
                                thread::yield_now();
                            }
                        }
                        *conv(&store, &format!("{i}")).as_uuid()
                    })
                    .collect::<Vec<_>>()
            });
            let written = writer.join().unwrap();
            done.store(true, Ordering::SeqCst);
            churn.join().unwrap();
            (written, turns.load(Ordering::SeqCst))
        });
        assert!(churned >= 10, "subscriptions churned during the writes");
        let got: Vec<Uuid> = changes(&drain(&steady, Duration::from_millis(200)))
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(got, written);
    }
}

/// The store dropped while a receiver waits in `recv` (SQLite file): `recv`
/// returns `None`, and the listener has unregistered by the time the drop
/// returns.
#[test]
#[cfg(feature = "sqlite")]
fn dropping_the_store_ends_a_waiting_recv_and_unregisters_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.db");
    let store = Store::open(&url(&path)).unwrap();
    let feed = store.subscribe().unwrap();
    assert_eq!(count(&path, "SELECT count(*) FROM change_listeners"), 1);
    let waiter = thread::spawn(move || feed.recv());
    thread::sleep(Duration::from_millis(100));
    drop(store);
    assert_eq!(waiter.join().unwrap(), None);
    assert_eq!(count(&path, "SELECT count(*) FROM change_listeners"), 0);
}

/// One round of a write racing `subscribe`: a transaction holds the write
/// lock, a writer queues for it, `subscribe` begins, the lock is released.
/// `Some(heard)` when the write provably committed after `subscribe`
/// returned (its row was not there yet), else `None`.
fn subscribe_race_round(
    store: &Store,
    round: usize,
    committed: &dyn Fn(&str) -> bool,
) -> Option<bool> {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let store = store.clone();
        thread::spawn(move || {
            store
                .transaction(|_tx| {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    Ok::<_, Error>(())
                })
                .unwrap()
        })
    };
    started_rx.recv().unwrap();
    let title = format!("racer {round}");
    let writer = {
        let store = store.clone();
        let title = title.clone();
        thread::spawn(move || {
            store
                .conversations()
                .create(NewConversation::titled(title))
                .unwrap()
        })
    };
    // The writer waits for the lock; then subscribe does too.
    thread::sleep(Duration::from_millis(30));
    let subscriber = {
        let store = store.clone();
        thread::spawn(move || store.subscribe().unwrap())
    };
    thread::sleep(Duration::from_millis(30));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let feed = subscriber.join().unwrap();
    let after_subscribe = !committed(&title);
    let created = writer.join().unwrap();
    let heard = has_change(
        &drain(&feed, Duration::from_millis(300)),
        *created.id.as_uuid(),
    );
    after_subscribe.then_some(heard)
}

/// A write that was queued for the write lock while `subscribe` ran, and
/// committed after it returned, is delivered ("every change committed
/// after this returns arrives"). Rounds go on until 15 writes provably
/// committed after `subscribe` returned (at most 60 rounds).
#[test]
#[cfg(feature = "sqlite")]
fn a_write_queued_for_the_lock_during_subscribe_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("race.db");
    let store = Store::open(&url(&path)).unwrap();
    let probe = raw(&path);
    let committed = |title: &str| {
        probe
            .query_row(
                "SELECT count(*) FROM conversations WHERE title = ?1",
                [title],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            > 0
    };
    let (mut provable, mut lost) = (0, 0);
    let mut rounds = 0;
    while rounds < 60 && provable < 15 {
        if let Some(heard) = subscribe_race_round(&store, rounds, &committed) {
            provable += 1;
            lost += usize::from(!heard);
        }
        rounds += 1;
    }
    println!("{provable} of {rounds} rounds committed after subscribe returned");
    assert!(
        provable > 0,
        "no round had the write commit after subscribe returned"
    );
    assert_eq!(
        lost, 0,
        "{lost} of {provable} writes committed after subscribe() returned were never delivered"
    );
}
