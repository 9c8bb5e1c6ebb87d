//! Merges into a target that holds part of a branched conversation, and
//! hostile trees in an import.

use std::io::Cursor;

use silmari_store::TransferOptions;
use silmari_store::prelude::*;

use crate::{assert_same_trees, branched, trees, with_line};

/// The id of `branched()`'s conversation of seven messages.
fn branched_id(source: &Store) -> ConversationId {
    trees(source)
        .into_iter()
        .find(|t| t.conversation.title == "branched")
        .unwrap()
        .conversation
        .id
}

/// `source` exported as JSON Lines.
fn exported(source: &Store) -> String {
    let mut out = Vec::new();
    source.export_jsonl(&mut out, |_| {}).unwrap();
    String::from_utf8(out).unwrap()
}

/// Deletes the newest messages of conversation `id` in `store` (by
/// position: a child always comes after its parent) until `keep` are left:
/// what a copy cut after its first `keep` messages of it left behind.
fn keep_oldest(store: &Store, id: ConversationId, keep: usize) {
    let tree = store.conversations().tree(id).unwrap().unwrap();
    for m in tree.messages.iter().skip(keep).rev() {
        assert_eq!(store.conversations().delete_branch(m.id).unwrap(), 1);
    }
}

#[test]
fn a_merge_completes_a_partly_copied_branched_conversation() {
    let source = branched();
    let branched_id = branched_id(&source);
    let merge = TransferOptions {
        merge: true,
        batch_size: 2,
    };
    let total = source.counts().unwrap().messages;
    for keep in 0..=7 {
        // The target has the conversation and its first `keep` messages,
        // with their parents, its current leaf wherever that left it.
        let target = Store::open("sqlite://").unwrap();
        source
            .copy_to(&target, TransferOptions::default(), |_| {})
            .unwrap();
        keep_oldest(&target, branched_id, keep);
        let report = source.copy_to(&target, merge, |_| {}).unwrap();
        assert_eq!(report.written.messages, 7 - keep as u64, "keep {keep}");
        assert_eq!(
            report.written.messages + report.skipped.messages,
            total,
            "keep {keep}"
        );
        // The row's updated_at moved when the messages were deleted: compare
        // everything else.
        let (got, want) = (trees(&target), trees(&source));
        assert_eq!(got.len(), want.len());
        for (mut got, want) in got.into_iter().zip(want) {
            got.conversation.updated_at = want.conversation.updated_at;
            assert_eq!(got, want, "keep {keep}");
        }
        assert!(target.check().unwrap().is_healthy());
    }

    // Cut as an interrupted copy leaves it: the rows and the first messages
    // of the tree, no current branch yet (an import of the file up to there).
    let text = exported(&source);
    let at = text
        .lines()
        .position(|l| l.contains(&format!(r#""id":"{branched_id}""#)))
        .unwrap();
    for keep in 0..=7 {
        let mut lines: Vec<String> = text
            .lines()
            .take(at + 1 + keep)
            .map(str::to_owned)
            .collect();
        let mut record: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
        record["current_leaf"] = serde_json::Value::Null;
        lines[at] = record.to_string();
        let target = Store::open("sqlite://").unwrap();
        target
            .import_jsonl(
                Cursor::new(lines.join("\n")),
                TransferOptions::default(),
                |_| {},
            )
            .unwrap();
        let report = source.copy_to(&target, merge, |_| {}).unwrap();
        assert_eq!(
            report.written.messages + report.skipped.messages,
            total,
            "keep {keep}"
        );
        assert_same_trees(&target, &source);
    }
}

/// An import with `merge` completes a conversation the target holds part
/// of (an import cut short, say): it adds the messages the target lacks,
/// with their parents, and takes the file's current branch; a file of
/// version 1 appends them.
#[test]
fn an_import_with_merge_adds_the_messages_a_conversation_lacks() {
    let source = branched();
    let branched_id = branched_id(&source);
    let text = exported(&source);
    let at = text
        .lines()
        .position(|l| l.contains(&format!(r#""id":"{branched_id}""#)))
        .unwrap();
    let total = source.counts().unwrap().messages;
    let merge = TransferOptions {
        merge: true,
        batch_size: 2,
    };
    for keep in 0..=7 {
        let cut: Vec<&str> = text.lines().take(at + 1 + keep).collect();
        for target in [
            Store::open("memory://").unwrap(),
            Store::open("sqlite://").unwrap(),
        ] {
            target
                .import_jsonl(
                    Cursor::new(cut.join("\n")),
                    TransferOptions::default(),
                    |_| {},
                )
                .unwrap();
            let before = target
                .conversations()
                .get(branched_id)
                .unwrap()
                .unwrap()
                .version;
            let report = target
                .import_jsonl(Cursor::new(text.as_bytes()), merge, |_| {})
                .unwrap();
            assert_eq!(report.written.messages, 7 - keep as u64, "keep {keep}");
            assert_eq!(
                report.written.messages + report.skipped.messages,
                total,
                "keep {keep}"
            );
            assert_same_trees(&target, &source);
            let after = target
                .conversations()
                .get(branched_id)
                .unwrap()
                .unwrap()
                .version;
            assert!(
                keep == 7 || after > before,
                "keep {keep}: the version moved ({before} → {after})"
            );
        }
    }
}

#[test]
fn hostile_trees_are_refused_naming_their_line() {
    let source = branched();
    let text = exported(&source);
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kind = |n: usize| records[n]["kind"].as_str().unwrap().to_owned();
    // Line numbers (1-based) of the conversation with seven messages and of
    // messages in it that have a parent, and of a message elsewhere.
    let conversation = (0..records.len())
        .find(|&n| kind(n) == "conversation" && records[n]["title"] == "branched")
        .unwrap();
    let own: Vec<usize> = (conversation + 1..records.len())
        .take_while(|&n| kind(n) == "message")
        .collect();
    assert_eq!(own.len(), 7);
    let child = *own
        .iter()
        .find(|&&n| !records[n]["parent_id"].is_null())
        .unwrap();
    let later = *own.last().unwrap();
    let elsewhere = (0..records.len())
        .find(|&n| kind(n) == "message" && !own.contains(&n))
        .unwrap();
    let set = |n: usize, key: &str, value: serde_json::Value| {
        let mut v = records[n].clone();
        v[key] = value;
        with_line(&text, n + 1, &v.to_string())
    };
    let without = |n: usize, key: &str| {
        let mut v = records[n].clone();
        v.as_object_mut().unwrap().remove(key);
        with_line(&text, n + 1, &v.to_string())
    };
    let mut on_branch = own
        .iter()
        .copied()
        .filter(|&n| records[n]["on_current_branch"] == true);
    let (first_on_branch, next_on_branch) = (on_branch.next().unwrap(), on_branch.next().unwrap());
    let unknown = serde_json::Value::from(MessageId::new().to_string());
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "a parent that is no message",
            set(child, "parent_id", unknown.clone()),
            child,
            "parent_id",
        ),
        (
            "a parent in another conversation",
            set(child, "parent_id", records[elsewhere]["id"].clone()),
            child,
            "parent_id",
        ),
        (
            "a parent that comes later in the file",
            set(child, "parent_id", records[later]["id"].clone()),
            child,
            "parent_id",
        ),
        (
            "a message its own parent",
            set(child, "parent_id", records[child]["id"].clone()),
            child,
            "parent_id",
        ),
        (
            "a current branch that does not start at a first message",
            set(first_on_branch, "on_current_branch", false.into()),
            next_on_branch,
            "on_current_branch",
        ),
        (
            "a message that does not say whether it is on the current branch",
            without(child, "on_current_branch"),
            child,
            "on_current_branch",
        ),
    ];
    for (what, file, index, says) in cases {
        for target in [
            Store::open("memory://").unwrap(),
            Store::open("sqlite://").unwrap(),
        ] {
            let err = target
                .import_jsonl(
                    Cursor::new(file.as_bytes()),
                    TransferOptions::default(),
                    |_| {},
                )
                .unwrap_err();
            match &err {
                Error::Import { line, reason } => {
                    assert_eq!(*line as usize, index + 1, "{what}: {reason}");
                    assert!(
                        reason.contains(says),
                        "{what}: {reason:?} should say {says:?}"
                    );
                }
                other => panic!("{what}: expected Import, got {other:?}"),
            }
            assert!(
                target.counts().unwrap().is_empty(),
                "{what}: nothing written"
            );
        }
    }
}
/// A merge into a target that holds a conversation already, complete but
/// on another branch (the user went back to an earlier reply there): what
/// `get()` returns may only change with the version, or a copy read before
/// the merge could be written over what the merge made current.
#[test]
fn a_merge_that_moves_a_current_branch_moves_the_version() {
    let source = Store::open("memory://").unwrap();
    let chats = source.conversations();
    let c = chats.create(NewConversation::titled("c")).unwrap();
    let a = chats
        .append_message(c.id, NewMessage::new(Role::User, "a"))
        .unwrap();
    let b = chats
        .append_message(c.id, NewMessage::new(Role::Assistant, "b"))
        .unwrap();
    chats
        .branch_from(c.id, Some(a.id), NewMessage::new(Role::Assistant, "d"))
        .unwrap();
    let mut wrong = Vec::new();
    for target in [
        Store::open("memory://").unwrap(),
        Store::open("sqlite://").unwrap(),
    ] {
        source
            .copy_to(&target, TransferOptions::default(), |_| {})
            .unwrap();
        target.conversations().switch_branch(b.id).unwrap();
        let before = target.conversations().get(c.id).unwrap().unwrap();
        let merge = TransferOptions {
            merge: true,
            ..TransferOptions::default()
        };
        let report = source.copy_to(&target, merge, |_| {}).unwrap();
        assert_eq!(report.written, silmari_store::Counts::default());
        let after = target.conversations().get(c.id).unwrap().unwrap();
        if after.messages != before.messages && after.version <= before.version {
            wrong.push(format!(
                "{:?}: the merge made {:?} current instead of {:?}, at the same version {}",
                target.backend(),
                after
                    .messages
                    .iter()
                    .map(|m| &m.content)
                    .collect::<Vec<_>>(),
                before
                    .messages
                    .iter()
                    .map(|m| &m.content)
                    .collect::<Vec<_>>(),
                after.version
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// What the version check of `update` is for, across a merge: a copy read
/// before the merge never deletes a message the merge made current.
#[test]
fn a_copy_read_before_a_merge_cannot_delete_what_the_merge_made_current() {
    let source = Store::open("memory://").unwrap();
    let chats = source.conversations();
    let conversation = chats.create(NewConversation::titled("c")).unwrap();
    let made = chats
        .append_messages(
            conversation.id,
            vec![
                NewMessage::new(Role::User, "a"),
                NewMessage::new(Role::Assistant, "b"),
                NewMessage::new(Role::User, "c"),
            ],
        )
        .unwrap();
    let (b, c) = (&made[1], &made[2]);
    let mut wrong = Vec::new();
    for target in [
        Store::open("memory://").unwrap(),
        Store::open("sqlite://").unwrap(),
    ] {
        source
            .copy_to(&target, TransferOptions::default(), |_| {})
            .unwrap();
        // In the target the user tried another reply after b and deleted
        // it: the current branch ends at b, c is still there below it.
        let chats = target.conversations();
        let x = chats
            .branch_from(
                conversation.id,
                Some(b.id),
                NewMessage::new(Role::User, "x"),
            )
            .unwrap();
        chats.delete_message(x.id).unwrap();
        let mut copy = chats.get(conversation.id).unwrap().unwrap();
        assert_eq!(copy.messages.last().map(|m| m.id), Some(b.id));

        let merge = TransferOptions {
            merge: true,
            ..TransferOptions::default()
        };
        source.copy_to(&target, merge, |_| {}).unwrap();
        copy.push_message(NewMessage::new(Role::User, "e"));
        let written = chats.update(&copy);
        let tree = chats.tree(conversation.id).unwrap().unwrap();
        if !tree.messages.iter().any(|m| m.id == c.id) {
            wrong.push(format!(
                "{:?}: update of a copy read before the merge ({:?}) deleted c, which the \
                 merge had made current without moving the version",
                target.backend(),
                written.map(|w| w.version)
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
