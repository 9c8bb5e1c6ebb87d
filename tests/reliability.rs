//! Reliability on SQLite files: processes killed mid-write, several
//! processes on one file, cold-start races, pool exhaustion and hygiene,
//! damaged files. Sizes are small for CI; the environment variables named in
//! each test make the local soak runs of RELIABILITY.md.
#![cfg(feature = "sqlite")]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{PoolConfig, SqliteOptions, StoreConfig};

use common::{Rng, size_from_env, sqlite_url as url};

/// Starts this test binary's test `name` as a child with `arg`.
fn child(name: &str, arg: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_VAR, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child")
}

/// The child side of the crash loop: open (maybe migrating), then append
/// batches of three messages with attachments forever, printing each
/// acknowledged batch. `arg` is the path and the pages at which the
/// background checkpointer starts (small in every other round, so that the
/// kills land in checkpoints too).
fn crash_child(arg: &str) {
    let (path, pages) = arg.split_once('|').expect("path|pages");
    let mut config: StoreConfig = url(Path::new(path)).parse().expect("url");
    config.sqlite.checkpoint = silmari_store::Checkpoint::Background {
        pages: pages.parse().expect("pages"),
    };
    let store = Store::open_with(config).expect("open");
    let c = store
        .conversations()
        .create(NewConversation::titled("crash"))
        .expect("create");
    println!("CONV {}", c.id);
    for batch in 0u64.. {
        let messages = (0..3)
            .map(|i| {
                NewMessage::new(Role::User, format!("batch {batch} part {i}")).with_attachments(
                    vec![Attachment {
                        file_id: FileId::new(),
                        filename: format!("b{batch}-{i}.png"),
                        content_type: "image/png".into(),
                        size: batch,
                    }],
                )
            })
            .collect();
        let made = store
            .conversations()
            .append_messages(c.id, messages)
            .expect("append");
        let ids: Vec<String> = made.iter().map(|m| m.id.to_string()).collect();
        println!("ACK {} {}", c.id, ids.join(" "));
    }
}

#[test]
fn crash_loop_loses_nothing_acknowledged() {
    const NAME: &str = "crash_loop_loses_nothing_acknowledged";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            crash_child(&arg);
        }
        return;
    }
    let rounds = size_from_env("SILMARI_CRASH_ROUNDS", 100);
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acknowledged: Vec<(ConversationId, Vec<MessageId>)> = Vec::new();
    let mut fresh_files = 0;
    let mut total_acknowledged = 0;
    for round in 0..rounds {
        // Every tenth round starts from nothing, so kills land in open and migration too.
        let fresh = round % 10 == 0;
        if fresh {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            acknowledged.clear();
            fresh_files += 1;
        }
        let pages = if round % 2 == 0 { 1000 } else { 4 };
        let mut process = child(NAME, &format!("{}|{pages}", path.display()));
        let delay = if fresh {
            rng.below(15)
        } else {
            5 + rng.below(60)
        };
        std::thread::sleep(Duration::from_millis(delay));
        process.kill().expect("SIGKILL");
        process.wait().expect("reap");
        let mut out = String::new();
        process
            .stdout
            .take()
            .expect("piped")
            .read_to_string(&mut out)
            .unwrap();
        for line in out.lines() {
            // A line cut by the kill is not an acknowledgement.
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let ids: Vec<&str> = rest.split(' ').collect();
            if ids.len() != 4 || ids.iter().any(|id| id.len() != 36) {
                continue;
            }
            let parse = |s: &str| -> uuid::Uuid { s.parse().unwrap() };
            total_acknowledged += 3;
            acknowledged.push((
                ConversationId::from_uuid(parse(ids[0])),
                ids[1..]
                    .iter()
                    .map(|s| MessageId::from_uuid(parse(s)))
                    .collect(),
            ));
        }

        // Reopen: everything acknowledged is there and whole, batches are
        // all or nothing, the file is sound, and it takes writes.
        let store = Store::open(&url(&path)).expect("reopens after SIGKILL");
        let report = store.check().unwrap();
        assert_eq!(
            report.integrity_check.as_deref(),
            Some(&["ok".to_owned()][..]),
            "round {round}"
        );
        assert_eq!(report.foreign_key_violations, Some(0));
        assert_eq!(report.message_count_mismatches, 0);
        let mut by_conversation: std::collections::HashMap<ConversationId, Vec<MessageId>> =
            std::collections::HashMap::new();
        for (conversation, ids) in &acknowledged {
            by_conversation
                .entry(*conversation)
                .or_default()
                .extend(ids);
        }
        for (conversation, ids) in by_conversation {
            let stored = store
                .conversations()
                .get(conversation)
                .unwrap()
                .expect("acknowledged conversation");
            let whole: std::collections::HashSet<MessageId> = stored
                .messages
                .iter()
                .filter(|m| m.attachments.len() == 1 && m.content.starts_with("batch "))
                .map(|m| m.id)
                .collect();
            for id in ids {
                assert!(
                    whole.contains(&id),
                    "acknowledged message {id} lost or damaged"
                );
            }
        }
        for c in store.conversations().list_all().unwrap() {
            assert_eq!(c.messages.len() % 3, 0, "no batch half visible");
        }
        store
            .conversations()
            .create(NewConversation::titled(format!("after round {round}")))
            .expect("accepts writes again");
    }
    println!(
        "{rounds} SIGKILLs ({fresh_files} on fresh files, during open and migration): \
         {total_acknowledged} acknowledged appends (in batches of 3), 0 lost, 0 half-visible batches"
    );
}

