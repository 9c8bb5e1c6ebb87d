//! Searches newest first whatever order the texts were written in. SQLite
//! reads its index newest rowid first and stops where its blocks of rowids
//! say nothing further down is newer; texts written out of time order (old
//! conversations imported after newer ones, an old message edited since)
//! must still come in their place, on every backend.

use silmari_store::prelude::*;
use silmari_store::{SearchHit, SearchQuery, TransferOptions};

use crate::search_corpus::all_hits;
use crate::support::conversation;

/// More than a page of 1,000 and the two blocks of 1,024 rowids SQLite's
/// read may take past it.
const EACH: usize = 3_200;

fn ids(hits: &[SearchHit]) -> Vec<MessageId> {
    hits.iter()
        .map(|h| h.message.as_ref().expect("a message").id)
        .collect()
}

pub fn search_finds_texts_written_out_of_time_order(store: &Store) {
    // Older texts, in another store (written first, so older).
    let source = Store::open("memory://").unwrap();
    let old = conversation(&source, "old");
    let mut old_texts: Vec<NewMessage> = (0..EACH)
        .map(|i| NewMessage::new(Role::User, format!("beacon old {i}")))
        .collect();
    old_texts.push(NewMessage::new(Role::User, "quiet old text"));
    let old_written = source
        .conversations()
        .append_messages(old, old_texts)
        .unwrap();
    // Newer texts, written here.
    let new = conversation(store, "new");
    let new_texts: Vec<NewMessage> = (0..EACH)
        .map(|i| NewMessage::new(Role::User, format!("beacon new {i}")))
        .collect();
    let new_written = store
        .conversations()
        .append_messages(new, new_texts)
        .unwrap();
    // The older ones imported after them, and the oldest quiet text edited
    // to say the word now.
    let mut lines = Vec::new();
    source.export_jsonl(&mut lines, |_| {}).unwrap();
    let merge = TransferOptions {
        merge: true,
        ..Default::default()
    };
    store.import_jsonl(&lines[..], merge, |_| {}).unwrap();
    let quiet = old_written.last().unwrap().id;
    store
        .conversations()
        .edit_message(quiet, MessageEdit::new().content("beacon quiet, edited"))
        .unwrap();
    // Newest first: every new text (newest first), then the quiet one (the
    // newest old text), then the rest of the old ones.
    let expected: Vec<MessageId> = new_written
        .iter()
        .rev()
        .chain(old_written.iter().rev())
        .map(|m| m.id)
        .collect();
    let query = SearchQuery::new("beacon").newest_first();
    assert_eq!(ids(&all_hits(store, query.clone(), 1_000)), expected);
    let first = store.search(&query.clone().limit(20)).unwrap();
    assert_eq!(ids(&first.items), expected[..20]);
    // Before the newer texts' time (each batch has one): the older ones.
    let older = SearchQuery::new("beacon")
        .newest_first()
        .until(new_written[0].created_at);
    assert_eq!(ids(&all_hits(store, older, 1_000)), expected[EACH..]);
    // By relevance, the best of the 1,000 newest hits: all new texts.
    let ranked = all_hits(store, SearchQuery::new("beacon"), 250);
    assert_eq!(ranked.len(), 1_000);
    let newest: Vec<MessageId> = expected[..1_000].to_vec();
    assert!(ids(&ranked).iter().all(|id| newest.contains(id)));
}
