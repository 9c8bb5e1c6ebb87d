//! The background checkpointer of SQLite files ([`Checkpoint::Background`]):
//! it runs, keeps the log bounded, stops with the last clone of the store,
//! and two processes with one each never make a writer fail. (A crash with
//! it running is the crash loop's, in `reliability.rs`.)
#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{Checkpoint, SqliteOptions, StoreConfig};

use common::{child, sqlite_url as url};

/// The tests of this file one at a time: their children and samplers
/// would slow one another down.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A store on `path` whose checkpoints run as `checkpoint` says.
fn open(path: &Path, checkpoint: Checkpoint) -> Store {
    let mut config: StoreConfig = url(path).parse().unwrap();
    config.sqlite = SqliteOptions {
        checkpoint,
        ..SqliteOptions::default()
    };
    Store::open_with(config).unwrap()
}

fn wal(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", path.display()))
}

/// The largest size `<path>-wal` had while `work` ran (sampled every
/// millisecond), and what `work` returned.
fn wal_peak<T>(path: &Path, work: impl FnOnce() -> T) -> (u64, T) {
    let (stop, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let watcher = std::thread::spawn({
        let (stop, peak, wal) = (Arc::clone(&stop), Arc::clone(&peak), wal(path));
        move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(meta) = std::fs::metadata(&wal) {
                    peak.fetch_max(meta.len(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let out = work();
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    (peak.load(Ordering::Relaxed), out)
}

fn append(store: &Store, c: ConversationId, n: usize) {
    for i in 0..n {
        store
            .conversations()
            .append_message(
                c,
                NewMessage::new(Role::User, format!("{i} {}", "x".repeat(400))),
            )
            .expect("append");
    }
}

/// The store's checkpoint threads now running in this process (Linux
/// names threads in /proc).
#[cfg(target_os = "linux")]
fn checkpoint_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "silmari-checkpo") // comm keeps 15 bytes
        .count()
}

#[test]
#[cfg(target_os = "linux")]
fn the_thread_stops_with_the_last_clone_of_the_store() {
    const NAME: &str = "the_thread_stops_with_the_last_clone_of_the_store";
    // In a process of its own, where no other test's store has a thread.
    if !common::in_child() {
        let _serial = serial();
        let out = common::stdout_of(child(NAME, "count threads"));
        assert!(out.contains("STOPPED"), "{out}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stop.db");
    let before = checkpoint_threads();
    let store = open(&path, Checkpoint::Background { pages: 8 });
    // A new thread names itself once it runs.
    let named = Instant::now() + Duration::from_secs(10);
    while checkpoint_threads() == before && Instant::now() < named {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(checkpoint_threads(), before + 1, "one thread per store");
    let clone = store.clone();
    let c = store
        .conversations()
        .create(NewConversation::titled("stop"))
        .unwrap();
    append(&store, c.id, 200); // checkpoints run meanwhile
    drop(store);
    assert_eq!(checkpoint_threads(), before + 1, "a clone keeps it running");
    append(&clone, c.id, 200);
    drop(clone);
    // Dropping the last clone joined the thread, and the last connection
    // closed the log: everything is in the database file.
    assert_eq!(checkpoint_threads(), before);
    assert!(!wal(&path).exists(), "the log was checkpointed and removed");
    let reopened = open(&path, Checkpoint::Inline { pages: 1000 });
    let stored = reopened.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages.len(), 400);
    println!("STOPPED");
}

#[test]
fn a_sustained_writer_keeps_the_log_bounded() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounded.db");
    let pages = 16;
    let store = open(&path, Checkpoint::Background { pages });
    let c = store
        .conversations()
        .create(NewConversation::titled("bounded"))
        .unwrap();
    let db_before = std::fs::metadata(&path).unwrap().len();
    // Each append writes a few pages; without checkpoints the log would
    // hold them all (about 1.3 MiB per 100 appends).
    let restart = u64::from(pages) * 8 * 4096;
    // While the store is new, its pool opens its connections in the
    // background, and each reads the schema on a snapshot of its own:
    // readers that keep the log from starting again (a log with 285 pages,
    // 2.2 restart marks, was seen). Then the log is cut short at the hard
    // mark, four restart marks.
    let warm_up = 300;
    let (peak, ()) = wal_peak(&path, || append(&store, c.id, warm_up));
    assert!(
        peak <= 5 * restart,
        "while the pool filled, the log reached {peak} bytes (hard mark {})",
        4 * restart
    );
    // Then, with no other reader, the commit that leaves the log at the
    // restart mark waits for the thread, and the next starts it again.
    let messages = 3_000;
    let (peak, ()) = wal_peak(&path, || append(&store, c.id, messages));
    assert!(
        peak <= 2 * restart,
        "the log reached {peak} bytes (mark {pages} pages: it starts again at {restart})"
    );
    // And the pages reached the database file while the store was open.
    let written = (messages * 400) as u64;
    let db_after = std::fs::metadata(&path).unwrap().len();
    assert!(
        db_after >= db_before + written / 2,
        "the database file grew from {db_before} to only {db_after} bytes"
    );
    assert_eq!(
        store
            .conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        warm_up + messages
    );
}

/// The child: appends for `seconds` with a checkpointer of its own (a
/// small mark, so that the two processes' checkpoints meet often), with a
/// one-second busy timeout (a writer held back longer fails), then prints
/// how many appends it acknowledged and how many failed. It pauses a
/// millisecond after each append, as an app's writes do: two processes
/// that write back to back with no pause starve each other in SQLite
/// whatever the checkpoints do (its busy handler sleeps and retries, and
/// the other writer takes the lock again first), which is not what this
/// test is about.
fn appender_child(arg: &str) {
    let (path, seconds) = arg.split_once('|').expect("path|seconds");
    let mut config: StoreConfig = url(Path::new(path)).parse().unwrap();
    config.sqlite = SqliteOptions {
        checkpoint: Checkpoint::Background { pages: 16 },
        busy_timeout: Duration::from_secs(1),
        ..SqliteOptions::default()
    };
    let store = Store::open_with(config).expect("open");
    let c = store
        .conversations()
        .create(NewConversation::titled("two"))
        .expect("create");
    let until = Instant::now() + Duration::from_secs_f64(seconds.parse().expect("seconds"));
    let (mut ok, mut failed) = (0u64, 0u64);
    while Instant::now() < until {
        let message = NewMessage::new(Role::User, "from a process ".repeat(20));
        match store.conversations().append_message(c.id, message) {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                println!("ERROR {e}");
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("DONE {ok} {failed}");
}

#[test]
fn two_processes_with_a_checkpointer_each_never_fail_a_writer() {
    const NAME: &str = "two_processes_with_a_checkpointer_each_never_fail_a_writer";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            appender_child(&arg);
        }
        return;
    }
    let _serial = serial();
    let seconds = common::size_from_env("SILMARI_TWO_PROCESS_SECONDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    drop(open(&path, Checkpoint::default()));
    let arg = format!("{}|{seconds}", path.display());
    let (peak, outputs) = wal_peak(&path, || {
        let children: Vec<_> = (0..2).map(|_| child(NAME, &arg)).collect();
        children
            .into_iter()
            .map(common::stdout_of)
            .collect::<Vec<_>>()
    });
    let mut acknowledged = 0;
    for out in outputs {
        let done = out
            .lines()
            .find_map(|l| l.split("DONE ").nth(1))
            .expect("report");
        let mut numbers = done.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        let (ok, failed) = (numbers.next().unwrap(), numbers.next().unwrap());
        assert_eq!(
            failed, 0,
            "no writer was held back past its busy timeout: {out}"
        );
        assert!(ok > 0);
        acknowledged += ok;
    }
    let store = open(&path, Checkpoint::default());
    assert_eq!(store.counts().unwrap().messages, acknowledged);
    // Both processes' commits wait for their own thread at eight marks;
    // the log starts again only when it is all checkpointed and neither
    // process reads it, so it holds several restarts' worth of both (an
    // append writes about 13 pages). A `RESTART` that gives up (after
    // 100 ms) leaves it to the next pass: on a loaded 2-core CI machine the
    // log once reached 24 restarts' worth (12.4 MB) before one succeeded.
    // Bounded all the same: far below what the run writes through it.
    let restart = 16 * 8 * 4096;
    let written = acknowledged * 13 * 4096;
    assert!(
        peak <= 64 * restart && peak * 4 <= written,
        "the log reached {peak} bytes (it starts again at {restart}; {written} written through it)"
    );
    common::report(&format!(
        "2 processes, a checkpointer each, {seconds} s: {acknowledged} appends acknowledged \
         and stored, 0 errors, log peak {peak} bytes"
    ));
}
