use silmari_store::prelude::*;
use silmari_store::{ConversationSummary, Entity};
use time::macros::datetime;

use crate::support::{attachment, chained, contents};

pub fn conversation_create_get(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("Plot"))
        .unwrap();
    assert_eq!(c.id.as_uuid().get_version_num(), 7);
    assert_eq!(c.title, "Plot");
    assert_eq!(c.created_at, c.updated_at);
    assert!(c.messages.is_empty());
    assert_eq!(store.conversations().get(c.id).unwrap(), Some(c));
    assert_eq!(
        store.conversations().get(ConversationId::new()).unwrap(),
        None
    );
    let untitled = store
        .conversations()
        .create(NewConversation::default())
        .unwrap();
    assert_eq!(
        store
            .conversations()
            .get(untitled.id)
            .unwrap()
            .unwrap()
            .title,
        ""
    );
}

pub fn conversation_caller_id_and_conflict(store: &Store) {
    let id = ConversationId::new();
    let made = store
        .conversations()
        .create(NewConversation {
            id: Some(id),
            title: "one".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(made.id, id);
    let err = store
        .conversations()
        .create(NewConversation {
            id: Some(id),
            title: "two".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Conversation, id: got } if *got == id.to_string()),
        "{err:?}"
    );
    assert_eq!(store.conversations().get(id).unwrap().unwrap().title, "one");
}

fn walk(store: &Store, mut query: ConversationQuery) -> (Vec<ConversationSummary>, usize) {
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.conversations().list(query.clone()).unwrap();
        pages += 1;
        all.extend(page.items);
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => return (all, pages),
        }
    }
}

pub fn conversation_list_pages_by_both_orders(store: &Store) {
    // Created in a fixed order with shared timestamps; then messages make the
    // updated_at order differ from the created_at order.
    let created = [
        datetime!(2024-03-01 10:00 UTC),
        datetime!(2024-03-01 10:00 UTC),
        datetime!(2024-03-02 10:00 UTC),
        datetime!(2024-03-02 10:00 UTC),
        datetime!(2024-03-03 10:00 UTC),
    ];
    let ids: Vec<ConversationId> = created
        .iter()
        .enumerate()
        .map(|(i, t)| {
            store
                .conversations()
                .create(NewConversation {
                    title: format!("c{i}"),
                    created_at: Some(*t),
                    ..Default::default()
                })
                .unwrap()
                .id
        })
        .collect();
    for (id, n) in [(ids[0], 2), (ids[3], 1)] {
        for k in 0..n {
            store
                .conversations()
                .append_message(id, NewMessage::new(Role::User, format!("m{k}")))
                .unwrap();
        }
    }
    let all: Vec<Conversation> = ids
        .iter()
        .map(|id| store.conversations().get(*id).unwrap().unwrap())
        .collect();

    let mut by_created: Vec<ConversationSummary> = all.iter().map(Conversation::summary).collect();
    by_created.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    let mut by_updated = by_created.clone();
    by_updated.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
    assert_ne!(by_created, by_updated, "the two orders differ in this data");

    assert_eq!(walk(store, ConversationQuery::newest(2)), (by_created, 3));
    let (listed, pages) = walk(store, ConversationQuery::recent(2));
    assert_eq!((&listed, pages), (&by_updated, 3));
    assert_eq!(listed[0].id, ids[3], "the last appended-to comes first");
    assert_eq!(listed[0].message_count, 1);
    assert_eq!(listed[1].message_count, 2);
}

pub fn conversation_list_cursor_must_match(store: &Store) {
    for i in 0..3 {
        store
            .conversations()
            .create(NewConversation::titled(format!("c{i}")))
            .unwrap();
    }
    let recent = store
        .conversations()
        .list(ConversationQuery::recent(1))
        .unwrap();
    let cursor = recent.next.expect("more than one page");
    let wrong = store
        .conversations()
        .list(ConversationQuery::newest(1).after(cursor.clone()));
    crate::support::assert_invalid(wrong, "cursor");
    let wrong = store.files().list(PageRequest::first(1).after(cursor));
    crate::support::assert_invalid(wrong, "cursor");
}

pub fn conversation_list_all(store: &Store) {
    assert!(store.conversations().list_all().unwrap().is_empty());
    let a = store
        .conversations()
        .create(NewConversation::titled("a"))
        .unwrap();
    let b = store
        .conversations()
        .create(NewConversation::titled("b"))
        .unwrap();
    let _empty = store
        .conversations()
        .create(NewConversation::titled("empty"))
        .unwrap();
    for (id, text) in [(b.id, "b1"), (a.id, "a1"), (b.id, "b2"), (a.id, "a2")] {
        store
            .conversations()
            .append_message(id, NewMessage::new(Role::User, text))
            .unwrap();
    }
    let all = store.conversations().list_all().unwrap();
    let titles: Vec<&str> = all.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["a", "b", "empty"], "most recently updated first");
    let texts: Vec<&str> = all[0].messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["a1", "a2"]);
    for c in &all {
        assert_eq!(Some(c), store.conversations().get(c.id).unwrap().as_ref());
    }
}

