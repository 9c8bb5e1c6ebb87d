//! Files and environments made hostile: the migration lock replaced by a
//! directory or a dangling link, the database's directory made read-only,
//! the `-wal` file deleted and the `-shm` file truncated while a store is
//! open and while it is not. Each time the store works or returns a typed
//! error, never panics, and loses nothing it acknowledged.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use silmari_store::prelude::*;

use crate::{
    assert_all_present, assert_healthy, cannot_run_here, child_arg, fill, kill, kind, run,
    small_store, spawn, tagged, typed, url,
};

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Appends `n` messages to `c`, returning the ids acknowledged and the
/// errors met (each must be typed).
fn append(store: &Store, c: ConversationId, n: usize, label: &str) -> (Vec<String>, Vec<String>) {
    let (mut acked, mut errors) = (Vec::new(), Vec::new());
    for i in 0..n {
        match store
            .conversations()
            .append_message(c, NewMessage::new(Role::User, format!("{label} {i}")))
        {
            Ok(m) => acked.push(m.id.to_string()),
            Err(e) => {
                assert!(typed(&e), "{label}: untyped error {e:?}");
                errors.push(kind(&e));
            }
        }
    }
    (acked, errors)
}

/// A closed store with data at `dir/name`, and its contents.
fn closed_store(dir: &Path, name: &str) -> (PathBuf, ConversationId, Vec<String>) {
    let path = dir.join(name);
    let store = Store::open(&url(&path)).unwrap();
    fill(&store, "kept", 3, 10, 20);
    let c = store
        .conversations()
        .create(NewConversation::titled("appended"))
        .unwrap();
    let (acked, _) = append(&store, c.id, 10, "before");
    (path, c.id, acked)
}

/// Opens `path` once things are put right and checks everything is there.
fn assert_intact(path: &Path, acked: &[String], context: &str) {
    let store = Store::open(&url(path)).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
    assert_healthy(&store, context);
    assert_all_present(&store, acked, context);
}

/// What opening `path` gives: `Ok`, or the error's kind and text.
fn open_outcome(path: &Path) -> (Option<Store>, String) {
    match std::panic::catch_unwind(|| Store::open(&url(path))) {
        Err(_) => panic!("opening {} panicked", path.display()),
        Ok(Ok(store)) => (Some(store), "Ok".to_owned()),
        Ok(Err(e)) => {
            assert!(typed(&e), "untyped error opening: {e:?}");
            (None, format!("{} ({e})", kind(&e)))
        }
    }
}

#[test]
fn a_migration_lock_that_is_a_directory_or_a_dangling_link() {
    let dir = tempfile::tempdir().unwrap();
    let (path, c, mut acked) = closed_store(dir.path(), "lock.db");
    let lock = companion(&path, "-migrate.lock");
    let elsewhere = dir.path().join("elsewhere/target.lock");
    let dangling = dir.path().join("dangling-target.lock");
    type Replace<'a> = Box<dyn Fn() + 'a>;
    let replacements: [(&str, Replace); 4] = [
        (
            "a directory",
            Box::new(|| std::fs::create_dir(&lock).unwrap()),
        ),
        (
            "a dangling link",
            Box::new(|| std::os::unix::fs::symlink(&dangling, &lock).unwrap()),
        ),
        (
            "a link to a missing directory",
            Box::new(|| std::os::unix::fs::symlink(&elsewhere, &lock).unwrap()),
        ),
        (
            "a link to itself",
            Box::new(|| std::os::unix::fs::symlink(&lock, &lock).unwrap()),
        ),
    ];
    for (what, replace) in replacements {
        let _ = std::fs::remove_file(&lock);
        replace();
        // Opening: the lock is needed to check the schema.
        let (opened, outcome) = open_outcome(&path);
        println!("lock file replaced by {what}: open: {outcome}");
        if let Some(store) = opened {
            let (more, errors) = append(&store, c, 5, what);
            assert!(errors.is_empty(), "{what}: {errors:?}");
            acked.extend(more);
        }
        // A store opened before: its writes need no lock, its migrations do.
        let _ = std::fs::remove_dir(&lock).or_else(|_| std::fs::remove_file(&lock));
        let store = Store::open(&url(&path)).unwrap();
        let _ = std::fs::remove_file(&lock);
        replace();
        let (more, errors) = append(&store, c, 5, what);
        assert!(errors.is_empty(), "{what}: appends: {errors:?}");
        acked.extend(more);
        match store.migrations().down(1) {
            Err(e) if typed(&e) => println!("lock file replaced by {what}: down(1): {}", kind(&e)),
            Ok(_) => {
                println!("lock file replaced by {what}: down(1): Ok (the link made a lock)");
                store.migrations().up().unwrap();
            }
            other => panic!("{what}: down(1) without a lock: {other:?}"),
        }
        assert_eq!(
            store.migrations().current_version().unwrap(),
            crate::common::LATEST
        );
        drop(store);
        let _ = std::fs::remove_dir(&lock).or_else(|_| std::fs::remove_file(&lock));
        let _ = std::fs::remove_file(&dangling);
        assert_intact(&path, &acked, what);
    }
    assert!(!elsewhere.exists());
}

