//! The PostgreSQL schema is pinned: every connection resolves the store's
//! tables in one schema (`schema=`, default `public`), so a table of the same
//! name elsewhere — in the role's own schema, which the default
//! `search_path` ("$user", public) puts first — never hides the data or
//! receives its writes, and `check()` says where each table resolves.
#![cfg(feature = "postgres")]

mod common;

use common::pg::Database;
use silmari_store::prelude::*;

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

fn count(db: &Database, table: &str) -> i64 {
    db.client()
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

fn add_conversation(store: &Store) -> Conversation {
    let c = store
        .conversations()
        .create(NewConversation::titled("where does this go?"))
        .unwrap();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "hello"))
        .unwrap();
    c
}

#[test]
fn a_table_in_the_roles_own_schema_does_not_shadow_the_store() {
    let Some(db) = Database::create() else { return };
    let first = Store::open(&db.url).unwrap();
    add_conversation(&first);
    drop(first);

    // A schema named after the role, first in the default search_path, with
    // a table shaped exactly like the store's.
    let mut client = db.client();
    client
        .batch_execute(
            "CREATE SCHEMA AUTHORIZATION CURRENT_USER; \
             CREATE TABLE conversations (LIKE public.conversations INCLUDING ALL);",
        )
        .unwrap();
    let shadow_schema: String = client
        .query_one(
            "SELECT schemaname::text FROM pg_tables \
             WHERE tablename = 'conversations' AND schemaname <> 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    let shadow = format!("\"{shadow_schema}\".conversations");

    let store = Store::open(&db.url).unwrap();
    let listed = store.conversations().list_all().unwrap();
    assert_eq!(listed.len(), 1, "the data in public is still what it reads");
    add_conversation(&store);
    assert_eq!(count(&db, "public.conversations"), 2, "writes go to public");
    assert_eq!(count(&db, &shadow), 0, "the shadow table receives nothing");

    let report = store.check().unwrap();
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.schema.as_deref(), Some("public"));
    assert!(report.misplaced_tables.is_empty());

    // A search_path in the URL's own options cannot move it either.
    let url = with_param(
        &db.url,
        &format!("options=-c%20search_path%3D{shadow_schema}"),
    );
    let store = Store::open(&url).unwrap();
    add_conversation(&store);
    assert_eq!(count(&db, "public.conversations"), 3);
    assert_eq!(count(&db, &shadow), 0);
}

#[test]
fn a_named_schema_holds_the_tables_apart_from_public() {
    let Some(db) = Database::create() else { return };
    db.client().batch_execute("CREATE SCHEMA writer").unwrap();
    let store = Store::open(&with_param(&db.url, "schema=writer")).unwrap();
    add_conversation(&store);
    assert_eq!(count(&db, "writer.conversations"), 1);
    let in_public: bool = db
        .client()
        .query_one(
            "SELECT to_regclass('public.conversations') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!in_public, "nothing was created in public");
    let report = store.check().unwrap();
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.schema.as_deref(), Some("writer"));
    assert!(
        store.location().to_string().contains("schema=writer"),
        "{}",
        store.location()
    );

    // A store on public is a different, empty store.
    let public = Store::open(&db.url).unwrap();
    assert!(public.conversations().list_all().unwrap().is_empty());
}

#[test]
fn a_missing_or_malformed_schema_is_refused() {
    let Some(db) = Database::create() else { return };
    for (param, why) in [
        ("schema=nowhere", "does not exist"),
        ("schema=Writer", "not lowercase"),
        ("schema=a%20b", "a space"),
        ("schema=", "empty"),
        ("schema=x;DROP%20TABLE%20y", "SQL"),
    ] {
        let err = Store::open(&with_param(&db.url, param)).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "schema"),
            "{param} ({why}): {err:?}"
        );
    }
    let tables: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
}

#[test]
fn check_reports_a_table_that_is_not_where_it_should_be() {
    let Some(db) = Database::create() else { return };
    let store = Store::open(&db.url).unwrap();
    assert!(store.check().unwrap().is_healthy());
    // Moved out of the store's schema: the store must not find it elsewhere.
    db.client()
        .batch_execute(
            "CREATE SCHEMA elsewhere; ALTER TABLE public.file_metadata SET SCHEMA elsewhere;",
        )
        .unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.misplaced_tables, ["file_metadata -> missing"]);
    assert!(!report.is_healthy());
}
