//! Statements slower than `SqliteOptions::slow_statement` are logged at
//! debug level with their SQL text (never the values bound to it); without a
//! threshold nothing is logged. One test: the logger is global.
#![cfg(feature = "sqlite")]

use std::sync::Mutex;
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{SqliteOptions, StoreConfig};

/// Every record logged under the slow-statement target.
static SLOW: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "silmari_store::slow" {
            assert_eq!(record.level(), log::Level::Debug);
            SLOW.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn take() -> Vec<String> {
    std::mem::take(&mut *SLOW.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Writes and reads a conversation holding `secret` on `store`.
fn work(store: &Store, secret: &str) {
    let c = store
        .conversations()
        .create(NewConversation::titled(secret))
        .unwrap();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, secret))
        .unwrap();
    store.conversations().get(c.id).unwrap().unwrap();
}

#[test]
fn slow_statements_are_logged_without_their_values() {
    log::set_boxed_logger(Box::new(Capture)).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    let url =
        |name: &str, query: &str| format!("sqlite:///{}{query}", dir.path().join(name).display());
    let secret = "bound-value-4f1c-never-logged";

    // Off by default: nothing measured, nothing logged.
    work(&Store::open(&url("off.db", "")).unwrap(), secret);
    assert!(take().is_empty(), "logged without a threshold");

    // A threshold no statement reaches.
    work(
        &Store::open(&url("high.db", "?slow_statement=86400")).unwrap(),
        secret,
    );
    assert!(take().is_empty(), "logged below the threshold");

    // Zero: every statement, with its SQL as prepared.
    let store = Store::open(&url("zero.db", "?slow_statement=0")).unwrap();
    take(); // opening ran the migrations
    work(&store, secret);
    let logged = take();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("INSERT INTO messages") && l.contains('?')),
        "{logged:#?}"
    );
    assert!(
        logged
            .iter()
            .all(|l| l.starts_with("slow SQLite statement (")),
        "{logged:#?}"
    );
    assert!(
        logged.iter().all(|l| !l.contains(secret)),
        "a bound value was logged: {logged:#?}"
    );

    // From code, on an in-memory database.
    let mut config: StoreConfig = "sqlite://".parse().unwrap();
    config.sqlite = SqliteOptions {
        slow_statement: Some(Duration::ZERO),
        ..SqliteOptions::default()
    };
    let store = Store::open_with(config).unwrap();
    take();
    work(&store, secret);
    assert!(!take().is_empty());

    // A store with a threshold does not make another one log.
    work(&Store::open(&url("off.db", "")).unwrap(), secret);
    assert!(take().is_empty());

    // Out of range, or on a backend that does not take it.
    for bad in [
        url("bad.db", "?slow_statement=-1"),
        url("bad.db", "?slow_statement=1e9"),
        url("bad.db", "?slow_statement=soon"),
        "postgresql://u@localhost/db?slow_statement=1".to_owned(),
    ] {
        let err = Store::open(&bad).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "slow_statement"),
            "{bad}: {err:?}"
        );
    }
    assert!(!dir.path().join("bad.db").exists(), "nothing was created");
}
