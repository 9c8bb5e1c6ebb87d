//! What only the SQLite backend has: files, pragmas, the pool, migrations on open.
#![cfg(feature = "sqlite")]

mod common;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use silmari_store::PoolConfig;
use silmari_store::prelude::*;
use tempfile::TempDir;

use common::sqlite_url as url;

fn db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    (dir, path)
}

#[test]
fn file_store_uses_wal_and_keeps_data_across_reopen() {
    let (_dir, path) = db();
    let id = {
        let store = Store::open(&url(&path)).unwrap();
        assert_eq!(store.path(), Some(path.as_path()));
        let c = store
            .conversations()
            .create(NewConversation::titled("persist"))
            .unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "still here"))
            .unwrap();
        c.id
    };
    let raw = Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(raw);
    let store = Store::open(&url(&path)).unwrap();
    let c = store.conversations().get(id).unwrap().unwrap();
    assert_eq!(c.messages[0].content, "still here");
}

/// Dropping the last clone of a store closes every connection before it
/// returns, also those its pool was still opening in the background: the
/// last one to close removes the log. (A process may exit right after;
/// with the `encryption` feature SQLCipher's exit handler crashed one still
/// opening a connection.)
#[test]
fn dropping_the_store_closes_every_connection_before_it_returns() {
    let (dir, path) = db();
    for round in 0..5 {
        let store = Store::open(&url(&path)).unwrap();
        // Busy from several threads: the pool opens more in the background.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5 {
                        store.conversations().list_all().unwrap();
                    }
                });
            }
        });
        store
            .conversations()
            .create(NewConversation::titled("written"))
            .unwrap();
        drop(store);
        for suffix in ["-wal", "-shm"] {
            let companion = dir.path().join(format!("test.db{suffix}"));
            assert!(!companion.exists(), "round {round}: {suffix} left open");
        }
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_untouched() {
    let (dir, path) = db();
    let bytes: Vec<u8> = b"These are my notes, not a database.\n".repeat(200);
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&url(&path)).unwrap_err();
    match &err {
        silmari_store::Error::NotADatabase { path: p } => assert_eq!(p, &path),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is unchanged"
    );
    let wal = dir.path().join("test.db-wal");
    assert!(!wal.exists(), "no WAL file was created beside it");
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let (dir, _) = db();
    let path = dir.path().join("no/such/dir/x.db");
    match Store::open(&url(&path)).unwrap_err() {
        silmari_store::Error::Open {
            path: p, reason, ..
        } => {
            assert_eq!(p, path);
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("expected Open, got {other:?}"),
    }
    assert!(!dir.path().join("no").exists());
}

#[test]
fn in_memory_sqlite_is_shared_by_the_pool_connections() {
    let store = Store::builder()
        .url("sqlite://")
        .pool(PoolConfig {
            pool_size: 2,
            max_overflow: 2,
            ..PoolConfig::default()
        })
        .open()
        .unwrap();
    let (written, wait) = mpsc::channel();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.transaction(|tx| -> silmari_store::Result<()> {
                tx.conversations()
                    .create(NewConversation::titled("first connection"))?;
                written.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(200));
                Ok(())
            })
        })
    };
    wait.recv().unwrap();
    // The writer's connection is checked out inside its transaction, so this
    // write runs on a second connection (waiting for the first to commit).
    store
        .files()
        .create(NewFile {
            filename: "second connection".into(),
            content_type: "text/plain".into(),
            ..Default::default()
        })
        .unwrap();
    writer.join().unwrap().unwrap();
    // Whichever connection serves these reads sees both writes: one database.
    for _ in 0..4 {
        assert_eq!(
            store.conversations().list_all().unwrap()[0].title,
            "first connection"
        );
        let files = store.files().list(PageRequest::first(5)).unwrap().items;
        assert_eq!(files[0].filename, "second connection");
    }
    // Two stores never share an in-memory database.
    let other = Store::open("sqlite://").unwrap();
    assert!(other.conversations().list_all().unwrap().is_empty());
}

#[test]
fn schema_newer_than_this_build_is_refused_and_untouched() {
    let (_dir, path) = db();
    drop(Store::open(&url(&path)).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
        [],
    )
    .unwrap();
    let history = |raw: &Connection| -> Vec<(i64, String)> {
        let mut stmt = raw
            .prepare("SELECT version, name FROM refinery_schema_history ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = history(&raw);
    for migrate in [true, false] {
        let err = Store::builder()
            .url(url(&path))
            .migrate_on_open(migrate)
            .open()
            .unwrap_err();
        match err {
            silmari_store::Error::SchemaTooNew {
                database,
                supported,
            } => {
                assert_eq!(database, 99);
                assert_eq!(supported, common::LATEST);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert_eq!(history(&raw), before);
}

#[test]
fn migrations_can_wait_until_asked() {
    let (_dir, path) = db();
    let store = Store::builder()
        .url(url(&path))
        .migrate_on_open(false)
        .open()
        .unwrap();
    let status = store.migrations().status().unwrap();
    let names: Vec<(i64, &str)> = status
        .iter()
        .map(|m| (m.version, m.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (1, "initial_schema"),
            (2, "conversation_message_count"),
            (3, "conversation_version"),
            (4, "branches_archive_metadata"),
            (5, "search"),
            (6, "change_feed"),
            (7, "search_in_batches"),
            (8, "search_stale_entries"),
            (9, "search_folds_case_last"),
            (10, "search_word_pairs"),
            (11, "search_rowid_blocks"),
            (12, "search_signatures")
        ]
    );
    assert!(status.iter().all(|m| !m.is_applied()));
    assert!(store.conversations().list_all().is_err(), "no tables yet");
    store.migrations().up().unwrap();
    assert!(
        store
            .migrations()
            .status()
            .unwrap()
            .iter()
            .all(|m| m.is_applied())
    );
    store
        .conversations()
        .create(NewConversation::titled("now"))
        .unwrap();
    store.migrations().up().unwrap(); // nothing pending: a no-op
}

#[test]
fn foreign_keys_and_checks_guard_raw_writes_too() {
    let (_dir, path) = db();
    drop(Store::open(&url(&path)).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let orphan = raw.execute(
        "INSERT INTO messages (id, conversation_id, position, role, content, created_at) \
         VALUES ('m', 'no-such-conversation', 1, 'user', 'x', 0)",
        [],
    );
    assert!(orphan.is_err(), "the schema's foreign key refuses orphans");
    raw.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('c', 't', 0, 0)",
        [],
    )
    .unwrap();
    let bad_role = raw.execute(
        "INSERT INTO messages (id, conversation_id, position, role, content, created_at) \
         VALUES ('m', 'c', 1, 'wizard', 'x', 0)",
        [],
    );
    assert!(bad_role.is_err(), "the schema refuses unknown roles");
}

#[test]
fn tampered_rows_are_corrupt_row_errors() {
    let (_dir, path) = db();
    let store = Store::open(&url(&path)).unwrap();
    let (c, raw) = common::damaged_attachments(&store, &path);
    match store.conversations().get(c).unwrap_err() {
        silmari_store::Error::CorruptRow { table, column, .. } => {
            assert_eq!((table, column), ("messages", "attachments"));
        }
        other => panic!("expected CorruptRow, got {other:?}"),
    }
    raw.execute(
        "UPDATE messages SET attachments = '[]', id = 'not-a-uuid'",
        [],
    )
    .unwrap();
    assert!(matches!(
        store.conversations().get(c).unwrap_err(),
        silmari_store::Error::CorruptRow { column: "id", .. }
    ));
}
