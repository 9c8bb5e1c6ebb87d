//! The chat model's schema (V4): data written before it becomes single-branch
//! trees, its down keeps every message, and `check()` finds a damaged tree.

use silmari_store::prelude::*;

use crate::{Db, applied, on_every_dialect};

/// `check()` finds a damaged tree: a parent in another conversation, two
/// messages on the current branch with one parent, a current branch broken
/// by a message off it.
#[test]
fn the_health_report_finds_a_broken_tree() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let chats = store.conversations();
        let a = chats.create(NewConversation::titled("a")).unwrap();
        let b = chats.create(NewConversation::titled("b")).unwrap();
        let a1 = chats
            .append_message(a.id, NewMessage::new(Role::User, "a1"))
            .unwrap();
        let a2 = chats
            .append_message(a.id, NewMessage::new(Role::Assistant, "a2"))
            .unwrap();
        chats
            .branch_from(a.id, Some(a1.id), NewMessage::new(Role::Assistant, "a2'"))
            .unwrap();
        let b1 = chats
            .append_message(b.id, NewMessage::new(Role::User, "b1"))
            .unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.tree_mismatches, 0, "{report:?}");
        assert!(report.is_healthy());

        // b1's parent is a message of another conversation.
        db.execute(&format!(
            "UPDATE messages SET parent_id = '{}' WHERE id = '{}'",
            a1.id, b1.id
        ));
        let report = store.check().unwrap();
        assert_eq!(report.tree_mismatches, 1);
        assert!(!report.is_healthy());
        db.execute(&format!(
            "UPDATE messages SET parent_id = NULL WHERE id = '{}'",
            b1.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 0);

        // Both replies of a1 on the current branch.
        let sqlite = matches!(db, Db::Sqlite { .. });
        let (on, off) = if sqlite {
            ("1", "0")
        } else {
            ("true", "false")
        };
        db.execute(&format!(
            "UPDATE messages SET on_path = {on} WHERE id = '{}'",
            a2.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 2);
        db.execute(&format!(
            "UPDATE messages SET on_path = {off} WHERE id = '{}'",
            a2.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 0);

        // The first message off the current branch below a reply on it.
        db.execute(&format!(
            "UPDATE messages SET on_path = {off} WHERE id = '{}'",
            a1.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 1);
    });
}

/// The ids of conversation `id`'s messages in position order, and its
/// stored `message_count`, read with SQL (any schema version).
fn stored_messages(db: &Db, id: ConversationId) -> (Vec<String>, String) {
    let ids = db
        .rows(&format!(
            "SELECT CAST(id AS TEXT) FROM messages WHERE conversation_id = '{id}' ORDER BY position"
        ))
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect();
    let count = db.rows(&format!(
        "SELECT CAST(message_count AS TEXT) FROM conversations WHERE id = '{id}'"
    ));
    (ids, count[0][0].clone())
}

/// Checks that conversation `id` is one branch of `ids`, in that order, the
/// last the current leaf, as `tree()`, `get()` and `list()` read it.
fn assert_one_branch(store: &Store, id: ConversationId, ids: &[MessageId]) {
    let tree = store.conversations().tree(id).unwrap().unwrap();
    let got: Vec<MessageId> = tree.messages.iter().map(|m| m.id).collect();
    assert_eq!(got, ids, "every message, in order");
    let parents: Vec<Option<MessageId>> = tree.messages.iter().map(|m| m.parent_id).collect();
    let chain: Vec<Option<MessageId>> = std::iter::once(None)
        .chain(ids.iter().copied().map(Some))
        .take(ids.len())
        .collect();
    assert_eq!(parents, chain, "each message below the one before");
    assert_eq!(
        tree.current_leaf,
        ids.last().copied(),
        "the last is the leaf"
    );
    assert_eq!(tree.conversation.message_count, ids.len() as u64);
    let current: Vec<MessageId> = store
        .conversations()
        .get(id)
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(current, ids, "get() returns them all");
}

/// A healthy report but for the migrations still to apply.
fn assert_healthy_at(store: &Store, pending: &[i64]) {
    let report = store.check().unwrap();
    assert_eq!(report.pending_migrations, pending, "{report:?}");
    assert_eq!(report.message_count_mismatches, 0, "{report:?}");
    assert!(
        report.foreign_key_violations.is_none_or(|n| n == 0),
        "{report:?}"
    );
    assert!(
        report
            .integrity_check
            .as_ref()
            .is_none_or(|lines| lines == &["ok".to_owned()]),
        "{report:?}"
    );
    assert!(report.misplaced_tables.is_empty(), "{report:?}");
    if pending.is_empty() {
        assert!(report.is_healthy(), "{report:?}");
    }
}

#[test]
fn conversations_written_at_version_3_become_single_branch_trees() {
    on_every_dialect(|db| {
        let store = db.builder().migrate_on_open(false).open().unwrap();
        store.migrations().up_to(3).unwrap();
        assert_eq!(applied(&store), [1, 2, 3]);

        // Written as a version-3 build wrote them: positions with gaps (a
        // message deleted), ids in no order (v4), each message created
        // before the one it follows, so only the position gives the order.
        let base = 1_700_000_000_000_000_i64;
        let mut written: Vec<(ConversationId, Vec<MessageId>)> = Vec::new();
        for (c, n) in [5_i64, 1, 0, 3].into_iter().enumerate() {
            let id = ConversationId::from_uuid(uuid::Uuid::new_v4());
            db.execute(&format!(
                "INSERT INTO conversations (id, title, created_at, updated_at, message_count, version) \
                 VALUES ('{id}', 'c{c} ''quoted''', {t}, {t}, {n}, 7)",
                t = db.timestamp(base + c as i64),
            ));
            let mut ids = Vec::new();
            for i in 0..n {
                let m = MessageId::from_uuid(uuid::Uuid::new_v4());
                db.execute(&format!(
                    "INSERT INTO messages (id, conversation_id, position, role, content, created_at, attachments) \
                     VALUES ('{m}', '{id}', {position}, 'user', 'm{i}', {t}, '[]')",
                    position = 10 * (i + 1) + if i >= 2 { 5 } else { 0 },
                    t = db.timestamp(base - i),
                ));
                ids.push(m);
            }
            written.push((id, ids));
        }
        let total: usize = written.iter().map(|(_, ids)| ids.len()).sum();
        assert_healthy_at(&store, &(4..=crate::common::LATEST).collect::<Vec<_>>());

        store.migrations().up().unwrap();
        assert_eq!(applied(&store), crate::common::versions());
        for (id, ids) in &written {
            assert_one_branch(&store, *id, ids);
            let tree = store.conversations().tree(*id).unwrap().unwrap();
            assert!(tree.conversation.archived_at.is_none());
            assert!(tree.conversation.metadata.is_empty());
            assert!(tree.messages.iter().all(|m| m.metadata.is_empty()));
        }
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts.conversations, counts.messages),
            (written.len() as u64, total as u64)
        );
        assert_eq!(
            store
                .conversations()
                .list(ConversationQuery::recent(10))
                .unwrap()
                .items
                .len(),
            written.len(),
            "none archived"
        );
        assert_healthy_at(&store, &[]);

        // The trees work: an append goes below the last message, a branch
        // from the first message becomes the current one.
        let (id, ids) = &written[0];
        let after = store
            .conversations()
            .append_message(*id, NewMessage::new(Role::Assistant, "after"))
            .unwrap();
        assert_eq!(after.parent_id, ids.last().copied());
        let branch = store
            .conversations()
            .branch_from(*id, Some(ids[0]), NewMessage::new(Role::User, "again"))
            .unwrap();
        let current = store.conversations().get(*id).unwrap().unwrap();
        assert_eq!(
            current.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            [ids[0], branch.id]
        );
        assert_eq!(
            store
                .conversations()
                .alternatives(branch.id)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>(),
            [ids[1], branch.id]
        );
        assert_healthy_at(&store, &[]);
    });
}

