//! The two SQL dialects define the same schema: tables, columns (name and
//! nullability, in order), primary keys, foreign keys with their delete rule,
//! and indexes, read back from a freshly migrated database of each kind.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod common;

use common::schema::{postgres_schema, sqlite_schema};
use silmari_store::Store;

#[test]
fn sqlite_and_postgres_define_the_same_schema() {
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    drop(Store::open(&format!("sqlite:///{}", path.display())).unwrap());
    drop(Store::open(&database.url).unwrap());
    let mut sqlite = sqlite_schema(&path);
    let mut postgres = postgres_schema(&database.url);
    // The search index is each dialect's own: FTS5 tables, a rowid per
    // text, the marks of texts indexed in batches (V7), the entries no
    // text holds any more (V8) and the blocks of rowids searches read by
    // (V11) on SQLite, a token array per text (with a GIN index) and a
    // signature per message (V12) on PostgreSQL; compared apart.
    let search_tables: Vec<String> = sqlite
        .keys()
        .filter(|t| t.starts_with("search_"))
        .cloned()
        .collect();
    assert_eq!(
        search_tables,
        [
            "search_blocks",
            "search_index",
            "search_index_config",
            "search_index_data",
            "search_index_docsize",
            "search_index_idx",
            "search_progress",
            "search_stale"
        ]
    );
    sqlite.retain(|t, _| !t.starts_with("search_"));
    // The change feed's tables are SQLite's alone: PostgreSQL carries
    // changes with NOTIFY (migrations V6).
    let feed_tables: Vec<String> = sqlite
        .keys()
        .filter(|t| t.starts_with("change_"))
        .cloned()
        .collect();
    assert_eq!(feed_tables, ["change_listeners", "change_log"]);
    assert_eq!(sqlite["change_log"].columns.len(), 4);
    sqlite.retain(|t, _| !t.starts_with("change_"));
    assert!(!postgres.keys().any(|t| t.starts_with("change_")));
    let search_columns = |schema: &mut common::schema::Schema| -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (name, table) in schema.iter_mut() {
            table.columns.retain(|(c, _)| {
                let search = c.starts_with("search_");
                if search {
                    found.push((name.clone(), c.clone()));
                }
                !search
            });
            table
                .indexes
                .retain(|i, _| !i.contains("search") && !i.contains("unindexed"));
        }
        found
    };
    // Each text's entry in one column, and on PostgreSQL each message's
    // token signature too (V12, which walks test).
    let in_both = [("conversations", "search_"), ("messages", "search_")];
    let (sqlite_columns, mut postgres_columns) =
        (search_columns(&mut sqlite), search_columns(&mut postgres));
    let signature = ("messages".to_owned(), "search_bits".to_owned());
    assert!(
        postgres_columns.contains(&signature),
        "{postgres_columns:?}"
    );
    postgres_columns.retain(|c| *c != signature);
    for (dialect, columns) in [("sqlite", sqlite_columns), ("postgres", postgres_columns)] {
        let tables: Vec<(&str, &str)> = columns
            .iter()
            .map(|(t, _)| (t.as_str(), "search_"))
            .collect();
        assert_eq!(tables, in_both, "{dialect}: {columns:?}");
    }
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        [
            "conversations",
            "file_metadata",
            "messages",
            "refinery_schema_history"
        ]
    );
    assert_eq!(sqlite["messages"].foreign_keys.len(), 1);
    assert_eq!(sqlite["messages"].foreign_keys[0].3, "CASCADE");
    assert!(sqlite["conversations"].indexes.len() >= 2);
    assert_eq!(sqlite, postgres);

    // The list indexes lead with whether a conversation is archived (a
    // column generated from `archived_at` in both dialects), and the tree
    // index serves a message's children.
    for order in ["created_at", "updated_at"] {
        let name = format!("ix_conversations_{order}");
        let columns = &sqlite["conversations"].indexes[&name].0;
        assert_eq!(columns, &["archived", order, "id"]);
    }
    assert_eq!(
        sqlite["messages"].indexes["ix_messages_parent_id"].0,
        ["conversation_id", "parent_id", "position"]
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hidden: i64 = conn
        .query_row(
            "SELECT hidden FROM pragma_table_xinfo('conversations') WHERE name = 'archived'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hidden, 2, "a virtual generated column");
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    let generated: String = client
        .query_one(
            "SELECT generation_expression FROM information_schema.columns \
             WHERE table_name = 'conversations' AND column_name = 'archived'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(generated, "(archived_at IS NOT NULL)");
}
