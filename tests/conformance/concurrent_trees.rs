//! Tree writes racing on one conversation: appends, branches, switches,
//! edits, streamed growth and deletes from several threads at once leave
//! one sound tree (no message with a lost parent, one current branch),
//! counts that agree, and every acknowledged message that nobody deleted.

use std::collections::HashSet;
use std::sync::{Arc, Barrier, Mutex};

use silmari_store::prelude::*;

use crate::common::Rng;

const THREADS: u64 = 4;
const OPERATIONS: usize = 60;

pub fn concurrent_tree_writes_keep_one_sound_tree(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("racing"))
        .unwrap();
    let first = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "start"))
        .unwrap();
    // Every message some thread was told exists, and those some thread deleted.
    let known = Arc::new(Mutex::new(vec![first.id]));
    let deleted = Arc::new(Mutex::new(HashSet::new()));
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let mut seeds = Rng::from_env();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, known, deleted, barrier) = (
                store.clone(),
                known.clone(),
                deleted.clone(),
                barrier.clone(),
            );
            let mut rng = Rng::seeded(seeds.next_u64());
            std::thread::spawn(move || {
                barrier.wait();
                let chats = store.conversations();
                for i in 0..OPERATIONS {
                    let pick = {
                        let known = known.lock().unwrap();
                        known[rng.below(known.len() as u64) as usize]
                    };
                    let text = format!("{t}:{i}");
                    let outcome = match rng.below(7) {
                        0 | 1 => chats
                            .append_message(c.id, NewMessage::new(Role::User, text))
                            .map(|m| Some(m.id)),
                        2 => chats
                            .branch_from(c.id, Some(pick), NewMessage::new(Role::Assistant, text))
                            .map(|m| Some(m.id)),
                        3 => chats.switch_branch(pick).map(|_| None),
                        4 => chats.append_to_message(pick, " +").map(|_| None),
                        5 => chats
                            .edit_message(pick, MessageEdit::new().content(text))
                            .map(|_| None),
                        _ => chats.delete_message(pick).map(|was| {
                            if was {
                                deleted.lock().unwrap().insert(pick);
                            }
                            None
                        }),
                    };
                    match outcome {
                        Ok(Some(id)) => known.lock().unwrap().push(id),
                        Ok(None) => {}
                        // Another thread deleted the message this one
                        // picked: it is gone for good.
                        Err(Error::NotFound { .. }) => {
                            let gone = chats.alternatives(pick);
                            assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
                        }
                        Err(e) => panic!("thread {t}, operation {i}: {e:?}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no thread panicked");
    }

    let report = store.check().unwrap();
    assert_eq!(report.tree_mismatches, 0, "{report:?}");
    assert!(report.is_healthy(), "{report:?}");
    let tree = store.conversations().tree(c.id).unwrap().unwrap();
    let stored: HashSet<MessageId> = tree.messages.iter().map(|m| m.id).collect();
    let deleted = deleted.lock().unwrap();
    let expected: HashSet<MessageId> = known
        .lock()
        .unwrap()
        .iter()
        .filter(|id| !deleted.contains(*id))
        .copied()
        .collect();
    assert_eq!(
        stored, expected,
        "every acknowledged message nobody deleted, and no other"
    );
    assert_eq!(tree.conversation.message_count as usize, stored.len());
    // The current branch is one chain, and it is what `get` returns.
    let path: Vec<MessageId> = tree.current_path().iter().map(|m| m.id).collect();
    let got: Vec<MessageId> = store
        .conversations()
        .get(c.id)
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, path);
    assert_eq!(tree.current_leaf, path.last().copied());
}

/// Two writers delete the same message at once: one deletes it, the other
/// finds it gone (`false` or `NotFound`), never an error of the database
/// (on PostgreSQL the second once tripped the message count's CHECK), and
/// the count stays right.
pub fn concurrent_deletes_of_one_message_agree(store: &Store) {
    for round in 0..20 {
        let c = store
            .conversations()
            .create(NewConversation::titled("twice"))
            .unwrap();
        let only = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "only"))
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store.conversations().delete_message(only.id)
                })
            })
            .collect();
        let outcomes: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("no thread panicked"))
            .collect();
        let deleted = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
        assert_eq!(deleted, 1, "round {round}: {outcomes:?}");
        for outcome in &outcomes {
            assert!(
                matches!(outcome, Ok(_) | Err(Error::NotFound { .. })),
                "round {round}: {outcome:?}"
            );
        }
        let after = store.conversations().tree(c.id).unwrap().unwrap();
        assert!(after.messages.is_empty());
        assert_eq!(after.conversation.message_count, 0, "round {round}");
    }
}
