//! V11: `search_blocks`, the newest and oldest time of the messages in each
//! block of 1,024 search rowids, which SQLite's search reads to stop early.
//! Filled for a database that migrates, kept by every write, dropped by the
//! down step; a table that drifted (damaged, or written by hand) is found
//! by `check`, changes no search's hits, and is rebuilt with the index.

use silmari_store::SearchQuery;
use silmari_store::prelude::*;

use crate::on_every_sqlite_file;
use crate::search_edits::indexed_conversation;

/// Messages outside their block's range, and blocks.
fn drift(db: &crate::db::Db) -> (i64, i64) {
    db.raw()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM messages m \
             LEFT JOIN search_blocks b ON b.block = m.search_rowid >> 10 \
             WHERE m.search_rowid <= (SELECT indexed_upto FROM search_progress WHERE id = 1) AND (b.block IS NULL \
             OR m.created_at > b.newest OR m.created_at < b.oldest)), \
             (SELECT COUNT(*) FROM search_blocks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// The ids of every hit of `word`, newest first.
fn hits(store: &Store, word: &str) -> Vec<MessageId> {
    let page = store
        .search(&SearchQuery::new(word).newest_first().limit(1_000))
        .unwrap();
    page.items
        .iter()
        .filter_map(|h| h.message.as_ref().map(|m| m.id))
        .collect()
}

#[test]
fn the_blocks_are_filled_kept_and_rebuilt() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let (_, ids) =
            indexed_conversation(&store, "blocks", (0..2_500).map(|i| format!("word {i}")));
        let newest_first: Vec<MessageId> = ids.iter().rev().copied().collect();
        assert_eq!(hits(&store, "word"), newest_first[..1_000]);
        // 2,500 rowids: three blocks, each spanning its messages.
        assert_eq!(drift(db), (0, 3));
        // Down and up again: filled from the messages there.
        store
            .migrations()
            .migrate(silmari_store::MigrationTarget::Version(10))
            .unwrap();
        assert!(db.raw().prepare("SELECT 1 FROM search_blocks").is_err());
        store.migrations().up().unwrap();
        assert_eq!(drift(db), (0, 3));
        assert_eq!(hits(&store, "word"), newest_first[..1_000]);
        // A table that drifted: found, the same hits, and rebuilt.
        for damage in [
            "DELETE FROM search_blocks WHERE block = 1",
            "UPDATE search_blocks SET newest = oldest - 1",
        ] {
            db.execute(damage);
            let report = store.check().unwrap();
            assert!(report.search_index_mismatches > 0, "{damage}: {report:?}");
            assert_eq!(hits(&store, "word"), newest_first[..1_000], "{damage}");
            store.migrations().rebuild_search_index(|_| {}).unwrap();
            assert_eq!(drift(db), (0, 3), "{damage}");
            assert_eq!(store.check().unwrap().search_index_mismatches, 0);
            assert_eq!(hits(&store, "word"), newest_first[..1_000], "{damage}");
        }
    });
}
