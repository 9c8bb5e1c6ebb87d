//! Hostile query text: any string gives hits or `InvalidInput` naming
//! `query` on every backend (never a database syntax error from FTS5 or
//! `tsquery`), and every backend shows the same hits. The same property as
//! the fuzz target `fuzz/fuzz_targets/search_query.rs`, run by `cargo test`.

#![cfg(feature = "sqlite")]

mod common;

use proptest::prelude::*;
use silmari_store::prelude::*;
use silmari_store::{Error, SearchQuery, Snippet};

const TEXTS: &[&str] = &[
    "The storm hit the harbour; the letter never arrived.",
    "Un café au lait, s'il vous plaît",
    "東京タワーに行きました 서울에 갔어요 北京大学",
    "SELECT * FROM t WHERE a = 'x'; -- NEAR(a b) \"quoted\" col:term ^start",
    "tsquery: 'fat' & 'rat' | !cat <-> dog 🙂 a\\b",
];

/// Pieces a query is made of: words of the texts, the syntax of this
/// crate, FTS5 and tsquery, quotes, escapes, controls, CJK, emoji.
const PIECES: &[&str] = &[
    "storm",
    "the",
    "letter",
    "harb",
    "cafe",
    "café",
    "東京",
    "京",
    "タワー",
    "서울",
    "北京",
    "x",
    "near",
    "NEAR(",
    ")",
    "(",
    "\"",
    "'",
    "''",
    "*",
    "-",
    "--",
    ":",
    "^",
    "&",
    "|",
    "!",
    "<->",
    "<2>",
    ":*",
    "AND",
    "OR",
    "NOT",
    "\\",
    "\\'",
    "{",
    "}",
    "[",
    "]",
    "%",
    "_",
    ";",
    "\u{0}",
    "\u{7}",
    "\n",
    "\t",
    " ",
    "  ",
    "🙂",
    "\u{301}",
    "e\u{301}",
    "İ",
    "ß",
    "col:term",
    "a",
    "ab*",
    "zz",
    "-storm",
    "\"the letter\"",
    "tsquery",
    "fat",
    "rat",
    "quoted",
];

/// The stores, memory first (the reference), with the PostgreSQL test
/// database they need (dropped with them).
struct Backends {
    stores: Vec<(String, Store)>,
    #[cfg(feature = "postgres")]
    _database: Option<common::pg::Database>,
}

fn stores() -> Backends {
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut stores = vec![
        ("memory".to_owned(), Store::open("memory://").unwrap()),
        ("sqlite".to_owned(), Store::open("sqlite://").unwrap()),
    ];
    #[cfg(feature = "postgres")]
    let database = common::pg::Database::create();
    #[cfg(feature = "postgres")]
    if let Some(database) = &database {
        let store = common::pg::open(database, std::time::Duration::from_secs(30));
        stores.push(("postgres".to_owned(), store));
    }
    for (_, store) in &stores {
        let c = store
            .conversations()
            .create(NewConversation::titled("storm café 東京"))
            .unwrap();
        for text in TEXTS {
            store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, *text))
                .unwrap();
        }
    }
    Backends {
        stores,
        #[cfg(feature = "postgres")]
        _database: database,
    }
}

/// What a search shows, without ids (which differ between stores).
type Shown = Option<Vec<(Option<Role>, Snippet)>>;

fn shown(store: &Store, query: &SearchQuery) -> Result<Shown, String> {
    match store.search(query) {
        Ok(page) => Ok(Some(
            page.items
                .iter()
                .map(|h| (h.message.as_ref().map(|m| m.role), h.snippet.clone()))
                .collect(),
        )),
        Err(Error::InvalidInput { field, .. }) if field == "query" => Ok(None),
        Err(other) => Err(format!("{other:?}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
    ))]

    #[test]
    fn any_query_text_gives_the_same_hits_or_invalid_input(
        pieces in prop::collection::vec(prop::sample::select(PIECES), 0..12),
        glue in prop::collection::vec(prop::sample::select(&["", " ", "\"", "-", "*"][..]), 12),
    ) {
        let text: String = pieces
            .iter()
            .zip(&glue)
            .map(|(p, g)| format!("{p}{g}"))
            .collect();
        thread_local! {
            static BACKENDS: Backends = stores();
        }
        BACKENDS.with(|backends| -> Result<(), TestCaseError> {
            let stores = &backends.stores;
            for query in [
                SearchQuery::new(text.as_str()).newest_first(),
                SearchQuery::new(text.as_str()).all_branches(),
            ] {
                let reference = shown(&stores[0].1, &query).map_err(TestCaseError::fail)?;
                for (name, store) in &stores[1..] {
                    let got = shown(store, &query)
                        .map_err(|e| TestCaseError::fail(format!("{name}: {text:?}: {e}")))?;
                    prop_assert_eq!(&got, &reference, "{}: {:?}", name, text);
                }
            }
            Ok(())
        })?;
    }
}

