//! App metadata on conversations and messages: read back equal as a value
//! on every backend, limits refused before anything is written, and edits
//! made on a stale copy refused.

use serde_json::{Value, json};
use silmari_store::Entity;
use silmari_store::limits::{MAX_METADATA_BYTES, MAX_METADATA_DEPTH};
use silmari_store::prelude::*;

use crate::support::{assert_invalid, contents, conversation, get, listed, say, tree};

/// Metadata from JSON text, as an app would receive it.
fn parse(text: &str) -> Metadata {
    serde_json::from_str(text).expect("test metadata parses")
}

/// Nested objects, arrays, unicode, keys out of order, the extreme integers
/// and floats written in several ways.
fn rich() -> Metadata {
    let mut m = parse(
        r#"{
            "zeta": {"nested": {"deeper": {"list": [1, "two", null, true, {"k": []}]}}},
            "alpha": ["a", ["b", ["c"]], {}],
            "": "an empty key",
            "ключ 🔑": "ünïcödé ✓ — \u00e9\u0301 \u202e rtl \u2028 sep \t\n\u0001",
            "backslash": "\\u0000 is not a NUL, \"quoted\"",
            "min": -9223372036854775808,
            "max": 18446744073709551615,
            "i64max": 9223372036854775807,
            "tenth": 0.1,
            "huge": 1e300,
            "negzero": -0.0,
            "hundred": 1e2,
            "flag": false,
            "nothing": null
        }"#,
    );
    // The exact f64 (serde_json's own parser, without its float_roundtrip
    // feature, reads "-1.5e-300" one unit off: -1.4999999999999998e-300).
    m.insert("tiny".into(), json!(-1.5e-300));
    m
}

