//! V10: the index holds a pair token for each two words one right after
//! the other, and a phrase is asked of the index as its pairs. A database
//! indexed before holds no pairs; V10 indexes every text again.

use silmari_store::MigrationTarget;
use silmari_store::prelude::*;

use crate::search_folding::{entries, hits, set_entry, store_at};
use crate::{Db, on_every_dialect};

#[test]
fn v10_indexes_every_text_again_with_its_word_pairs() {
    on_every_dialect(|db| {
        let (store, c) = store_at(db, 9, "The story so far");
        let texts = [
            "once upon a time the story began",
            "story the end",
            "The Story, told: again",
            "東京 the story 東京",
            "theory",
        ];
        let batch = texts.map(|t| NewMessage::new(Role::User, t)).to_vec();
        store.conversations().append_messages(c.id, batch).unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        // What V9's tokenizer gave each text: its words, no pairs.
        let old: [(&str, &str); 6] = [
            ("The story so far", "the story so far"),
            (texts[0], "once upon a time the story began"),
            (texts[1], "story the end"),
            (texts[2], "the story told again"),
            (texts[3], "東京 京 the story"),
            (texts[4], "theory"),
        ];
        for (text, tokens) in old {
            set_entry(db, text, &tokens.split(' ').collect::<Vec<_>>());
        }
        // Below V10 a phrase is asked of the index by its words, which
        // V9's entries hold (this store migrated to V9, another opened
        // there).
        let opened = db.builder().migrate_on_open(false).open().unwrap();
        for store in [&store, &opened] {
            assert_eq!(hits(store, "\"the story\""), 4, "V9's entries");
            assert_eq!(hits(store, "story"), 5, "V9's entries, words");
        }
        let before = entries(db);

        store.migrations().up().unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        let found = |store: &Store| {
            [
                "\"the story\"",
                "\"story the\"",
                "the story",
                "story",
                "\"the story\" -told",
            ]
            .map(|q| hits(store, q))
        };
        assert_eq!(found(&store), [4, 1, 5, 5, 3]);
        // Every text is indexed again (on PostgreSQL, a text of one word
        // has the tokens it had).
        for (was, is) in before.iter().zip(&entries(db)) {
            match db {
                Db::Sqlite { .. } => assert_ne!(was[1], is[1], "{was:?} {is:?}"),
                #[cfg(feature = "postgres")]
                Db::Postgres(_) => {
                    let one_word = !was[0].contains(' ');
                    assert_eq!(was[1] == is[1], one_word, "{was:?} {is:?}")
                }
            }
        }
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);

        // Down to V9 and up again: the same texts found.
        store
            .migrations()
            .migrate(MigrationTarget::Version(9))
            .unwrap();
        store.migrations().up().unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        assert_eq!(found(&store), [4, 1, 5, 5, 3], "after down and up");
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

/// A snapshot taken before V10 and restored holds entries without pairs:
/// the store asks for phrases by their words again.
#[test]
fn a_snapshot_restored_below_v10_finds_phrases_by_their_words() {
    crate::on_every_sqlite_file(|db| {
        let (store, c) = store_at(db, 9, "notes");
        let m = NewMessage::new(Role::User, "once the story began");
        store.conversations().append_message(c.id, m).unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        set_entry(
            db,
            "once the story began",
            &["once", "the", "story", "began"],
        );
        drop(store);

        // Opened as an app opens it: a snapshot of V9, then V10.
        let store = db.open().unwrap();
        assert_eq!(hits(&store, "\"the story\""), 1, "V10's entries");
        let snapshot = store.migrations().snapshots().unwrap();
        let v9 = snapshot.iter().find(|s| s.version == 9).unwrap();
        store.migrations().restore_snapshot(&v9.path).unwrap();
        assert_eq!(store.migrations().current_version().unwrap(), 9);
        assert_eq!(hits(&store, "\"the story\""), 1, "V9's entries");
        assert_eq!(hits(&store, "\"story the\""), 0);
    });
}