/// Strings that once broke a search engine's own syntax, on every backend.
#[test]
fn engine_syntax_is_plain_text() {
    let backends = stores();
    let stores = &backends.stores;
    for text in [
        "\"",
        "\"\"\"",
        "NEAR(",
        "a OR",
        "OR b",
        "NOT",
        "*",
        "-",
        "^",
        ":",
        "col:",
        "'",
        "''",
        "!",
        "&",
        "|",
        "<->",
        "a:*",
        "\\",
        "(",
        ")",
        "a AND (",
        "\u{0}",
        "東*",
        "\"東京 タワー\"",
    ] {
        let query = SearchQuery::new(text).newest_first();
        let reference = shown(&stores[0].1, &query).unwrap();
        for (name, store) in &stores[1..] {
            assert_eq!(shown(store, &query).unwrap(), reference, "{name}: {text:?}");
        }
    }
}

/// A word in thousands of texts: SQLite walks messages newest first
/// instead of reading every match through its index. The hits are still
/// the same as everywhere, page after page, in both orders.
#[test]
fn a_common_word_finds_the_same_hits_on_every_backend() {
    let backends = stores();
    let stores = &backends.stores;
    for (_, store) in stores {
        let c = store
            .conversations()
            .create(NewConversation::titled("common"))
            .unwrap();
        let batch: Vec<NewMessage> = (0..3000)
            .map(|i| {
                let text = match i % 7 {
                    0 => format!("a rare line {i}"),
                    1 => format!("commonly {i}"),
                    _ => format!("the common word {i}"),
                };
                NewMessage::new(Role::User, text)
            })
            .collect();
        store.conversations().append_messages(c.id, batch).unwrap();
    }
    for text in ["common", "common -word", "\"common word\"", "comm*"] {
        for newest in [true, false] {
            let mut query = SearchQuery::new(text).limit(500);
            if newest {
                query = query.newest_first();
            }
            let mut reference: Vec<(Option<Role>, Snippet)> = Vec::new();
            for (i, (name, store)) in stores.iter().enumerate() {
                let mut all = Vec::new();
                let mut q = query.clone();
                loop {
                    let page = store.search(&q).unwrap();
                    all.extend(
                        page.items
                            .iter()
                            .map(|h| (h.message.as_ref().map(|m| m.role), h.snippet.clone())),
                    );
                    match page.next {
                        Some(next) => q = q.after(next),
                        None => break,
                    }
                }
                if i == 0 {
                    reference = all;
                } else {
                    assert_eq!(all, reference, "{name}: {text:?} (newest first: {newest})");
                }
            }
            // 2,142 "the common word", 429 "commonly", 429 rare lines, and the
            // title "common"; by relevance, the best of the newest 1,000.
            let all = match text {
                "common" => 2143,
                "comm*" => 2572,
                "common -word" => 1,
                _ => 2142,
            };
            let expected = if newest { all } else { all.min(1000) };
            assert_eq!(
                reference.len(),
                expected,
                "{text:?} (newest first: {newest})"
            );
        }
    }
}

/// A phrase whose word pairs are everywhere but rarely in order: a page
/// checks at most `SEARCH_EXAMINED` texts, returns what it found with a
/// cursor that goes on from there, and the next page finds the rest; the
/// same on every backend.
#[test]
fn a_page_stops_after_checking_its_share_of_texts() {
    use silmari_store::limits::SEARCH_EXAMINED;
    let backends = stores();
    let stores = &backends.stores;
    for (_, store) in stores {
        let c = store
            .conversations()
            .create(NewConversation::titled("examined"))
            .unwrap();
        let mut texts = vec![
            "gamma beta alpha, the oldest".to_owned(),
            "gamma beta alpha again".to_owned(),
        ];
        texts.extend((0..SEARCH_EXAMINED + 500).map(|i| format!("gamma beta beta alpha {i}")));
        for chunk in texts.chunks(5_000) {
            let batch = chunk
                .iter()
                .map(|t| NewMessage::new(Role::User, t.as_str()))
                .collect();
            store.conversations().append_messages(c.id, batch).unwrap();
        }
    }
    let query = SearchQuery::new("\"gamma beta alpha\"").newest_first();
    for (name, store) in stores {
        let first = store.search(&query).unwrap();
        assert!(
            first.items.is_empty(),
            "{name}: the newest texts hold no hit"
        );
        let next = first.next.expect("a cursor to go on");
        let second = store.search(&query.clone().after(next)).unwrap();
        let found: Vec<&str> = second
            .items
            .iter()
            .map(|h| h.snippet.text.as_str())
            .collect();
        assert_eq!(
            found,
            ["gamma beta alpha again", "gamma beta alpha, the oldest"],
            "{name}"
        );
        assert!(second.next.is_none(), "{name}");
    }
}
