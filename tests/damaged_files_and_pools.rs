//! Reliability on SQLite files, continued from `reliability.rs`: pool
//! exhaustion and hygiene, damaged files, a full disk.
#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{PoolConfig, SqliteOptions, StoreConfig};

use common::{Rng, cannot_run_here, run, size_from_env, sqlite_url as url};

fn small_pool(path: &Path, pool_timeout: Duration) -> Store {
    let mut config: StoreConfig = url(path).parse().unwrap();
    config.pool = PoolConfig {
        pool_size: 2,
        max_overflow: 1,
        pool_timeout,
        pool_recycle: None,
    };
    config.sqlite = SqliteOptions {
        busy_timeout: Duration::from_secs(10),
        ..SqliteOptions::default()
    };
    Store::open_with(config).unwrap()
}

#[test]
fn an_exhausted_pool_is_unavailable_after_pool_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    let timeout = Duration::from_millis(500);
    let store = small_pool(&path, timeout);
    // Three transactions hold all three connections: the first holds the
    // write lock until released, the other two wait for it inside
    // BEGIN IMMEDIATE (busy timeout 10 s), each holding its connection.
    let (first_holds, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
    std::thread::scope(|s| {
        let (store, first_holds, release) = (&store, &first_holds, &release);
        s.spawn(move || {
            store
                .transaction(|tx| -> silmari_store::Result<()> {
                    tx.files().list(PageRequest::first(1))?;
                    first_holds.wait();
                    release.wait();
                    Ok(())
                })
                .unwrap()
        });
        first_holds.wait();
        for _ in 0..2 {
            s.spawn(move || {
                store
                    .transaction(|tx| tx.files().list(PageRequest::first(1)).map(drop))
                    .unwrap()
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let result = store.files().list(PageRequest::first(1));
        let waited = started.elapsed();
        release.wait();
        let err = result.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(
            waited >= timeout && waited < timeout * 4,
            "waited {waited:?}"
        );
        println!("pool of 3 held: the next call waited {waited:?} (pool_timeout {timeout:?})");
    });
    store
        .files()
        .list(PageRequest::first(1))
        .expect("usable once connections return");
}

#[test]
fn pool_connections_come_back_clean_after_errors_and_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hygiene.db");
    let store = small_pool(&path, Duration::from_secs(5));
    let operations = size_from_env("SILMARI_HYGIENE_OPERATIONS", 2_000);
    let mut rng = Rng::from_env();
    let c = store
        .conversations()
        .create(NewConversation::titled("h"))
        .unwrap();
    let mut committed = 1u64;
    for _ in 0..operations {
        let outcome = rng.below(3);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.transaction(|tx| -> silmari_store::Result<()> {
                tx.conversations()
                    .append_message(c.id, NewMessage::new(Role::User, "x"))?;
                match outcome {
                    0 => Ok(()),
                    1 => Err(Error::InTransaction),
                    // A panic without the panic hook's message on every round.
                    _ => std::panic::resume_unwind(Box::new("a panic inside the transaction")),
                }
            })
        }));
        if matches!(result, Ok(Ok(()))) {
            committed += 1;
        }
    }
    // A raw connection can take the write lock at once: nothing was left holding it.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::ZERO).unwrap();
    raw.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .expect("no write lock left held");
    // Every pooled connection is in autocommit: three writes at once all work.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                store
                    .conversations()
                    .append_message(c.id, NewMessage::new(Role::User, "after"))
                    .unwrap()
            });
        }
    });
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages.len() as u64, committed - 1 + 3);
    println!(
        "{operations} transactions (commit, Err, panic at random): pool clean, {committed} committed"
    );
}

/// Writes a store with some data, closed cleanly, and returns its bytes.
fn sample_database(dir: &Path) -> Vec<u8> {
    let path = dir.join("sample.db");
    {
        let store = Store::open(&url(&path)).unwrap();
        for i in 0..20 {
            let c = store
                .conversations()
                .create(NewConversation::titled(format!("c{i}")))
                .unwrap();
            store
                .conversations()
                .append_messages(c.id, vec![NewMessage::new(Role::User, "m".repeat(300)); 10])
                .unwrap();
        }
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .unwrap();
    drop(raw);
    std::fs::read(&path).unwrap()
}

/// Opens `path` and reads everything, turning a panic into a failure.
fn open_and_read(path: &Path) -> std::thread::Result<silmari_store::Result<usize>> {
    let path = path.to_path_buf();
    std::panic::catch_unwind(move || {
        let store = Store::open(&url(&path))?;
        let all = store.conversations().list_all()?;
        store.files().list(PageRequest::first(100))?;
        store.check()?;
        Ok(all.len())
    })
}

#[test]
fn damaged_files_are_refused_or_read_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample_database(dir.path());
    let cases = size_from_env("SILMARI_CORRUPTIONS", 300);
    let mut rng = Rng::from_env();
    let (mut refused, mut read) = (0, 0);
    for case in 0..cases {
        let mut bytes = original.clone();
        if case % 10 == 0 {
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
        } else {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        let path: PathBuf = dir.path().join(format!("damaged-{case}.db"));
        std::fs::write(&path, &bytes).unwrap();
        match open_and_read(&path) {
            Ok(Ok(_)) => read += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("case {case} panicked"),
        }
        for suffix in ["", "-wal", "-shm", "-migrate.lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    println!(
        "{cases} damaged copies (truncated or 1-8 flipped bits): {refused} refused with an error, {read} read, 0 panics"
    );
}

#[test]
fn a_full_disk_is_a_typed_error_and_the_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let mount_str = mount.display().to_string();
    if !run(&["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", &mount_str]) {
        return cannot_run_here("the full-disk test");
    }
    let result = std::panic::catch_unwind(|| {
        // Most of the disk goes to another file; the database gets the rest.
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0u8; 1536 * 1024]).unwrap();
        let path = mount.join("full.db");
        let store = Store::open(&url(&path)).unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("kept"))
            .unwrap();
        let kept = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "written before"))
            .unwrap();
        let big = "x".repeat(64 * 1024);
        let mut error = None;
        for _ in 0..100 {
            if let Err(e) = store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, big.clone()))
            {
                error = Some(e);
                break;
            }
        }
        let error = error.expect("a 2 MiB disk fills up");
        assert!(matches!(error, Error::DiskFull { .. }), "{error:?}");
        let full = store
            .conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .len();
        // The user frees space: the same store takes writes again and
        // everything written before is intact.
        std::fs::remove_file(&filler).unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "after"))
            .expect("writes again");
        let stored = store.conversations().get(c.id).unwrap().unwrap();
        assert_eq!(stored.messages[0], kept);
        assert!(store.check().unwrap().is_healthy());
        println!("2 MiB disk: DiskFull after {full} messages; data intact, writes resume");
    });
    run(&["umount", &mount_str]);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
