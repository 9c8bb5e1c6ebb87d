//! SIGKILL during every multi-step operation: migrating down and up,
//! restoring a snapshot, a JSON Lines import, an online backup. (Snapshots
//! killed midway: `tests/snapshots.rs`.) After each kill the store opens,
//! `check()` is healthy, the state is one of those the operation allows,
//! and everything acknowledged before is there.
//!
//! `SILMARI_ADV_KILLS` sets the kills per probe (default 12).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use silmari_store::TransferOptions;
use silmari_store::prelude::*;

use crate::common::{contents, schema};
use crate::{
    Rng, assert_all_present, assert_healthy, child_arg, fill, finish, kill, size_from_env, spawn,
    tagged, url,
};

fn rounds() -> usize {
    size_from_env("SILMARI_ADV_KILLS", 12)
}

/// The newest schema version this build ships.
use crate::common::LATEST;

/// The child: opens the store (which completes a migration a kill cut
/// short), then reverts to version 1 and migrates up again forever,
/// appending one message between cycles.
fn migrating_child(path: &str) {
    println!();
    let store = Store::open(&url(Path::new(path))).expect("open");
    let c = store
        .conversations()
        .create(NewConversation::titled("migrating"))
        .expect("create");
    loop {
        store.migrations().down_to(1).expect("down");
        println!("DOWN");
        store.migrations().up().expect("up");
        let m = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "between migrations"))
            .expect("append");
        println!("ACK {}", m.id);
    }
}

