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
}
