//! Every public entry point with invalid values, as one table: each gets the
//! right error kind, and nothing is written.
#![cfg(feature = "sqlite")]

use std::io::Cursor;

use silmari_store::TransferOptions;
use silmari_store::limits::{
    MAX_ATTACHMENTS, MAX_CONTENT_BYTES, MAX_CONTENT_TYPE_BYTES, MAX_FILENAME_BYTES, MAX_PAGE_SIZE,
    MAX_TITLE_BYTES,
};
use silmari_store::prelude::*;

/// Which kind of error a case must give.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Invalid,
    NotFound,
    Import,
}

fn kind_of(e: &Error) -> Option<Kind> {
    match e {
        Error::InvalidInput { .. } => Some(Kind::Invalid),
        Error::NotFound { .. } => Some(Kind::NotFound),
        Error::Import { .. } => Some(Kind::Import),
        _ => None,
    }
}

type Case<'a> = (&'a str, Kind, Box<dyn Fn(&Store) -> Result<(), Error> + 'a>);

fn attachment(content_type: &str) -> Attachment {
    Attachment {
        file_id: FileId::new(),
        filename: "a.png".into(),
        content_type: content_type.into(),
        size: 1,
    }
}

#[test]
fn every_entry_point_refuses_bad_values_and_writes_nothing() {
    let store = Store::open("sqlite://").unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("kept"))
        .unwrap();
    let file = store
        .files()
        .create(NewFile {
            filename: "kept.txt".into(),
            content_type: "text/plain".into(),
            ..Default::default()
        })
        .unwrap();
    let before = (
        store.conversations().list_all().unwrap(),
        store.files().list(PageRequest::first(10)).unwrap(),
    );
    let id = c.id;
    let new_file = |filename: &str, content_type: &str, size: u64| NewFile {
        filename: filename.into(),
        content_type: content_type.into(),
        size,
        ..Default::default()
    };
    let long = |n: usize| "x".repeat(n);
    let header = r#"{"kind":"header","format":"silmari-store","version":1}"#;
    let conversation_line = format!(
        r#"{{"kind":"conversation","id":"{}","title":"t","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"}}"#,
        ConversationId::new()
    );
    let message_line = |conversation: &str, role: &str| {
        format!(
            r#"{{"kind":"message","id":"{}","conversation_id":"{conversation}","role":"{role}","content":"x","created_at":"2024-01-01T00:00:00Z","attachments":[]}}"#,
            MessageId::new()
        )
    };
    let conversation_id = conversation_line
        .split("\"id\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let import = |lines: Vec<String>| {
        let text = lines.join("\n");
        let target = Store::open("memory://").unwrap();
        let result = target
            .import_jsonl(
                Cursor::new(text.into_bytes()),
                TransferOptions::default(),
                |_| {},
            )
            .map(drop);
        assert!(
            target.counts().unwrap().is_empty(),
            "the import wrote nothing"
        );
        result
    };

    let cases: Vec<Case> = vec![
        // URLs: malformed and hostile.
        (
            "empty url",
            Kind::Invalid,
            Box::new(|_| Store::open("").map(drop)),
        ),
        (
            "no scheme",
            Kind::Invalid,
            Box::new(|_| Store::open("dev.db").map(drop)),
        ),
        (
            "unknown scheme",
            Kind::Invalid,
            Box::new(|_| Store::open("mysql://u@h/db").map(drop)),
        ),
        (
            "sqlite host",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite://evil.example/x.db").map(drop)),
        ),
        (
            "nul in path",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite:///a%00b.db").map(drop)),
        ),
        (
            "bad escape",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite:///%G0.db").map(drop)),
        ),
        (
            "unknown parameter",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite://?journal=off").map(drop)),
        ),
        (
            "negative pool",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite://?pool_size=-5").map(drop)),
        ),
        (
            "huge timeout",
            Kind::Invalid,
            Box::new(|_| Store::open("sqlite://?pool_timeout=1e400").map(drop)),
        ),
        (
            "very long url",
            Kind::Invalid,
            Box::new(move |_| Store::open(&format!("nope://{}", long(100_000))).map(drop)),
        ),
        // Files.
        (
            "file nul",
            Kind::Invalid,
            Box::new(move |s| {
                s.files()
                    .create(new_file("a\0b", "text/plain", 1))
                    .map(drop)
            }),
        ),
        (
            "file empty name",
            Kind::Invalid,
            Box::new(move |s| s.files().create(new_file("", "text/plain", 1)).map(drop)),
        ),
        (
            "file long name",
            Kind::Invalid,
            Box::new(move |s| {
                s.files()
                    .create(new_file(&long(MAX_FILENAME_BYTES + 1), "text/plain", 1))
                    .map(drop)
            }),
        ),
        (
            "file content type",
            Kind::Invalid,
            Box::new(move |s| s.files().create(new_file("a", "plain", 1)).map(drop)),
        ),
        (
            "file long content type",
            Kind::Invalid,
            Box::new(move |s| {
                s.files()
                    .create(new_file(
                        "a",
                        &format!("text/{}", long(MAX_CONTENT_TYPE_BYTES)),
                        1,
                    ))
                    .map(drop)
            }),
        ),
        (
            "file size overflow",
            Kind::Invalid,
            Box::new(move |s| {
                s.files()
                    .create(new_file("a", "text/plain", u64::MAX))
                    .map(drop)
            }),
        ),
        (
            "files page 0",
            Kind::Invalid,
            Box::new(|s| s.files().list(PageRequest::first(0)).map(drop)),
        ),
        (
            "files page too big",
            Kind::Invalid,
            Box::new(|s| {
                s.files()
                    .list(PageRequest::first(MAX_PAGE_SIZE + 1))
                    .map(drop)
            }),
        ),
        (
            "files cursor of messages",
            Kind::Invalid,
            Box::new(|s| {
                s.files()
                    .list(PageRequest::first(5).after("m.1".parse().unwrap()))
                    .map(drop)
            }),
        ),
        // Conversations and messages.
        (
            "title nul",
            Kind::Invalid,
            Box::new(|s| {
                s.conversations()
                    .create(NewConversation::titled("a\0"))
                    .map(drop)
            }),
        ),
        (
            "title long",
            Kind::Invalid,
            Box::new(move |s| {
                s.conversations()
                    .create(NewConversation::titled(long(MAX_TITLE_BYTES + 1)))
                    .map(drop)
            }),
        ),
        (
            "content nul",
            Kind::Invalid,
            Box::new(move |s| {
                s.conversations()
                    .append_message(id, NewMessage::new(Role::User, "\0"))
                    .map(drop)
            }),
        ),
        (
            "content long",
            Kind::Invalid,
            Box::new(move |s| {
                s.conversations()
                    .append_message(id, NewMessage::new(Role::User, long(MAX_CONTENT_BYTES + 1)))
                    .map(drop)
            }),
        ),
        (
            "too many attachments",
            Kind::Invalid,
            Box::new(move |s| {
                s.conversations()
                    .append_message(
                        id,
                        NewMessage::new(Role::User, "x").with_attachments(vec![
                            attachment(
                                "image/png"
                            );
                            MAX_ATTACHMENTS + 1
                        ]),
                    )
                    .map(drop)
            }),
        ),
        (
            "attachment content type",
            Kind::Invalid,
            Box::new(move |s| {
                s.conversations()
                    .append_message(
                        id,
                        NewMessage::new(Role::User, "x")
                            .with_attachments(vec![attachment("image")]),
                    )
                    .map(drop)
            }),
        ),
        // An id of another kind: typed ids make it a compile error; the same UUID is unknown here.
        (
            "file id as conversation",
            Kind::NotFound,
            Box::new(move |s| {
                s.conversations()
                    .append_message(
                        ConversationId::from_uuid(*file.id.as_uuid()),
                        NewMessage::new(Role::User, "x"),
                    )
                    .map(drop)
            }),
        ),
        (
            "messages of a file id",
            Kind::NotFound,
            Box::new(move |s| {
                s.conversations()
                    .messages(
                        ConversationId::from_uuid(*file.id.as_uuid()),
                        PageRequest::first(5),
                    )
                    .map(drop)
            }),
        ),
        (
            "list cursor garbage",
            Kind::Invalid,
            Box::new(|s| {
                s.conversations()
                    .list(
                        ConversationQuery::recent(5)
                            .after("u.x.y".parse().unwrap_or_else(|_| "m.1".parse().unwrap())),
                    )
                    .map(drop)
            }),
        ),
        (
            "update missing",
            Kind::NotFound,
            Box::new(|s| {
                let mut ghost = s.conversations().create(NewConversation::titled("ghost"))?;
                s.conversations().delete(ghost.id)?;
                ghost.title = "x".into();
                s.conversations().update(&ghost).map(drop)
            }),
        ),
        // Imports: unknown roles, negative or overflowing sizes, orphans.
        (
            "import unknown role",
            Kind::Import,
            Box::new({
                let (h, c, m) = (
                    header.to_owned(),
                    conversation_line.clone(),
                    message_line(&conversation_id, "wizard"),
                );
                move |_| import(vec![h.clone(), c.clone(), m.clone()])
            }),
        ),
        (
            "import negative size",
            Kind::Import,
            Box::new({
                let line = format!(
                    r#"{{"kind":"file","id":"{}","filename":"f","content_type":"a/b","size":-1,"created_at":"2024-01-01T00:00:00Z"}}"#,
                    FileId::new()
                );
                let h = header.to_owned();
                move |_| import(vec![h.clone(), line.clone()])
            }),
        ),
        (
            "import overflowing size",
            Kind::Import,
            Box::new({
                let line = format!(
                    r#"{{"kind":"file","id":"{}","filename":"f","content_type":"a/b","size":{},"created_at":"2024-01-01T00:00:00Z"}}"#,
                    FileId::new(),
                    u64::MAX
                );
                let h = header.to_owned();
                move |_| import(vec![h.clone(), line.clone()])
            }),
        ),
        (
            "import orphan message",
            Kind::Import,
            Box::new({
                let (h, m) = (
                    header.to_owned(),
                    message_line(&ConversationId::new().to_string(), "user"),
                );
                move |_| import(vec![h.clone(), m.clone()])
            }),
        ),
        (
            "import wrong id kind",
            Kind::Import,
            Box::new({
                let h = header.to_owned();
                move |_| {
                    import(vec![h.clone(), r#"{"kind":"file","id":"not-a-uuid","filename":"f","content_type":"a/b","size":1,"created_at":"2024-01-01T00:00:00Z"}"#.to_owned()])
                }
            }),
        ),
    ];
    let total = cases.len();
    for (name, kind, call) in cases {
        let result = call(&store);
        match &result {
            Err(e) => assert_eq!(kind_of(e), Some(kind), "{name}: {e:?}"),
            Ok(()) => panic!("{name}: accepted"),
        }
        let after = (
            store.conversations().list_all().unwrap(),
            store.files().list(PageRequest::first(10)).unwrap(),
        );
        assert!(after == before, "{name}: something was written");
    }
    println!("{total} bad inputs: each refused with the right kind, nothing written");
}
