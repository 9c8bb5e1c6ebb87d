//! One message at a time: edit, delete, and grow a streamed reply, without
//! reading or writing the rest of the conversation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use silmari_store::prelude::*;
use silmari_store::{ConversationQuery, Entity, MessageEdit};

use crate::support::{StopOnDrop, assert_invalid, attachment, chained, contents};

/// A conversation of three messages.
fn three(store: &Store) -> (Conversation, Vec<Message>) {
    let c = store
        .conversations()
        .create(NewConversation::titled("three"))
        .unwrap();
    let messages = store
        .conversations()
        .append_messages(
            c.id,
            vec![
                NewMessage::new(Role::User, "first"),
                NewMessage::new(Role::Assistant, "second").with_attachments(vec![attachment("a")]),
                NewMessage::new(Role::User, "third"),
            ],
        )
        .unwrap();
    let c = store.conversations().get(c.id).unwrap().unwrap();
    (c, messages)
}

/// Asserts `result` is `NotFound` naming a message.
#[track_caller]
fn assert_message_not_found<T: std::fmt::Debug>(result: silmari_store::Result<T>) {
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                entity: Entity::Message,
                ..
            }
        ),
        "{err:?}"
    );
}

fn get(store: &Store, id: ConversationId) -> Conversation {
    store.conversations().get(id).unwrap().unwrap()
}

pub fn message_edit_changes_one_message_in_place(store: &Store) {
    let (before, messages) = three(store);
    let edited = store
        .conversations()
        .edit_message(messages[1].id, MessageEdit::new().content("second, fixed"))
        .unwrap();
    assert_eq!(edited.content, "second, fixed");
    assert_eq!(
        edited.attachments, messages[1].attachments,
        "attachments kept"
    );
    assert_eq!(
        (edited.id, edited.role, edited.created_at),
        (messages[1].id, messages[1].role, messages[1].created_at)
    );
    let after = get(store, before.id);
    assert_eq!(after.messages[1], edited);
    assert_eq!(after.messages[0], messages[0]);
    assert_eq!(after.messages[2], messages[2]);
    assert_eq!(after.version, before.version + 1);
    assert!(after.updated_at > before.updated_at);

    // Attachments alone, then both; an empty list clears them.
    let edited = store
        .conversations()
        .edit_message(
            messages[0].id,
            MessageEdit::new().attachments(vec![attachment("b"), attachment("c")]),
        )
        .unwrap();
    assert_eq!(edited.content, "first");
    assert_eq!(edited.attachments.len(), 2);
    let edited = store
        .conversations()
        .edit_message(
            messages[0].id,
            MessageEdit::new().content("").attachments(vec![]),
        )
        .unwrap();
    assert_eq!((edited.content.as_str(), edited.attachments.len()), ("", 0));
    let after = get(store, before.id);
    assert_eq!(after.messages[0], edited);
    assert_eq!(after.version, before.version + 3);

    // With the version the edit was made on.
    let edited = store
        .conversations()
        .edit_message(
            messages[2].id,
            MessageEdit::new()
                .content("third, checked")
                .if_version(after.version),
        )
        .unwrap();
    assert_eq!(get(store, before.id).messages[2], edited);
}

pub fn message_edit_refusals_write_nothing(store: &Store) {
    let (c, messages) = three(store);
    let before = contents(store);
    assert_message_not_found(
        store
            .conversations()
            .edit_message(MessageId::new(), MessageEdit::new().content("x")),
    );
    assert_invalid(
        store
            .conversations()
            .edit_message(messages[0].id, MessageEdit::new().content("nul\0byte")),
        "content",
    );
    assert_invalid(
        store.conversations().edit_message(
            messages[0].id,
            MessageEdit::new().attachments(vec![Attachment {
                filename: String::new(),
                ..attachment("x")
            }]),
        ),
        "attachments[0].filename",
    );
    assert_invalid(
        store
            .conversations()
            .edit_message(messages[0].id, MessageEdit::new().if_version(0)),
        "if_version",
    );
    // A version that moved: Stale, and the message stays as it was.
    let err = store
        .conversations()
        .edit_message(
            messages[0].id,
            MessageEdit::new()
                .content("on an old copy")
                .if_version(c.version - 1),
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Stale { entity: Entity::Conversation, id } if *id == c.id.to_string()),
        "{err:?}"
    );
    // Inside a transaction that fails afterwards: rolled back.
    let outcome: Result<(), Error> = store.transaction(|tx| {
        tx.conversations()
            .edit_message(messages[0].id, MessageEdit::new().content("rolled back"))?;
        tx.conversations().delete_message(messages[1].id)?;
        tx.conversations()
            .append_to_message(messages[2].id, " and more")?;
        Err(Error::InTransaction)
    });
    assert!(outcome.is_err());
    assert_eq!(contents(store), before, "nothing was written");
}

