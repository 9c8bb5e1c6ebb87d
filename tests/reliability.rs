//! Reliability on SQLite files: processes killed mid-write, cold-start
//! races, read-only files. (Pools, damaged files and a full disk:
//! `damaged_files_and_pools.rs`; two processes appending to one file:
//! `checkpoints.rs`.) Sizes are
//! small for CI; the environment variables named in each test make the
//! local soak runs of RELIABILITY.md.
#![cfg(feature = "sqlite")]

mod common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{SearchQuery, StoreConfig};

use common::{Rng, cannot_run_here, child, run, size_from_env, sqlite_url as url};

/// The child side of the crash loop: open (maybe migrating), then append
/// batches of three messages with attachments forever (as one call, or as
/// three in one transaction), printing each acknowledged batch. `arg` is the path and the pages at which the
/// background checkpointer starts (small in every other round, so that the
/// kills land in checkpoints too), and whether the file is encrypted.
fn crash_child(arg: &str) {
    let mut parts = arg.split('|');
    let (Some(path), Some(pages), Some(encrypted)) = (parts.next(), parts.next(), parts.next())
    else {
        panic!("path|pages|encrypted")
    };
    let mut config: StoreConfig = url(Path::new(path)).parse().expect("url");
    config.sqlite = options(encrypted == "true");
    config.sqlite.checkpoint = silmari_store::Checkpoint::Background {
        pages: pages.parse().expect("pages"),
    };
    let store = Store::open_with(config).expect("open");
    let c = store
        .conversations()
        .create(NewConversation::titled("crash"))
        .expect("create");
    println!("CONV {}", c.id);
    // A reply streamed beside the batches: past 4 KiB it waits for the
    // index's batch (taken out of the index once), so kills land there too.
    let reply = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::Assistant, ""))
        .expect("reply");
    // The first message of each batch, edited two batches later: an edit
    // of an indexed text waits for the next index batch and lists its old
    // entry until then (V8), so kills land there too.
    let mut to_edit = std::collections::VecDeque::new();
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
        // Every other batch as three single appends in one transaction:
        // singles wait above the search index's mark and every 128th
        // indexes them all, so kills land in those batches too.
        let made = if batch % 2 == 0 {
            store.conversations().append_messages(c.id, messages)
        } else {
            store.transaction(|tx| {
                messages
                    .into_iter()
                    .map(|m| tx.conversations().append_message(c.id, m))
                    .collect::<silmari_store::Result<Vec<_>>>()
            })
        }
        .expect("append");
        let ids: Vec<String> = made.iter().map(|m| m.id.to_string()).collect();
        println!("ACK {} {}", c.id, ids.join(" "));
        to_edit.push_back((batch, made[0].id));
        if to_edit.len() > 2
            && let Some((old, id)) = to_edit.pop_front()
        {
            let text = format!("batch {old} part 0 edited{batch}");
            let edit = silmari_store::MessageEdit::new().content(text);
            store.conversations().edit_message(id, edit).expect("edit");
            println!("EDITED {} {id} {batch}", c.id);
        }
        let delta = format!(" streamed{batch} {}", "and more words ".repeat(40));
        store
            .conversations()
            .append_to_message(reply.id, &delta)
            .expect("grow");
        println!("GREW {} {} {batch}", c.id, reply.id);
    }
}

/// The SQLite options of the crash loop: with a raw key when encrypted (a
/// passphrase's key derivation, a tenth of a second at each open, would
/// leave the children too little time to write before they are killed).
fn options(encrypted: bool) -> silmari_store::SqliteOptions {
    #[cfg(feature = "encryption")]
    if encrypted {
        return silmari_store::SqliteOptions {
            key: Some(silmari_store::Key::raw(&[0x17; 32])),
            ..Default::default()
        };
    }
    assert!(!encrypted, "encrypted files need the `encryption` feature");
    silmari_store::SqliteOptions::default()
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
    crash_loop(NAME, false);
}

/// The crash loop on an encrypted file.
#[cfg(feature = "encryption")]
#[test]
fn crash_loop_on_an_encrypted_file_loses_nothing_acknowledged() {
    const NAME: &str = "crash_loop_on_an_encrypted_file_loses_nothing_acknowledged";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            crash_child(&arg);
        }
        return;
    }
    crash_loop(NAME, true);
}

/// The content of message `id` of `conversation`.
fn text_of(conversation: &Conversation, id: MessageId) -> &str {
    &conversation
        .messages
        .iter()
        .find(|m| m.id == id)
        .expect("the message")
        .content
}

/// The messages of `conversation` that `query` finds.
fn found_in(store: &Store, query: &str, conversation: ConversationId) -> Vec<MessageId> {
    let query = SearchQuery::new(query).in_conversation(conversation);
    store
        .search(&query)
        .unwrap()
        .items
        .iter()
        .filter_map(|h| h.message.as_ref().map(|m| m.id))
        .collect()
}

