//! Adversarial probes ("Nothing acknowledged is ever lost"): processes
//! killed in the middle of every multi-step operation (`kills`), two
//! processes doing conflicting things to one SQLite file (`conflicts`),
//! hostile values in the parameters of the public API (`values`, and
//! `streams` for paths, readers and writers), and files
//! and environments made hostile (`files`).
//!
//! Randomized probes print their seed (`SILMARI_SEED=<seed>` replays it);
//! each probe's size is small for CI and set by the variable its module
//! names for soak runs. Children are this test binary run again with
//! `common::CHILD_VAR` set to their argument.
#![cfg(feature = "sqlite")]

#[path = "../common/mod.rs"]
mod common;

mod conflicts;
mod files;
mod kills;
mod streams;
mod values;

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{PoolConfig, SqliteOptions, StoreConfig};

pub use common::{Rng, size_from_env, sqlite_url as url};

/// The argument of this process when it is a child, `None` in the parent.
pub fn child_arg() -> Option<String> {
    if common::in_child() {
        std::env::var(common::CHILD_VAR).ok()
    } else {
        None
    }
}

/// A child process whose stdout and stderr are read as it writes them (a
/// child blocked on a full pipe would stop doing what it is probed for).
pub struct Running {
    child: Child,
    out: std::thread::JoinHandle<String>,
    err: std::thread::JoinHandle<String>,
}

/// Starts this test binary's test `name` (its full path, `module::test`)
/// as a child with `arg`.
pub fn spawn(name: &str, arg: &str) -> Running {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_VAR, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    Running { child, out, err }
}

impl Running {
    /// Waits for the child to end; its status and what it printed (stdout, stderr).
    pub fn wait(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.child.wait().expect("wait for the child");
        let out = self.out.join().unwrap_or_default();
        let err = self.err.join().unwrap_or_default();
        (status, out, err)
    }
}

/// SIGKILLs the child and returns what it printed.
pub fn kill(mut running: Running) -> String {
    let _ = running.child.kill();
    running.wait().1
}

/// Waits for the child to end by itself and returns what it printed; fails
/// when it failed (a panic in a child is a failure of the probe).
pub fn finish(running: Running) -> String {
    let (status, out, err) = running.wait();
    assert!(
        status.success(),
        "the child failed ({status}):\n{out}\n{err}"
    );
    out
}

/// The words after `tag` on each whole line whose first word is `tag` (a
/// line cut by a kill has no newline and is not counted).
pub fn tagged(out: &str, tag: &str) -> Vec<Vec<String>> {
    out.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(tag)).then(|| words.map(str::to_owned).collect())
        })
        .collect()
}

/// True for an error of a specific kind: anything but the catch-all
/// [`Error::Backend`] (an unclassified driver error).
pub fn typed(e: &Error) -> bool {
    !matches!(e, Error::Backend(_))
}

/// The name of an error's variant, for tallies.
pub fn kind(e: &Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// The store at `path` with a small pool and a busy timeout of `busy`.
pub fn small_store(path: &Path, busy: Duration) -> silmari_store::Result<Store> {
    let mut config: StoreConfig = url(path).parse()?;
    config.pool = PoolConfig {
        pool_size: 2,
        max_overflow: 2,
        pool_timeout: Duration::from_secs(30),
        pool_recycle: None,
    };
    config.sqlite = SqliteOptions {
        busy_timeout: busy,
        ..SqliteOptions::default()
    };
    Store::open_with(config)
}

/// Fills `store` with `conversations` conversations of `messages` messages
/// of about `bytes` bytes each (with an attachment every third), and a file
/// record per conversation.
pub fn fill(store: &Store, label: &str, conversations: usize, messages: usize, bytes: usize) {
    for c in 0..conversations {
        let file = store
            .files()
            .create(NewFile {
                filename: format!("{label}-{c}.txt"),
                content_type: "text/plain".into(),
                size: c as u64,
                ..Default::default()
            })
            .unwrap();
        let conversation = store
            .conversations()
            .create(NewConversation::titled(format!("{label} {c}")))
            .unwrap();
        let batch = (0..messages)
            .map(|m| {
                let message =
                    NewMessage::new(Role::User, format!("{label} {c}.{m} {}", "w".repeat(bytes)));
                if m % 3 == 0 {
                    message.with_attachments(vec![Attachment::from_file(&file)])
                } else {
                    message
                }
            })
            .collect();
        store
            .conversations()
            .append_messages(conversation.id, batch)
            .unwrap();
    }
}

/// Asserts the store's file is sound: integrity, foreign keys, counts.
pub fn assert_healthy(store: &Store, context: &str) {
    let report = store.check().unwrap();
    assert!(report.is_healthy(), "{context}: {report:?}");
    assert_eq!(report.message_count_mismatches, 0, "{context}");
}

/// Asserts every message id in `ids` is stored (in any conversation).
pub fn assert_all_present(store: &Store, ids: &[String], context: &str) {
    let stored: HashSet<String> = store
        .conversations()
        .list_all()
        .unwrap()
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.id.to_string()))
        .collect();
    let lost: Vec<&String> = ids.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{context}: {} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        ids.len(),
        lost.first()
    );
}

/// Removes the database at `path` and every file SQLite keeps beside it.
pub fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal", "-migrate.lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Says a probe could not run here; under `CI=true` that is a failure.
pub fn cannot_run_here(what: &str, why: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{what} must run in CI (as root): {why}"
    );
    println!("NOTE: {what} not run: {why}");
}

/// Runs `command`; false when it fails.
pub fn run(command: &[&str]) -> bool {
    Command::new(command[0])
        .args(&command[1..])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
