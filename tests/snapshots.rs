//! Snapshots of SQLite files: what `restore_snapshot` refuses (anything but
//! a complete, sound database of this store's schema at a version this
//! build knows), snapshots killed while being written (never listed, removed
//! by the next pruning), and pruning of every file a snapshot left.
#![cfg(feature = "sqlite")]

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use silmari_store::prelude::*;
use silmari_store::{SqliteOptions, StoreConfig};
use tempfile::TempDir;

use common::{size_from_env, sqlite_url as url};

/// A file store holding one conversation of 100 messages of 4 KiB (about
/// 500 KiB in all), and a version-2 snapshot of it taken by `down(1)` and
/// `up()` (which also leaves a version-1 snapshot).
struct Fixture {
    dir: TempDir,
    store: Store,
    conversation: ConversationId,
    latest: PathBuf,
    v1: PathBuf,
}

use common::LATEST;

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let store = Store::open(&url(&path)).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("precious"))
        .unwrap();
    let messages = (0..100)
        .map(|i| NewMessage::new(Role::User, format!("{i:03} {}", "x".repeat(4096))))
        .collect();
    store
        .conversations()
        .append_messages(c.id, messages)
        .unwrap();
    // Down to 1 snapshots the latest version; up from 1 snapshots version 1.
    store.migrations().down_to(1).unwrap();
    store.migrations().up().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    let find = |version| {
        snapshots
            .iter()
            .find(|s| s.version == version)
            .map(|s| s.path.clone())
            .unwrap()
    };
    Fixture {
        latest: find(LATEST),
        v1: find(1),
        conversation: c.id,
        store,
        dir,
    }
}

impl Fixture {
    /// A copy of the latest version's snapshot under `name`, in the store's directory.
    fn copy_of_latest(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::copy(&self.latest, &path).unwrap();
        path
    }

    /// The store still holds its data, reads it through the same open
    /// `Store`, and its file is sound.
    fn assert_intact(&self) {
        let c = self
            .store
            .conversations()
            .get(self.conversation)
            .unwrap()
            .expect("the conversation is still there");
        assert_eq!(c.title, "precious");
        assert_eq!(c.messages.len(), 100);
        assert!(c.messages[99].content.starts_with("099 "));
        let report = self.store.check().unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(report.schema_version, LATEST);
    }

    /// Restoring `snapshot` is refused with `InvalidInput` naming
    /// `snapshot`, and the live store keeps its data.
    fn assert_refused(&self, what: &str, snapshot: &Path) {
        match self.store.migrations().restore_snapshot(snapshot) {
            Err(Error::InvalidInput { field, reason }) => {
                assert_eq!(field, "snapshot", "{what}: {reason}");
                println!("{what}: refused: {reason}");
            }
            other => panic!("{what}: expected InvalidInput naming `snapshot`, got {other:?}"),
        }
        self.assert_intact();
    }
}

#[test]
fn a_zero_byte_file_is_refused() {
    let f = fixture();
    let path = f.dir.path().join("zero.snapshot");
    std::fs::File::create(&path).unwrap();
    f.assert_refused("0-byte file", &path);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");
}

#[test]
fn an_empty_database_is_refused() {
    let f = fixture();
    let path = f.dir.path().join("empty.snapshot");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    f.assert_refused("empty database", &path);
}

#[test]
fn a_database_reverted_to_version_0_is_refused() {
    let f = fixture();
    let path = f.copy_of_latest("v0.snapshot");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE messages; DROP TABLE conversations; DROP TABLE file_metadata; \
             DELETE FROM refinery_schema_history;",
        )
        .unwrap();
    f.assert_refused("history table without versions", &path);
}

#[test]
fn a_snapshot_cut_short_is_refused() {
    let f = fixture();
    let len = std::fs::metadata(&f.latest).unwrap().len();
    assert!(len > 256 * 1024, "the snapshot holds {len} bytes");
    // What a VACUUM INTO killed midway leaves: the first pages written, the
    // rest missing; with page 1 (written last) still zero, or already there.
    for zero_page_one in [false, true] {
        let path = f.copy_of_latest(&format!("cut-{zero_page_one}.snapshot"));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len / 2).unwrap();
        if zero_page_one {
            (&file).write_all(&[0u8; 4096]).unwrap();
        }
        drop(file);
        f.assert_refused(&format!("cut short, page 1 zero: {zero_page_one}"), &path);
    }
}