/// The schema version refinery's history records in the file at `path`.
fn recorded_version(path: &Path) -> i64 {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row(
        "SELECT ifnull(max(version), 0) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn migrations_killed_midway_leave_a_whole_version_and_every_record() {
    const NAME: &str = "kills::migrations_killed_midway_leave_a_whole_version_and_every_record";
    if let Some(arg) = child_arg() {
        return migrating_child(&arg);
    }
    let rounds = rounds();
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    // The schema of each version, from fresh files migrated to it.
    let mut expected = BTreeMap::new();
    for version in 1..=LATEST {
        let fresh = dir.path().join(format!("v{version}.db"));
        let store = Store::builder()
            .url(url(&fresh))
            .migrate_on_open(false)
            .open()
            .unwrap();
        store.migrations().up_to(version).unwrap();
        drop(store);
        expected.insert(version, schema::sqlite_schema(&fresh));
    }
    let path = dir.path().join("migrating.db");
    let store = Store::open(&url(&path)).unwrap();
    fill(&store, "base", 10, 40, 300);
    let (base_files, base) = contents(&store);
    drop(store);

    let mut acknowledged: Vec<String> = Vec::new();
    let mut states: BTreeMap<i64, usize> = BTreeMap::new();
    let mut cycles = 0;
    // Under load a child may take longer than the longest wait to start
    // its first step: more rounds (up to four times as many) until a kill
    // lands between two steps.
    let between_steps = |states: &BTreeMap<i64, usize>| states.keys().any(|v| *v != LATEST);
    let mut round = 0;
    while round < rounds || (round < 4 * rounds && !between_steps(&states)) {
        round += 1;
        let child = spawn(NAME, &path.display().to_string());
        std::thread::sleep(rng.upto(Duration::from_millis(400)));
        let out = kill(child);
        cycles += tagged(&out, "DOWN").len();
        acknowledged.extend(
            tagged(&out, "ACK")
                .into_iter()
                .filter_map(|w| w.first().cloned()),
        );

        // Before anything opens it: one whole version, its schema exactly.
        let version = recorded_version(&path);
        assert_eq!(
            schema::sqlite_schema(&path),
            expected[&version],
            "round {round}: the file records version {version} but has another schema"
        );
        *states.entry(version).or_default() += 1;

        let store = Store::open(&url(&path)).expect("opens after the kill");
        assert_healthy(&store, &format!("round {round}"));
        let (files, all) = contents(&store);
        assert_eq!(files, base_files, "round {round}: file records changed");
        for c in &base {
            assert!(
                all.contains(c),
                "round {round}: {} changed or lost",
                c.title
            );
        }
        assert_all_present(&store, &acknowledged, &format!("round {round}"));
        // A kill between a snapshot and its pruning leaves one more.
        assert!(store.migrations().snapshots().unwrap().len() <= 3 + 1);
    }
    println!(
        "{round} SIGKILLs during down_to(1)/up() cycles ({cycles} cycles completed): \
         the file was found at versions {states:?}, each with exactly its schema; \
         {} acknowledged appends, 0 lost; healthy after every kill",
        acknowledged.len()
    );
    assert!(
        rounds < 8 || between_steps(&states),
        "no kill landed between two migration steps"
    );
}

/// The child: restores one snapshot, then the other, forever.
fn restoring_child(arg: &str) {
    println!();
    let mut parts = arg.split('|');
    let (live, a, ab) = (
        parts.next().expect("live"),
        parts.next().expect("a"),
        parts.next().expect("ab"),
    );
    let store = Store::open(&url(Path::new(live))).expect("open");
    println!("STARTED");
    loop {
        for (name, snapshot) in [("A", a), ("AB", ab)] {
            store
                .migrations()
                .restore_snapshot(Path::new(snapshot))
                .expect("restore");
            println!("{name}");
        }
    }
}

#[test]
fn a_restore_killed_midway_leaves_the_old_or_the_new_state() {
    const NAME: &str = "kills::a_restore_killed_midway_leaves_the_old_or_the_new_state";
    if let Some(arg) = child_arg() {
        return restoring_child(&arg);
    }
    let rounds = rounds();
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let (a, ab) = (dir.path().join("a.backup"), dir.path().join("ab.backup"));
    let store = Store::open(&url(&live)).unwrap();
    fill(&store, "a", 30, 60, 1000);
    store.backup_to(&a).unwrap();
    let state_a = contents(&store);
    fill(&store, "b", 10, 60, 1000);
    store.backup_to(&ab).unwrap();
    let state_ab = contents(&store);
    let started = Instant::now();
    store.migrations().restore_snapshot(&a).unwrap();
    let restore = started.elapsed();
    assert_eq!(contents(&store), state_a);
    drop(store);

    let arg = format!("{}|{}|{}", live.display(), a.display(), ab.display());
    let (mut found_a, mut found_ab, mut restores, mut restoring) = (0, 0, 0, 0);
    for round in 0..rounds {
        let child = spawn(NAME, &arg);
        std::thread::sleep(rng.upto(Duration::from_millis(40) + restore * 6));
        let out = kill(child);
        restores += tagged(&out, "A").len() + tagged(&out, "AB").len();
        restoring += usize::from(!tagged(&out, "STARTED").is_empty());
        let store = Store::open(&url(&live)).expect("opens after the kill");
        assert_healthy(&store, &format!("round {round}"));
        let now = contents(&store);
        if now == state_a {
            found_a += 1;
        } else if now == state_ab {
            found_ab += 1;
        } else {
            panic!("round {round}: neither snapshot's state after the kill");
        }
    }
    println!(
        "{rounds} SIGKILLs ({restoring} after the child began restoring; {restores} restores \
         completed, one takes {restore:?}): {found_a} left snapshot A's state, {found_ab} snapshot AB's, 0 anything else; \
         healthy every time"
    );
    assert!(
        rounds < 8 || restoring > 0,
        "no kill landed while restoring"
    );
}

/// The child: imports `file` into `target` (merging), then says DONE.
fn importing_child(arg: &str) {
    println!();
    let (file, target) = arg.split_once('|').expect("file|target");
    let store = Store::open(&url(Path::new(target))).expect("open");
    let options = TransferOptions {
        merge: true,
        ..TransferOptions::default()
    };
    let input = BufReader::new(File::open(file).expect("the export"));
    println!("STARTED");
    store.import_jsonl(input, options, |_| {}).expect("import");
    println!("DONE");
}

#[test]
fn an_import_killed_midway_leaves_nothing_or_all_of_the_file() {
    const NAME: &str = "kills::an_import_killed_midway_leaves_nothing_or_all_of_the_file";
    if let Some(arg) = child_arg() {
        return importing_child(&arg);
    }
    let rounds = rounds();
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open("memory://").unwrap();
    fill(&source, "imported", 20, 400, 100);
    let export = dir.path().join("export.jsonl");
    source
        .export_jsonl(File::create(&export).unwrap(), |_| {})
        .unwrap();
    // The target already holds records of its own (an import with merge).
    // Each target is a backup of it: a copy of the file alone could miss
    // what is still in its WAL.
    let template = Store::open(&url(&dir.path().join("template.db"))).unwrap();
    fill(&template, "prior", 3, 10, 50);
    let prior = contents(&template);
    let whole = dir.path().join("whole.db");
    template.backup_to(&whole).unwrap();
    let arg = |target: &Path| format!("{}|{}", export.display(), target.display());
    let started = Instant::now();
    finish(spawn(NAME, &arg(&whole)));
    let import = started.elapsed();
    let all = contents(&Store::open(&url(&whole)).unwrap());
    assert_ne!(all, prior);

    let (mut nothing, mut everything, mut done, mut midway) = (0, 0, 0, 0);
    for round in 0..rounds {
        let target = dir.path().join(format!("target-{round}.db"));
        template.backup_to(&target).unwrap();
        let child = spawn(NAME, &arg(&target));
        std::thread::sleep(rng.upto(import.mul_f64(1.2)));
        let out = kill(child);
        let acknowledged = !tagged(&out, "DONE").is_empty();
        done += usize::from(acknowledged);
        midway += usize::from(!acknowledged && !tagged(&out, "STARTED").is_empty());
        let store = Store::open(&url(&target)).expect("opens after the kill");
        assert_healthy(&store, &format!("round {round}"));
        let now = contents(&store);
        if now == prior && !acknowledged {
            nothing += 1;
        } else if now == all {
            everything += 1;
        } else {
            panic!(
                "round {round}: the import was acknowledged: {acknowledged}; the target holds \
                 {:?}, neither its records alone nor with the whole file",
                store.counts().unwrap()
            );
        }
    }
    println!(
        "{rounds} SIGKILLs during an import of {} records (one takes {import:?}, child start \
         included; {midway} kills landed inside import_jsonl): {nothing} left nothing of the \
         file, {everything} all of it ({done} of those acknowledged), 0 a part",
        {
            let c = source.counts().unwrap();
            c.files + c.conversations + c.messages
        }
    );
    assert!(rounds < 8 || midway > 0, "no kill landed inside the import");
}

/// The child: backs `source` up to `target`, then says DONE.
fn backup_child(arg: &str) {
    println!();
    let (source, target) = arg.split_once('|').expect("source|target");
    let store = Store::open(&url(Path::new(source))).expect("open");
    println!("STARTED");
    store.backup_to(target).expect("backup");
    println!("DONE");
}

/// The files in `dir` whose names start with `prefix`.
fn files_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
}

