//! Encrypted SQLite files (the `encryption` feature): nothing stored is
//! readable in the file, its log, its backups or its snapshots; a key that
//! does not fit is a typed error that leaves the file untouched; SQLCipher
//! prints nothing. (Encrypting, re-keying and decrypting files:
//! `encryption_files.rs`; the conformance suite, the migration tests and
//! the crash loop also run on encrypted files.)

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use silmari_store::prelude::*;
use silmari_store::{Key, KeyProblem, SearchQuery, StoreConfig};

use common::{LATEST, sqlite_url as url};

fn key() -> Key {
    Key::passphrase("the right horse battery staple").unwrap()
}

fn open(path: &Path, key: Option<Key>) -> silmari_store::Result<Store> {
    let mut config: StoreConfig = url(path).parse()?;
    config.sqlite.key = key;
    Store::open_with(config)
}

/// Words stored in titles, texts, file names and attachments, each found
/// nowhere in an encrypted file in any case (the search index holds them
/// lowercased).
const SECRETS: [&str; 4] = ["Quokkatitle", "Zebradraft", "Narwhalfile", "Okapiattach"];

/// Writes every kind of record, each holding one of [`SECRETS`].
fn fill(store: &Store) -> ConversationId {
    let c = store
        .conversations()
        .create(NewConversation::titled(format!("{} notes", SECRETS[0])))
        .unwrap();
    let attachment = Attachment {
        file_id: FileId::new(),
        filename: format!("{}.png", SECRETS[3]),
        content_type: "image/png".into(),
        size: 7,
    };
    for i in 0..50 {
        store
            .conversations()
            .append_message(
                c.id,
                NewMessage::new(Role::User, format!("draft {i}: {} by the sea", SECRETS[1]))
                    .with_attachments(vec![attachment.clone()]),
            )
            .unwrap();
    }
    store
        .files()
        .create(NewFile {
            filename: format!("{}.pdf", SECRETS[2]),
            content_type: "application/pdf".into(),
            size: 10,
            ..Default::default()
        })
        .unwrap();
    c.id
}

/// Every secret found in the bytes of `path` (in any case).
fn secrets_in(path: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let lower = bytes.to_ascii_lowercase();
    SECRETS
        .iter()
        .filter(|s| {
            let needle = s.to_ascii_lowercase().into_bytes();
            lower.windows(needle.len()).any(|w| w == needle)
        })
        .map(|s| format!("{s} in {}", path.display()))
        .collect()
}

/// The database file and its log, while they exist.
fn with_log(path: &Path) -> [PathBuf; 2] {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), PathBuf::from(wal)]
}

#[test]
fn the_files_hold_none_of_the_stored_text() {
    let dir = tempfile::tempdir().unwrap();
    // The control: in a plain file the same records are readable, so the
    // search below would find them if they were there.
    let plain = dir.path().join("plain.db");
    let store = open(&plain, None).unwrap();
    fill(&store);
    let found: Vec<String> = with_log(&plain)
        .iter()
        .flat_map(|p| secrets_in(p))
        .collect();
    assert_eq!(found.len(), SECRETS.len(), "control: {found:?}");
    drop(store);

    let path = dir.path().join("secret.db");
    let store = open(&path, Some(key())).unwrap();
    let c = fill(&store);
    let backup = dir.path().join("backup.db");
    store.backup_to(&backup).unwrap();
    // While open: the file and its log; then the backup.
    for file in with_log(&path).iter().chain([&backup]) {
        assert_eq!(secrets_in(file), Vec::<String>::new());
    }
    // The records and the search index are whole behind the key.
    let hits = store
        .search(&SearchQuery::new(SECRETS[1].to_lowercase()).limit(100))
        .unwrap();
    assert_eq!(hits.items.len(), 50);
    drop(store);
    for file in with_log(&path) {
        assert_eq!(secrets_in(&file), Vec::<String>::new());
    }
    let copy = open(&backup, Some(key())).unwrap();
    let stored = copy.conversations().get(c).unwrap().unwrap();
    assert_eq!(stored.messages.len(), 50);
    assert!(stored.title.starts_with(SECRETS[0]));
}