#[test]
fn a_snapshot_with_a_zeroed_64_kib_range_is_refused() {
    let f = fixture();
    let path = f.copy_of_latest("zeroed.snapshot");
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(128 * 1024)).unwrap();
    file.write_all(&[0u8; 64 * 1024]).unwrap();
    drop(file);
    f.assert_refused("zeroed 64 KiB at 128 KiB", &path);
}

#[test]
fn a_snapshot_missing_a_table_of_its_version_is_refused() {
    let f = fixture();
    let path = f.copy_of_latest("no-messages.snapshot");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE messages").unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "sound as a file, wrong as a schema");
    drop(conn);
    f.assert_refused("the latest version without its messages table", &path);
}

#[test]
fn a_snapshot_of_an_unknown_or_tampered_history_is_refused() {
    let f = fixture();
    let newer = f.copy_of_latest("newer.snapshot");
    Connection::open(&newer)
        .unwrap()
        .execute_batch(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             SELECT 99, 'future', applied_on, '1' FROM refinery_schema_history WHERE version = 1",
        )
        .unwrap();
    f.assert_refused("version 99", &newer);

    let edited = f.copy_of_latest("edited.snapshot");
    Connection::open(&edited)
        .unwrap()
        .execute_batch("UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 1")
        .unwrap();
    f.assert_refused("edited checksum", &edited);
}

#[test]
fn a_missing_snapshot_is_an_io_error() {
    let f = fixture();
    let path = f.dir.path().join("nowhere.snapshot");
    match f.store.migrations().restore_snapshot(&path) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected Io naming the path, got {other:?}"),
    }
    assert!(!path.exists(), "not created");
    f.assert_intact();
}

#[test]
fn good_snapshots_of_either_version_restore() {
    let f = fixture();
    // A renamed copy restores too: the name is not what makes it valid.
    let copy = f.copy_of_latest("renamed-copy");
    f.store.conversations().delete(f.conversation).unwrap();
    f.store.migrations().restore_snapshot(&copy).unwrap();
    f.assert_intact();

    // Version 1, taken after a down migration rewrote the table.
    f.store.migrations().restore_snapshot(&f.v1).unwrap();
    let report = f.store.check().unwrap();
    assert_eq!(report.schema_version, 1);
    assert_eq!(report.integrity_check, Some(vec!["ok".to_owned()]));
    f.store.migrations().up().unwrap();
    f.assert_intact();
}

/// The files in `dir` whose names start with `prefix`, sorted.
fn files_starting(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

#[test]
fn pruning_removes_every_file_a_snapshot_left() {
    let f = fixture();
    let db = f.store.path().unwrap().to_path_buf();
    let name = db.file_name().unwrap().to_str().unwrap().to_owned();
    let dir = db.parent().unwrap();
    // The oldest snapshot was opened by someone and left its companions; a
    // killed snapshot left its temporary file and journal.
    let oldest = f.store.migrations().snapshots().unwrap().pop().unwrap();
    for suffix in ["-journal", "-wal", "-shm"] {
        std::fs::write(format!("{}{suffix}", oldest.path.display()), b"x").unwrap();
    }
    let leftover = format!("{name}.v2-20000101T000000.000000Z.snapshot.partial");
    std::fs::write(dir.join(&leftover), b"partial").unwrap();
    std::fs::write(dir.join(format!("{leftover}-journal")), b"journal").unwrap();
    // An unrelated file with a similar name stays.
    let unrelated = format!("{name}.notes");
    std::fs::write(dir.join(&unrelated), b"mine").unwrap();

    let kept = SqliteOptions::default().snapshots_kept;
    for _ in 0..kept {
        f.store.migrations().down(1).unwrap();
        f.store.migrations().up().unwrap();
    }
    let snapshots = f.store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), kept);
    assert!(!snapshots.iter().any(|s| s.path == oldest.path));
    let mut expected: Vec<String> = snapshots
        .iter()
        .map(|s| s.path.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    for suffix in ["", "-migrate.lock", "-shm", "-wal"] {
        expected.push(format!("{name}{suffix}"));
    }
    expected.push(unrelated);
    expected.sort();
    assert_eq!(files_starting(dir, &name), expected);
}

/// The child of the kill test: opens the store and reverts one version,
/// which snapshots the database first.
fn snapshot_child(path: &str) {
    let mut config: StoreConfig = url(Path::new(path)).parse().unwrap();
    config.migrate_on_open = false;
    let store = Store::open_with(config).expect("open");
    println!("OPEN");
    store.migrations().down(1).expect("down");
    println!("DONE");
}