pub fn conversation_update_syncs_messages(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("draft"))
        .unwrap();
    for i in 0..4 {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
            .unwrap();
    }
    let mut edited = store.conversations().get(c.id).unwrap().unwrap();
    let before = edited.clone();
    edited.title = "final".into();
    edited.messages.remove(1);
    edited.messages[1].content = "m2, edited".into();
    edited.messages[1].attachments = vec![attachment("figure.png")];
    edited.messages[2].role = Role::Assistant;
    edited.push_message(NewMessage::new(Role::Tool, "m4, new"));
    edited.created_at = datetime!(2000-01-01 0:00 UTC); // not writable: kept as stored

    let stored = store.conversations().update(&edited).unwrap();
    assert!(
        stored.updated_at > before.updated_at,
        "update bumps updated_at"
    );
    assert_eq!(stored.created_at, before.created_at, "created_at is kept");
    assert_eq!(stored.title, "final");
    assert_eq!(stored.messages, chained(&edited.messages));
    assert_eq!(
        store.conversations().get(c.id).unwrap(),
        Some(stored.clone())
    );

    // The deleted message is really gone: its id can be used again elsewhere.
    let other = store
        .conversations()
        .create(NewConversation::titled("other"))
        .unwrap();
    store
        .conversations()
        .append_message(
            other.id,
            NewMessage {
                id: Some(before.messages[1].id),
                ..NewMessage::new(Role::User, "reused id")
            },
        )
        .unwrap();

    // Appending after an update continues at the end.
    let appended = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "after"))
        .unwrap();
    let after = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(after.messages.last(), Some(&appended));
    assert_eq!(after.messages.len(), stored.messages.len() + 1);

    // Updating with no change still bumps updated_at and writes the same list.
    let again = store.conversations().update(&after).unwrap();
    assert!(again.updated_at > after.updated_at);
    assert_eq!(again.messages, after.messages);
}

pub fn conversation_update_reorders(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("order"))
        .unwrap();
    for i in 0..3 {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
            .unwrap();
    }
    let mut conversation = store.conversations().get(c.id).unwrap().unwrap();
    conversation.messages.reverse();
    let new = silmari_store::Message::new(c.id, NewMessage::new(Role::User, "middle"));
    conversation.messages.insert(1, new);
    let stored = store.conversations().update(&conversation).unwrap();
    let texts: Vec<String> = store
        .conversations()
        .messages(c.id, PageRequest::first(10))
        .unwrap()
        .items
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["m2", "middle", "m1", "m0"]);
    assert_eq!(stored.messages, chained(&conversation.messages));
}

pub fn conversation_update_missing_is_not_found(store: &Store) {
    let mut ghost = store
        .conversations()
        .create(NewConversation::titled("ghost"))
        .unwrap();
    assert!(store.conversations().delete(ghost.id).unwrap());
    ghost.push_message(NewMessage::new(Role::User, "hello?"));
    let err = store.conversations().update(&ghost).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::NotFound {
                entity: Entity::Conversation,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(contents(store), (vec![], vec![]), "nothing was written");
}

pub fn conversation_update_foreign_message_conflicts(store: &Store) {
    let a = store
        .conversations()
        .create(NewConversation::titled("a"))
        .unwrap();
    let b = store
        .conversations()
        .create(NewConversation::titled("b"))
        .unwrap();
    let taken = store
        .conversations()
        .append_message(a.id, NewMessage::new(Role::User, "a's"))
        .unwrap();
    store
        .conversations()
        .append_message(b.id, NewMessage::new(Role::User, "b's"))
        .unwrap();
    let before = contents(store);
    let mut b = store.conversations().get(b.id).unwrap().unwrap();
    b.title = "renamed".into();
    b.messages.push(silmari_store::Message {
        conversation_id: b.id,
        ..taken.clone()
    });
    let err = store.conversations().update(&b).unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == taken.id.to_string()),
        "{err:?}"
    );
    assert_eq!(contents(store), before, "nothing was written");
}

pub fn conversation_delete_cascades(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("doomed"))
        .unwrap();
    let keep = store
        .conversations()
        .create(NewConversation::titled("kept"))
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
                .unwrap()
                .id,
        );
    }
    let kept_message = store
        .conversations()
        .append_message(keep.id, NewMessage::new(Role::User, "stays"))
        .unwrap();
    assert!(store.conversations().delete(c.id).unwrap());
    assert!(!store.conversations().delete(c.id).unwrap());
    assert_eq!(store.conversations().get(c.id).unwrap(), None);
    assert!(
        store
            .conversations()
            .messages(c.id, PageRequest::first(10))
            .unwrap_err()
            .is_not_found()
    );
    // The messages are gone, not orphaned: their ids are free again.
    for id in ids {
        store
            .conversations()
            .append_message(
                keep.id,
                NewMessage {
                    id: Some(id),
                    ..NewMessage::new(Role::User, "reuse")
                },
            )
            .unwrap();
    }
    let kept = store.conversations().get(keep.id).unwrap().unwrap();
    assert_eq!(kept.messages.len(), 4);
    assert_eq!(kept.messages[0], kept_message);
}
