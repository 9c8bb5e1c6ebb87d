use silmari_store::Entity;
use silmari_store::prelude::*;
use time::macros::datetime;

use crate::support::{attachment, contents};

pub fn message_append_bumps_updated_at(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("t"))
        .unwrap();
    let mut last = c.updated_at;
    for i in 0..5 {
        let m = store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
            .unwrap();
        assert_eq!(m.conversation_id, c.id);
        assert_eq!(m.id.as_uuid().get_version_num(), 7);
        let now = store.conversations().get(c.id).unwrap().unwrap();
        assert!(now.updated_at > last, "append {i} moves updated_at forward");
        assert!(now.updated_at >= m.created_at);
        assert_eq!(now.created_at, c.created_at);
        last = now.updated_at;
    }
    // Even a conversation "updated" in the future moves forward on append.
    let future = store
        .conversations()
        .create(NewConversation {
            created_at: Some(datetime!(9000-01-01 0:00 UTC)),
            ..NewConversation::titled("future")
        })
        .unwrap();
    store
        .conversations()
        .append_message(future.id, NewMessage::new(Role::User, "now"))
        .unwrap();
    let bumped = store.conversations().get(future.id).unwrap().unwrap();
    assert!(bumped.updated_at > future.updated_at);
}

pub fn message_equal_timestamps_keep_append_order(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("ties"))
        .unwrap();
    let at = datetime!(2024-05-05 12:00 UTC);
    // Ids in descending order, one timestamp: neither may decide the order.
    let mut ids: Vec<MessageId> = (0..6).map(|_| MessageId::new()).collect();
    ids.sort();
    ids.reverse();
    for (i, id) in ids.iter().enumerate() {
        store
            .conversations()
            .append_message(
                c.id,
                NewMessage {
                    id: Some(*id),
                    created_at: Some(at),
                    ..NewMessage::new(Role::User, format!("m{i}"))
                },
            )
            .unwrap();
    }
    let got: Vec<MessageId> = store
        .conversations()
        .get(c.id)
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(got, ids);
    let paged: Vec<MessageId> = store
        .conversations()
        .messages(c.id, PageRequest::first(100))
        .unwrap()
        .items
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(paged, ids);
}

pub fn message_pages_to_the_last(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("long"))
        .unwrap();
    let empty = store
        .conversations()
        .messages(c.id, PageRequest::first(5))
        .unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());
    let mut made = Vec::new();
    for i in 0..11 {
        made.push(
            store
                .conversations()
                .append_message(c.id, NewMessage::new(Role::Assistant, format!("m{i}")))
                .unwrap(),
        );
    }
    let mut request = PageRequest::first(4);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let page = store
            .conversations()
            .messages(c.id, request.clone())
            .unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items);
        match page.next {
            Some(cursor) => request = request.after(cursor),
            None => break,
        }
    }
    assert_eq!(sizes, [4, 4, 3]);
    assert_eq!(seen, made);
    let exact = store
        .conversations()
        .messages(c.id, PageRequest::first(11))
        .unwrap();
    assert_eq!((exact.items.len(), exact.next), (11, None));
}

pub fn message_missing_conversation_is_not_found(store: &Store) {
    let ghost = ConversationId::new();
    let err = store
        .conversations()
        .append_message(ghost, NewMessage::new(Role::User, "hello"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { entity: Entity::Conversation, id } if *id == ghost.to_string()),
        "{err:?}"
    );
    assert!(
        store
            .conversations()
            .messages(ghost, PageRequest::first(1))
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(contents(store), (vec![], vec![]));
}

pub fn message_duplicate_id_conflicts(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("c"))
        .unwrap();
    let m = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "first"))
        .unwrap();
    let before = contents(store);
    let err = store
        .conversations()
        .append_message(
            c.id,
            NewMessage {
                id: Some(m.id),
                ..NewMessage::new(Role::User, "second")
            },
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == m.id.to_string()),
        "{err:?}"
    );
    assert_eq!(contents(store), before, "no message and no updated_at bump");
}

pub fn message_attachments_round_trip(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("files"))
        .unwrap();
    let file = store
        .files()
        .create(crate::support::new_file("notes.md"))
        .unwrap();
    let attachments = vec![
        Attachment::from_file(&file),
        attachment("ünïcödé \"quoted\" name.png"),
        Attachment {
            size: i64::MAX as u64,
            ..attachment("huge.bin")
        },
    ];
    let m = store
        .conversations()
        .append_message(
            c.id,
            NewMessage::new(Role::User, "see attached").with_attachments(attachments.clone()),
        )
        .unwrap();
    let plain = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "none"))
        .unwrap();
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages[0].attachments, attachments);
    assert_eq!(stored.messages[0], m);
    assert!(stored.messages[1].attachments.is_empty());
    assert_eq!(stored.messages[1], plain);
}

