//! Every way a message's text reaches PostgreSQL stores, beside its tokens,
//! the token signature of those tokens (migration V12), in the layout
//! `src/search/signature.rs` defines: walks rely on it, and it is stored,
//! so it is checked here against a reference written from that definition.
#![cfg(feature = "postgres")]

mod common;

use common::pg::Database;
use silmari_store::prelude::*;
use silmari_store::{MessageEdit, TransferOptions};

/// The signature of `tokens` as `src/search/signature.rs` defines it: bit
/// `fnv1a(token) % 512` for each word token (pair tokens and the cut mark
/// start with `·` and set none), bit `512 + fnv1a(first 4 bytes) % 256`
/// for each word token of 4 bytes or more; bit `p` is bit `p % 8` of byte
/// `p / 8`.
fn reference_signature(tokens: &[String]) -> Vec<u8> {
    let fnv1a = |bytes: &[u8]| {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bits = vec![0u8; 96];
    let mut set = |p: u64| bits[(p / 8) as usize] |= 1 << (p % 8);
    for token in tokens.iter().filter(|t| !t.starts_with('\u{b7}')) {
        set(fnv1a(token.as_bytes()) % 512);
        if let Some(head) = token.as_bytes().get(..4) {
            set(512 + fnv1a(head) % 256);
        }
    }
    bits
}

/// Asserts every message of `db` is indexed and signed with the signature
/// of its tokens; how many there are.
fn assert_signed(db: &Database, at: &str) -> usize {
    let rows = db
        .client()
        .query(
            "SELECT id::text, content, search_tokens, search_bits FROM messages",
            &[],
        )
        .unwrap();
    for row in &rows {
        let (id, content): (String, String) = (row.get(0), row.get(1));
        let tokens: Option<Vec<String>> = row.get(2);
        let bits: Option<Vec<u8>> = row.get(3);
        let tokens = tokens.unwrap_or_else(|| panic!("{at}: {id} {content:?} not indexed"));
        assert_eq!(
            bits,
            Some(reference_signature(&tokens)),
            "{at}: {id} {content:?}"
        );
    }
    rows.len()
}

#[test]
fn every_write_path_stores_the_signature_of_its_tokens() {
    let (Some(db), Some(other)) = (Database::create(), Database::create()) else {
        return;
    };
    let store = Store::open(&db.url).unwrap();
    let chats = store.conversations();
    let c = chats.create(NewConversation::titled("signatures")).unwrap();
    let text = |i: usize| format!("Chäpter {i}: the TIME of 東京タワー, e-mail ｆｕｌｌ {i}x");
    let one = chats
        .append_message(c.id, NewMessage::new(Role::User, text(0)))
        .unwrap();
    let few: Vec<NewMessage> = (1..10)
        .map(|i| NewMessage::new(Role::User, text(i)))
        .collect();
    chats.append_messages(c.id, few).unwrap(); // one INSERT
    let many: Vec<NewMessage> = (10..1_210)
        .map(|i| NewMessage::new(Role::User, text(i)))
        .collect();
    chats.append_messages(c.id, many).unwrap(); // binary COPY
    assert_eq!(assert_signed(&db, "appends"), 1_210);

    let edit = MessageEdit::new().content("an edited text about storms");
    chats.edit_message(one.id, edit).unwrap();
    let reply = chats
        .append_message(c.id, NewMessage::new(Role::Assistant, ""))
        .unwrap();
    for delta in ["The ", "weather ", "turned; ", "Ωmega ", "stormy"] {
        chats.append_to_message(reply.id, delta).unwrap();
    }
    let mut conversation = chats.get(c.id).unwrap().unwrap();
    conversation.messages[1].content = "updated in place".into();
    conversation.push_message(NewMessage::new(Role::User, "added by update"));
    chats.update(&conversation).unwrap();
    let parent = conversation.messages[0].id;
    let branch = NewMessage::new(Role::User, "a branch, edited and resent");
    chats.branch_from(c.id, Some(parent), branch).unwrap();
    assert_eq!(assert_signed(&db, "edits, deltas, update, branch"), 1_213);

    // Copied into another database, in small batches and in large ones.
    let target = Store::open(&other.url).unwrap();
    for batch_size in [7, 1_000] {
        target.conversations().delete(c.id).unwrap();
        let options = TransferOptions {
            batch_size,
            ..TransferOptions::default()
        };
        store.copy_to(&target, options, |_| {}).unwrap();
        assert_eq!(assert_signed(&other, "copied"), 1_213, "{batch_size}");
    }

    // Signatures taken away: the index build signs them again.
    db.client()
        .batch_execute("UPDATE messages SET search_bits = NULL WHERE position % 3 = 0")
        .unwrap();
    assert!(store.check().unwrap().search_index_mismatches > 400);
    store.migrations().build_search_index(|_| {}).unwrap();
    assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    assert_eq!(assert_signed(&db, "built again"), 1_213);
}
