//! `Error` serialized for a front end: `{"kind", "message", "field"?}`, one
//! stable kind per variant, the message as `Display` shows it (no password,
//! no key), `field` only for invalid input. Each error here is made through
//! the public API, as an app meets it.

mod common;

use serde_json::Value;
use silmari_store::TransferOptions;
use silmari_store::prelude::*;

/// The error as JSON, checked for its shape: `kind` and `message` always,
/// `field` exactly when the error names one, nothing else.
fn json(err: &Error) -> Value {
    let value = serde_json::to_value(err).expect("an error serializes");
    let object = value.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let expected: &[&str] = if err.field().is_some() {
        &["field", "kind", "message"]
    } else {
        &["kind", "message"]
    };
    assert_eq!(keys, expected, "{value}");
    assert_eq!(value["kind"], err.kind());
    assert_eq!(value["message"], err.to_string());
    value
}

#[test]
fn every_error_an_app_meets_serializes_as_kind_message_and_field() {
    let store = Store::open("memory://").unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("draft"))
        .unwrap();

    let invalid = store
        .conversations()
        .create(NewConversation::titled("a\0b"))
        .unwrap_err();
    let v = json(&invalid);
    assert_eq!(
        (v["kind"].as_str(), v["field"].as_str()),
        (Some("invalid_input"), Some("title"))
    );

    let mut gone = c.clone();
    gone.id = ConversationId::new();
    assert_eq!(
        json(&store.conversations().update(&gone).unwrap_err())["kind"],
        "not_found"
    );

    let duplicate = NewConversation {
        id: Some(c.id),
        ..NewConversation::titled("again")
    };
    assert_eq!(
        json(&store.conversations().create(duplicate).unwrap_err())["kind"],
        "conflict"
    );

    let stale = c.clone();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "moves the version"))
        .unwrap();
    assert_eq!(
        json(&store.conversations().update(&stale).unwrap_err())["kind"],
        "stale"
    );

    let unsupported = store.backup_to("nowhere.db").unwrap_err();
    assert_eq!(json(&unsupported)["kind"], "unsupported");

    // Into an empty store (one that holds data asks for `merge` first).
    let import = Store::open("memory://")
        .unwrap()
        .import_jsonl(
            &b"{\"kind\":\"header\",\"format\":\"silmari-store\",\"version\":2}\n{not json\n"[..],
            TransferOptions::default(),
            |_| {},
        )
        .unwrap_err();
    assert_eq!(json(&import)["kind"], "import");

    let in_transaction = store
        .transaction(|_| store.conversations().list_all().map(drop))
        .unwrap_err();
    assert_eq!(json(&in_transaction)["kind"], "in_transaction");

    let url = Store::open("mysql://nope").unwrap_err();
    assert_eq!(json(&url)["field"], "url");
}

#[cfg(feature = "sqlite")]
#[test]
fn file_errors_serialize_too() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "just notes\n").unwrap();
    let err = Store::open(&common::sqlite_url(&text)).unwrap_err();
    assert_eq!(json(&err)["kind"], "not_a_database");

    let missing = dir.path().join("no-such-dir").join("x.db");
    let err = Store::open(&common::sqlite_url(&missing)).unwrap_err();
    assert_eq!(json(&err)["kind"], "open");

    let path = dir.path().join("ok.db");
    let store = Store::open(&common::sqlite_url(&path)).unwrap();
    let err = store
        .backup_to(dir.path().join("no-such-dir").join("b.db"))
        .unwrap_err();
    assert_eq!(json(&err)["kind"], "io");

    // A row another program damaged: `corrupt_row`.
    let (c, raw) = common::damaged_attachments(&store, &path);
    let err = store.conversations().get(c).unwrap_err();
    assert_eq!(json(&err)["kind"], "corrupt_row");

    // A file a newer build migrated: `schema_too_new`.
    drop(store);
    raw.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (99, 'from_the_future', '2030-01-01T00:00:00Z', '1')",
        [],
    )
    .unwrap();
    let err = Store::open(&common::sqlite_url(&path)).unwrap_err();
    assert_eq!(json(&err)["kind"], "schema_too_new");
}

/// A server that cannot be reached, with a password in the URL: the
/// serialized error, like `Display`, never holds the password.
#[cfg(feature = "postgres")]
#[test]
fn a_password_never_reaches_the_front_end() {
    let url = "postgresql://writer:hunter2-secret@127.0.0.1:1/silmari?pool_timeout=1";
    let err = Store::open(url).unwrap_err();
    let text = serde_json::to_string(&err).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(["unavailable", "connect"].contains(&err.kind()), "{text}");
}

/// A key, given or derived, never reaches the front end either.
#[cfg(feature = "encryption")]
#[test]
fn a_key_error_serializes_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.db");
    let url = common::sqlite_url(&path);
    drop(
        Store::builder()
            .url(&url)
            .key(silmari_store::Key::passphrase("hunter2-passphrase").unwrap())
            .open()
            .unwrap(),
    );
    let err = Store::builder()
        .url(&url)
        .key(silmari_store::Key::passphrase("hunter2-wrong").unwrap())
        .open()
        .unwrap_err();
    let text = serde_json::to_string(&err).unwrap();
    assert_eq!(err.kind(), "key");
    assert!(!text.contains("hunter2"), "{text}");
}