pub fn message_sql_text_is_stored_verbatim(store: &Store) {
    let hostile = [
        "'); DROP TABLE messages; --",
        "\" OR 1=1 --",
        "%_\\'\"`$1 ?1 :name @x",
        "emoji 🦀 and \u{202e}bidi and \r\n newlines\ttabs",
    ];
    let c = store
        .conversations()
        .create(NewConversation::titled(hostile[0]))
        .unwrap();
    for text in hostile {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, text))
            .unwrap();
    }
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.title, hostile[0]);
    let texts: Vec<&str> = stored.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, hostile);
}

pub fn message_batches_append_in_order(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("batch"))
        .unwrap();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::System, "first"))
        .unwrap();
    let before = store.conversations().get(c.id).unwrap().unwrap();
    // More than one multi-row statement's worth, with attachments on some.
    let inputs: Vec<NewMessage> = (0..6_001)
        .map(|i| {
            let m = NewMessage::new(Role::User, format!("m{i}"));
            if i % 1000 == 0 {
                m.with_attachments(vec![attachment("a.png")])
            } else {
                m
            }
        })
        .collect();
    let made = store.conversations().append_messages(c.id, inputs).unwrap();
    assert_eq!(made.len(), 6_001);
    let after = store.conversations().get(c.id).unwrap().unwrap();
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.messages[0].content, "first");
    assert_eq!(after.messages[1..], made[..]);
    // Appends after a batch go after it.
    let last = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "last"))
        .unwrap();
    let page = store
        .conversations()
        .messages(c.id, PageRequest::first(1000))
        .unwrap();
    assert_eq!(page.items[1], made[0]);
    assert_eq!(
        store
            .conversations()
            .get(c.id)
            .unwrap()
            .unwrap()
            .messages
            .last(),
        Some(&last)
    );
    assert!(
        store
            .conversations()
            .append_messages(c.id, vec![])
            .unwrap()
            .is_empty()
    );
}

pub fn message_batches_are_all_or_nothing(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("batch"))
        .unwrap();
    let taken = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "taken"))
        .unwrap();
    let before = contents(store);
    let mut inputs: Vec<NewMessage> = (0..10)
        .map(|i| NewMessage::new(Role::User, format!("m{i}")))
        .collect();
    inputs[7].id = Some(taken.id);
    let err = store
        .conversations()
        .append_messages(c.id, inputs.clone())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == taken.id.to_string()),
        "{err:?}"
    );
    // The same for a batch large enough to take a backend's bulk path
    // (PostgreSQL copies 1,000 or more), refused by its 1,201st message, and
    // for one the transaction around it rolls back after it succeeded.
    let mut large: Vec<NewMessage> = (0..1_500)
        .map(|i| NewMessage::new(Role::User, format!("large {i}")))
        .collect();
    large[1_200].id = Some(taken.id);
    let err = store
        .conversations()
        .append_messages(c.id, large.clone())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == taken.id.to_string()),
        "{err:?}"
    );
    large[1_200].id = None;
    let rolled_back: Result<(), Error> = store.transaction(|tx| {
        let made = tx.conversations().append_messages(c.id, large)?;
        assert_eq!(made.len(), 1_500);
        Err(Error::InTransaction)
    });
    assert!(
        matches!(rolled_back, Err(Error::InTransaction)),
        "{rolled_back:?}"
    );
    inputs[7].id = None;
    inputs[3].content = "nul\0".into();
    crate::support::assert_invalid(
        store.conversations().append_messages(c.id, inputs.clone()),
        "messages[3].content",
    );
    inputs[3].content = "fine".into();
    let twice = MessageId::new();
    inputs[2].id = Some(twice);
    inputs[5].id = Some(twice);
    crate::support::assert_invalid(
        store.conversations().append_messages(c.id, inputs.clone()),
        "messages[5].id",
    );
    let too_many = vec![NewMessage::new(Role::User, "x"); silmari_store::limits::MAX_BATCH + 1];
    crate::support::assert_invalid(
        store.conversations().append_messages(c.id, too_many),
        "messages",
    );
    assert!(
        store
            .conversations()
            .append_messages(
                ConversationId::new(),
                vec![NewMessage::new(Role::User, "x")]
            )
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        contents(store),
        before,
        "nothing of any refused batch was written"
    );
}
