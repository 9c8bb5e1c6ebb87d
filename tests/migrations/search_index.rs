//! The search index's migration (V5): texts written before it are indexed
//! in batches with progress, the build resumes after an interruption, and
//! down and up again leaves every text findable.

use silmari_store::prelude::*;
use silmari_store::{IndexProgress, SearchQuery};

use crate::{Db, applied, on_every_dialect, on_every_sqlite_file};

/// 1,203 texts: 3 conversations (titled "old chapter N") of 400 messages.
fn write_old_texts(store: &Store) -> (ConversationId, MessageId) {
    let mut last = None;
    for n in 0..3 {
        let c = store
            .conversations()
            .create(NewConversation::titled(format!("old chapter {n}")))
            .unwrap();
        let batch: Vec<NewMessage> = (0..400)
            .map(|i| {
                NewMessage::new(
                    Role::User,
                    format!("line {i} of chapter {n}: lighthouse{i}"),
                )
            })
            .collect();
        let written = store.conversations().append_messages(c.id, batch).unwrap();
        last = Some((c.id, written[399].id));
    }
    last.unwrap()
}

fn hits(store: &Store, query: &str) -> usize {
    let query = SearchQuery::new(query).limit(1000).newest_first();
    store.search(&query).unwrap().items.len()
}

fn open_unmigrated(db: &Db) -> Store {
    db.builder().migrate_on_open(false).open().unwrap()
}

#[test]
fn texts_from_before_the_index_are_indexed_in_batches() {
    on_every_dialect(|db| {
        let (c, last) = {
            let store = db.open().unwrap();
            let written = write_old_texts(&store);
            store.migrations().down_to(4).unwrap();
            written
        };
        let store = open_unmigrated(db);
        assert_eq!(applied(&store), [1, 2, 3, 4]);
        let mut reports: Vec<IndexProgress> = Vec::new();
        store
            .migrations()
            .up_with_progress(|p| reports.push(p))
            .unwrap();
        assert_eq!(
            applied(&store),
            (1..=crate::common::LATEST).collect::<Vec<_>>()
        );
        let last_report = *reports.last().expect("progress was reported");
        assert_eq!(
            last_report,
            IndexProgress {
                indexed: 1203,
                total: 1203
            }
        );
        assert!(reports.len() >= 3, "in batches: {reports:?}");
        assert!(reports.windows(2).all(|w| w[0].indexed < w[1].indexed));
        assert_eq!(hits(&store, "lighthouse399"), 3);
        assert_eq!(hits(&store, "chapter"), 1000, "a full page of the 1,200");
        let found = store
            .search(&SearchQuery::new("lighthouse399 \"chapter 2\"").newest_first())
            .unwrap();
        assert_eq!(found.items[0].message.as_ref().unwrap().id, last);
        assert_eq!(hits(&store, "\"old chapter 2\""), 1, "the title of {c}");
        // Nothing is left to do.
        let again = store.migrations().build_search_index(|_| {}).unwrap();
        assert_eq!(again, IndexProgress::default());
    });
}

/// A prefix search, before and after the index is dropped and built again
/// under the same store (whose connections keep their own list of the
/// index's terms on SQLite): the same hits, for a prefix of few terms
/// (read as their `OR`) and of many (left to the engine).
#[test]
fn prefix_searches_find_the_same_after_the_index_is_built_again() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        write_old_texts(&store);
        // lighthouse39 and lighthouse390 to 399: 11 terms, in 3 chapters.
        assert_eq!(hits(&store, "lighthouse39*"), 33);
        // 111 terms.
        assert_eq!(hits(&store, "lighthouse3*"), 333);
        store.migrations().down_to(4).unwrap();
        store.migrations().up().unwrap();
        assert_eq!(hits(&store, "lighthouse39*"), 33);
        assert_eq!(hits(&store, "lighthouse3*"), 333);
        store.migrations().rebuild_search_index(|_| {}).unwrap();
        assert_eq!(hits(&store, "lighthouse39*"), 33);
    });
}