#[test]
fn a_database_in_a_read_only_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (path, c, mut acked) = closed_store(dir.path(), "ro.db");
    let dir_str = dir.path().display().to_string();
    // A store open before the directory turns read-only (its -wal and -shm exist).
    let before = Store::open(&url(&path)).unwrap();
    append(&before, c, 1, "warm");
    if !run(&["chattr", "+i", &dir_str]) {
        drop(before);
        return cannot_run_here("the read-only directory probe", "chattr +i failed");
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (more, errors) = append(&before, c, 20, "already open");
        println!(
            "directory read-only (chattr +i): the store open before acknowledged {} appends, \
             errors {errors:?}",
            more.len()
        );
        acked.extend(more);
        let refused = before.migrations().down(1);
        println!(
            "  down(1) (it snapshots first): {:?}",
            refused.as_ref().map_err(kind)
        );
        assert!(refused.as_ref().is_err_and(typed), "{refused:?}");
        let (second, outcome) = open_outcome(&path);
        println!("  a second store opening now: {outcome}");
        if let Some(store) = second {
            let (more, _) = append(&store, c, 5, "second");
            acked.extend(more);
        }
        drop(before);
        // Closed: nothing of it may go, nothing can be created.
        let (third, outcome) = open_outcome(&path);
        println!("  opening with no store open: {outcome}");
        if let Some(store) = third {
            let (more, _) = append(&store, c, 5, "third");
            acked.extend(more);
        }
    }));
    run(&["chattr", "-i", &dir_str]);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert_intact(&path, &acked, "after the directory is writable again");
    // Closed cleanly first: no -wal or -shm left (the pool closes its last
    // connections from its own threads, a moment later), none can be created.
    let wal = companion(&path, "-wal");
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for suffix in ["-wal", "-shm"] {
        assert!(
            !companion(&path, suffix).exists(),
            "{suffix} left after a clean close"
        );
    }
    assert!(run(&["chattr", "+i", &dir_str]));
    let outcome = std::panic::catch_unwind(|| open_outcome(&path).1);
    run(&["chattr", "-i", &dir_str]);
    let outcome = outcome.unwrap_or_else(|p| std::panic::resume_unwind(p));
    println!("  a closed store (no -wal, -shm) in a read-only directory: open: {outcome}");
    assert!(
        outcome.starts_with("Open") && outcome.contains("read-only"),
        "an Open error that names the cause: {outcome}"
    );
    assert_intact(&path, &acked, "after the directory is writable again");
}

/// The child of the -wal and -shm probes: appends for `seconds`, printing
/// each acknowledged message, and `ERR <kind>` for each typed error.
fn appending_child(arg: &str) {
    println!();
    let (path, seconds) = arg.split_once('|').expect("path|seconds");
    let opened = small_store(Path::new(path), Duration::from_secs(5)).and_then(|store| {
        let c = store
            .conversations()
            .create(NewConversation::titled("child"))?;
        Ok((store, c))
    });
    let (store, c) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            assert!(typed(&e), "untyped: {e:?}");
            return println!("OPENERR {} {e}", kind(&e));
        }
    };
    let until = Instant::now() + Duration::from_secs_f64(seconds.parse().expect("seconds"));
    while Instant::now() < until {
        match store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "child"))
        {
            Ok(m) => println!("ACK {}", m.id),
            Err(e) if typed(&e) => println!("ERR {}", kind(&e)),
            Err(e) => println!("UNTYPED {e}"),
        }
    }
    println!("DONE");
}

fn acked_by(out: &str) -> Vec<String> {
    tagged(out, "ACK")
        .into_iter()
        .filter_map(|w| w.first().cloned())
        .collect()
}

