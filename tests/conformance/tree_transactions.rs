//! The tree, archive and metadata writes inside a transaction: rolled back
//! with it, each alone and all together.

use silmari_store::prelude::*;
use silmari_store::{ConversationTree, Transaction};

use crate::support::{branch, contents, conversation, get, ids, say, tree};

/// Everything a rollback must restore: every record, the whole tree of each
/// conversation, the archived list.
type Snapshot = (
    (Vec<FileMetadata>, Vec<Conversation>),
    Vec<ConversationTree>,
    Vec<ConversationId>,
);

fn snapshot(store: &Store, conversations: &[ConversationId]) -> Snapshot {
    let trees = conversations.iter().map(|c| tree(store, *c)).collect();
    let archived = store
        .conversations()
        .list(ConversationQuery::recent(100).only_archived())
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect();
    (contents(store), trees, archived)
}

fn metadata(key: &str) -> Metadata {
    let mut m = Metadata::new();
    m.insert(
        key.into(),
        serde_json::json!({"model": "x", "tokens": [1, 2, 3]}),
    );
    m
}

type Op<'a> = Box<dyn Fn(&Transaction<'_>) -> silmari_store::Result<()> + 'a>;

pub fn tree_writes_roll_back_with_their_transaction(store: &Store) {
    let c = conversation(store, "tx tree");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let f1 = say(store, c, Role::User, "f1");
    let r2 = branch(store, c, Some(&p), "r2");
    let archived = conversation(store, "archived");
    say(store, archived, Role::User, "kept");
    store.conversations().archive(archived).unwrap();
    let both = [c, archived];
    let before = snapshot(store, &both);
    assert_eq!(ids(&get(store, c).messages), [p.id, r2.id]);

    // Each write, checked to have happened inside, then the transaction fails.
    let ops: Vec<(&str, Op<'_>)> = vec![
        (
            "edit_message",
            Box::new(|tx| {
                let edit = MessageEdit::new().content("edited").metadata(metadata("m"));
                let m = tx.conversations().edit_message(r2.id, edit)?;
                assert_eq!(tx.conversations().get(c)?.unwrap().messages[1], m);
                Ok(())
            }),
        ),
        (
            "branch_from",
            Box::new(|tx| {
                let input = NewMessage::new(Role::Assistant, "r3").with_metadata(metadata("b"));
                let r3 = tx.conversations().branch_from(c, Some(p.id), input)?;
                assert_eq!(
                    ids(&tx.conversations().get(c)?.unwrap().messages),
                    [p.id, r3.id]
                );
                Ok(())
            }),
        ),
        (
            "switch_branch",
            Box::new(|tx| {
                let switched = tx.conversations().switch_branch(r1.id)?;
                assert_eq!(ids(&switched.messages), [p.id, r1.id, f1.id]);
                let t = tx.conversations().tree(c)?.unwrap();
                assert_eq!(t.current_leaf, Some(f1.id));
                Ok(())
            }),
        ),
        (
            "archive",
            Box::new(|tx| {
                assert!(tx.conversations().archive(c)?.archived_at.is_some());
                let listed = tx
                    .conversations()
                    .list(ConversationQuery::recent(100).only_archived())?;
                assert_eq!(listed.items.len(), 2);
                Ok(())
            }),
        ),
        (
            "unarchive",
            Box::new(|tx| {
                assert!(
                    tx.conversations()
                        .unarchive(archived)?
                        .archived_at
                        .is_none()
                );
                Ok(())
            }),
        ),
        (
            "delete_branch",
            Box::new(|tx| {
                assert_eq!(tx.conversations().delete_branch(r1.id)?, 2);
                assert_eq!(tx.conversations().tree(c)?.unwrap().messages.len(), 2);
                Ok(())
            }),
        ),
        (
            "delete_message",
            Box::new(|tx| {
                assert!(tx.conversations().delete_message(p.id)?);
                let t = tx.conversations().tree(c)?.unwrap();
                assert_eq!(t.children(None).count(), 2, "r1 and r2 moved up");
                Ok(())
            }),
        ),
        (
            "edit",
            Box::new(|tx| {
                let edit = ConversationEdit::new()
                    .title("renamed")
                    .metadata(metadata("c"));
                assert_eq!(tx.conversations().edit(c, edit)?.title, "renamed");
                Ok(())
            }),
        ),
        (
            "update",
            Box::new(|tx| {
                let mut copy = tx.conversations().get(c)?.unwrap();
                copy.messages.remove(0);
                copy.metadata = metadata("u");
                tx.conversations().update(&copy)?;
                let t = tx.conversations().tree(c)?.unwrap();
                assert_eq!(t.messages.len(), 3);
                Ok(())
            }),
        ),
    ];
    for (name, op) in &ops {
        let outcome: Result<(), Error> = store.transaction(|tx| {
            op(tx)?;
            Err(Error::InTransaction)
        });
        assert!(
            matches!(outcome, Err(Error::InTransaction)),
            "{name}: {outcome:?}"
        );
        assert_eq!(snapshot(store, &both), before, "{name} rolled back");
    }

    // All of them in one transaction.
    let outcome: Result<(), Error> = store.transaction(|tx| {
        let conversations = tx.conversations();
        conversations.edit_message(r2.id, MessageEdit::new().metadata(metadata("m")))?;
        let r3 = conversations.branch_from(c, Some(p.id), NewMessage::new(Role::User, "r3"))?;
        conversations.switch_branch(r1.id)?;
        conversations.archive(c)?;
        conversations.unarchive(archived)?;
        assert_eq!(conversations.delete_branch(r1.id)?, 2);
        conversations.delete_message(p.id)?;
        conversations.edit(c, ConversationEdit::new().title("renamed"))?;
        let mut copy = conversations.get(c)?.unwrap();
        copy.messages
            .push(Message::new(c, NewMessage::new(Role::User, "new")));
        conversations.update(&copy)?;
        let t = conversations.tree(c)?.unwrap();
        assert_eq!(ids(&t.messages)[..2], [r2.id, r3.id]);
        assert_eq!(t.children(None).count(), 3, "r2, r3 and the new one");
        Err(Error::InTransaction)
    });
    assert!(matches!(outcome, Err(Error::InTransaction)), "{outcome:?}");
    assert_eq!(snapshot(store, &both), before, "all rolled back");

    // And committed, they stay.
    store
        .transaction(|tx| -> silmari_store::Result<()> {
            tx.conversations().switch_branch(r1.id)?;
            tx.conversations().archive(c)?;
            Ok(())
        })
        .unwrap();
    let stored = get(store, c);
    assert_eq!(ids(&stored.messages), [p.id, r1.id, f1.id]);
    assert!(stored.archived_at.is_some());
}
