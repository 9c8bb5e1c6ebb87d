//! V9: the tokenizer lowercases after it decomposes by compatibility (`𝐇`
//! is `h`, `𝚫` is `δ`). A database indexed by V8's tokenizer holds the
//! capitals those letters decompose to; V9 indexes every text outside
//! ASCII again and leaves ASCII texts' entries as they are.

use silmari_store::prelude::*;
use silmari_store::{MigrationTarget, SearchQuery};

use crate::{Db, on_every_dialect};

pub(crate) fn hits(store: &Store, query: &str) -> usize {
    let query = SearchQuery::new(query).limit(100).newest_first();
    store.search(&query).unwrap().items.len()
}

/// Each text's entry as the database holds it: SQLite's search rowids,
/// PostgreSQL's tokens.
pub(crate) fn entries(db: &Db) -> Vec<Vec<String>> {
    db.rows(match db {
        Db::Sqlite { .. } => {
            "SELECT content, COALESCE(CAST(search_rowid AS TEXT), '-') FROM messages \
             UNION ALL SELECT title, COALESCE(CAST(search_rowid AS TEXT), '-') FROM conversations \
             ORDER BY 1"
        }
        #[cfg(feature = "postgres")]
        Db::Postgres(_) => {
            "SELECT content, COALESCE(search_tokens::text, '-') FROM messages \
             UNION ALL SELECT title, COALESCE(search_tokens::text, '-') FROM conversations \
             ORDER BY 1"
        }
    })
}

/// A store opened without migrating, moved up to `version`, and a
/// conversation titled `title` in it.
pub(crate) fn store_at(db: &Db, version: i64, title: &str) -> (Store, Conversation) {
    let store = db.builder().migrate_on_open(false).open().unwrap();
    store.migrations().up_to(version).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled(title))
        .unwrap();
    (store, c)
}

/// Replaces the index entry of the message or title whose text is `text`
/// with `tokens`, as an older tokenizer wrote it.
pub(crate) fn set_entry(db: &Db, text: &str, tokens: &[&str]) {
    let sql = match db {
        Db::Sqlite { .. } => format!(
            "CREATE TEMP TABLE entry AS SELECT search_rowid AS r FROM messages WHERE content = '{text}' \
             UNION ALL SELECT -search_rowid FROM conversations WHERE title = '{text}'; \
             DELETE FROM search_index WHERE rowid = (SELECT r FROM entry); \
             INSERT INTO search_index (rowid, tokens) SELECT r, '{}' FROM entry; \
             DROP TABLE entry;",
            tokens.join(" ")
        ),
        #[cfg(feature = "postgres")]
        Db::Postgres(_) => format!(
            "UPDATE messages SET search_tokens = ARRAY['{0}'] WHERE content = '{text}'; \
             UPDATE conversations SET search_tokens = ARRAY['{0}'] WHERE title = '{text}';",
            tokens.join("', '")
        ),
    };
    db.execute(&sql);
}

#[test]
fn v9_indexes_again_the_texts_outside_ascii_and_keeps_the_others() {
    on_every_dialect(|db| {
        let (store, c) = store_at(db, 8, "𝚺𝚷 plans");
        let texts = ["𝚫𝚯 and 𝐇𝐞𝐥𝐥𝐨", "plain ascii words", "café au lait"];
        let batch = texts.map(|t| NewMessage::new(Role::User, t)).to_vec();
        store.conversations().append_messages(c.id, batch).unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        // What V8's tokenizer gave the two texts with such letters.
        let old: [(&str, &[&str]); 2] = [
            (texts[0], &["ΔΘ", "and", "Hello"]),
            ("𝚺𝚷 plans", &["ΣΠ", "plans"]),
        ];
        for (text, tokens) in old {
            set_entry(db, text, tokens);
        }
        assert_eq!(
            (hits(&store, "δθ"), hits(&store, "σπ")),
            (0, 0),
            "V8's tokens"
        );
        let before = entries(db);

        store.migrations().up_to(9).unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        for query in ["δθ", "ΔΘ", "𝚫𝚯", "hello", "σπ", "𝚺𝚷", "ascii", "cafe"] {
            assert_eq!(hits(&store, query), 1, "{query}");
        }
        let after = entries(db);
        // ASCII texts keep their entries; the others have new ones (on
        // PostgreSQL, the same tokens for `café`, whose did not change).
        for (was, is) in before.iter().zip(&after) {
            let outside_ascii = !was[0].is_ascii();
            let moved = was[1] != is[1];
            match db {
                Db::Sqlite { .. } => assert_eq!(moved, outside_ascii, "{was:?} {is:?}"),
                #[cfg(feature = "postgres")]
                Db::Postgres(_) => assert!(!moved || outside_ascii, "{was:?} {is:?}"),
            }
        }
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);

        // Down to V8 and up again: the same texts found.
        store
            .migrations()
            .migrate(MigrationTarget::Version(8))
            .unwrap();
        store.migrations().up().unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        for query in ["δθ", "hello", "σπ", "ascii", "cafe"] {
            assert_eq!(hits(&store, query), 1, "{query} after down and up");
        }
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}
