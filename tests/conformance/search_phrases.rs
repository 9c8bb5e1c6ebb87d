//! Phrases in texts too long for every word pair to be indexed: the
//! index holds a text's words first, then its pairs while they fit in
//! `limits::MAX_INDEX_BYTES`, and marks a text whose pairs did not all fit,
//! which a phrase then admits by its words. The same hits on every
//! backend, through the index (few hits) and through a walk (many).

use silmari_store::SearchQuery;
use silmari_store::prelude::*;

use crate::search_corpus::all_hits;
use crate::support::conversation;

/// Words in a long text: about 250 KB of word tokens and twice that of
/// pairs, so the pairs of its last ten thousand words are not indexed.
const WORDS: usize = 25_000;

/// More matches than PostgreSQL reads through its index (2,000).
const COMMON: usize = 2_100;

fn long_text(word: impl Fn(usize) -> String, tail: &str) -> String {
    let mut text: String = (0..WORDS).map(|i| word(i) + " ").collect();
    text.push_str(tail);
    text
}

pub fn search_phrases_find_texts_whose_pairs_did_not_fit(store: &Store) {
    let c = conversation(store, "long texts");
    let ascii = long_text(|i| format!("w{i}"), "alpha beta");
    let accented = long_text(|i| format!("ü{i}"), "Gamma, délta!");
    let written: Vec<MessageId> = [ascii, accented]
        .into_iter()
        .map(|text| {
            let m = NewMessage::new(Role::User, text);
            store.conversations().append_message(c, m).unwrap().id
        })
        .collect();
    // Newer than the long texts: short ones that hold a phrase in full.
    let filler = conversation(store, "filler");
    let many: Vec<NewMessage> = (0..COMMON)
        .map(|i| NewMessage::new(Role::User, format!("{i}: alpha beta")))
        .collect();
    store.conversations().append_messages(filler, many).unwrap();

    let found = |query: &str| -> Vec<MessageId> {
        let hits = all_hits(store, SearchQuery::new(query).newest_first(), 500);
        hits.iter()
            .filter_map(|h| h.message.as_ref().map(|m| m.id))
            .filter(|id| written.contains(id))
            .collect()
    };
    let last = format!("\"w{} w{}\"", WORDS - 2, WORDS - 1);
    assert_eq!(found(&last), [written[0]], "{last}: the index's few");
    let last = format!("\"Ü{} ü{} gamma\"", WORDS - 2, WORDS - 1);
    assert_eq!(found(&last), [written[1]], "{last}");
    assert_eq!(found("\"gamma delta\""), [written[1]]);
    assert_eq!(found("\"w1 w2 w3\""), [written[0]], "pairs that fit");
    // With a prefix, an excluded word.
    let phrase = format!("\"w{} w{}\"", WORDS - 2, WORDS - 1);
    assert_eq!(found(&format!("{phrase} w2499*")), [written[0]]);
    assert_eq!(found(&format!("{phrase} -alpha")), []);
    assert_eq!(found("\"gamma delta\" -alpha ü1*"), [written[1]]);
    // Words the text holds, not one right after the other.
    assert_eq!(found(&format!("\"w{} w0\"", WORDS - 1)), []);
    assert_eq!(found("\"beta alpha\""), []);
    // Many hits: a walk, on SQLite and PostgreSQL.
    let every = all_hits(
        store,
        SearchQuery::new("\"alpha beta\"").newest_first(),
        500,
    );
    assert_eq!(every.len(), COMMON + 1, "\"alpha beta\": every hit");
    let oldest = every.last().and_then(|h| h.message.as_ref()).map(|m| m.id);
    assert_eq!(
        oldest,
        Some(written[0]),
        "\"alpha beta\": the long text last"
    );
    let in_one = SearchQuery::new("\"alpha beta\"").in_conversation(c);
    assert_eq!(all_hits(store, in_one, 10).len(), 1, "in its conversation");
}
