//! When the PostgreSQL server refuses something, the error says what the
//! server said, with its SQLSTATE (`permission denied for schema public
//! (42501)`), not just "db error"; and still no password. Needs
//! SILMARI_TEST_POSTGRES_URL (see `scripts/with-postgres`); without it each
//! test says so and returns, and in CI it fails.
#![cfg(feature = "postgres")]

mod common;

use common::pg::Database;
use silmari_store::prelude::*;

/// A login role of the test server, dropped afterwards (declare it before
/// the databases it may own objects in).
struct Role {
    server: String,
    name: String,
    password: String,
}

impl Role {
    fn create(server: &str) -> Role {
        let name = format!("silmari_r_{}", uuid::Uuid::new_v4().simple());
        let password = format!("Rol3-{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            .unwrap();
        Role {
            server: server.to_owned(),
            name,
            password,
        }
    }

    /// The URL of `database` as this role.
    fn url(&self, database: &Database) -> String {
        let (_, rest) = database.url.split_once("://").unwrap();
        let (_, host_and_db) = rest.rsplit_once('@').unwrap();
        format!("postgresql://{}:{}@{host_and_db}", self.name, self.password)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

use common::shown;

#[test]
fn a_role_without_create_on_the_schema_is_told_so_when_migrating() {
    let Some(server) = common::postgres_server() else {
        return;
    };
    let role = Role::create(&server);
    let Some(database) = Database::create() else {
        return;
    };
    // PostgreSQL 15 and later: only the owner may create in public.
    database
        .client()
        .batch_execute(&format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {}",
            role.name
        ))
        .unwrap();
    let err = Store::open(&role.url(&database)).unwrap_err();
    assert!(matches!(err, Error::Migration { .. }), "{err:?}");
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.contains("permission denied for schema public (42501)"),
        "the server's reason: {message}"
    );
    assert!(!shown(&err).contains(&role.password), "{}", shown(&err));
}

#[test]
fn a_failing_statement_says_what_the_server_said() {
    let Some(server) = common::postgres_server() else {
        return;
    };
    let role = Role::create(&server);
    let Some(database) = Database::create() else {
        return;
    };
    // Migrated by the owner; the role may read but not write.
    drop(Store::open(&database.url).unwrap());
    database
        .client()
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA public TO {0}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {0}",
            role.name
        ))
        .unwrap();
    let store = Store::open(&role.url(&database)).unwrap();
    assert!(store.conversations().list_all().unwrap().is_empty());
    let err = store
        .conversations()
        .create(NewConversation::titled("not allowed"))
        .unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.contains("permission denied for table conversations (42501)"),
        "the server's reason: {message}"
    );
    assert!(!shown(&err).contains(&role.password), "{}", shown(&err));
}

#[test]
fn a_refused_connection_says_what_the_server_said() {
    let Some(server) = common::postgres_server() else {
        return;
    };
    let role = Role::create(&server);
    let Some(database) = Database::create() else {
        return;
    };
    let (_, name) = database.url.rsplit_once('/').unwrap();
    database
        .client()
        .batch_execute(&format!("REVOKE CONNECT ON DATABASE {name} FROM PUBLIC"))
        .unwrap();
    let err = Store::open(&role.url(&database)).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.contains(&format!("permission denied for database \"{name}\"")),
        "the server's reason: {message}"
    );
    assert!(message.contains("(42501)"), "{message}");
    assert!(!shown(&err).contains(&role.password), "{}", shown(&err));
}
