//! Conversation versions: every write moves a conversation's version
//! forward, and `update` refuses a copy read before the last write, so a
//! stale copy can never delete or overwrite what was acknowledged since.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use silmari_store::prelude::*;
use silmari_store::{ConversationOrder, Entity};

use crate::support::StopOnDrop;

fn version_of(store: &Store, id: ConversationId) -> u64 {
    store.conversations().get(id).unwrap().unwrap().version
}

pub fn version_moves_forward_on_every_write(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("v"))
        .unwrap();
    assert_eq!(c.version, 1, "a new conversation is at version 1");
    assert_eq!(version_of(store, c.id), 1);

    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "one"))
        .unwrap();
    assert_eq!(version_of(store, c.id), 2, "an append moves it");
    store
        .conversations()
        .append_messages(
            c.id,
            vec![
                NewMessage::new(Role::User, "two"),
                NewMessage::new(Role::Assistant, "three"),
            ],
        )
        .unwrap();
    assert_eq!(version_of(store, c.id), 3, "a batch append moves it once");

    let mut fresh = store.conversations().get(c.id).unwrap().unwrap();
    fresh.title = "renamed".into();
    let stored = store.conversations().update(&fresh).unwrap();
    assert_eq!(stored.version, 4, "update returns the version it stored");
    assert_eq!(version_of(store, c.id), 4);

    // Lists carry the same version.
    let listed = store
        .conversations()
        .list(ConversationQuery::recent(10))
        .unwrap();
    let summary = listed.items.iter().find(|s| s.id == c.id).unwrap();
    assert_eq!(summary.version, 4);
    let all = store.conversations().list_all().unwrap();
    assert_eq!(all.iter().find(|x| x.id == c.id).unwrap().version, 4);
    let by_created = store
        .conversations()
        .list(ConversationQuery {
            order: ConversationOrder::CreatedAt,
            ..ConversationQuery::recent(10)
        })
        .unwrap();
    assert_eq!(
        by_created
            .items
            .iter()
            .find(|s| s.id == c.id)
            .unwrap()
            .version,
        4
    );

    // A failed write moves nothing.
    let err = store
        .conversations()
        .append_message(
            c.id,
            NewMessage {
                id: Some(stored.messages[0].id),
                ..NewMessage::new(Role::User, "duplicate id")
            },
        )
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(version_of(store, c.id), 4, "a refused append moves nothing");
}

/// The reproduction: a copy read before an append, renamed and
/// written back, used to delete the appended message.
pub fn version_stale_update_is_refused_and_writes_nothing(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("draft"))
        .unwrap();
    let mut copy = store.conversations().get(c.id).unwrap().unwrap();
    let acked = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "acked"))
        .unwrap();
    copy.title = "renamed".into();
    let err = store.conversations().update(&copy).unwrap_err();
    assert!(
        matches!(&err, Error::Stale { entity: Entity::Conversation, id } if *id == c.id.to_string()),
        "{err:?}"
    );
    assert!(err.is_stale());

    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.title, "draft", "nothing of the stale write landed");
    assert_eq!(
        stored.messages,
        vec![acked.clone()],
        "the acked message stays"
    );
    assert_eq!(stored.version, 2);

    // Read again, re-apply, retry: the documented pattern.
    let mut fresh = stored;
    fresh.title = "renamed".into();
    let renamed = store.conversations().update(&fresh).unwrap();
    assert_eq!(renamed.title, "renamed");
    assert_eq!(renamed.messages, vec![acked]);

    // The same copy twice: the second write is stale.
    let err = store.conversations().update(&fresh).unwrap_err();
    assert!(err.is_stale(), "{err}");

    // Stale inside a transaction: the whole transaction rolls back.
    let other = store
        .conversations()
        .create(NewConversation::titled("other"))
        .unwrap();
    let outcome = store.transaction(|tx| {
        tx.conversations()
            .append_message(other.id, NewMessage::new(Role::User, "in tx"))?;
        tx.conversations().update(&fresh)
    });
    assert!(outcome.unwrap_err().is_stale());
    assert!(
        store
            .conversations()
            .get(other.id)
            .unwrap()
            .unwrap()
            .messages
            .is_empty(),
        "the transaction's append rolled back with it"
    );
}

pub fn version_of_a_deleted_conversation_is_not_found(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("gone"))
        .unwrap();
    store.conversations().delete(c.id).unwrap();
    let err = store.conversations().update(&c).unwrap_err();
    assert!(err.is_not_found(), "missing is NotFound, not Stale: {err}");
}

pub fn version_refuses_versions_never_handed_out(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("v"))
        .unwrap();
    for bad in [0, u64::MAX, i64::MAX as u64 + 1] {
        let copy = Conversation {
            version: bad,
            title: "x".into(),
            ..c.clone()
        };
        let err = store.conversations().update(&copy).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "version"),
            "version {bad}: {err:?}"
        );
    }
    assert_eq!(
        store.conversations().get(c.id).unwrap().unwrap().title,
        "v",
        "nothing written"
    );
}

/// Two threads, as two windows of one app: one appends, one renames in a
/// loop (read, change, write; on `Stale` read again). Every acknowledged
/// append survives.
pub fn version_renames_racing_appends_lose_nothing(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("race"))
        .unwrap();
    let done = AtomicBool::new(false);
    let (acked, stale, renames) = thread::scope(|scope| {
        let renamer = scope.spawn(|| {
            let (mut stale, mut renames) = (0u64, 0u64);
            // Until the appends are done, and at least one rename got through.
            while !done.load(Ordering::Relaxed) || renames == 0 {
                let mut copy = store.conversations().get(c.id).unwrap().unwrap();
                copy.title = format!("title {renames}");
                match store.conversations().update(&copy) {
                    Ok(_) => renames += 1,
                    Err(Error::Stale { .. }) => stale += 1,
                    Err(e) => panic!("rename failed: {e}"),
                }
            }
            (stale, renames)
        });
        let stop = StopOnDrop(&done);
        let mut acked = Vec::new();
        for i in 0..300 {
            let m = store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
                .unwrap();
            acked.push(m.id);
        }
        drop(stop);
        let (stale, renames) = renamer.join().unwrap();
        (acked, stale, renames)
    });
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    let kept: Vec<MessageId> = stored.messages.iter().map(|m| m.id).collect();
    assert_eq!(kept, acked, "every acknowledged append is there, in order");
    assert_eq!(
        stored.title,
        format!("title {}", renames - 1),
        "the last rename stands ({stale} stale copies refused on the way)"
    );
    assert_eq!(stored.version, 1 + acked.len() as u64 + renames);
}
