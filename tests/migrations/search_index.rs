//! The search index's migration (V5): texts written before it are indexed
//! in batches with progress, the build resumes after an interruption, and
//! down and up again leaves every text findable.

use silmari_store::prelude::*;
use silmari_store::{IndexProgress, SearchQuery, StoreConfig};

use crate::{Db, applied, on_every_dialect};

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
    let mut config: StoreConfig = db.url().parse().unwrap();
    config.migrate_on_open = false;
    Store::open_with(config).unwrap()
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
        assert_eq!(applied(&store), [1, 2, 3, 4, 5]);
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
        assert_eq!(hits(&store, "chapter"), 1000.min(1203));
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