/// Fills the store at `path` with about `megabytes` MiB of messages, fast
/// (raw statements), keeping `message_count` exact and the messages one
/// branch.
fn fill(path: &Path, megabytes: usize) {
    let store = Store::open(&url(path)).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("big"))
        .unwrap();
    drop(store);
    let rows = megabytes * 1024;
    let conn = Connection::open(path).unwrap();
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) \
         INSERT INTO messages (id, conversation_id, position, role, content, created_at) \
         SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) \
                || '-8' || substr(h, 18, 3) || '-' || substr(h, 21, 12)), \
                ?1, i, 'user', substr(h || h || h || h || h || h || h || h || h || h || h || h || h || h || h || h, 1, 1000), 0 \
         FROM (SELECT i, hex(randomblob(32)) AS h FROM n)",
        rusqlite::params![c.id.to_string(), rows as i64],
    )
    .unwrap();
    conn.execute(
        "UPDATE conversations SET message_count = ?1 WHERE id = ?2",
        rusqlite::params![rows as i64, c.id.to_string()],
    )
    .unwrap();
    // One branch: each message the child of the one before.
    conn.execute(
        "UPDATE messages SET parent_id = chain.previous FROM (SELECT id, \
         LAG(id) OVER (PARTITION BY conversation_id ORDER BY position) AS previous \
         FROM messages) AS chain WHERE messages.id = chain.id",
        [],
    )
    .unwrap();
}

#[test]
fn a_snapshot_killed_midway_is_never_listed_and_pruned_later() {
    const NAME: &str = "a_snapshot_killed_midway_is_never_listed_and_pruned_later";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            snapshot_child(&arg);
        }
        return;
    }
    let megabytes = size_from_env("SILMARI_SNAPSHOT_MB", 64);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    fill(&path, megabytes);
    // How long one snapshot takes here, to kill the children within it.
    let started = Instant::now();
    let scratch = dir.path().join("timing.copy");
    Connection::open(&path)
        .unwrap()
        .execute("VACUUM INTO ?1", [scratch.to_str().unwrap()])
        .unwrap();
    let vacuum = started.elapsed();
    std::fs::remove_file(&scratch).unwrap();
    println!("{megabytes} MiB: VACUUM INTO takes {vacuum:?}");
    assert!(
        vacuum > Duration::from_millis(50),
        "the database is too small to kill a snapshot midway ({vacuum:?})"
    );

    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let snapshot_prefix = format!("{name}.v");
    let rounds = [
        0,
        vacuum.as_micros() as u64 / 6,
        vacuum.as_micros() as u64 / 3,
    ];
    for (round, delay_us) in rounds.into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(common::CHILD_VAR, path.display().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the snapshot's first file, under whatever name, then kill.
        let deadline = Instant::now() + Duration::from_secs(60);
        let before = files_starting(dir.path(), &snapshot_prefix);
        loop {
            let now = files_starting(dir.path(), &snapshot_prefix);
            if now.len() > before.len() {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "round {round}: the child ended before it began a snapshot"
            );
            assert!(
                Instant::now() < deadline,
                "round {round}: no snapshot began"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(delay_us));
        child.kill().unwrap();
        child.wait().unwrap();
        let left = files_starting(dir.path(), &snapshot_prefix);
        println!("round {round}: killed {delay_us} µs into the snapshot; left {left:?}");

        let store = Store::open(&url(&path)).unwrap();
        assert_eq!(
            store.check().unwrap().schema_version,
            LATEST,
            "not migrated"
        );
        assert_eq!(
            store.migrations().snapshots().unwrap(),
            [],
            "round {round}: a snapshot killed midway is listed"
        );
        assert!(
            left.iter()
                .any(|f| !before.contains(f) && f.ends_with(".snapshot.partial")),
            "round {round}: the kill landed midway, leaving a temporary file"
        );
        // What it left is refused by restore, and the store keeps its data.
        for file in left.iter().filter(|f| !f.ends_with("-journal")) {
            match store.migrations().restore_snapshot(&dir.path().join(file)) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "snapshot"),
                other => panic!("round {round}: restoring {file}: {other:?}"),
            }
        }
        let report = store.check().unwrap();
        assert!(report.is_healthy(), "{report:?}");
        assert_eq!(report.counts.messages as usize, megabytes * 1024);
    }

    // The next snapshot prunes what the killed ones left: only it remains.
    let store = Store::open(&url(&path)).unwrap();
    store.migrations().down(1).unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(
        files_starting(dir.path(), &snapshot_prefix),
        [snapshots[0]
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()]
    );
    store
        .migrations()
        .restore_snapshot(&snapshots[0].path)
        .unwrap();
    assert_eq!(store.check().unwrap().schema_version, LATEST);
}
