//! Searches for a word or prefix that thousands of messages hold, which
//! SQLite and PostgreSQL answer by walking messages newest first and
//! checking each (PostgreSQL skips an ASCII text that lacks the query's
//! longest term in lower case before it checks the text's tokens): every
//! form of a word that folds to the term is found, on every backend.

use silmari_store::SearchQuery;
use silmari_store::prelude::*;

use crate::search_corpus::all_hits;
use crate::support::conversation;

/// More matches than PostgreSQL reads through its index (2,000).
const COMMON: usize = 2_100;

pub fn search_walks_find_every_folded_form(store: &Store) {
    let filler = conversation(store, "filler");
    let many: Vec<NewMessage> = (0..COMMON)
        .map(|i| NewMessage::new(Role::User, format!("chapter {i} of the common kind")))
        .collect();
    store.conversations().append_messages(filler, many).unwrap();
    let c = conversation(store, "forms");
    // Newest last; each found by `chapt*` (and `chapter` where a whole
    // token is `chapter`) except the ones marked `false`.
    let forms: [(&str, bool, bool); 13] = [
        ("CHAPTER ONE in capitals", true, true),
        ("Ｃｈａｐｔｅｒ two, full width", true, true),
        ("Chäpter three, with a diaeresis", true, true),
        ("chap ter four, split", false, false),
        ("CHAPT five, the prefix alone", true, false),
        ("Chapters six, a longer word", true, false),
        ("chaptér seven, an accent inside", true, true),
        ("the eighth: chap-ter", false, false),
        ("ninth\u{2003}CHAPTER\u{00a0}after other spaces", true, true),
        ("𝐂𝐇𝐀𝐏𝐓𝐄𝐑 ten, in mathematical bold", true, true),
        (
            "eleven: unchaptered, the prefix inside a word",
            false,
            false,
        ),
        ("twelve x_chapter, after an underscore", true, true),
        ("thirteen 3chapter after a digit", false, false),
    ];
    let mut written = Vec::new();
    for (text, _, _) in forms {
        let m = store
            .conversations()
            .append_message(c, NewMessage::new(Role::User, text))
            .unwrap();
        written.push(m.id);
    }
    let newest = |query: &str, want: fn(&(&str, bool, bool)) -> bool| {
        let expected: Vec<MessageId> = forms
            .iter()
            .zip(&written)
            .rev()
            .filter(|(form, _)| want(form))
            .map(|(_, id)| *id)
            .collect();
        // The newest hits: the forms, before any of the filler.
        let page = store
            .search(&SearchQuery::new(query).newest_first().limit(10))
            .unwrap();
        let first: Vec<MessageId> = page
            .items
            .iter()
            .filter_map(|h| h.message.as_ref().map(|m| m.id))
            .take(expected.len())
            .collect();
        assert_eq!(first, expected, "{query:?} newest first");
        let every = all_hits(store, SearchQuery::new(query).newest_first(), 500);
        assert_eq!(every.len(), COMMON + expected.len(), "{query:?}: every hit");
        // By relevance the same hits among the newest 1,000.
        let ranked = all_hits(store, SearchQuery::new(query), 250);
        assert_eq!(ranked.len(), 1_000, "{query:?}: the relevance window");
        for id in &expected {
            assert!(
                ranked
                    .iter()
                    .any(|h| h.message.as_ref().is_some_and(|m| m.id == *id)),
                "{query:?} by relevance: {id:?}"
            );
        }
    };
    newest("chapt*", |f| f.1);
    newest("chapter", |f| f.2);
    newest("CHAPTER", |f| f.2);
    newest("chapt* common", |_| false);
    newest("common chapt*", |_| false);
}
