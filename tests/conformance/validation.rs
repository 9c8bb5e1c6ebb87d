//! Every validation rule, on every backend: refused with the field named,
//! and nothing written.

use silmari_store::Cursor;
use silmari_store::limits::{MAX_ATTACHMENTS, MAX_PAGE_SIZE, MAX_TITLE_BYTES};
use silmari_store::prelude::*;
use time::macros::datetime;

use crate::support::{assert_invalid, attachment, contents, new_file};

pub fn validation_refuses_bad_files(store: &Store) {
    let cases: Vec<(NewFile, &str)> = vec![
        (new_file(""), "filename"),
        (new_file("   "), "filename"),
        (new_file("nul\0.txt"), "filename"),
        (new_file(&"x".repeat(2000)), "filename"),
        (
            NewFile {
                content_type: String::new(),
                ..new_file("a")
            },
            "content_type",
        ),
        (
            NewFile {
                content_type: "text".into(),
                ..new_file("a")
            },
            "content_type",
        ),
        (
            NewFile {
                content_type: "text/".into(),
                ..new_file("a")
            },
            "content_type",
        ),
        (
            NewFile {
                content_type: "te xt/plain".into(),
                ..new_file("a")
            },
            "content_type",
        ),
        (
            NewFile {
                content_type: "text/plain\0".into(),
                ..new_file("a")
            },
            "content_type",
        ),
        (
            NewFile {
                size: i64::MAX as u64 + 1,
                ..new_file("a")
            },
            "size",
        ),
        (
            NewFile {
                size: u64::MAX,
                ..new_file("a")
            },
            "size",
        ),
        (
            NewFile {
                created_at: Some(datetime!(9999-06-01 0:00 UTC)),
                ..new_file("a")
            },
            "created_at",
        ),
        (
            NewFile {
                created_at: Some(datetime!(-0001-01-01 0:00 UTC)),
                ..new_file("a")
            },
            "created_at",
        ),
    ];
    for (input, field) in cases {
        assert_invalid(store.files().create(input), field);
    }
    // Limits are inclusive.
    store
        .files()
        .create(NewFile {
            size: i64::MAX as u64,
            ..new_file("max")
        })
        .unwrap();
    store
        .files()
        .create(NewFile {
            content_type: "text/plain; charset=utf-8".into(),
            ..new_file("params")
        })
        .unwrap();
    assert_eq!(
        contents(store).0.len(),
        2,
        "only the valid inputs were written"
    );
}

pub fn validation_refuses_bad_conversations(store: &Store) {
    assert_invalid(
        store
            .conversations()
            .create(NewConversation::titled("a\0b")),
        "title",
    );
    assert_invalid(
        store
            .conversations()
            .create(NewConversation::titled("x".repeat(MAX_TITLE_BYTES + 1))),
        "title",
    );
    assert_invalid(
        store.conversations().create(NewConversation {
            created_at: Some(datetime!(9999-12-31 23:59 UTC)),
            ..NewConversation::titled("late")
        }),
        "created_at",
    );
    store
        .conversations()
        .create(NewConversation::titled("x".repeat(MAX_TITLE_BYTES)))
        .unwrap();
    assert_eq!(contents(store).1.len(), 1);
}

pub fn validation_refuses_bad_messages(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("c"))
        .unwrap();
    let before = contents(store);
    let text = |s: &str| NewMessage::new(Role::User, s);
    let with = |a: Attachment| text("ok").with_attachments(vec![attachment("fine.png"), a]);
    let cases: Vec<(NewMessage, &str)> = vec![
        (text("nul \0 byte"), "content"),
        (with(attachment("nul\0.png")), "attachments[1].filename"),
        (with(attachment("")), "attachments[1].filename"),
        (
            with(Attachment {
                content_type: "image".into(),
                ..attachment("a.png")
            }),
            "attachments[1].content_type",
        ),
        (
            with(Attachment {
                size: u64::MAX,
                ..attachment("a.png")
            }),
            "attachments[1].size",
        ),
        (
            text("many").with_attachments(vec![attachment("a.png"); MAX_ATTACHMENTS + 1]),
            "attachments",
        ),
        (
            NewMessage {
                created_at: Some(datetime!(9999-12-31 0:00 UTC)),
                ..text("late")
            },
            "created_at",
        ),
    ];
    for (input, field) in cases {
        assert_invalid(store.conversations().append_message(c.id, input), field);
    }
    // Validation comes first: a bad message for a missing conversation is
    // invalid input, not "not found".
    assert_invalid(
        store
            .conversations()
            .append_message(ConversationId::new(), text("\0")),
        "content",
    );
    assert_eq!(
        contents(store),
        before,
        "nothing written, updated_at untouched"
    );
}

pub fn validation_refuses_bad_updates(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("c"))
        .unwrap();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "one"))
        .unwrap();
    let good = store.conversations().get(c.id).unwrap().unwrap();
    let before = contents(store);

    let mut bad = good.clone();
    bad.push_message(NewMessage::new(Role::User, "has \0"));
    assert_invalid(store.conversations().update(&bad), "messages[1].content");

    let mut bad = good.clone();
    bad.title = "\0".into();
    assert_invalid(store.conversations().update(&bad), "title");

    let mut bad = good.clone();
    let stray =
        silmari_store::Message::new(ConversationId::new(), NewMessage::new(Role::User, "x"));
    bad.messages.push(stray);
    assert_invalid(
        store.conversations().update(&bad),
        "messages[1].conversation_id",
    );

    let mut bad = good.clone();
    bad.messages.push(good.messages[0].clone());
    assert_invalid(store.conversations().update(&bad), "messages[1].id");

    let mut bad = good.clone();
    bad.messages[0].attachments = vec![Attachment {
        content_type: "nope".into(),
        ..attachment("a")
    }];
    assert_invalid(
        store.conversations().update(&bad),
        "messages[0].attachments[0].content_type",
    );

    assert_eq!(contents(store), before);
}

pub fn validation_refuses_bad_pages(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("c"))
        .unwrap();
    assert_invalid(store.files().list(PageRequest::first(0)), "limit");
    assert_invalid(
        store.files().list(PageRequest::first(MAX_PAGE_SIZE + 1)),
        "limit",
    );
    assert_invalid(
        store.conversations().list(ConversationQuery::recent(0)),
        "limit",
    );
    assert_invalid(
        store
            .conversations()
            .messages(c.id, PageRequest::first(MAX_PAGE_SIZE + 1)),
        "limit",
    );
    store
        .files()
        .list(PageRequest::first(MAX_PAGE_SIZE))
        .unwrap();
    for bad in [
        "",
        "x",
        "m.",
        "m.1.2",
        "f.1",
        "f.1.nothex",
        "q.1.0",
        "m.99999999999999999999",
    ] {
        assert_invalid(bad.parse::<Cursor>(), "cursor");
    }
    let foreign: Cursor = "m.3".parse().unwrap();
    assert_invalid(
        store.files().list(PageRequest::first(5).after(foreign)),
        "cursor",
    );
}
