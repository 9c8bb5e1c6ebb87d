//! Attacks on the change feed (`Store::subscribe`, `changes_since`), each
//! against a promise of README.md's "Change feed": subscription queues
//! under pressure, racing and churning (`queues`); a hostile or busy
//! SQLite `change_log` and the listener's locking (`log`); tree
//! operations, imports, copies and two writers on one file reported
//! exactly (`trees`); a writer process killed mid-transaction
//! (`killed`); receivers taking queued events in batches (`receivers`);
//! the same on PostgreSQL, with hostile notifications
//! (`postgres`); and an encrypted SQLite file (`encrypted`).

// A memory-only build runs the memory cases; the SQLite helpers rest.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code, unused_imports))]

#[path = "../common/mod.rs"]
mod common;

#[cfg(feature = "encryption")]
mod encrypted;
#[cfg(feature = "sqlite")]
mod killed;
#[cfg(feature = "sqlite")]
mod log;
#[cfg(feature = "postgres")]
mod postgres;
mod queues;
mod receivers;
mod trees;

use std::path::Path;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{Change, Subscription};

/// The README's bound for a change by another store on the same file.
pub const ACROSS: Duration = Duration::from_millis(250);
/// Long enough for PostgreSQL's notifications on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn url(path: &Path) -> String {
    common::sqlite_url(path)
}

/// A plain connection to the file, outside any store.
pub fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// The one integer `sql` selects from the file.
pub fn count(path: &Path, sql: &str) -> i64 {
    raw(path).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Now, as `change_log.committed_at` counts time.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

pub fn new_file(name: &str) -> NewFile {
    NewFile {
        filename: name.to_owned(),
        content_type: "text/plain".to_owned(),
        size: 1,
        ..Default::default()
    }
}

/// Creates a conversation; its id.
pub fn conv(store: &Store, title: &str) -> ConversationId {
    store
        .conversations()
        .create(NewConversation::titled(title))
        .unwrap()
        .id
}

/// Every event until `within` passes with none.
pub fn drain(feed: &Subscription, within: Duration) -> Vec<FeedEvent> {
    let mut out = Vec::new();
    while let Some(event) = feed.recv_timeout(within) {
        out.push(event);
    }
    out
}

/// Events until `done` says the ones so far are enough, or `within` has
/// passed; all of them.
pub fn until(
    feed: &Subscription,
    within: Duration,
    done: impl Fn(&[FeedEvent]) -> bool,
) -> Vec<FeedEvent> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while !done(&out) {
        let left = deadline.saturating_duration_since(Instant::now());
        match feed.recv_timeout(left) {
            Some(event) => out.push(event),
            None => break,
        }
    }
    out
}

/// Events up to (not including) the creation of a marker conversation,
/// written now: everything committed before it.
pub fn until_marker(store: &Store, feed: &Subscription) -> Vec<FeedEvent> {
    let marker = conv(store, "marker");
    let mut out = Vec::new();
    loop {
        match feed.recv_timeout(PATIENCE) {
            Some(FeedEvent::Change(c)) if c.id == *marker.as_uuid() => return out,
            Some(event) => out.push(event),
            None => panic!("the marker never arrived; got {out:?}"),
        }
    }
}

/// The changes among `events`.
pub fn changes(events: &[FeedEvent]) -> Vec<Change> {
    events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Change(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Whether `events` hold the change of record `id`.
pub fn has_change(events: &[FeedEvent], id: uuid::Uuid) -> bool {
    events
        .iter()
        .any(|e| matches!(e, FeedEvent::Change(c) if c.id == id))
}
