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
    let sqlite = sqlite_schema(&path);
    let postgres = postgres_schema(&database.url);
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
