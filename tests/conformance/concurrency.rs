use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use silmari_store::prelude::*;

const THREADS: usize = 8;
const PER_THREAD: usize = 40;

pub fn concurrent_appends_lose_nothing(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("busy"))
        .unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        store
                            .conversations()
                            .append_message(c.id, NewMessage::new(Role::User, format!("{t}:{i}")))
                            .map(|m| m.id)
                    })
                    .collect::<silmari_store::Result<Vec<MessageId>>>()
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for h in handles {
        acknowledged.extend(
            h.join()
                .expect("thread did not panic")
                .expect("every append succeeds"),
        );
    }
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages.len(), THREADS * PER_THREAD);
    let mut stored_ids: Vec<MessageId> = stored.messages.iter().map(|m| m.id).collect();
    stored_ids.sort();
    acknowledged.sort();
    assert_eq!(
        stored_ids, acknowledged,
        "every acknowledged append is stored, once"
    );
    // Each thread's messages keep the order it appended them in.
    let mut next: HashMap<&str, usize> = HashMap::new();
    for m in &stored.messages {
        let (t, i) = m.content.split_once(':').unwrap();
        let expected = next.entry(t).or_default();
        assert_eq!(
            i.parse::<usize>().unwrap(),
            *expected,
            "thread {t} out of order"
        );
        *expected += 1;
    }
    let summary = &store
        .conversations()
        .list(ConversationQuery::recent(1))
        .unwrap()
        .items[0];
    assert_eq!(summary.message_count as usize, THREADS * PER_THREAD);
}

pub fn concurrent_stores_are_clones(store: &Store) {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    assert_send_sync(store);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let c = store
                    .conversations()
                    .create(NewConversation::titled(format!("t{i}")))
                    .unwrap();
                store.transaction(|tx| {
                    tx.conversations()
                        .append_message(c.id, NewMessage::new(Role::User, "x"))
                        .map(drop)
                })
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    assert_eq!(store.conversations().list_all().unwrap().len(), 4);
}
