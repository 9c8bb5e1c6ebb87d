//! Two processes doing conflicting things to one SQLite file: migrating
//! down and up while another appends, and restoring snapshots while others
//! read and write. (`update` while appending: `tests/stale_writes.rs`.)
//! Every call either succeeds, and what it wrote is kept, or fails with a
//! typed error; no crash, no untyped error.
//!
//! `SILMARI_ADV_CONFLICT_SECONDS` sets how long each race runs (default 3).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use silmari_store::prelude::*;

use crate::{
    assert_all_present, assert_healthy, child_arg, fill, finish, kind, small_store, spawn, tagged,
    typed, url,
};

fn seconds() -> f64 {
    std::env::var("SILMARI_ADV_CONFLICT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0)
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// Prints an error as `ERR <kind>`, or `UNTYPED <error>` for the catch-all.
fn report(e: &Error) {
    if typed(e) {
        println!("ERR {}", kind(e));
    } else {
        println!("UNTYPED {e}");
    }
}

/// Tallies the `ERR` lines of a child's output by kind.
fn errors(out: &str) -> BTreeMap<String, usize> {
    let mut tally = BTreeMap::new();
    for words in tagged(out, "ERR") {
        *tally.entry(words.join(" ")).or_default() += 1;
    }
    tally
}

/// The untyped errors a child met.
fn untyped(out: &str) -> Vec<String> {
    tagged(out, "UNTYPED")
        .into_iter()
        .map(|w| w.join(" "))
        .collect()
}

/// The children of the migration race: `migrator` reverts to version 1 and
/// migrates up again in a loop; `writer` creates a conversation and
/// appends to it, reading it back now and then.
fn migration_child(arg: &str) {
    println!();
    let mut parts = arg.split('|');
    let (role, path, seconds) = (
        parts.next().expect("role"),
        parts.next().expect("path"),
        parts.next().expect("seconds"),
    );
    let until = Instant::now() + Duration::from_secs_f64(seconds.parse().expect("seconds"));
    let store = small_store(Path::new(path), Duration::from_secs(10)).expect("open");
    let mut conversation = None;
    while Instant::now() < until {
        match role {
            "migrator" => {
                let cycle = store
                    .migrations()
                    .down_to(1)
                    .and_then(|_| store.migrations().up());
                match cycle {
                    Ok(_) => println!("CYCLE"),
                    Err(e) => report(&e),
                }
            }
            _ => {
                let id = match conversation {
                    Some(id) => id,
                    None => match store
                        .conversations()
                        .create(NewConversation::titled("written during migrations"))
                    {
                        Ok(c) => *conversation.insert(c.id),
                        Err(e) => {
                            report(&e);
                            continue;
                        }
                    },
                };
                let appended = store
                    .conversations()
                    .append_message(id, NewMessage::new(Role::User, "during a migration"));
                match appended {
                    Ok(m) => println!("ACK {}", m.id),
                    Err(e) => report(&e),
                }
                if let Err(e) = store.conversations().get(id) {
                    report(&e);
                }
            }
        }
    }
    println!("DONE");
}

#[test]
fn appends_during_migrations_are_kept_or_refused_with_a_typed_error() {
    const NAME: &str =
        "conflicts::appends_during_migrations_are_kept_or_refused_with_a_typed_error";
    if let Some(arg) = child_arg() {
        return migration_child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrating.db");
    fill(&Store::open(&url(&path)).unwrap(), "base", 5, 20, 100);
    let seconds = seconds();
    let arg = |role: &str| format!("{role}|{}|{seconds}", path.display());
    let migrator = spawn(NAME, &arg("migrator"));
    let writer = spawn(NAME, &arg("writer"));
    let (migrator, writer) = (finish(migrator), finish(writer));
    let acknowledged: Vec<String> = tagged(&writer, "ACK")
        .into_iter()
        .filter_map(|w| w.first().cloned())
        .collect();
    let cycles = tagged(&migrator, "CYCLE").len();
    let store = Store::open(&url(&path)).unwrap();
    assert_healthy(&store, "after the race");
    assert_all_present(&store, &acknowledged, "after the race");
    let (writer_errors, migrator_errors) = (errors(&writer), errors(&migrator));
    println!(
        "2 processes for {seconds} s: {cycles} down_to(1)/up() cycles; {} appends \
         acknowledged, 0 lost; writer's errors {writer_errors:?}, migrator's \
         {migrator_errors:?}",
        acknowledged.len()
    );
    let mut wild = untyped(&writer);
    wild.extend(untyped(&migrator));
    assert!(
        wild.is_empty(),
        "{} untyped errors, e.g. {:?}",
        wild.len(),
        wild.first()
    );
    assert!(cycles > 0, "the migrator got through");
    assert!(!acknowledged.is_empty(), "the writer got through");
}

/// A copy of a conversation read before its version counts were reset
/// (the schema taken below V3 and up again, which drops and re-creates the
/// column, or a snapshot restored) must still be stale after it, however
/// many writes follow: otherwise `update` takes it for the current one and
/// deletes the messages appended since.
fn stale_copy_after_reset(
    store: &Store,
    label: &str,
    prepare: impl FnOnce(&Store),
    reset: impl FnOnce(&Store),
) {
    let c = store
        .conversations()
        .create(NewConversation::titled(label))
        .unwrap();
    prepare(store);
    for i in 0..4 {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("before {i}")))
            .unwrap();
    }
    // Window one reads its copy (version 5); then the reset.
    let mut copy = store.conversations().get(c.id).unwrap().unwrap();
    reset(store);
    // Window two appends; the version counts up again from where the reset left it.
    let mut acknowledged = Vec::new();
    for i in 0..4 {
        let m = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("after {i}")))
            .unwrap();
        acknowledged.push(m.id.to_string());
    }
    let before = store.conversations().get(c.id).unwrap().unwrap().version;
    copy.title = "renamed by window one".into();
    let outcome = store.conversations().update(&copy);
    println!(
        "{label}: copy at version {}, stored version {before} after the reset and 4 appends: \
         update {}",
        copy.version,
        match &outcome {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("refused ({})", kind(e)),
        }
    );
    assert_all_present(store, &acknowledged, label);
    assert!(
        matches!(outcome, Err(Error::Stale { .. })),
        "{label}: {outcome:?}"
    );
}

