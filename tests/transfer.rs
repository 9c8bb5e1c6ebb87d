//! Moving data between stores: copy across every backend, JSON Lines export
//! and import, bounded memory.
#![cfg(feature = "sqlite")]

mod common;

use std::io::Cursor;

use silmari_store::TransferOptions;
use silmari_store::prelude::*;
use time::macros::datetime;

use common::contents;

/// A store with everything that must survive a move: equal timestamps,
/// attachments, reordered and edited messages, an empty conversation, odd text.
fn populated() -> Store {
    let store = Store::open("memory://").unwrap();
    let at = datetime!(2024-02-29 12:00:00.123456 UTC);
    let mut files = Vec::new();
    for i in 0..7 {
        files.push(
            store
                .files()
                .create(NewFile {
                    filename: format!("f{i}.pdf"),
                    content_type: "application/pdf".into(),
                    size: 1 << i,
                    created_at: Some(at),
                    ..Default::default()
                })
                .unwrap(),
        );
    }
    for c in 0..5 {
        let conv = store
            .conversations()
            .create(NewConversation {
                title: format!("conversation {c} — «ünïcode» '); DROP TABLE x; --"),
                created_at: Some(at),
                ..Default::default()
            })
            .unwrap();
        let messages: Vec<NewMessage> = (0..(c * 7))
            .map(|i| {
                NewMessage {
                    created_at: Some(at),
                    ..NewMessage::new(Role::ALL[i % 4], format!("message {i}\nline two\t🦀"))
                }
                .with_attachments(if i % 3 == 0 {
                    vec![Attachment::from_file(&files[i % files.len()])]
                } else {
                    vec![]
                })
            })
            .collect();
        store
            .conversations()
            .append_messages(conv.id, messages)
            .unwrap();
        if c == 3 {
            let mut full = store.conversations().get(conv.id).unwrap().unwrap();
            full.messages.swap(0, 5);
            full.messages.remove(2);
            full.messages[1].content = "edited".into();
            store.conversations().update(&full).unwrap();
        }
    }
    store
}

fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(&format!("sqlite:///{}", dir.path().join(name).display())).unwrap()
}

#[test]
fn copy_memory_to_sqlite_to_postgres_to_memory_keeps_everything() {
    let source = populated();
    let expected = contents(&source);
    assert_eq!(expected.0.len(), 7);
    assert_eq!(
        expected.1.iter().map(|c| c.messages.len()).sum::<usize>(),
        69
    );
    let dir = tempfile::tempdir().unwrap();
    let options = TransferOptions {
        batch_size: 4, // many batches, pages and partial conversations
        ..TransferOptions::default()
    };

    let sqlite = sqlite_store(&dir, "copy.db");
    let mut calls = 0;
    let report = source.copy_to(&sqlite, options, |_| calls += 1).unwrap();
    assert_eq!(
        (
            report.written.files,
            report.written.conversations,
            report.written.messages
        ),
        (7, 5, 69)
    );
    assert!(calls >= 5, "progress is reported as it goes");
    assert_eq!(contents(&sqlite), expected);
    assert!(sqlite.check().unwrap().is_healthy());

    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut last = sqlite;
    #[cfg(feature = "postgres")]
    let _database;
    #[cfg(feature = "postgres")]
    if let Some(database) = common::pg::Database::create() {
        let postgres = Store::open(&database.url).unwrap();
        silmari_store::copy(&last, &postgres, options, |_| {}).unwrap();
        assert_eq!(contents(&postgres), expected);
        assert!(postgres.check().unwrap().is_healthy());
        last = postgres;
        _database = database;
    }

    let back = Store::open("memory://").unwrap();
    last.copy_to(&back, options, |_| {}).unwrap();
    assert_eq!(contents(&back), expected);
    // Appending after a copy continues at the end of each conversation.
    let c = &expected.1[0];
    let m = back
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "after"))
        .unwrap();
    assert_eq!(
        back.conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .last(),
        Some(&m)
    );
}