/// Messages in the database at `path`, read without changing the file;
/// `Err` when SQLite cannot read it whole.
fn complete_copy_messages(path: &Path) -> Result<i64, String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if check != "ok" {
        return Err(check);
    }
    conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

#[test]
fn a_backup_killed_midway_leaves_no_file_that_looks_complete() {
    const NAME: &str = "kills::a_backup_killed_midway_leaves_no_file_that_looks_complete";
    if let Some(arg) = child_arg() {
        return backup_child(&arg);
    }
    let rounds = rounds();
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    let store = Store::open(&url(&source)).unwrap();
    fill(&store, "s", 40, 100, 2000);
    let expected = contents(&store);
    let messages = store.counts().unwrap().messages as i64;
    drop(store);
    // Where restore is tried on what the kills leave (it must refuse it).
    let scratch = Store::open(&url(&dir.path().join("scratch.db"))).unwrap();
    fill(&scratch, "scratch", 1, 1, 10);

    let arg = |target: &Path| format!("{}|{}", source.display(), target.display());
    let started = Instant::now();
    finish(spawn(NAME, &arg(&dir.path().join("timing.backup"))));
    let backup = started.elapsed();

    let (mut absent, mut complete, mut midway) = (0, 0, 0);
    let (mut whole_leftovers, mut refused_leftovers) = (0, 0);
    for round in 0..rounds {
        let name = format!("backup-{round}.db");
        let target = dir.path().join(&name);
        let child = spawn(NAME, &arg(&target));
        std::thread::sleep(rng.upto(backup.mul_f64(1.2)));
        let out = kill(child);
        let acknowledged = !tagged(&out, "DONE").is_empty();
        midway += usize::from(!acknowledged && !tagged(&out, "STARTED").is_empty());
        // The source is intact.
        let store = Store::open(&url(&source)).expect("the source opens");
        assert_healthy(&store, &format!("round {round}"));
        assert_eq!(
            contents(&store),
            expected,
            "round {round}: the source changed"
        );
        drop(store);
        // A file at the path asked for is a complete backup.
        if target.exists() {
            let journal = dir.path().join(format!("{name}-journal"));
            assert!(
                !journal.exists(),
                "round {round}: the killed backup left {name} with a hot journal: \
                 a file at the backup's path that is not a complete backup"
            );
            assert_eq!(
                complete_copy_messages(&target),
                Ok(messages),
                "round {round}: {name} is not a complete backup"
            );
            complete += 1;
        } else {
            assert!(!acknowledged, "round {round}: acknowledged, but no file");
            absent += 1;
        }
        // Whatever else it left is a whole copy, or refused by restore.
        for other in files_starting(dir.path(), &name) {
            if other == target || other.to_string_lossy().ends_with("-journal") {
                continue;
            }
            if complete_copy_messages(&other) == Ok(messages) {
                whole_leftovers += 1;
                continue;
            }
            refused_leftovers += 1;
            match scratch.migrations().restore_snapshot(&other) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "snapshot"),
                result => panic!("round {round}: restore of {other:?} left by a kill: {result:?}"),
            }
        }
    }
    println!(
        "{rounds} SIGKILLs during a backup of {messages} messages (one takes {backup:?}, child \
         start included; {midway} kills landed inside backup_to): {absent} left no file at the path, {complete} a complete backup; \
         temporary files left: {refused_leftovers} incomplete (each refused by restore), \
         {whole_leftovers} whole; the source intact"
    );
    assert!(rounds < 8 || midway > 0, "no kill landed inside a backup");
}