/// Every file in `dir`, with its length and a hash of its bytes.
fn contents(dir: &Path) -> BTreeMap<String, (usize, u64)> {
    use std::hash::{Hash, Hasher};
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let bytes = std::fs::read(e.path()).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (bytes.len(), hasher.finish()))
        })
        .collect()
}

fn assert_key_error(result: silmari_store::Result<Store>, expected: KeyProblem, what: &str) {
    match result {
        Err(Error::Key { problem, .. }) => assert_eq!(problem, expected, "{what}"),
        Err(other) => panic!("{what}: expected Error::Key({expected:?}), got {other:?}"),
        Ok(_) => panic!("{what}: expected Error::Key({expected:?}), but it opened"),
    }
}

#[test]
fn a_key_that_does_not_fit_is_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let encrypted = dir.path().join("encrypted.db");
    let plain = dir.path().join("plain.db");
    fill(&open(&encrypted, Some(key())).unwrap());
    fill(&open(&plain, None).unwrap());
    let before = contents(dir.path());

    assert_key_error(open(&encrypted, None), KeyProblem::Missing, "no key");
    let wrong = Key::passphrase("the wrong horse").unwrap();
    assert_key_error(open(&encrypted, Some(wrong)), KeyProblem::Wrong, "wrong");
    // The same secret as a raw key is another key.
    let raw = Key::raw(&[0x5a; 32]);
    assert_key_error(open(&encrypted, Some(raw)), KeyProblem::Wrong, "raw");
    assert_key_error(open(&plain, Some(key())), KeyProblem::NotEncrypted, "plain");
    // Nothing written, nothing created beside them.
    assert_eq!(contents(dir.path()), before);

    // The message says which, and never shows a key.
    let shown = common::shown(&open(&encrypted, None).err().unwrap());
    assert!(shown.contains("no key was given"), "{shown}");
    let shown = common::shown(&open(&plain, Some(key())).err().unwrap());
    assert!(shown.contains("not encrypted"), "{shown}");
    assert!(!shown.contains("horse"), "{shown}");

    // A text file is not taken for an encrypted database.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just some notes, not a database\n").unwrap();
    assert!(matches!(open(&text, None), Err(Error::NotADatabase { .. })));
    // And the right key still opens the encrypted file.
    let store = open(&encrypted, Some(key())).unwrap();
    assert_eq!(store.conversations().list_all().unwrap().len(), 1);
}

#[test]
fn a_key_for_anything_but_a_file_is_refused() {
    for url in ["memory://", "sqlite://"] {
        let mut config: StoreConfig = url.parse().unwrap();
        config.sqlite.key = Some(key());
        match Store::open_with(config) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "key", "{url}"),
            other => panic!("{url}: expected InvalidInput on key, got {:?}", other.err()),
        }
    }
}

#[test]
fn the_builder_sets_the_key_whatever_the_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("built.db");
    let options = silmari_store::SqliteOptions {
        snapshots_kept: 0,
        ..Default::default()
    };
    let store = Store::builder()
        .url(url(&path))
        .key(key())
        .sqlite(options)
        .open()
        .unwrap();
    fill(&store);
    drop(store);
    assert_key_error(open(&path, None), KeyProblem::Missing, "built encrypted");
}

/// Runs test `name` of this binary in a child process on the file at
/// `path`, to its end; its output, both streams captured.
fn run_child(name: &str, path: &Path) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_VAR, path.to_str().unwrap())
        .output()
        .unwrap()
}

/// The child of `sqlcipher_prints_nothing`: fails to open with no key and a
/// wrong key, as an app would.
fn quiet_child(path: &str) {
    let path = Path::new(path);
    assert!(open(path, None).is_err());
    assert!(open(path, Some(Key::passphrase("wrong").unwrap())).is_err());
    println!("CHILD DONE");
}

#[test]
fn sqlcipher_prints_nothing() {
    const NAME: &str = "sqlcipher_prints_nothing";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            quiet_child(&arg);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loud.db");
    fill(&open(&path, Some(key())).unwrap());
    let out = run_child(NAME, &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("CHILD DONE"), "{stdout}\n{stderr}");
    // SQLCipher's own lines start with its level and source ("ERROR CORE").
    assert!(
        !stderr.contains("CORE") && !stderr.contains("ERROR"),
        "SQLCipher printed: {stderr}"
    );
}