#[test]
fn copy_refuses_a_non_empty_target_unless_merging() {
    let source = populated();
    let target = Store::open("memory://").unwrap();
    let kept = target
        .conversations()
        .create(NewConversation::titled("already here"))
        .unwrap();
    let err = source
        .copy_to(&target, TransferOptions::default(), |_| {})
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "target"),
        "{err:?}"
    );
    assert_eq!(
        target.counts().unwrap().conversations,
        1,
        "nothing was written"
    );

    let merge = TransferOptions {
        merge: true,
        ..TransferOptions::default()
    };
    let first = source.copy_to(&target, merge, |_| {}).unwrap();
    assert_eq!(first.written.conversations, 5);
    let again = source.copy_to(&target, merge, |_| {}).unwrap();
    assert_eq!(again.written, silmari_store::Counts::default());
    assert_eq!((again.skipped.files, again.skipped.conversations), (7, 5));
    assert_eq!(target.counts().unwrap().conversations, 6);
    assert!(target.conversations().get(kept.id).unwrap().is_some());
}

#[test]
fn export_and_import_round_trip_exactly() {
    let source = populated();
    let mut exported = Vec::new();
    let report = source.export_jsonl(&mut exported, |_| {}).unwrap();
    assert_eq!(report.written.messages, 69);
    let text = String::from_utf8(exported.clone()).unwrap();
    assert!(text.starts_with(r#"{"kind":"header","format":"silmari-store","version":2}"#));
    assert_eq!(text.lines().count(), 1 + 7 + 5 + 69);

    let dir = tempfile::tempdir().unwrap();
    let target = sqlite_store(&dir, "import.db");
    let options = TransferOptions {
        batch_size: 3,
        ..TransferOptions::default()
    };
    let imported = target
        .import_jsonl(Cursor::new(&exported), options, |_| {})
        .unwrap();
    assert_eq!(imported.written, report.written);
    assert_eq!(contents(&target), contents(&source));
    assert!(target.check().unwrap().is_healthy());

    let mut again = Vec::new();
    target.export_jsonl(&mut again, |_| {}).unwrap();
    assert_eq!(
        String::from_utf8(again).unwrap(),
        text,
        "export → import → export is the same file"
    );
}

/// Replaces line `n` (1-based) of `text`.
fn with_line(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n - 1] = line;
    lines.join("\n") + "\n"
}

#[test]
fn a_bad_record_in_the_middle_writes_nothing_and_names_its_line() {
    let source = populated();
    let mut exported = Vec::new();
    source.export_jsonl(&mut exported, |_| {}).unwrap();
    let text = String::from_utf8(exported).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Line numbers of one message, late in the file.
    let m = lines.len() - 3;
    let message: serde_json::Value = serde_json::from_str(lines[m - 1]).unwrap();
    let edit = |key: &str, value: serde_json::Value| {
        let mut v = message.clone();
        v[key] = value;
        v.to_string()
    };
    let earlier_message_id = lines
        .iter()
        .find(|l| l.contains(r#""kind":"message""#))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .unwrap();
    let cases: Vec<(String, usize, &str)> = vec![
        (with_line(&text, m, "{not json"), m, "key must be a string"),
        (
            with_line(&text, m, &edit("role", "wizard".into())),
            m,
            "wizard",
        ),
        (
            with_line(&text, m, &edit("content", "nul \u{0} byte".into())),
            m,
            "NUL",
        ),
        (
            with_line(&text, m, &edit("created_at", "yesterday".into())),
            m,
            "",
        ),
        (
            with_line(
                &text,
                m,
                &edit("conversation_id", ConversationId::new().to_string().into()),
            ),
            m,
            "has not appeared",
        ),
        (
            with_line(&text, m, &edit("id", earlier_message_id)),
            m,
            "already exists",
        ),
        (with_line(&text, 3, r#"{"kind":"file","id":"x"}"#), 3, ""),
        (
            with_line(
                &text,
                1,
                r#"{"kind":"header","format":"silmari-store","version":9}"#,
            ),
            1,
            "version 9",
        ),
        (with_line(&text, 1, lines[2]), 1, "header"),
        (String::new(), 1, "empty"),
    ];
    for (file, line, says) in cases {
        let target = Store::open("sqlite://").unwrap();
        let err = target
            .import_jsonl(
                Cursor::new(file.as_bytes()),
                TransferOptions::default(),
                |_| {},
            )
            .unwrap_err();
        match &err {
            Error::Import { line: got, reason } => {
                assert_eq!(*got as usize, line, "{reason}");
                assert!(reason.contains(says), "{reason:?} should mention {says:?}");
            }
            other => panic!("expected Import at line {line}, got {other:?}"),
        }
        assert!(
            target.counts().unwrap().is_empty(),
            "nothing was written for line {line}"
        );
    }
}

/// Copies a store of many messages in a child process and reports its peak
/// memory. `SILMARI_COPY_MESSAGES` sets the size (CI: 100,000; the
/// documented check: 1,000,000).
#[test]
fn copying_a_large_store_keeps_memory_bounded() {
    const NAME: &str = "copying_a_large_store_keeps_memory_bounded";
    let messages: usize = std::env::var("SILMARI_COPY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    if common::in_child() {
        let dir = std::path::PathBuf::from(std::env::var(common::CHILD_VAR).unwrap());
        let source = sqlite_store_at(&dir.join("big.db"));
        let target = sqlite_store_at(&dir.join("copy.db"));
        let report = source
            .copy_to(&target, TransferOptions::default(), |_| {})
            .unwrap();
        assert_eq!(report.written.messages as usize, messages);
        common::report_peak_kib();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite_store(&dir, "big.db");
    let per = 1_000;
    for c in 0..messages.div_ceil(per) {
        let conv = source
            .conversations()
            .create(NewConversation::titled(format!("c{c}")))
            .unwrap();
        let batch = (0..per.min(messages - c * per))
            .map(|i| NewMessage::new(Role::User, format!("{i:0>200}")))
            .collect();
        source
            .conversations()
            .append_messages(conv.id, batch)
            .unwrap();
    }
    drop(source);
    let peak_kib = common::peak_kib_of_child(NAME, &dir.path().display().to_string());
    println!(
        "copied {messages} messages with peak memory {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 200 * 1024, "peak {peak_kib} KiB");
}

fn sqlite_store_at(path: &std::path::Path) -> Store {
    Store::open(&format!("sqlite:///{}", path.display())).unwrap()
}

/// Reading a 100,000-message conversation page by page keeps memory flat:
/// its peak is that of reading its first 40,000 (20 MB of text, past what
/// the page cache holds, so that the cache is full in both); loading it
/// whole (the control) is not, which shows the measure works.
#[test]
fn paging_a_long_conversation_keeps_memory_flat() {
    const NAME: &str = "paging_a_long_conversation_keeps_memory_flat";
    const MESSAGES: usize = 100_000;
    const FIRST: usize = 40_000;
    if common::in_child() {
        let arg = std::env::var(common::CHILD_VAR).unwrap();
        let (how, path) = arg.split_once(':').unwrap();
        let store = sqlite_store_at(std::path::Path::new(path));
        let id = store
            .conversations()
            .list(ConversationQuery::recent(1))
            .unwrap()
            .items[0]
            .id;
        let mut seen = 0;
        if let Some(most) = how.strip_prefix("pages") {
            let most: usize = most.parse().unwrap();
            let mut request = PageRequest::first(500);
            while seen < most {
                let page = store.conversations().messages(id, request.clone()).unwrap();
                seen += page.items.len();
                match page.next {
                    Some(cursor) => request = request.after(cursor),
                    None => break,
                }
            }
            assert_eq!(seen, most);
        } else {
            seen = store
                .conversations()
                .get(id)
                .unwrap()
                .unwrap()
                .messages
                .len();
            assert_eq!(seen, MESSAGES);
        }
        common::report_peak_kib();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.db");
    let store = sqlite_store_at(&path);
    let c = store
        .conversations()
        .create(NewConversation::titled("long"))
        .unwrap();
    for _ in 0..MESSAGES / 10_000 {
        let batch = (0..10_000)
            .map(|i| NewMessage::new(Role::User, format!("{i:0>500}")))
            .collect();
        store.conversations().append_messages(c.id, batch).unwrap();
    }
    drop(store);
    let first = common::peak_kib_of_child(NAME, &format!("pages{FIRST}:{}", path.display()));
    let paged = common::peak_kib_of_child(NAME, &format!("pages{MESSAGES}:{}", path.display()));
    let whole = common::peak_kib_of_child(NAME, &format!("whole:{}", path.display()));
    println!(
        "{MESSAGES} messages of 500 bytes: paging peaks at {} MiB ({} MiB for the first \
         {FIRST}), loading whole at {} MiB",
        paged / 1024,
        first / 1024,
        whole / 1024
    );
    // 60,000 messages more (30 MB of text) add at most a few MiB of
    // allocator slack.
    assert!(
        paged < first + 8 * 1024,
        "paging peaked at {paged} KiB, {first} KiB for the first {FIRST}"
    );
    assert!(
        whole > paged + 32 * 1024,
        "the control should load ~50 MiB more"
    );
}