/// Kills children appending to one file (named `name`, on an encrypted
/// file if `encrypted`) at random moments, and after each checks that
/// everything acknowledged is there and whole.
fn crash_loop(name: &str, encrypted: bool) {
    let rounds = size_from_env("SILMARI_CRASH_ROUNDS", 100);
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut acknowledged: Vec<(ConversationId, Vec<MessageId>)> = Vec::new();
    // Each streamed reply's last acknowledged delta.
    let mut grown: std::collections::HashMap<(ConversationId, MessageId), u64> =
        std::collections::HashMap::new();
    // Each edited message's acknowledged edit.
    let mut edited = std::collections::HashMap::new();
    let mut long_streams = 0;
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
            grown.clear();
            edited.clear();
            fresh_files += 1;
        }
        let pages = if round % 2 == 0 { 1000 } else { 4 };
        let mut process = child(name, &format!("{}|{pages}|{encrypted}", path.display()));
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
            if let Some(rest) = common::after_tag(line, "EDITED ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                if let [c, m, n] = parts[..]
                    && let (Ok(c), Ok(m), Ok(n)) = (c.parse(), m.parse(), n.parse::<u64>())
                {
                    edited.insert((ConversationId::from_uuid(c), MessageId::from_uuid(m)), n);
                }
                continue;
            }
            if let Some(rest) = common::after_tag(line, "GREW ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                if let [c, m, n] = parts[..]
                    && let (Ok(c), Ok(m), Ok(n)) = (c.parse(), m.parse(), n.parse())
                {
                    // A delta is about 611 bytes: the seventh takes a reply past 4 KiB.
                    if n == 6 {
                        long_streams += 1;
                    }
                    grown.insert((ConversationId::from_uuid(c), MessageId::from_uuid(m)), n);
                }
                continue;
            }
            let Some(rest) = common::after_tag(line, "ACK ") else {
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
        let mut config: StoreConfig = url(&path).parse().unwrap();
        config.sqlite = options(encrypted);
        let store = Store::open_with(config).expect("reopens after SIGKILL");
        let report = store.check().unwrap();
        assert_eq!(
            report.integrity_check.as_deref(),
            Some(&["ok".to_owned()][..]),
            "round {round}"
        );
        assert_eq!(report.foreign_key_violations, Some(0));
        assert_eq!(report.message_count_mismatches, 0);
        assert_eq!(report.search_index_mismatches, 0, "round {round}");
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
            for id in &ids {
                assert!(
                    whole.contains(id),
                    "acknowledged message {id} lost or damaged"
                );
            }
            // The newest acknowledged messages are found by their words.
            for id in ids.iter().rev().take(3) {
                let text = text_of(&stored, *id);
                let hits = found_in(&store, &format!("\"{text}\""), conversation);
                assert_eq!(hits, vec![*id], "round {round}: {text:?} found");
            }
        }
        for c in store.conversations().list_all().unwrap() {
            let batched = c
                .messages
                .iter()
                .filter(|m| m.content.starts_with("batch "));
            assert_eq!(batched.count() % 3, 0, "no batch half visible");
        }
        // Every acknowledged edit is there and found, nothing else by it.
        for (&(conversation, id), &n) in &edited {
            let word = format!("edited{n}");
            let stored = store.conversations().get(conversation).unwrap().unwrap();
            assert!(
                text_of(&stored, id).ends_with(&word),
                "round {round}: {word} lost"
            );
            let hits = found_in(&store, &word, conversation);
            assert_eq!(hits, vec![id], "round {round}: {word} found");
        }
        // Every acknowledged delta of a streamed reply is there and found.
        for (&(conversation, reply), &n) in &grown {
            let word = format!("streamed{n}");
            let stored = store.conversations().get(conversation).unwrap().unwrap();
            assert!(
                text_of(&stored, reply).contains(&format!("{word} ")),
                "round {round}: {word} lost"
            );
            let hits = found_in(&store, &word, conversation);
            assert_eq!(hits, vec![reply], "round {round}: {word} found");
        }
        store
            .conversations()
            .create(NewConversation::titled(format!("after round {round}")))
            .expect("accepts writes again");
    }
    println!(
        "{rounds} SIGKILLs (encrypted: {encrypted}; {fresh_files} on fresh files, during open and migration): \
         {total_acknowledged} acknowledged appends (in batches of 3), 0 lost, 0 half-visible batches; \
         {long_streams} replies streamed past 4 KiB, every acknowledged delta found; \
         {} acknowledged edits in the last file, each found",
        edited.len()
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
        versions.iter().all(|v| *v == common::LATEST.to_string()),
        "every process at the latest version: {versions:?}"
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
        common::versions(),
        "each version applied once"
    );
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
        versions.iter().all(|v| *v == common::LATEST.to_string()),
        "every process at the latest version: {versions:?}"
    );
    let rows = database
        .client()
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .unwrap();
    let applied: Vec<i64> = rows.iter().map(|r| i64::from(r.get::<_, i32>(0))).collect();
    assert_eq!(applied, common::versions(), "each version applied once");
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
