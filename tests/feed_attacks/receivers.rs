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