#[test]
fn the_wal_deleted_while_stores_are_open() {
    const NAME: &str = "files::the_wal_deleted_while_stores_are_open";
    if let Some(arg) = child_arg() {
        return appending_child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, c, mut acked) = closed_store(dir.path(), "wal.db");
    let first = small_store(&path, Duration::from_secs(5)).unwrap();
    acked.extend(append(&first, c, 20, "before").0);
    // The pool opens its idle connections in the background: let it settle
    // (a connection opening at the very moment of the deletion makes a new
    // -wal the guard cannot tell from the old one).
    std::thread::sleep(Duration::from_millis(200));
    std::fs::remove_file(companion(&path, "-wal")).unwrap();
    let (more, errors_first) = append(&first, c, 20, "first, after");
    acked.extend(more);
    // Enough to fill the WAL past its checkpoint size, so it starts over,
    // from four threads, so the pool opens connections of its own.
    let big: Vec<NewMessage> = (0..40)
        .map(|i| NewMessage::new(Role::User, format!("{i} {}", "b".repeat(8000))))
        .collect();
    let threads: Vec<(Vec<String>, Vec<String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let (mut acked, mut errors) = (Vec::new(), Vec::new());
                    for _ in 0..3 {
                        match first.conversations().append_messages(c, big.clone()) {
                            Ok(ms) => acked.extend(ms.iter().map(|m| m.id.to_string())),
                            Err(e) if typed(&e) => errors.push(kind(&e)),
                            Err(e) => panic!("untyped: {e:?}"),
                        }
                    }
                    (acked, errors)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut errors_threads = Vec::new();
    for (more, errors) in threads {
        acked.extend(more);
        errors_threads.extend(errors);
    }
    let (second, outcome) = open_outcome(&path);
    let mut errors_second = Vec::new();
    if let Some(second) = &second {
        let (more, errors) = append(second, c, 20, "second");
        acked.extend(more);
        errors_second = errors;
    }
    let child = spawn(NAME, &format!("{}|0.5", path.display()));
    let out = crate::finish(child);
    acked.extend(acked_by(&out));
    println!(
        "-wal deleted under an open store: it went on ({} of 20 appends, errors \
         {errors_first:?}; 4 threads x 3 batches of 40 8-KB messages, errors \
         {errors_threads:?}); a second store opening: {outcome}, errors {errors_second:?}; a \
         process opening: {:?}, {} appends, {} errors; {} acknowledged in all, 0 lost",
        20 - errors_first.len(),
        tagged(&out, "OPENERR").first().map(|w| w.join(" ")),
        acked_by(&out).len(),
        tagged(&out, "ERR").len(),
        acked.len()
    );
    assert!(tagged(&out, "UNTYPED").is_empty(), "{out}");
    let refusals = tagged(&out, "OPENERR").into_iter().map(|w| w.join(" "));
    for refusal in std::iter::once(outcome).chain(refusals) {
        assert!(
            refusal == "Ok" || refusal.contains("-wal"),
            "says why: {refusal}"
        );
    }
    // The store that still writes to the deleted -wal closes last.
    drop(second);
    drop(first);
    assert_intact(&path, &acked, "after every store closed");
}

/// Appends in a child for a moment, then SIGKILLs it: its -wal and -shm
/// are left behind with committed transactions. Returns what it acknowledged.
fn killed_writer(name: &str, path: &Path) -> Vec<String> {
    let child = spawn(name, &format!("{}|30", path.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !companion(path, "-wal").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    acked_by(&kill(child))
}

#[test]
fn the_wal_deleted_after_a_clean_close_or_a_kill_and_the_shm_truncated() {
    const NAME: &str = "files::the_wal_deleted_after_a_clean_close_or_a_kill_and_the_shm_truncated";
    if let Some(arg) = child_arg() {
        return appending_child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, c, acked) = closed_store(dir.path(), "closed.db");
    // A clean close checkpoints everything and removes the -wal: deleting
    // it afterwards can lose nothing (the pool closes its last connections
    // from its own threads, a moment later).
    let wal = companion(&path, "-wal");
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!wal.exists(), "a clean close left a -wal");
    assert_intact(&path, &acked, "after a clean close");
    let _ = c;

    // Killed: the -shm truncated to nothing. SQLite rebuilds it from the -wal.
    let shm_path = dir.path().join("shm.db");
    let acked_shm = killed_writer(NAME, &shm_path);
    std::fs::File::options()
        .write(true)
        .open(companion(&shm_path, "-shm"))
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_intact(&shm_path, &acked_shm, "-shm truncated after a kill");

    // Killed: the -wal deleted. What only it held is gone (SQLite cannot
    // know it existed). If the kill came while a checkpoint was copying
    // the log into the file, the file holds pages of two moments and is
    // corrupt: deleting a hot log is SQLite's documented way to corrupt a
    // database, and no library above it can undo it. Either way the open
    // first refuses, saying what to do; then the file is healthy at its
    // last checkpoint, or the store says it is corrupt, typed.
    let wal_path = dir.path().join("killed.db");
    let acked_wal = killed_writer(NAME, &wal_path);
    std::fs::remove_file(companion(&wal_path, "-wal")).unwrap();
    // A -shm without its -wal: refused, saying what to do.
    let (_, refused) = open_outcome(&wal_path);
    assert!(
        refused.starts_with("Open") && refused.contains("delete the -shm"),
        "{refused}"
    );
    std::fs::remove_file(companion(&wal_path, "-shm")).unwrap();
    let outcome = match after_the_log_was_deleted(&wal_path) {
        Ok(kept) => {
            let lost = acked_wal.iter().filter(|id| !kept.contains(*id)).count();
            // Appends are acknowledged in order: what survives is a prefix.
            assert!(
                acked_wal[..acked_wal.len() - lost]
                    .iter()
                    .all(|id| kept.contains(id)),
                "what survives the deleted -wal is the oldest part"
            );
            format!(
                "{lost} of {} acknowledged appends gone with it (those not yet \
                 checkpointed), the file healthy",
                acked_wal.len()
            )
        }
        Err(corrupt) => format!("killed mid-checkpoint, the file reported corrupt ({corrupt})"),
    };
    println!(
        "-wal deleted after a clean close: nothing to lose; -shm truncated after a kill: all \
         {} acknowledged appends there; -wal deleted after a kill: the open refused until the \
         -shm is deleted too, then {outcome}",
        acked_shm.len(),
    );
}

/// Opens a file whose `-wal` (and `-shm`) were deleted after a kill: the
/// ids of the messages kept when it is healthy, or how it was reported
/// corrupt (a typed `Open` error, or a check or read that says so; never
/// a panic, an untyped error, or a healthy check over wrong contents).
fn after_the_log_was_deleted(path: &Path) -> Result<std::collections::HashSet<String>, String> {
    let (store, outcome) = open_outcome(path);
    let Some(store) = store else {
        assert!(
            outcome.starts_with("Open") && outcome.contains("corrupt"),
            "{outcome}"
        );
        return Err(outcome);
    };
    let report = match store.check() {
        Ok(report) => report,
        Err(e) => {
            assert!(typed(&e) && e.to_string().contains("corrupt"), "{e:?}");
            return Err(format!("check: {e}"));
        }
    };
    if !report.is_healthy() {
        return Err(format!("check: {report:?}"));
    }
    assert_eq!(report.message_count_mismatches, 0, "{report:?}");
    Ok(store
        .conversations()
        .list_all()
        .unwrap()
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.id.to_string()))
        .collect())
}

