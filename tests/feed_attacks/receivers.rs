//! Receivers take everything queued at once and hand it out one event at a
//! time: events taken but not read yet still count against the capacity,
//! and a receiver waiting (napping or parked) holds no lock that another
//! receiver of the same subscription needs.

use std::thread;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;

use crate::conv;

/// The id of the change `event` reports (panics on anything else).
fn id(event: Option<FeedEvent>) -> uuid::Uuid {
    match event {
        Some(FeedEvent::Change(c)) => c.id,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// A queue of three, full; one read takes all three and hands out the
/// first. Room is then for exactly one more: the fifth change is lagged,
/// reported after the four read, and the feed goes on after it.
#[test]
fn events_taken_but_unread_count_against_the_capacity() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe_with_capacity(3).unwrap();
    let first: Vec<_> = (0..3).map(|i| conv(&store, &format!("c{i}"))).collect();
    assert_eq!(id(feed.try_recv()), *first[0].as_uuid());
    let fourth = conv(&store, "fits: two taken and unread, one queued");
    let fifth = conv(&store, "one too many");
    let fifth_seq = store
        .changes_since(feed.started_after())
        .unwrap()
        .into_iter()
        .find(|c| c.id == *fifth.as_uuid())
        .unwrap()
        .seq;
    assert_eq!(id(feed.recv_timeout(Duration::ZERO)), *first[1].as_uuid());
    assert_eq!(id(feed.try_recv()), *first[2].as_uuid());
    assert_eq!(id(feed.try_recv()), *fourth.as_uuid());
    assert_eq!(
        feed.try_recv(),
        Some(FeedEvent::Lagged {
            missed_from: fifth_seq
        })
    );
    let sixth = conv(&store, "after the lag");
    assert_eq!(id(feed.try_recv()), *sixth.as_uuid());
    assert_eq!(feed.try_recv(), None);
}

/// One thread waits in `recv` on a subscription while another calls
/// `try_recv` on it: the `try_recv` answers at once (`None`, nothing is
/// queued), and the waiting receiver gets the next write's event.
#[test]
fn try_recv_answers_at_once_while_another_thread_waits_in_recv() {
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe().unwrap();
    thread::scope(|s| {
        let waiting = s.spawn(|| feed.recv_timeout(Duration::from_secs(10)));
        thread::sleep(Duration::from_millis(100));
        for _ in 0..100 {
            let t = Instant::now();
            assert_eq!(feed.try_recv(), None);
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "try_recv waited {:?} for another receiver",
                t.elapsed()
            );
        }
        let c = conv(&store, "for the waiting receiver");
        assert_eq!(id(waiting.join().unwrap()), *c.as_uuid());
    });
}

/// A steady writer and a receiver taking its events in batches: every
/// event arrives once, in `seq` order, with no lag on a queue large enough
/// for the whole run.
#[test]
fn a_batching_receiver_sees_every_event_of_a_steady_writer_once_in_order() {
    const WRITES: usize = 5_000;
    let store = Store::open("memory://").unwrap();
    let feed = store.subscribe_with_capacity(4 * WRITES).unwrap();
    let seqs = thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut seqs = Vec::new();
            while seqs.len() < WRITES {
                match feed.recv_timeout(Duration::from_secs(10)) {
                    Some(FeedEvent::Change(c)) => seqs.push(c.seq),
                    other => panic!("expected a change, got {other:?}"),
                }
            }
            seqs
        });
        for i in 0..WRITES {
            conv(&store, &format!("c{i}"));
        }
        reader.join().unwrap()
    });
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "in order, once");
    assert_eq!(feed.try_recv(), None);
}

const DESTRUCTOR_CHILD: &str =
    "receivers::a_write_from_a_thread_local_destructor_is_recorded_and_delivered";

/// Writes with a subscriber from a thread-local's destructor at thread
/// exit (a per-thread guard that records something on the way out), a
/// single write and a transaction, on a thread whose thread-locals of the
/// store were first used after the guard's, so are destroyed before it:
/// the writes succeed and are delivered. (The random source of new ids, in
/// the `uuid` crate, is a thread-local too: it has been used on the thread
/// before the guard, as by any earlier id made there.) Run in a child
/// process: a panic in a thread-local's destructor aborts the process.
#[test]
fn a_write_from_a_thread_local_destructor_is_recorded_and_delivered() {
    use std::cell::RefCell;
    struct Guard(Option<Store>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(store) = self.0.take() {
                conv(&store, "from a destructor");
                store
                    .transaction(|tx| {
                        tx.conversations()
                            .create(NewConversation::titled("a transaction"))
                    })
                    .unwrap();
                println!("GUARD WROTE");
            }
        }
    }
    thread_local! {
        static GUARD: RefCell<Guard> = const { RefCell::new(Guard(None)) };
    }
    if crate::common::in_child() {
        let store = Store::open("memory://").unwrap();
        let feed = store.subscribe().unwrap();
        thread::spawn(move || {
            uuid::Uuid::now_v7();
            GUARD.with(|g| g.borrow_mut().0 = Some(store.clone()));
            // The store's thread-locals are first used after the guard's.
            conv(&store, "on the thread");
        })
        .join()
        .unwrap();
        let events = crate::drain(&feed, Duration::from_millis(100));
        println!("EVENTS {}", events.len());
        return;
    }
    let stdout = crate::common::child_stdout(DESTRUCTOR_CHILD, "1");
    assert!(
        stdout.contains("GUARD WROTE") && stdout.contains("EVENTS 3"),
        "{stdout}"
    );
}