pub fn message_delete_removes_one(store: &Store) {
    let (before, messages) = three(store);
    assert!(
        store
            .conversations()
            .delete_message(messages[1].id)
            .unwrap()
    );
    let after = get(store, before.id);
    assert_eq!(
        after.messages,
        chained(&[messages[0].clone(), messages[2].clone()]),
        "the message after the deleted one now follows the one before"
    );
    assert_eq!(after.version, before.version + 1);
    assert!(after.updated_at > before.updated_at);
    let summary = store
        .conversations()
        .list(ConversationQuery::recent(100))
        .unwrap()
        .items
        .into_iter()
        .find(|s| s.id == before.id)
        .unwrap();
    assert_eq!(summary.message_count, 2, "the stored count follows");
    assert!(store.check().unwrap().is_healthy());

    assert!(
        !store
            .conversations()
            .delete_message(messages[1].id)
            .unwrap()
    );
    assert!(
        !store
            .conversations()
            .delete_message(MessageId::new())
            .unwrap()
    );
    assert_eq!(
        get(store, before.id).version,
        before.version + 1,
        "no-ops move nothing"
    );

    // Appends still go after the last message.
    let next = store
        .conversations()
        .append_message(before.id, NewMessage::new(Role::User, "fourth"))
        .unwrap();
    let ids: Vec<MessageId> = get(store, before.id)
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [messages[0].id, messages[2].id, next.id]);
    let page = store
        .conversations()
        .messages(before.id, PageRequest::first(2))
        .unwrap();
    assert_eq!(
        page.items,
        chained(&[messages[0].clone(), messages[2].clone()])
    );
}

pub fn message_stream_grows_one_message(store: &Store) {
    let (before, _) = three(store);
    let reply = store
        .conversations()
        .append_message(before.id, NewMessage::new(Role::Assistant, ""))
        .unwrap();
    let tokens = ["Once", " upon", " a", " time", ", «ünïcode» 🦀", "\n"];
    let mut expected = String::new();
    for token in tokens {
        expected.push_str(token);
        let grown = store
            .conversations()
            .append_to_message(reply.id, token)
            .unwrap();
        assert_eq!(grown.content, expected);
        assert_eq!(grown.id, reply.id);
    }
    let after = get(store, before.id);
    assert_eq!(after.messages.last().unwrap().content, expected);
    assert_eq!(after.messages.len(), 4);
    assert_eq!(after.version, before.version + 1 + tokens.len() as u64);

    let snapshot = contents(store);
    assert_message_not_found(
        store
            .conversations()
            .append_to_message(MessageId::new(), "x"),
    );
    assert_invalid(
        store.conversations().append_to_message(reply.id, "a\0b"),
        "delta",
    );
    // Growing past the content limit is refused whole.
    let big = "x".repeat(silmari_store::limits::MAX_CONTENT_BYTES - expected.len());
    assert_invalid(
        store
            .conversations()
            .append_to_message(reply.id, &format!("{big}!")),
        "delta",
    );
    assert_eq!(contents(store), snapshot, "nothing was written");
    let full = store
        .conversations()
        .append_to_message(reply.id, &big)
        .unwrap();
    assert_eq!(
        full.content.len(),
        silmari_store::limits::MAX_CONTENT_BYTES,
        "up to the limit exactly"
    );
}

/// A reader polling a reply while it streams sees each time a whole prefix
/// of the tokens, never a torn text.
pub fn message_stream_readers_never_see_torn_text(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("stream"))
        .unwrap();
    let reply = store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::Assistant, ""))
        .unwrap();
    let token = "token-ünï🦀 ";
    let done = AtomicBool::new(false);
    let reads = thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0u32;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let stored = store.conversations().get(c.id).unwrap().unwrap();
                let text = &stored.messages[0].content;
                assert!(
                    text.len().is_multiple_of(token.len())
                        && text.split_inclusive(' ').all(|t| t == token),
                    "a torn text: {text:?}"
                );
                reads += 1;
            }
            reads
        });
        let stop = StopOnDrop(&done);
        for _ in 0..200 {
            store
                .conversations()
                .append_to_message(reply.id, token)
                .unwrap();
        }
        drop(stop);
        reader.join().unwrap()
    });
    assert!(reads > 0);
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages[0].content, token.repeat(200));
}
