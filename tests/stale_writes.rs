//! Two processes, as two windows of a desktop app (or two app instances on
//! one PostgreSQL server): one renames a conversation in a loop (read,
//! change, `update`; on `Stale`, read again), the other appends to it. Before
//! conversation versions, a stale `update` deleted almost every appended
//! message (65,095 of 65,163 in 3 s). Now every acknowledged append must be
//! there at the end, and the refusals are counted.
//!
//! A call that finds the file locked for longer than the busy timeout
//! (`Unavailable`) is tried again, as an app would, and counted; it wrote
//! nothing. (With SQLite's own busy handler, which polled every 100 ms,
//! one CI run saw it; the store's handler tries every millisecond at most
//! behind another process, and `tests/lock_waits.rs` holds it to no
//! timeout at all.)
//!
//! `SILMARI_STALE_SECONDS` sets how long both processes run (default 10).
#![cfg(any(feature = "sqlite", feature = "postgres"))]

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;

fn seconds() -> f64 {
    std::env::var("SILMARI_STALE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0)
}

/// Starts this test binary's test `name` as a child with `arg`, its
/// errors shown beside the test's.
fn child(name: &str, arg: &str) -> std::process::Child {
    common::child_command(name, arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child")
}

/// The child side: `appender|url|id|seconds` prints `ACK <message id>` per
/// acknowledged append; `renamer|…` prints `DONE <renames> <stale> <busy>`.
fn run_child(arg: &str) {
    let mut parts = arg.splitn(4, '|');
    let (role, url, id, seconds) = (
        parts.next().expect("role"),
        parts.next().expect("url"),
        parts.next().expect("id"),
        parts.next().expect("seconds"),
    );
    let store = Store::open(url).expect("open");
    let id: ConversationId = id.parse().expect("conversation id");
    let until = Instant::now() + Duration::from_secs_f64(seconds.parse().expect("seconds"));
    match role {
        "appender" => {
            let mut out = String::new();
            while Instant::now() < until {
                match store
                    .conversations()
                    .append_message(id, NewMessage::new(Role::User, "acknowledged"))
                {
                    Ok(m) => out.push_str(&format!("ACK {}\n", m.id)),
                    Err(e) if e.is_unavailable() => {}
                    Err(e) => panic!("append failed: {e}"),
                }
            }
            // After a newline: the harness may have started a line of its own.
            print!("\n{out}");
        }
        "renamer" => {
            let (mut renames, mut stale, mut busy) = (0u64, 0u64, 0u64);
            // Until the deadline, and at least one rename written.
            while Instant::now() < until || renames == 0 {
                let mut copy = store.conversations().get(id).expect("get").expect("there");
                copy.title = format!("renamed {renames}");
                match store.conversations().update(&copy) {
                    Ok(_) => renames += 1,
                    Err(Error::Stale { .. }) => stale += 1,
                    Err(e) if e.is_unavailable() => busy += 1,
                    Err(e) => panic!("update failed: {e}"),
                }
            }
            println!("\nDONE {renames} {stale} {busy}");
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Runs the race on `url` and checks that nothing acknowledged was lost.
fn race(name: &str, url: &str, label: &str) {
    let store = Store::open(url).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("two windows"))
        .unwrap();
    let seconds = seconds();
    let arg = |role: &str| format!("{role}|{url}|{}|{seconds}", c.id);
    let appender = child(name, &arg("appender"));
    let renamer = child(name, &arg("renamer"));
    let acked: Vec<String> = common::stdout_of(appender)
        .lines()
        .filter_map(|l| l.strip_prefix("ACK ").map(str::to_owned))
        .collect();
    let done = common::stdout_of(renamer);
    let report: Vec<u64> = done
        .lines()
        .find_map(|l| l.strip_prefix("DONE "))
        .expect("the renamer's report")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let [renames, stale, busy] = report[..] else {
        panic!("the renamer's report: {report:?}");
    };

    let stored = store.conversations().get(c.id).unwrap().unwrap();
    let kept: HashSet<String> = stored.messages.iter().map(|m| m.id.to_string()).collect();
    let lost = acked.iter().filter(|id| !kept.contains(*id)).count();
    common::report(&format!(
        "{label}, 2 processes for {seconds} s: {} appends acknowledged, {lost} lost; \
         {renames} renames written, {stale} stale copies refused, {busy} timed out busy",
        acked.len()
    ));
    assert!(!acked.is_empty(), "the appender got through");
    assert_eq!(lost, 0, "acknowledged appends were lost");
    assert_eq!(stored.messages.len(), acked.len());
    assert_eq!(stored.version, 1 + acked.len() as u64 + renames);
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_stale_renames_never_lose_acknowledged_appends() {
    const NAME: &str = "sqlite_stale_renames_never_lose_acknowledged_appends";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            run_child(&arg);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("race.db").display());
    race(NAME, &url, "SQLite file");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_stale_renames_never_lose_acknowledged_appends() {
    const NAME: &str = "postgres_stale_renames_never_lose_acknowledged_appends";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            run_child(&arg);
        }
        return;
    }
    let Some(database) = common::pg::Database::create() else {
        return;
    };
    race(NAME, &database.url, "PostgreSQL");
}
