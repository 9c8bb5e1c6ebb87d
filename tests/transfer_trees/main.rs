//! Branches, current branches, archive and metadata across copy, JSON Lines
//! export and import, and merges.
#![cfg(feature = "sqlite")]

#[path = "../common/mod.rs"]
mod common;
mod merges;

use std::io::Cursor;

use silmari_store::prelude::*;
use silmari_store::{ConversationTree, TransferOptions};
use time::macros::datetime;

use common::contents;

fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(&common::sqlite_url(&dir.path().join(name))).unwrap()
}

/// Replaces line `n` (1-based) of `text`.
fn with_line(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n - 1] = line;
    lines.join("\n") + "\n"
}

/// Every conversation's whole tree, by id, versions left out (each store
/// counts its own writes).
fn trees(store: &Store) -> Vec<ConversationTree> {
    let mut trees: Vec<ConversationTree> = store
        .conversations()
        .list_all()
        .unwrap()
        .into_iter()
        .map(|c| {
            let mut tree = store.conversations().tree(c.id).unwrap().unwrap();
            tree.conversation.version = 0;
            tree
        })
        .collect();
    trees.sort_by_key(|t| t.conversation.id);
    trees
}

/// Checks `target` holds what `source` does, tree for tree, and is healthy.
fn assert_same_trees(target: &Store, source: &Store) {
    assert_eq!(trees(target), trees(source), "every tree and current leaf");
    assert_eq!(contents(target), contents(source), "list_all and files");
    assert!(target.check().unwrap().is_healthy());
}

fn meta(key: &str, value: serde_json::Value) -> Metadata {
    let mut m = Metadata::new();
    m.insert(key.to_owned(), value);
    m
}

/// A store holding branches: several alternatives at one message and at
/// the root, a current branch switched so that its leaf is not the newest
/// message, a conversation whose current branch is empty, archived
/// conversations (one branched), metadata on conversations and messages,
/// edited and streamed messages.
fn branched() -> Store {
    let store = Store::open("memory://").unwrap();
    let chats = store.conversations();
    let user = |text: &str| NewMessage::new(Role::User, text);
    let reply = |text: &str| NewMessage::new(Role::Assistant, text);
    let file = store
        .files()
        .create(NewFile {
            filename: "plot.md".into(),
            content_type: "text/markdown".into(),
            size: 42,
            ..Default::default()
        })
        .unwrap();

    // a → b → c; a → d; a → e → f; g, a second first message. Current: a → d.
    let c1 = chats
        .create(NewConversation {
            title: "branched".into(),
            // Numbers at the edges of what metadata keeps exactly.
            metadata: serde_json::json!({
                "system_prompt": "be brief",
                "max": u64::MAX,
                "min": i64::MIN,
                "tenth": 0.1,
                "huge": 1.5e300,
                "négatif": -0.0,
                "deep": {"a": [{"b": [null, true, "ü\n\"q\""]}]},
            })
            .as_object()
            .unwrap()
            .clone(),
            ..Default::default()
        })
        .unwrap();
    let a = chats
        .append_message(
            c1.id,
            user("a").with_attachments(vec![Attachment::from_file(&file)]),
        )
        .unwrap();
    let b = chats
        .append_message(c1.id, reply("b").with_metadata(meta("model", "m-1".into())))
        .unwrap();
    chats.append_message(c1.id, user("c")).unwrap();
    let d = chats
        .branch_from(
            c1.id,
            Some(a.id),
            reply("d").with_metadata(meta("tokens", 17.into())),
        )
        .unwrap();
    chats.branch_from(c1.id, Some(a.id), reply("e")).unwrap();
    let f = chats.append_message(c1.id, user("f")).unwrap();
    chats
        .branch_from(
            c1.id,
            None,
            user("g").with_metadata(meta("pinned", true.into())),
        )
        .unwrap();
    chats.switch_branch(d.id).unwrap();
    chats
        .edit_message(b.id, MessageEdit::new().content("b, edited"))
        .unwrap();
    chats.append_to_message(f.id, " and more").unwrap();

    // Archived and branched: x → y, x → z, current x → y.
    let c2 = chats
        .create(NewConversation {
            title: "archived, branched".into(),
            metadata: meta("nested", serde_json::json!({"a": [1, 2.5, null, "s"]})),
            ..Default::default()
        })
        .unwrap();
    let x = chats.append_message(c2.id, user("x")).unwrap();
    let y = chats.append_message(c2.id, reply("y")).unwrap();
    chats.branch_from(c2.id, Some(x.id), reply("z")).unwrap();
    chats.switch_branch(y.id).unwrap();
    chats.archive(c2.id).unwrap();

    // Archived, one branch.
    let c3 = chats.create(NewConversation::titled("archived")).unwrap();
    chats
        .append_messages(c3.id, vec![user("p"), reply("q")])
        .unwrap();
    chats.archive(c3.id).unwrap();

    // No current branch: the leaf, a first message, deleted; an older first message stays.
    let c4 = chats
        .create(NewConversation::titled("no current branch"))
        .unwrap();
    chats.append_message(c4.id, user("kept")).unwrap();
    let gone = chats.branch_from(c4.id, None, user("gone")).unwrap();
    chats.delete_message(gone.id).unwrap();
    assert_eq!(chats.tree(c4.id).unwrap().unwrap().current_leaf, None);

    chats
        .create(NewConversation {
            title: "empty".into(),
            metadata: meta("k", "v".into()),
            ..Default::default()
        })
        .unwrap();

    let tree = chats.tree(c1.id).unwrap().unwrap();
    assert_eq!(tree.messages.len(), 7);
    assert_eq!(tree.current_leaf, Some(d.id), "not the newest message");
    assert_eq!(chats.alternatives(b.id).unwrap().len(), 3);
    store
}