#[test]
fn a_copy_read_before_versions_were_reset_stays_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir.path().join("aba.db"))).unwrap();
    stale_copy_after_reset(
        &store,
        "SQLite down_to(2), up()",
        |_| {},
        |s| {
            s.migrations().down_to(2).unwrap();
            s.migrations().up().unwrap();
        },
    );
    // The snapshot holds the conversation at version 1.
    let snapshot = dir.path().join("old.backup");
    stale_copy_after_reset(
        &store,
        "SQLite restore_snapshot",
        |s| s.backup_to(&snapshot).unwrap(),
        |s| s.migrations().restore_snapshot(&snapshot).unwrap(),
    );
}

#[cfg(feature = "postgres")]
#[test]
fn a_copy_read_before_versions_were_reset_stays_stale_on_postgres() {
    let Some(database) = crate::common::pg::Database::create() else {
        return;
    };
    let store = Store::open(&database.url).unwrap();
    stale_copy_after_reset(
        &store,
        "PostgreSQL down_to(2), up()",
        |_| {},
        |s| {
            s.migrations().down_to(2).unwrap();
            s.migrations().up().unwrap();
        },
    );
}

/// The children of the restore race: `reader` lists the conversations and
/// checks each list is one snapshot's; `writer` appends to a conversation
/// both snapshots hold, printing the time before each acknowledged append.
fn restore_child(arg: &str) {
    println!();
    let mut parts = arg.split('|');
    let (role, path, stop, id) = (
        parts.next().expect("role"),
        parts.next().expect("path"),
        parts.next().expect("stop file"),
        parts.next().expect("conversation"),
    );
    // Until the parent says stop (it waits a moment after its last restore).
    let (stop, deadline) = (Path::new(stop), Instant::now() + Duration::from_secs(120));
    let store = small_store(Path::new(path), Duration::from_secs(10)).expect("open");
    let id: ConversationId = id.parse().expect("id");
    while !stop.exists() && Instant::now() < deadline {
        if role == "reader" {
            match store.conversations().list(ConversationQuery::newest(1000)) {
                Ok(page) => {
                    let a = page
                        .items
                        .iter()
                        .filter(|c| c.title.starts_with("a "))
                        .count();
                    let b = page
                        .items
                        .iter()
                        .filter(|c| c.title.starts_with("b "))
                        .count();
                    match (a, b, page.items.len()) {
                        (20, 0, 20) => println!("SEEN A"),
                        (20, 10, 30) => println!("SEEN AB"),
                        other => println!("MIXED {other:?}"),
                    }
                }
                Err(e) => report(&e),
            }
        } else {
            let before = micros_now();
            match store
                .conversations()
                .append_message(id, NewMessage::new(Role::User, "during restores"))
            {
                Ok(m) => println!("ACK {} {before}", m.id),
                Err(e) => report(&e),
            }
        }
    }
    println!("DONE");
}