/// How many events `feed` holds unread (queued, or taken and not handed
/// out), as its `Debug` shows them.
fn unread(feed: &silmari_store::Subscription) -> usize {
    let shown = format!("{feed:?}");
    let at = shown.find("queued: ").expect("queued in Debug") + "queued: ".len();
    shown[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count")
}

/// Writes `k` conversations in one transaction.
fn write(store: &Store, k: usize) {
    store
        .transaction(|tx| {
            for i in 0..k {
                tx.conversations()
                    .create(NewConversation::titled(format!("w{i}")))?;
            }
            Ok::<_, Error>(())
        })
        .unwrap();
}

/// One receiver against a model of the capacity rule (at most `capacity`
/// unread, then everything dropped from the first that did not fit until
/// the `Lagged` is read), over random transactions of 1–4 changes and
/// reads, for capacities 1 to 4: every event as the model says, and the
/// unread count exact after every step (by a second reviewer).
#[test]
fn a_receiver_follows_the_capacity_rule_to_the_event() {
    const LAGGED: u64 = 1 << 62;
    for capacity in 1..=4_usize {
        for seed in 1..=40_u64 {
            let store = Store::open("memory://").unwrap();
            let feed = store.subscribe_with_capacity(capacity).unwrap();
            let mut rng = crate::common::Rng::seeded(seed * 7_919 + capacity as u64);
            let (mut model, mut missed) = (std::collections::VecDeque::new(), None);
            let mut seq = feed.started_after();
            for step in 0..300 {
                let at = format!("capacity {capacity}, seed {seed}, step {step}");
                if rng.below(2) == 0 {
                    let k = 1 + rng.below(4) as usize;
                    write(&store, k);
                    for _ in 0..k {
                        seq += 1;
                        if missed.is_none() && model.len() >= capacity {
                            missed = Some(seq);
                        } else if missed.is_none() {
                            model.push_back(seq);
                        }
                    }
                } else {
                    let want = model
                        .pop_front()
                        .or_else(|| missed.take().map(|m| m | LAGGED));
                    let got = match feed.try_recv() {
                        Some(FeedEvent::Change(c)) => Some(c.seq),
                        Some(FeedEvent::Lagged { missed_from }) => Some(missed_from | LAGGED),
                        None => None,
                        other => panic!("{at}: {other:?}"),
                    };
                    assert_eq!(got, want, "{at}");
                }
                assert_eq!(unread(&feed), model.len(), "{at}");
            }
        }
    }
}

/// Receivers on 1–3 threads sharing a subscription of capacity 1, 2, 3 or
/// 8 against a writer committing 1–3 changes at a time: never more than
/// the capacity unread, no change twice, each thread's events in order,
/// and every change not received announced by a `Lagged` at its place.
#[test]
fn racing_receivers_never_hold_more_than_the_capacity() {
    for capacity in [1_usize, 2, 3, 8] {
        for threads in 1..=3 {
            let store = Store::open("memory://").unwrap();
            let feed = std::sync::Arc::new(store.subscribe_with_capacity(capacity).unwrap());
            let start = feed.started_after();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stopped = |stop: &std::sync::atomic::AtomicBool| {
                stop.load(std::sync::atomic::Ordering::Relaxed)
            };
            let most_unread = thread::spawn({
                let (feed, stop) = (feed.clone(), stop.clone());
                move || {
                    let mut most = 0;
                    while !stopped(&stop) {
                        most = most.max(unread(&feed));
                    }
                    most
                }
            });
            let receivers: Vec<_> = (0..threads)
                .map(|r| {
                    let (feed, stop) = (feed.clone(), stop.clone());
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        while !stopped(&stop) {
                            let event = if r % 2 == 0 {
                                feed.try_recv()
                            } else {
                                feed.recv_timeout(Duration::from_micros(200))
                            };
                            match event {
                                Some(FeedEvent::Change(c)) => got.push((c.seq, false)),
                                Some(FeedEvent::Lagged { missed_from }) => {
                                    got.push((missed_from, true));
                                }
                                Some(other) => panic!("{other:?}"),
                                None => {}
                            }
                        }
                        got
                    })
                })
                .collect();
            let (until, mut written) = (Instant::now() + Duration::from_millis(300), 0);
            while Instant::now() < until {
                let k = 1 + (written % 3) as usize;
                write(&store, k);
                written += k as u64;
            }
            thread::sleep(Duration::from_millis(50));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let at = format!("capacity {capacity}, {threads} receivers");
            let mut all = Vec::new();
            for receiver in receivers {
                let got = receiver.join().unwrap();
                for pair in got.windows(2) {
                    let (before, after) = (pair[0], pair[1]);
                    // A lag may be followed by the change at its place.
                    let ordered = before.0 < after.0 || (before.1 && before.0 <= after.0);
                    assert!(ordered, "{at}: {pair:?}");
                }
                all.extend(got);
            }
            while let Some(event) = feed.try_recv() {
                match event {
                    FeedEvent::Change(c) => all.push((c.seq, false)),
                    FeedEvent::Lagged { missed_from } => all.push((missed_from, true)),
                    other => panic!("{other:?}"),
                }
            }
            all.sort_unstable();
            let changes: Vec<u64> = all.iter().filter(|e| !e.1).map(|e| e.0).collect();
            let lags: Vec<u64> = all.iter().filter(|e| e.1).map(|e| e.0).collect();
            let mut distinct = changes.clone();
            distinct.dedup();
            assert_eq!(distinct.len(), changes.len(), "{at}: a change twice");
            let mut expected = start + 1;
            for &seq in &changes {
                assert!(
                    seq == expected || lags.contains(&expected),
                    "{at}: {expected}..{seq} missing, unannounced"
                );
                expected = seq + 1;
            }
            assert!(
                expected == start + written + 1 || lags.contains(&expected),
                "{at}"
            );
            let most = most_unread.join().unwrap();
            assert!(most <= capacity, "{at}: {most} unread");
        }
    }
}
