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

    // The list indexes lead with whether a conversation is archived, in
    // both dialects, and the tree index serves a message's children.
    for order in ["created_at", "updated_at"] {
        let name = format!("ix_conversations_{order}");
        let columns = &sqlite["conversations"].indexes[&name].0;
        assert_eq!(columns, &[common::schema::EXPRESSION, order, "id"]);
    }
    assert_eq!(
        sqlite["messages"].indexes["ix_messages_parent_id"].0,
        ["conversation_id", "parent_id", "position"]
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    for order in ["created_at", "updated_at"] {
        let name = format!("ix_conversations_{order}");
        let sqlite_sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = ?1",
                [&name],
                |r| r.get(0),
            )
            .unwrap();
        let postgres_sql: String = client
            .query_one(
                "SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        for sql in [&sqlite_sql, &postgres_sql] {
            assert!(sql.contains("archived_at IS NOT NULL"), "{sql}");
        }
    }
}