/// The -shm cut to nothing under a process that has it mapped: the kernel
/// ends that process with SIGBUS at its next touch of the mapping. SQLite
/// maps the -shm shared so that several processes can use one WAL; no
/// library above it can keep the mapping valid or catch the signal safely,
/// so this is left as it is (RELIABILITY.md). What is checked: the process
/// ends by that signal or not at all (never a panic or another crash),
/// and every append it acknowledged before is there when the file is
/// opened again.
#[test]
fn the_shm_truncated_under_a_writing_process() {
    const NAME: &str = "files::the_shm_truncated_under_a_writing_process";
    if let Some(arg) = child_arg() {
        return appending_child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, _, mut acked) = closed_store(dir.path(), "shm.db");
    let child = spawn(NAME, &format!("{}|1.5", path.display()));
    let shm = companion(&path, "-shm");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !shm.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let truncated_at = std::fs::metadata(&shm).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&shm)
        .unwrap()
        .set_len(0)
        .unwrap();
    let (status, out, _) = child.wait();
    use std::os::unix::process::ExitStatusExt;
    acked.extend(acked_by(&out));
    println!(
        "-shm ({truncated_at} bytes) truncated to 0 under a writing process: it ended with {status} \
         (signal {:?}); {} appends acknowledged, {} typed errors, {} untyped",
        status.signal(),
        acked_by(&out).len(),
        tagged(&out, "ERR").len(),
        tagged(&out, "UNTYPED").len()
    );
    assert_intact(&path, &acked, "after the -shm was truncated");
    assert!(tagged(&out, "UNTYPED").is_empty(), "{out}");
    assert!(
        status.success() || status.signal() == Some(7),
        "the writing process ended otherwise than by SIGBUS: {status}"
    );
}