#[test]
fn an_interrupted_build_resumes_and_open_finishes_it() {
    on_every_dialect(|db| {
        {
            let store = db.open().unwrap();
            write_old_texts(&store);
            store.migrations().down_to(4).unwrap();
        }
        // The schema step alone (as a build cut short right after it).
        let store = open_unmigrated(db);
        store
            .migrations()
            .migrate(silmari_store::MigrationTarget::Version(5))
            .unwrap();
        drop(store);
        db.execute(match db {
            Db::Sqlite { .. } => "UPDATE messages SET search_rowid = NULL WHERE rowid % 2 = 0",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "UPDATE messages SET search_tokens = NULL WHERE position % 2 = 0",
        });
        // Half the texts are unindexed again; their old entries (SQLite)
        // are stale, not missing: a rebuild must not trip over them.
        let store = db.open().unwrap();
        assert_eq!(hits(&store, "lighthouse398"), 3);
        assert_eq!(hits(&store, "lighthouse399"), 3);
        assert_eq!(
            store.migrations().build_search_index(|_| {}).unwrap().total,
            0
        );
    });
}

/// Writes from outside the store leave the index out of step: `check`
/// counts what it can see, and a rebuild puts everything back.
#[test]
fn a_drifted_index_is_reported_and_rebuilt() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("drift"))
            .unwrap();
        let m = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "original words"))
            .unwrap();
        // In the index now, not waiting above the mark (an SQLite file's
        // appends are indexed behind the write).
        store.migrations().build_search_index(|_| {}).unwrap();
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
        let (insert, update) = match db {
            Db::Sqlite { .. } => (
                format!(
                    "INSERT INTO messages (id, conversation_id, position, role, content, created_at) \
                     VALUES ('00000000-0000-7000-8000-0000000000ff', '{}', 99, 'user', 'smuggled text', 0)",
                    c.id
                ),
                format!(
                    "UPDATE messages SET content = 'rewritten outside' WHERE id = '{}'",
                    m.id
                ),
            ),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => (
                format!(
                    "INSERT INTO messages (id, conversation_id, position, role, content, created_at) \
                     VALUES ('00000000-0000-7000-8000-0000000000ff', '{}', 99, 'user', 'smuggled text', now())",
                    c.id
                ),
                format!(
                    "UPDATE messages SET content = 'rewritten outside' WHERE id = '{}'",
                    m.id
                ),
            ),
        };
        db.execute(&insert);
        db.execute(&update);
        let report = store.check().unwrap();
        assert_eq!(report.search_index_mismatches, 1, "{report:?}");
        assert!(!report.is_healthy());
        assert_eq!(hits(&store, "smuggled"), 0);
        assert_eq!(
            hits(&store, "rewritten"),
            0,
            "a changed text keeps its old entry"
        );

        let rebuilt = store.migrations().rebuild_search_index(|_| {}).unwrap();
        assert_eq!(rebuilt.indexed, 3, "two messages and a title");
        let report = store.check().unwrap();
        assert_eq!(report.search_index_mismatches, 0, "{report:?}");
        assert_eq!(hits(&store, "smuggled"), 1);
        assert_eq!(hits(&store, "rewritten"), 1);
        assert_eq!(hits(&store, "original"), 0);
        assert_eq!(hits(&store, "drift"), 1);
    });
}

/// SQLite: the index keys are columns of their own, so VACUUM (which may
/// renumber SQLite's own rowids) leaves every text findable.
#[test]
fn the_sqlite_index_survives_vacuum() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("vacuum"))
            .unwrap();
        let batch: Vec<NewMessage> = (0..300)
            .map(|i| NewMessage::new(Role::User, format!("word{i} shared")))
            .collect();
        let written = store.conversations().append_messages(c.id, batch).unwrap();
        for m in written.iter().step_by(3) {
            store.conversations().delete_message(m.id).unwrap();
        }
        // What VACUUM may do to a table without an INTEGER PRIMARY KEY
        // (renumber its rowids), done for sure; then VACUUM itself.
        db.execute("UPDATE messages SET rowid = 1000000 - rowid");
        db.execute("VACUUM");
        let report = store.check().unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(hits(&store, "shared"), 200);
        for (i, m) in written.iter().enumerate() {
            let found = store
                .search(&SearchQuery::new(format!("word{i}")).newest_first())
                .unwrap()
                .items;
            let want = usize::from(i % 3 != 0);
            assert_eq!(found.len(), want, "word{i}");
            if let Some(hit) = found.first() {
                assert_eq!(hit.message.as_ref().unwrap().id, m.id);
            }
        }
    });
}