/// The child side of the two-process test: appends for `seconds`, then
/// prints how many it acknowledged and how many failed.
fn appender_child(arg: &str) {
    let (path, seconds) = arg.split_once('|').expect("path|seconds");
    let store = Store::open(&url(Path::new(path))).expect("open");
    let c = store
        .conversations()
        .create(NewConversation::titled("two"))
        .expect("create");
    let until = Instant::now() + Duration::from_secs_f64(seconds.parse().expect("seconds"));
    let (mut ok, mut failed) = (0u64, 0u64);
    while Instant::now() < until {
        match store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "from a process"))
        {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                eprintln!("{e}");
            }
        }
    }
    println!("DONE {ok} {failed}");
}

#[test]
fn two_processes_append_to_one_file() {
    const NAME: &str = "two_processes_append_to_one_file";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            appender_child(&arg);
        }
        return;
    }
    let seconds = size_from_env("SILMARI_TWO_PROCESS_SECONDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    drop(Store::open(&url(&path)).unwrap());
    let arg = format!("{}|{seconds}", path.display());
    let children: Vec<_> = (0..2).map(|_| child(NAME, &arg)).collect();
    let mut acknowledged = 0;
    for mut c in children {
        let status = c.wait().unwrap();
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert!(status.success(), "{out}");
        let done = out
            .lines()
            .find_map(|l| l.split("DONE ").nth(1))
            .expect("report");
        let mut numbers = done.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        let (ok, failed) = (numbers.next().unwrap(), numbers.next().unwrap());
        assert_eq!(failed, 0, "no busy or locked error reached the caller");
        assert!(ok > 0);
        acknowledged += ok;
    }
    let store = Store::open(&url(&path)).unwrap();
    assert_eq!(store.counts().unwrap().messages, acknowledged);
    println!(
        "2 processes for {seconds} s: {acknowledged} appends acknowledged and stored, 0 errors"
    );
}

/// The control: the harness can see SQLITE_BUSY. Two raw connections read,
/// then both try to write; the second meets a lock it cannot wait out.
#[test]
fn control_raw_connections_reproduce_sqlite_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    drop(Store::open(&url(&path)).unwrap());
    let a = rusqlite::Connection::open(&path).unwrap();
    let b = rusqlite::Connection::open(&path).unwrap();
    for conn in [&a, &b] {
        conn.busy_timeout(Duration::from_millis(200)).unwrap();
        conn.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM conversations;")
            .unwrap();
    }
    a.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('a', 'a', 0, 0)",
        [],
    )
    .unwrap();
    a.execute_batch("COMMIT").unwrap();
    let err = b
        .execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('b', 'b', 0, 0)",
            [],
        )
        .unwrap_err();
    assert_eq!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy),
        "{err}"
    );
}

