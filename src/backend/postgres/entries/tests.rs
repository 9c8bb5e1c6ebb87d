//! Every way a message's text reaches PostgreSQL stores the signature of
//! the tokens stored with it: the walks' bit test relies on it.

use uuid::Uuid;

use super::super::test_database::TestDatabase;
use crate::model::{MessageEdit, NewConversation, NewMessage, Role};
use crate::prelude::*;
use crate::search::signature::Signature;
use crate::{Store, TransferOptions};

/// A message's id, stored tokens and signature, and content.
type Entry = (Uuid, Option<Vec<String>>, Option<Vec<u8>>, String);

/// Each message's entry.
fn entries(db: &mut TestDatabase) -> Vec<Entry> {
    db.conn
        .client
        .query(
            "SELECT id, search_tokens, search_bits, content FROM messages ORDER BY id",
            &[],
        )
        .expect("entries")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Asserts every message is signed with the signature of its tokens.
fn assert_signed(db: &mut TestDatabase, at: &str) -> usize {
    let all = entries(db);
    for (id, tokens, bits, content) in &all {
        let tokens = tokens
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: {id} {content:?} unindexed"));
        let expected = Signature::of_list(tokens);
        assert_eq!(
            bits.as_deref(),
            Some(expected.as_bytes()),
            "{at}: {id} {content:?}"
        );
    }
    all.len()
}

#[test]
fn every_write_path_stores_the_signature_of_its_tokens() {
    let (Some(mut db), Some(mut other)) = (TestDatabase::create(), TestDatabase::create()) else {
        return;
    };
    let store = Store::open(&db.url()).expect("open");
    let chats = store.conversations();
    let c = chats
        .create(NewConversation::titled("signatures"))
        .expect("create");
    let text = |i: usize| format!("Chäpter {i}: the TIME of 東京タワー, e-mail ｆｕｌｌ {i}x");
    let one = chats
        .append_message(c.id, NewMessage::new(Role::User, text(0)))
        .expect("append");
    let few: Vec<NewMessage> = (1..10)
        .map(|i| NewMessage::new(Role::User, text(i)))
        .collect();
    chats.append_messages(c.id, few).expect("a batch by INSERT");
    let many: Vec<NewMessage> = (10..1_210)
        .map(|i| NewMessage::new(Role::User, text(i)))
        .collect();
    chats.append_messages(c.id, many).expect("a batch by COPY");
    assert_eq!(assert_signed(&mut db, "appends"), 1_210);

    let edit = MessageEdit::new().content("an edited text about storms");
    chats.edit_message(one.id, edit).expect("edit");
    let reply = chats
        .append_message(c.id, NewMessage::new(Role::Assistant, ""))
        .expect("empty reply");
    for delta in ["The ", "weather ", "turned; ", "Ωmega ", "stormy"] {
        chats.append_to_message(reply.id, delta).expect("delta");
    }
    let mut conversation = chats.get(c.id).expect("get").expect("there");
    conversation.messages[1].content = "updated in place".into();
    conversation.push_message(NewMessage::new(Role::User, "added by update"));
    chats.update(&conversation).expect("update");
    let parent = conversation.messages[0].id;
    let branch = NewMessage::new(Role::User, "a branch, edited and resent");
    chats
        .branch_from(c.id, Some(parent), branch)
        .expect("branch");
    assert_eq!(
        assert_signed(&mut db, "edits, deltas, update, branch"),
        1_213
    );

    // Copied into another database, and imported back in batches.
    let target = Store::open(&other.url()).expect("open target");
    for batch_size in [7, 1_000] {
        target
            .conversations()
            .delete(c.id)
            .expect("clear the target");
        let options = TransferOptions {
            batch_size,
            ..TransferOptions::default()
        };
        store.copy_to(&target, options, |_| {}).expect("copy");
        assert_eq!(assert_signed(&mut other, "copied"), 1_213, "{batch_size}");
    }

    // Signatures taken away: the index build signs them again.
    db.conn
        .client
        .batch_execute("UPDATE messages SET search_bits = NULL WHERE position % 3 = 0")
        .expect("unsign");
    assert!(store.check().expect("check").search_index_mismatches > 400);
    store
        .migrations()
        .build_search_index(|_| {})
        .expect("build");
    assert_eq!(store.check().expect("check").search_index_mismatches, 0);
    assert_eq!(assert_signed(&mut db, "built again"), 1_213);
}
