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

/// What one thread believes it wrote: conversations with their messages in
/// order, and files.
#[derive(Default)]
struct Model {
    conversations: HashMap<ConversationId, Vec<MessageId>>,
    files: Vec<FileId>,
}

/// 8 threads, each doing a random mix of every repository operation on its
/// own records (reading everyone's): no error but the expected not-found,
/// and the store ends exactly as a replay of the acknowledged operations says.
pub fn concurrent_random_mix_matches_replay(store: &Store) {
    let operations: u64 = std::env::var("SILMARI_MIX_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("SILMARI_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let models: Vec<Model> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = seed ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let mut next = move |n: u64| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng % n
                    };
                    let mut model = Model::default();
                    let mut gone: Vec<ConversationId> = Vec::new();
                    for i in 0..operations {
                        let mine: Vec<ConversationId> =
                            model.conversations.keys().copied().collect();
                        let pick = |n: u64| mine.get(n as usize % mine.len().max(1)).copied();
                        let conversations = store.conversations();
                        match next(10) {
                            0 | 1 => {
                                let c = conversations
                                    .create(NewConversation::titled(format!("t{t} #{i}")))
                                    .expect("create");
                                model.conversations.insert(c.id, Vec::new());
                            }
                            2 | 3 => {
                                if let Some(id) = pick(next(100)) {
                                    let m = conversations
                                        .append_message(
                                            id,
                                            NewMessage::new(Role::User, format!("{i}")),
                                        )
                                        .expect("append");
                                    model.conversations.get_mut(&id).expect("mine").push(m.id);
                                }
                            }
                            4 => {
                                if let Some(id) = pick(next(100)) {
                                    let batch = vec![
                                        NewMessage::new(Role::Assistant, "b");
                                        1 + next(5) as usize
                                    ];
                                    let made =
                                        conversations.append_messages(id, batch).expect("batch");
                                    model
                                        .conversations
                                        .get_mut(&id)
                                        .expect("mine")
                                        .extend(made.iter().map(|m| m.id));
                                }
                            }
                            5 => {
                                if let Some(id) = pick(next(100)) {
                                    let mut c =
                                        conversations.get(id).expect("get").expect("mine exists");
                                    if !c.messages.is_empty() {
                                        c.messages.remove(next(c.messages.len() as u64) as usize);
                                    }
                                    c.title = format!("updated {i}");
                                    let stored = conversations.update(&c).expect("update");
                                    model
                                        .conversations
                                        .insert(id, stored.messages.iter().map(|m| m.id).collect());
                                }
                            }
                            6 => {
                                if let Some(id) = pick(next(100)) {
                                    assert!(conversations.delete(id).expect("delete"));
                                    model.conversations.remove(&id);
                                    gone.push(id);
                                }
                            }
                            7 => {
                                // The expected not-found: a conversation this thread deleted.
                                if let Some(id) = gone.last() {
                                    let err = conversations
                                        .append_message(*id, NewMessage::new(Role::User, "late"))
                                        .unwrap_err();
                                    assert!(err.is_not_found(), "{err:?}");
                                }
                            }
                            8 => {
                                let f = store
                                    .files()
                                    .create(crate::support::new_file("mix.txt"))
                                    .expect("file");
                                model.files.push(f.id);
                                if next(2) == 0 {
                                    let id = model
                                        .files
                                        .swap_remove(next(model.files.len() as u64) as usize);
                                    assert!(store.files().delete(id).expect("delete file"));
                                }
                            }
                            _ => {
                                conversations
                                    .list(ConversationQuery::recent(20))
                                    .expect("list");
                                store.files().list(PageRequest::first(20)).expect("files");
                            }
                        }
                    }
                    model
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no thread panicked"))
            .collect()
    });
    // The replay: every thread's acknowledged operations, exactly.
    let mut expected: HashMap<ConversationId, Vec<MessageId>> = HashMap::new();
    let mut files: Vec<FileId> = Vec::new();
    for model in models {
        expected.extend(model.conversations);
        files.extend(model.files);
    }
    let all = store.conversations().list_all().unwrap();
    assert_eq!(all.len(), expected.len(), "conversations");
    for c in &all {
        let ids: Vec<MessageId> = c.messages.iter().map(|m| m.id).collect();
        assert_eq!(Some(&ids), expected.get(&c.id), "messages of {}", c.id);
    }
    let summaries = store
        .conversations()
        .list(ConversationQuery::recent(1000))
        .unwrap();
    for s in &summaries.items {
        assert_eq!(
            s.message_count as usize,
            expected[&s.id].len(),
            "message_count of {}",
            s.id
        );
    }
    let mut stored_files: Vec<FileId> = store
        .files()
        .list(PageRequest::first(1000))
        .unwrap()
        .items
        .iter()
        .map(|f| f.id)
        .collect();
    stored_files.sort();
    files.sort();
    assert_eq!(stored_files, files);
    let counts = store.counts().unwrap();
    assert_eq!(
        counts.messages as usize,
        expected.values().map(Vec::len).sum::<usize>(),
        "no orphan messages"
    );
}
