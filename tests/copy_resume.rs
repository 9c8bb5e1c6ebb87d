//! A copy killed at any moment is completed by running it again with
//! `merge`: source and target then hold the same records, field for field,
//! in the same order. (Before, a merge skipped every conversation the target
//! had, so one cut between two message batches stayed incomplete, silently.)
//!
//! `SILMARI_COPY_KILL_ROUNDS` sets the number of SIGKILLs (default 20).
#![cfg(feature = "sqlite")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use silmari_store::TransferOptions;
use silmari_store::prelude::*;

use common::contents;

use common::sqlite_url as url;

/// Small batches: many commits per conversation, many places to be cut.
const BATCH: u32 = 25;

/// The child side: copies `source` into `target` and says when it is done.
fn copy_child(arg: &str) {
    let (source, target) = arg.split_once('|').expect("source|target");
    let source = Store::open(&url(Path::new(source))).expect("open the source");
    let target = Store::open(&url(Path::new(target))).expect("open the target");
    let options = TransferOptions {
        batch_size: BATCH,
        ..TransferOptions::default()
    };
    source.copy_to(&target, options, |_| {}).expect("copy");
    println!("DONE");
}

fn populate(store: &Store) {
    for i in 0..6 {
        store
            .files()
            .create(NewFile {
                filename: format!("f{i}.txt"),
                content_type: "text/plain".into(),
                size: i,
                ..Default::default()
            })
            .unwrap();
    }
    for c in 0..8 {
        let conversation = store
            .conversations()
            .create(NewConversation::titled(format!("conversation {c}")))
            .unwrap();
        let messages = (0..400)
            .map(|m| NewMessage::new(Role::User, format!("c{c} m{m}: {}", "text ".repeat(m % 7))))
            .collect();
        store
            .conversations()
            .append_messages(conversation.id, messages)
            .unwrap();
    }
}

#[test]
fn a_killed_copy_is_completed_by_a_merge() {
    const NAME: &str = "a_killed_copy_is_completed_by_a_merge";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            copy_child(&arg);
        }
        return;
    }
    let rounds: usize = std::env::var("SILMARI_COPY_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.db");
    let source = Store::open(&url(&source_path)).unwrap();
    populate(&source);
    let expected = contents(&source);
    let total = source.counts().unwrap();

    let run_child = |target: &Path| {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(
                common::CHILD_VAR,
                format!("{}|{}", source_path.display(), target.display()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole copy takes here, to cut the next ones anywhere in it.
    let started = Instant::now();
    let whole = dir.path().join("whole.db");
    assert!(run_child(&whole).wait().unwrap().success());
    let full_copy = started.elapsed();
    assert_eq!(contents(&Store::open(&url(&whole)).unwrap()), expected);

    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let (mut cut_mid_copy, mut repaired_messages) = (0, 0);
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target_path = dir.path().join(format!("target-{round}.db"));
        let mut process = run_child(&target_path);
        let delay = full_copy.mul_f64((seed % 1000) as f64 / 1000.0);
        std::thread::sleep(delay.max(Duration::from_millis(1)));
        let _ = process.kill(); // SIGKILL
        let _ = process.wait();

        let target = Store::open(&url(&target_path)).unwrap();
        let before = target.counts().unwrap();
        if before != total && before.conversations > 0 {
            cut_mid_copy += 1;
        }
        let merge = TransferOptions {
            merge: true,
            batch_size: BATCH,
        };
        let report = source.copy_to(&target, merge, |_| {}).unwrap();
        assert_eq!(
            report.written.messages + report.skipped.messages,
            total.messages,
            "round {round}: every source message was either there or added"
        );
        repaired_messages += report.written.messages;
        assert_eq!(
            contents(&target),
            expected,
            "round {round}: after the merge the target equals the source (cut after {delay:?}, \
             it held {before:?})"
        );
        assert!(target.check().unwrap().is_healthy());
    }
    common::report(&format!(
        "{rounds} copies killed at random moments ({cut_mid_copy} with part of the data \
         written), each completed by a merge: {repaired_messages} messages added by the merges, \
         target equal to the source every time"
    ));
    assert!(
        rounds == 0 || cut_mid_copy > 0,
        "no kill landed in the middle of a copy: the test cut nothing"
    );
}