#[test]
fn down_and_up_again_keeps_every_message_of_every_branch() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let chats = store.conversations();
        let user = |text: &str| NewMessage::new(Role::User, text);
        let mut pinned = Metadata::new();
        pinned.insert("pinned".into(), true.into());

        // a → b → c, a → d → e, and f, a second first message; the current
        // branch switched back to c, so the leaf is not the newest message.
        let branched = chats
            .create(NewConversation {
                title: "branched".into(),
                metadata: pinned.clone(),
                ..Default::default()
            })
            .unwrap();
        let a = chats.append_message(branched.id, user("a")).unwrap();
        let b = chats.append_message(branched.id, user("b")).unwrap();
        let c = chats.append_message(branched.id, user("c")).unwrap();
        let d = chats
            .branch_from(
                branched.id,
                Some(a.id),
                user("d").with_metadata(pinned.clone()),
            )
            .unwrap();
        let e = chats.append_message(branched.id, user("e")).unwrap();
        let f = chats.branch_from(branched.id, None, user("f")).unwrap();
        chats.switch_branch(b.id).unwrap();
        assert_eq!(
            chats.tree(branched.id).unwrap().unwrap().current_leaf,
            Some(c.id)
        );

        let archived = chats.create(NewConversation::titled("archived")).unwrap();
        let g = chats.append_message(archived.id, user("g")).unwrap();
        let h = chats
            .append_message(archived.id, user("h").with_metadata(pinned.clone()))
            .unwrap();
        chats.archive(archived.id).unwrap();

        // A message deleted from the middle: a gap in the positions.
        let spliced = chats.create(NewConversation::titled("spliced")).unwrap();
        let made = chats
            .append_messages(spliced.id, vec![user("i"), user("j"), user("k")])
            .unwrap();
        chats.delete_message(made[1].id).unwrap();

        let empty = chats.create(NewConversation::titled("empty")).unwrap();
        let created = [
            (branched.id, vec![a.id, b.id, c.id, d.id, e.id, f.id]),
            (archived.id, vec![g.id, h.id]),
            (spliced.id, vec![made[0].id, made[2].id]),
            (empty.id, vec![]),
        ];
        let total = 10;
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &[]);

        store.migrations().down_to(3).unwrap();
        assert_eq!(applied(&store), [1, 2, 3]);
        for (id, ids) in &created {
            let (stored, count) = stored_messages(db, *id);
            let want: Vec<String> = ids.iter().map(ToString::to_string).collect();
            assert_eq!(stored, want, "every message kept, in creation order");
            assert_eq!(count, ids.len().to_string(), "message_count kept");
        }
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &(4..=crate::common::LATEST).collect::<Vec<_>>());

        store.migrations().up().unwrap();
        assert_eq!(applied(&store), crate::common::versions());
        for (id, ids) in &created {
            assert_one_branch(&store, *id, ids);
            // What the down dropped: archive and metadata.
            let tree = chats.tree(*id).unwrap().unwrap();
            assert!(tree.conversation.archived_at.is_none());
            assert!(tree.conversation.metadata.is_empty());
            assert!(tree.messages.iter().all(|m| m.metadata.is_empty()));
        }
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &[]);
    });
}