fn opener_child(url: &str) {
    match Store::open(url) {
        Ok(store) => println!(
            "OK {}",
            store.migrations().current_version().expect("version")
        ),
        Err(e) => println!("ERR {e}"),
    }
}

#[test]
fn ten_processes_open_a_fresh_file_at_once() {
    const NAME: &str = "ten_processes_open_a_fresh_file_at_once";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            opener_child(&arg);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cold.db");
    let versions = open_ten_at_once(NAME, &url(&path));
    assert!(
        versions.iter().all(|v| v == "4"),
        "every process at version 4: {versions:?}"
    );
    let raw = rusqlite::Connection::open(&path).unwrap();
    let applied: Vec<(i64, String)> = raw
        .prepare("SELECT version, applied_on FROM refinery_schema_history ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        applied.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "each version applied once"
    );
}

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

/// Runs `command`; false when it fails (for example without privileges).
fn run(command: &[&str]) -> bool {
    Command::new(command[0])
        .args(&command[1..])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Says a part could not run here; in CI that is a failure.
fn cannot_run_here(what: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{what} must run in CI (as root)"
    );
    println!("NOTE: {what} not run: needs root (mount, chattr)");
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

#[test]
fn a_read_only_file_is_a_clear_error_and_left_intact() {
    const NAME: &str = "a_read_only_file_is_a_clear_error_and_left_intact";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            opener_child(&arg);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    {
        let store = Store::open(&url(&path)).unwrap();
        store
            .conversations()
            .create(NewConversation::titled("kept"))
            .unwrap();
    }
    let path_str = path.display().to_string();
    let before = std::fs::read(&path).unwrap();
    assert!(!before.is_empty());
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let locked = if is_root.unwrap_or(false) {
        run(&["chattr", "+i", &path_str])
    } else {
        run(&["chmod", "444", &path_str])
    };
    if !locked {
        return cannot_run_here("the read-only file test");
    }
    // Opened in a process of its own: in this one, SQLite may still hold a
    // writable descriptor for the same inode from another test's files.
    let answer = open_ten_at_once_with(NAME, &url(&path), 1).remove(0);
    run(&["chattr", "-i", &path_str]);
    run(&["chmod", "644", &path_str]);
    assert!(
        answer.contains("ERR cannot open database") && answer.contains("read-only"),
        "expected Error::Open naming read-only, got {answer:?}"
    );
    // The file is still there, and once writable again everything in it is intact.
    assert!(path.exists(), "the database file is still there");
    let store = Store::open(&url(&path)).unwrap();
    assert_eq!(store.conversations().list_all().unwrap()[0].title, "kept");
}

/// The same race on PostgreSQL: the advisory lock lets one process migrate.
#[cfg(feature = "postgres")]
#[test]
fn ten_processes_open_a_fresh_postgres_database_at_once() {
    const NAME: &str = "ten_processes_open_a_fresh_postgres_database_at_once";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            opener_child(&arg);
        }
        return;
    }
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    let versions = open_ten_at_once(NAME, &database.url);
    assert!(
        versions.iter().all(|v| v == "4"),
        "every process at version 4: {versions:?}"
    );
    let rows = database
        .client()
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .unwrap();
    let applied: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(applied, [1, 2, 3, 4], "each version applied once");
}

/// Starts ten children opening `url` at once; returns what each answered
/// (its version, or its error).
fn open_ten_at_once(name: &str, url: &str) -> Vec<String> {
    open_ten_at_once_with(name, url, 10)
}

/// Starts `n` children opening `url` at once; returns what each answered.
fn open_ten_at_once_with(name: &str, url: &str, n: usize) -> Vec<String> {
    let children: Vec<_> = (0..n).map(|_| child(name, url)).collect();
    children
        .into_iter()
        .map(|mut c| {
            c.wait().unwrap();
            let mut out = String::new();
            c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            out.lines()
                .find_map(|l| {
                    l.split("OK ")
                        .nth(1)
                        .or_else(|| l.contains("ERR ").then_some(l))
                })
                .unwrap_or("no answer")
                .to_owned()
        })
        .collect()
}
