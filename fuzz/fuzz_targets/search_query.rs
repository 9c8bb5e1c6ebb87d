//! Search from arbitrary query text: every string gives hits or
//! `InvalidInput` naming `query`, never a database syntax error or a panic,
//! and SQLite (FTS5) finds exactly what the memory backend finds.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use silmari_store::prelude::*;
use silmari_store::{Error, SearchQuery};

const TEXTS: &[&str] = &[
    "The storm hit the harbour; the letter never arrived.",
    "Un café au lait, s'il vous plaît",
    "東京タワーに行きました 서울에 갔어요",
    "SELECT * FROM t WHERE a = 'x'; -- NEAR(a b) \"quoted\" col:term ^start",
    "tsquery: 'fat' & 'rat' | !cat <-> dog 🙂",
];

fn stores() -> &'static (Store, Store) {
    static STORES: OnceLock<(Store, Store)> = OnceLock::new();
    STORES.get_or_init(|| {
        let make = |url: &str| {
            let store = Store::open(url).expect("store");
            let c = store
                .conversations()
                .create(NewConversation::titled("fuzz: storm café 東京"))
                .expect("conversation");
            for text in TEXTS {
                store
                    .conversations()
                    .append_message(c.id, NewMessage::new(Role::User, *text))
                    .expect("message");
            }
            store
        };
        (make("memory://"), make("sqlite://"))
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (memory, sqlite) = stores();
    for query in [
        SearchQuery::new(text.as_ref()).newest_first(),
        SearchQuery::new(text.as_ref()),
    ] {
        // Ids differ between the stores; what a hit shows must not.
        let hits = |store: &Store| match store.search(&query) {
            Ok(page) => Some(
                page.items
                    .iter()
                    .map(|h| (h.message.as_ref().map(|m| m.role), h.snippet.clone()))
                    .collect::<Vec<_>>(),
            ),
            Err(Error::InvalidInput { field, .. }) if field == "query" => None,
            Err(other) => panic!("{text:?}: unexpected error {other:?}"),
        };
        assert_eq!(hits(memory), hits(sqlite), "{text:?}");
    }
});