#[test]
fn export_and_import_round_trip_branches_archive_and_metadata() {
    let source = branched();
    let mut exported = Vec::new();
    let report = source.export_jsonl(&mut exported, |_| {}).unwrap();
    assert_eq!(report.written.messages, 7 + 3 + 2 + 1);
    let dir = tempfile::tempdir().unwrap();
    for target in [
        Store::open("memory://").unwrap(),
        sqlite_store(&dir, "branched.db"),
    ] {
        let options = TransferOptions {
            batch_size: 2, // a tree cut across batches
            ..TransferOptions::default()
        };
        let imported = target
            .import_jsonl(Cursor::new(&exported), options, |_| {})
            .unwrap();
        assert_eq!(imported.written, report.written);
        assert_same_trees(&target, &source);
        let mut again = Vec::new();
        target.export_jsonl(&mut again, |_| {}).unwrap();
        assert_eq!(again, exported, "export → import → export is the same file");
        assert_eq!(
            target
                .conversations()
                .list(ConversationQuery::recent(10).only_archived())
                .unwrap()
                .items
                .len(),
            2
        );
    }
}

#[test]
fn a_version_1_file_imports_each_conversation_as_one_branch() {
    let c1 = ConversationId::new();
    let c2 = ConversationId::new();
    let c3 = ConversationId::new();
    // Messages in file order; ids and times in no order, so only the file gives it.
    let m: Vec<MessageId> = (0..6).map(|_| MessageId::new()).collect();
    let file = [
        r#"{"kind":"header","format":"silmari-store","version":1}"#.to_owned(),
        format!(
            r#"{{"kind":"conversation","id":"{c1}","title":"one","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00.5Z"}}"#
        ),
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c1}","role":"user","content":"first","created_at":"2024-01-01T10:00:00Z","attachments":[]}}"#,
            m[3]
        ),
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c1}","role":"assistant","content":"second","created_at":"2024-01-01T09:00:00Z","attachments":[]}}"#,
            m[0]
        ),
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c1}","role":"user","content":"third","created_at":"2024-01-01T08:00:00Z"}}"#,
            m[4]
        ),
        format!(
            r#"{{"kind":"conversation","id":"{c2}","title":"two","created_at":"2023-06-01T00:00:00Z","updated_at":"2023-06-01T00:00:00Z"}}"#
        ),
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c2}","role":"tool","content":"only","created_at":"2023-06-01T00:00:00Z","attachments":[]}}"#,
            m[1]
        ),
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c2}","role":"user","content":"last","created_at":"2023-06-01T00:00:00Z","attachments":[]}}"#,
            m[2]
        ),
        // A message of the first conversation after the second's: version 1
        // did not require a conversation's messages to follow it.
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{c1}","role":"assistant","content":"fourth","created_at":"2024-01-01T07:00:00Z","attachments":[]}}"#,
            m[5]
        ),
        format!(
            r#"{{"kind":"conversation","id":"{c3}","title":"empty","created_at":"2023-01-01T00:00:00Z","updated_at":"2023-01-01T00:00:00Z"}}"#
        ),
    ]
    .join("\n");
    let expected = [
        (c1, vec![m[3], m[0], m[4], m[5]]),
        (c2, vec![m[1], m[2]]),
        (c3, vec![]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for target in [
        Store::open("memory://").unwrap(),
        sqlite_store(&dir, "v1.db"),
    ] {
        let report = target
            .import_jsonl(Cursor::new(&file), TransferOptions::default(), |_| {})
            .unwrap();
        assert_eq!(
            (report.written.conversations, report.written.messages),
            (3, 6)
        );
        for (id, ids) in &expected {
            let tree = target.conversations().tree(*id).unwrap().unwrap();
            assert_eq!(tree.messages.iter().map(|m| m.id).collect::<Vec<_>>(), *ids);
            let parents: Vec<_> = tree.messages.iter().map(|m| m.parent_id).collect();
            let chain: Vec<_> = std::iter::once(None)
                .chain(ids.iter().copied().map(Some))
                .take(ids.len())
                .collect();
            assert_eq!(parents, chain, "one branch, in file order");
            assert_eq!(tree.current_leaf, ids.last().copied());
            assert!(tree.conversation.archived_at.is_none());
            assert!(tree.conversation.metadata.is_empty());
            assert!(tree.messages.iter().all(|m| m.metadata.is_empty()));
            let got = target.conversations().get(*id).unwrap().unwrap();
            assert_eq!(
                got.messages, tree.messages,
                "all of it is the current branch"
            );
        }
        let one = target.conversations().get(c1).unwrap().unwrap();
        assert_eq!(
            one.updated_at,
            datetime!(2024-01-02 00:00:00.5 UTC),
            "updated_at as in the file"
        );
        assert_eq!(one.messages[1].role, Role::Assistant);
        assert!(target.check().unwrap().is_healthy());
    }
}

#[test]
fn copy_keeps_trees_leaves_archive_and_metadata() {
    let source = branched();
    let dir = tempfile::tempdir().unwrap();
    let options = TransferOptions {
        batch_size: 2,
        ..TransferOptions::default()
    };
    let sqlite = sqlite_store(&dir, "trees.db");
    let report = source.copy_to(&sqlite, options, |_| {}).unwrap();
    assert_eq!(report.written.messages, 13);
    assert_same_trees(&sqlite, &source);

    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut last = sqlite;
    #[cfg(feature = "postgres")]
    let _database;
    #[cfg(feature = "postgres")]
    if let Some(database) = common::pg::Database::create() {
        let postgres = Store::open(&database.url).unwrap();
        silmari_store::copy(&last, &postgres, options, |_| {}).unwrap();
        assert_same_trees(&postgres, &source);
        last = postgres;
        _database = database;
    }
    let back = Store::open("memory://").unwrap();
    last.copy_to(&back, options, |_| {}).unwrap();
    assert_same_trees(&back, &source);
}