#[test]
fn snapshots_stay_encrypted_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrated.db");
    let store = open(&path, Some(key())).unwrap();
    let c = fill(&store);
    // Down to 1 snapshots the latest version; up from 1 snapshots version 1.
    store.migrations().down_to(1).unwrap();
    store.migrations().up().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    for snapshot in &snapshots {
        assert_eq!(secrets_in(&snapshot.path), Vec::<String>::new());
        assert_key_error(
            open(&snapshot.path, None),
            KeyProblem::Missing,
            "a snapshot without the key",
        );
    }
    let latest = snapshots.iter().find(|s| s.version == LATEST).unwrap();
    store.conversations().delete(c).unwrap();
    store.migrations().restore_snapshot(&latest.path).unwrap();
    let restored = store.conversations().get(c).unwrap().unwrap();
    assert_eq!(restored.messages.len(), 50);
    assert!(store.check().unwrap().is_healthy());

    // A plain database is refused as a snapshot of an encrypted store.
    let plain = dir.path().join("plain.db");
    fill(&open(&plain, None).unwrap());
    match store.migrations().restore_snapshot(&plain) {
        Err(Error::InvalidInput { field, reason }) => {
            assert_eq!(field, "snapshot");
            assert!(reason.contains("unencrypted"), "{reason}");
        }
        other => panic!("expected InvalidInput on snapshot, got {other:?}"),
    }
    assert_eq!(
        store
            .conversations()
            .get(c)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        50
    );
}

/// Files written by the store open with SQLCipher's own `PRAGMA key` (the
/// store derives a passphrase's key once and keys its other connections
/// with the result), and files SQLCipher wrote open in the store.
#[test]
fn files_are_sqlcipher_files_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.db");
    let store = open(&ours, Some(key())).unwrap();
    let c = fill(&store);
    // Several connections at once: the pool's, keyed with the derived key.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| store.conversations().get(c).unwrap().unwrap());
        }
    });
    drop(store);
    let raw = rusqlite::Connection::open(&ours).unwrap();
    raw.execute_batch("PRAGMA key = 'the right horse battery staple'")
        .unwrap();
    let messages: i64 = raw
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(messages, 50);
    drop(raw);

    let theirs = dir.path().join("theirs.db");
    let raw = rusqlite::Connection::open(&theirs).unwrap();
    raw.execute_batch(
        "PRAGMA key = 'the right horse battery staple'; CREATE TABLE notes(x); \
         INSERT INTO notes VALUES ('written by SQLCipher');",
    )
    .unwrap();
    drop(raw);
    // Not one of this store's databases, but the key opens it: the store
    // migrates it (its own tables beside `notes`).
    let store = open(&theirs, Some(key())).unwrap();
    assert_eq!(store.check().unwrap().counts.messages, 0);
    drop(store);
    let raw = rusqlite::Connection::open(&theirs).unwrap();
    raw.execute_batch("PRAGMA key = 'the right horse battery staple'")
        .unwrap();
    let note: String = raw
        .query_row("SELECT x FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(note, "written by SQLCipher");
}

/// The child of `a_process_exits_cleanly_after_closing_its_store`.
fn exiting_child(path: &str) {
    let store = open(Path::new(path), Some(key())).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| store.conversations().list_all().unwrap());
        }
    });
    fill(&store);
    drop(store);
    println!("CHILD DONE");
}

/// SQLCipher cleans up at process exit while other threads may still run
/// its code: the store's pool, opening a connection in the background,
/// crashed 4 exits in 5 this way. Dropping the store now waits for them.
#[test]
fn a_process_exits_cleanly_after_closing_its_store() {
    const NAME: &str = "a_process_exits_cleanly_after_closing_its_store";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            exiting_child(&arg);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exit.db");
    for round in 0..8 {
        let out = run_child(NAME, &path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CHILD DONE"),
            "round {round}: {:?}\n{stdout}",
            out.status
        );
    }
}