#[test]
fn restores_while_others_read_and_write_show_one_state_or_the_other() {
    const NAME: &str =
        "conflicts::restores_while_others_read_and_write_show_one_state_or_the_other";
    if let Some(arg) = child_arg() {
        return restore_child(&arg);
    }
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let (a, ab) = (dir.path().join("a.backup"), dir.path().join("ab.backup"));
    let store = Store::open(&url(&live)).unwrap();
    fill(&store, "a", 20, 50, 500);
    store.backup_to(&a).unwrap();
    fill(&store, "b", 10, 50, 500);
    store.backup_to(&ab).unwrap();
    let shared = store
        .conversations()
        .list(ConversationQuery::newest(1000))
        .unwrap()
        .items
        .into_iter()
        .find(|c| c.title == "a 0")
        .unwrap()
        .id;
    let seconds = seconds();
    let stop = dir.path().join("stop");
    let arg = |role: &str| format!("{role}|{}|{}|{shared}", live.display(), stop.display());
    let reader = spawn(NAME, &arg("reader"));
    let writer = spawn(NAME, &arg("writer"));
    std::thread::sleep(Duration::from_millis(300));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut restores, mut last_end) = (0, 0);
    while Instant::now() < until {
        let snapshot = if restores % 2 == 0 { &a } else { &ab };
        store.migrations().restore_snapshot(snapshot).unwrap();
        last_end = micros_now();
        restores += 1;
    }
    // Time for the writer to append after the last restore, on a loaded
    // machine too (CI-79 saw none in 500 ms).
    std::thread::sleep(Duration::from_millis(2_000));
    std::fs::write(&stop, b"").unwrap();
    let (reader, writer) = (finish(reader), finish(writer));
    // What the writer acknowledged after the last restore is there.
    let after_last: Vec<String> = tagged(&writer, "ACK")
        .into_iter()
        .filter(|w| w.len() == 2 && w[1].parse::<u128>().unwrap() > last_end)
        .map(|w| w[0].clone())
        .collect();
    assert_healthy(&store, "after the restores");
    assert_all_present(&store, &after_last, "acknowledged after the last restore");
    let mixed = tagged(&reader, "MIXED");
    println!(
        "{restores} restores in {seconds} s beside a reader and a writer process: the reader \
         saw snapshot A {} times, AB {} times, anything else {} times; the writer had {} \
         appends acknowledged ({} after the last restore, 0 of those lost); errors: reader \
         {:?}, writer {:?}",
        tagged(&reader, "SEEN")
            .iter()
            .filter(|w| w[0] == "A")
            .count(),
        tagged(&reader, "SEEN")
            .iter()
            .filter(|w| w[0] == "AB")
            .count(),
        mixed.len(),
        tagged(&writer, "ACK").len(),
        after_last.len(),
        errors(&reader),
        errors(&writer),
    );
    assert!(mixed.is_empty(), "the reader saw a mixed state: {mixed:?}");
    let mut wild = untyped(&reader);
    wild.extend(untyped(&writer));
    assert!(wild.is_empty(), "untyped errors: {wild:?}");
    assert!(restores >= 2 && !after_last.is_empty());
}

/// The same, step by step in one process: a store whose file another
/// handle migrated down (or a newer build up) says so with a typed error,
/// and works again once the file is back at its version.
#[test]
fn a_store_whose_schema_moved_under_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved.db");
    let store = Store::open(&url(&path)).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("kept"))
        .unwrap();
    let other = Store::open(&url(&path)).unwrap();
    other.migrations().down_to(1).unwrap();
    let append = || {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "x"))
    };
    match append() {
        Err(Error::Migration { message, .. }) => {
            assert!(message.contains("version 1"), "{message}");
            println!("migrated down under the store: Migration: {message}");
        }
        other => panic!("expected Migration, got {other:?}"),
    }
    match store.conversations().list(ConversationQuery::recent(10)) {
        Err(Error::Migration { .. }) => {}
        other => panic!("a read: expected Migration, got {other:?}"),
    }
    other.migrations().up().unwrap();
    append().expect("works again at its version");
    // A newer build added a version and changed the table.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "ALTER TABLE conversations DROP COLUMN version; \
         INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         SELECT 99, 'future', applied_on, '1' FROM refinery_schema_history WHERE version = 1",
    )
    .unwrap();
    match append() {
        Err(Error::SchemaTooNew {
            database,
            supported,
        }) => {
            assert_eq!((database, supported), (99, crate::common::LATEST));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

/// A restore needs the write lock: while another connection holds it longer
/// than the busy timeout, the restore gives up with `Unavailable` after
/// about that long (it used to retry without end, at full speed), and the
/// live data is untouched.
#[test]
fn a_restore_behind_a_held_write_lock_gives_up_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    let busy = Duration::from_millis(300);
    let store = small_store(&path, busy).unwrap();
    fill(&store, "kept", 2, 5, 10);
    let snapshot = dir.path().join("kept.backup");
    store.backup_to(&snapshot).unwrap();
    fill(&store, "later", 1, 5, 10);
    let before = crate::common::contents(&store);
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    let restoring = store.clone();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = send.send(restoring.migrations().restore_snapshot(&snapshot));
    });
    let outcome = receive.recv_timeout(Duration::from_secs(10));
    let waited = started.elapsed();
    holder.execute_batch("ROLLBACK").unwrap();
    let outcome = outcome.unwrap_or_else(|_| {
        panic!("the restore still had no answer after {waited:?} (busy timeout {busy:?})")
    });
    println!(
        "restore behind a held write lock: {outcome:?} after {waited:?} (busy timeout {busy:?})"
    );
    assert!(
        matches!(outcome, Err(Error::Unavailable { .. })),
        "{outcome:?}"
    );
    assert!(waited < busy * 5, "waited {waited:?}");
    assert_eq!(
        crate::common::contents(&store),
        before,
        "the live data is untouched"
    );
    assert_healthy(&store, "after the refused restore");
}
