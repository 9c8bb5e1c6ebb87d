//! A throwaway database for the backend's own tests.

use postgres::{Client, NoTls};

use super::PgConn;

/// A throwaway database on the server of SILMARI_TEST_POSTGRES_URL,
/// dropped afterwards; `None` (said) without one, a failure in CI.
pub(super) struct TestDatabase {
    server: String,
    name: String,
    pub(super) conn: PgConn,
}

impl TestDatabase {
    pub(super) fn create() -> Option<Self> {
        let Ok(server) = std::env::var("SILMARI_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "CI must set SILMARI_TEST_POSTGRES_URL"
            );
            println!("SILMARI_TEST_POSTGRES_URL not set: PostgreSQL test not run");
            return None;
        };
        let name = format!("silmari_u_{}", uuid::Uuid::new_v4().simple());
        let mut admin = Client::connect(&server, NoTls).expect("test server");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let mut config: postgres::Config = server.parse().expect("server URL");
        config.dbname(&name);
        let client = config.connect(NoTls).expect("connect");
        let conn = PgConn {
            client,
            statements: Default::default(),
            in_transaction: false,
            epoch: 0,
            channel: super::feed::channel("public").into(),
            notify: Vec::new(),
            staged: None,
            utf8: None,
            signs: None,
            statistics: None,
        };
        Some(TestDatabase { server, name, conn })
    }
}

impl TestDatabase {
    /// The URL of this database (the server's, naming it).
    pub(super) fn url(&self) -> String {
        let (base, query) = match self.server.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (self.server.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        format!("{server}/{}{query}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.server, NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