/// A second value, different from [`rich`] everywhere.
fn other() -> Metadata {
    parse(r#"{"model": "gpt", "usage": {"prompt": 12, "completion": 345}, "ratio": 2.5}"#)
}

/// Asserts `got == want`, naming the keys that differ.
#[track_caller]
fn assert_same(got: &Metadata, want: &Metadata) {
    let keys: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let wrong: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("{k}: wrote {:?}, read back {:?}", want.get(k), got.get(k)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(got, want);
}

/// Asserts the numbers of [`rich`] read back as they were written.
#[track_caller]
fn assert_numbers(m: &Metadata) {
    assert_eq!(m["min"].as_i64(), Some(i64::MIN));
    assert_eq!(m["max"].as_u64(), Some(u64::MAX));
    assert_eq!(m["i64max"].as_i64(), Some(i64::MAX));
    assert_eq!(m["tenth"].as_f64(), Some(0.1));
    assert_eq!(m["huge"].as_f64(), Some(1e300));
    assert_eq!(m["tiny"].as_f64(), Some(-1.5e-300));
    assert_eq!(m["negzero"], json!(0.0), "-0.0 compares equal to 0.0");
    assert_eq!(m["hundred"], json!(100.0), "1e2 is the f64 100");
}

pub fn metadata_round_trips_on_conversations(store: &Store) {
    let made = store
        .conversations()
        .create(NewConversation {
            title: "with metadata".into(),
            metadata: rich(),
            ..Default::default()
        })
        .unwrap();
    let c = made.id;
    assert_eq!(made.metadata, rich());
    let stored = get(store, c);
    assert_same(&stored.metadata, &rich());
    assert_numbers(&stored.metadata);
    assert_eq!(listed(store, c).metadata, rich());
    assert_eq!(tree(store, c).conversation.metadata, rich());
    let all = store.conversations().list_all().unwrap();
    assert_eq!(all.iter().find(|x| x.id == c).unwrap().metadata, rich());

    // edit(): the metadata alone, then the title alone (the metadata stays).
    let edited = store
        .conversations()
        .edit(c, ConversationEdit::new().metadata(other()))
        .unwrap();
    assert_eq!(edited.metadata, other());
    assert_eq!(edited.title, "with metadata");
    assert_eq!(get(store, c).metadata, other());
    let renamed = store
        .conversations()
        .edit(c, ConversationEdit::new().title("renamed"))
        .unwrap();
    assert_eq!(renamed.metadata, other());
    assert_eq!(get(store, c).metadata, other());

    // update(): written whole, an empty object too.
    let mut copy = get(store, c);
    copy.metadata = rich();
    let updated = store.conversations().update(&copy).unwrap();
    assert_eq!(updated.metadata, rich());
    assert_eq!(get(store, c).metadata, rich());
    assert_numbers(&listed(store, c).metadata);
    let mut copy = get(store, c);
    copy.metadata = Metadata::new();
    store.conversations().update(&copy).unwrap();
    assert_eq!(get(store, c).metadata, Metadata::new());
    assert_eq!(listed(store, c).metadata, Metadata::new());
}

pub fn metadata_round_trips_on_messages(store: &Store) {
    let c = conversation(store, "messages");
    let appended = store
        .conversations()
        .append_message(
            c,
            NewMessage::new(Role::User, "prompt").with_metadata(rich()),
        )
        .unwrap();
    assert_eq!(appended.metadata, rich());
    let batch = store
        .conversations()
        .append_messages(
            c,
            vec![
                NewMessage::new(Role::Assistant, "plain"),
                NewMessage::new(Role::Assistant, "with").with_metadata(other()),
            ],
        )
        .unwrap();
    let branched = store
        .conversations()
        .branch_from(
            c,
            Some(appended.id),
            NewMessage::new(Role::Assistant, "again").with_metadata(rich()),
        )
        .unwrap();
    assert_eq!(branched.metadata, rich());
    let stored = get(store, c);
    assert_same(&stored.messages[0].metadata, &rich());
    assert_same(&stored.messages[1].metadata, &rich());
    assert_eq!(stored.messages, vec![appended.clone(), branched.clone()]);
    assert_numbers(&stored.messages[1].metadata);
    let t = tree(store, c);
    let expected = [rich(), Metadata::new(), other(), rich()];
    let got: Vec<Metadata> = t.messages.iter().map(|m| m.metadata.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(
        store.conversations().alternatives(batch[0].id).unwrap()[1].metadata,
        rich()
    );
    let page = store
        .conversations()
        .messages(c, PageRequest::first(10))
        .unwrap();
    assert_eq!(page.items, stored.messages);

    // edit_message: the metadata alone, then the content alone.
    let edited = store
        .conversations()
        .edit_message(batch[0].id, MessageEdit::new().metadata(rich()))
        .unwrap();
    assert_eq!(edited.metadata, rich());
    assert_eq!(edited.content, "plain", "the content stays");
    let edited = store
        .conversations()
        .edit_message(batch[0].id, MessageEdit::new().content("plain, edited"))
        .unwrap();
    assert_eq!(edited.metadata, rich(), "the metadata stays");
    assert_eq!(tree(store, c).messages[1], edited);
    let cleared = store
        .conversations()
        .edit_message(appended.id, MessageEdit::new().metadata(Metadata::new()))
        .unwrap();
    assert_eq!(cleared.metadata, Metadata::new());
    assert_eq!(get(store, c).messages[0], cleared);

    // update(): a message's metadata changed, a new one with metadata.
    let mut copy = get(store, c);
    copy.messages[1].metadata = other();
    copy.push_message(NewMessage::new(Role::User, "new").with_metadata(rich()));
    let updated = store.conversations().update(&copy).unwrap();
    assert_eq!(updated.messages[1].metadata, other());
    let stored = get(store, c);
    assert_eq!(stored.messages, updated.messages);
    assert_eq!(stored.messages[2].metadata, rich());
    assert_numbers(&stored.messages[2].metadata);
    let all = store.conversations().list_all().unwrap();
    assert_eq!(
        all.iter().find(|x| x.id == c).unwrap().messages,
        stored.messages
    );
}

/// `{"k": {"k": ... {}}}`: `depth` objects, the outermost counted as 1.
fn nested_objects(depth: usize) -> Metadata {
    let mut inner = json!({});
    for _ in 2..depth {
        inner = json!({ "k": inner });
    }
    let mut m = Metadata::new();
    m.insert("k".into(), inner);
    m
}

/// `{"k": [[ ... []]]}`: the object and `depth - 1` arrays.
fn nested_arrays(depth: usize) -> Metadata {
    let mut inner = json!([]);
    for _ in 2..depth {
        inner = json!([inner]);
    }
    let mut m = Metadata::new();
    m.insert("k".into(), inner);
    m
}

/// `{"k": "xx…"}`, `bytes` long as compact JSON.
fn sized(bytes: usize) -> Metadata {
    let mut m = Metadata::new();
    m.insert("k".into(), Value::String("x".repeat(bytes - 8)));
    assert_eq!(serde_json::to_vec(&m).unwrap().len(), bytes);
    m
}

/// Metadata every write must refuse, by what is wrong with it.
fn refused() -> Vec<(&'static str, Metadata)> {
    let mut nul_key = Metadata::new();
    nul_key.insert("a\0b".into(), json!(1));
    let mut deep_nul_key = Metadata::new();
    deep_nul_key.insert("ok".into(), json!([{ "x\0": true }]));
    vec![
        ("too big", sized(MAX_METADATA_BYTES + 1)),
        ("objects too deep", nested_objects(MAX_METADATA_DEPTH + 1)),
        ("arrays too deep", nested_arrays(MAX_METADATA_DEPTH + 1)),
        ("NUL in a key", nul_key),
        ("NUL in a nested key", deep_nul_key),
        ("NUL in a string", parse(r#"{"s": "a\u0000b"}"#)),
        (
            "NUL in a nested string",
            parse(r#"{"a": [[{"s": "\u0000"}]]}"#),
        ),
    ]
}

pub fn metadata_limits_are_refused_and_write_nothing(store: &Store) {
    let c = conversation(store, "limits");
    let m = say(store, c, Role::User, "m");
    let before = (contents(store), tree(store, c));
    let conversations = store.conversations();
    for (what, bad) in refused() {
        let input = || NewMessage::new(Role::User, "x").with_metadata(bad.clone());
        let new = NewConversation {
            title: "refused".into(),
            metadata: bad.clone(),
            ..Default::default()
        };
        let mut copy = get(store, c);
        copy.metadata = bad.clone();
        let mut message_copy = get(store, c);
        message_copy.messages[0].metadata = bad.clone();
        let mut pushed = get(store, c);
        pushed.push_message(input());
        let cases = [
            ("create", conversations.create(new).map(drop), "metadata"),
            (
                "edit",
                conversations
                    .edit(c, ConversationEdit::new().metadata(bad.clone()))
                    .map(drop),
                "metadata",
            ),
            ("update", conversations.update(&copy).map(drop), "metadata"),
            (
                "update of a message",
                conversations.update(&message_copy).map(drop),
                "messages[0].metadata",
            ),
            (
                "update with a new message",
                conversations.update(&pushed).map(drop),
                "messages[1].metadata",
            ),
            (
                "append_message",
                conversations.append_message(c, input()).map(drop),
                "metadata",
            ),
            (
                "append_messages",
                conversations
                    .append_messages(c, vec![NewMessage::new(Role::User, "ok"), input()])
                    .map(drop),
                "messages[1].metadata",
            ),
            (
                "branch_from",
                conversations.branch_from(c, None, input()).map(drop),
                "metadata",
            ),
            (
                "edit_message",
                conversations
                    .edit_message(m.id, MessageEdit::new().metadata(bad.clone()))
                    .map(drop),
                "metadata",
            ),
        ];
        for (call, result, field) in cases {
            match result {
                Err(Error::InvalidInput { field: f, .. }) if f == field => {}
                other => panic!("{what}, {call}: expected InvalidInput on {field}, got {other:?}"),
            }
        }
        assert_eq!(
            (contents(store), tree(store, c)),
            before,
            "{what}: nothing written"
        );
    }

    // Up to the limits exactly: accepted, and read back.
    for (what, good) in [
        ("the largest", sized(MAX_METADATA_BYTES)),
        ("the deepest objects", nested_objects(MAX_METADATA_DEPTH)),
        ("the deepest arrays", nested_arrays(MAX_METADATA_DEPTH)),
    ] {
        let made = conversations
            .create(NewConversation {
                title: what.into(),
                metadata: good.clone(),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(get(store, made.id).metadata, good, "{what}");
        let msg = conversations
            .append_message(
                made.id,
                NewMessage::new(Role::User, what).with_metadata(good.clone()),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(get(store, made.id).messages, vec![msg], "{what}");
    }
}

/// Edits made on a copy the conversation has moved past: refused with
/// `Stale`, nothing written.
pub fn metadata_stale_edits_are_refused(store: &Store) {
    let c = conversation(store, "stale");
    let m = say(store, c, Role::User, "m");
    let r = say(store, c, Role::Assistant, "r");
    let seen = get(store, c).version;
    // A write that moves only the version: a switch.
    store.conversations().switch_branch(r.id).unwrap();
    let before = (contents(store), tree(store, c));

    let stale = |err: Error| {
        assert!(
            matches!(&err, Error::Stale { entity: Entity::Conversation, id } if *id == c.to_string()),
            "{err:?}"
        );
    };
    stale(
        store
            .conversations()
            .edit(
                c,
                ConversationEdit::new()
                    .title("stale")
                    .metadata(other())
                    .if_version(seen),
            )
            .unwrap_err(),
    );
    stale(
        store
            .conversations()
            .edit_message(
                m.id,
                MessageEdit::new()
                    .content("stale")
                    .metadata(other())
                    .if_version(seen),
            )
            .unwrap_err(),
    );
    assert_eq!((contents(store), tree(store, c)), before, "nothing written");
    assert_invalid(
        store
            .conversations()
            .edit(c, ConversationEdit::new().if_version(0)),
        "if_version",
    );
    let err = store
        .conversations()
        .edit(ConversationId::new(), ConversationEdit::new().title("x"))
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    // At the current version: written, and the version moves on.
    let now = get(store, c).version;
    let edited = store
        .conversations()
        .edit(c, ConversationEdit::new().metadata(other()).if_version(now))
        .unwrap();
    assert_eq!(edited.version, now + 1);
    let message = store
        .conversations()
        .edit_message(
            m.id,
            MessageEdit::new()
                .metadata(parse(r#"{"edited": [true]}"#))
                .if_version(now + 1),
        )
        .unwrap();
    assert_eq!(message.metadata, parse(r#"{"edited": [true]}"#));
    stale(
        store
            .conversations()
            .edit(c, ConversationEdit::new().title("late").if_version(now + 1))
            .unwrap_err(),
    );
    let stored = get(store, c);
    assert_eq!((stored.version, stored.metadata), (now + 2, other()));
}

/// Floats with no fraction, large enough that JSON writers spell them with
/// an exponent (`1e16`): still floats when read back, not integers.
pub fn metadata_integral_floats_stay_floats(store: &Store) {
    let mut floats = Metadata::new();
    for (key, value) in [
        ("1e15", 1e15),
        ("1e16", 1e16),
        ("1e17", 1e17),
        ("-1e18", -1e18),
        ("1e19", 1e19),
        ("1e20", 1e20),
        ("2^60", 2f64.powi(60)),
    ] {
        floats.insert(key.into(), json!(value));
    }
    let made = store
        .conversations()
        .create(NewConversation {
            title: "floats".into(),
            metadata: floats.clone(),
            ..Default::default()
        })
        .unwrap();
    let stored = get(store, made.id).metadata;
    let wrong: Vec<String> = floats
        .iter()
        .filter(|(key, value)| !(stored[*key].is_f64() && stored[*key] == **value))
        .map(|(key, value)| format!("{key}: wrote {value}, read back {}", stored[key]))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(stored, floats);
}
