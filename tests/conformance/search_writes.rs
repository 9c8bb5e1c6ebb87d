//! The search index follows every write path: append, batches, edit,
//! streaming, delete, branch, update, title edits, conversation delete,
//! and rolled-back transactions, on every backend.

use silmari_store::prelude::*;
use silmari_store::{ConversationEdit, SearchQuery};

use crate::search_corpus::all_hits;
use crate::support::{conversation, get, say};

/// Texts found by `query` (all branches, archived too): their message ids,
/// or for titles the conversation id, as strings, sorted.
fn found(store: &Store, query: &str) -> Vec<String> {
    let query = SearchQuery::new(query)
        .all_branches()
        .archived(silmari_store::Archived::Include)
        .newest_first();
    let mut ids: Vec<String> = all_hits(store, query, 7)
        .into_iter()
        .map(|h| match h.message {
            Some(m) => m.id.to_string(),
            None => format!("title:{}", h.conversation.id),
        })
        .collect();
    ids.sort();
    ids
}

fn id(m: &Message) -> Vec<String> {
    vec![m.id.to_string()]
}

pub fn search_follows_message_writes(store: &Store) {
    let c = conversation(store, "writes");
    let m = say(store, c, Role::User, "first draft about gardens");
    assert_eq!(found(store, "gardens"), id(&m));

    // Edit: the new words are found, the old ones are not.
    store
        .conversations()
        .edit_message(
            m.id,
            MessageEdit::new().content("second draft about orchards"),
        )
        .unwrap();
    assert!(found(store, "gardens").is_empty());
    assert_eq!(found(store, "orchards"), id(&m));
    // An edit of attachments only keeps the text findable.
    store
        .conversations()
        .edit_message(m.id, MessageEdit::new().attachments(vec![]))
        .unwrap();
    assert_eq!(found(store, "orchards"), id(&m));

    // Streaming: each delta is searchable once written.
    let reply = say(store, c, Role::Assistant, "");
    for delta in ["Pears ", "and plu", "ms grow here"] {
        store
            .conversations()
            .append_to_message(reply.id, delta)
            .unwrap();
    }
    assert_eq!(found(store, "plums"), id(&reply));
    assert!(
        found(store, "plu").is_empty(),
        "a word cut by a delta is whole"
    );

    // Batches.
    let batch = store
        .conversations()
        .append_messages(
            c,
            vec![
                NewMessage::new(Role::User, "batch one lighthouse"),
                NewMessage::new(Role::User, "batch two lighthouse"),
            ],
        )
        .unwrap();
    let mut both: Vec<String> = batch.iter().map(|m| m.id.to_string()).collect();
    both.sort();
    assert_eq!(found(store, "lighthouse"), both);

    // Delete one message.
    store.conversations().delete_message(batch[0].id).unwrap();
    assert_eq!(found(store, "lighthouse"), id(&batch[1]));

    // Branch: the regenerated reply is found, and so is the one it replaced.
    let alt = store
        .conversations()
        .branch_from(
            c,
            Some(m.id),
            NewMessage::new(Role::Assistant, "cherries instead"),
        )
        .unwrap();
    assert_eq!(found(store, "cherries"), id(&alt));
    assert_eq!(found(store, "plums"), id(&reply));
    let current = SearchQuery::new("plums").newest_first();
    assert!(
        store.search(&current).unwrap().items.is_empty(),
        "off the current branch"
    );

    // Delete a branch.
    store.conversations().delete_branch(alt.id).unwrap();
    assert!(found(store, "cherries").is_empty());
}

pub fn search_follows_update_and_titles(store: &Store) {
    let c = conversation(store, "Untitled");
    say(store, c, Role::User, "kept words");
    let gone = say(store, c, Role::User, "dropped words");

    // update(): one message rewritten, one dropped, one added, the title changed.
    let mut copy = get(store, c);
    copy.title = "Voyage planning".into();
    copy.messages[0].content = "rewritten compass".into();
    copy.messages.remove(1);
    copy.messages.push(Message::new(
        c,
        NewMessage::new(Role::Assistant, "added sextant"),
    ));
    let stored = store.conversations().update(&copy).unwrap();
    assert!(found(store, "kept").is_empty());
    assert!(found(store, "dropped").is_empty(), "{:?}", gone.id);
    assert_eq!(found(store, "compass"), id(&stored.messages[0]));
    assert_eq!(found(store, "sextant"), id(&stored.messages[1]));
    assert_eq!(found(store, "voyage"), [format!("title:{c}")]);
    assert!(found(store, "untitled").is_empty());

    // edit(): the title alone.
    store
        .conversations()
        .edit(c, ConversationEdit::new().title("Harbour charts"))
        .unwrap();
    assert!(found(store, "voyage").is_empty());
    assert_eq!(found(store, "charts"), [format!("title:{c}")]);

    // Deleting the conversation takes its messages and title out.
    assert!(store.conversations().delete(c).unwrap());
    assert!(found(store, "charts").is_empty());
    assert!(found(store, "compass").is_empty());
}

pub fn search_ignores_rolled_back_writes(store: &Store) {
    let c = conversation(store, "rollback");
    let kept = say(store, c, Role::User, "anchor chain");
    let result: silmari_store::Result<()> = store.transaction(|tx| {
        tx.conversations()
            .append_message(c, NewMessage::new(Role::User, "phantom anchor"))?;
        tx.conversations()
            .edit_message(kept.id, MessageEdit::new().content("phantom edit"))?;
        let other = tx
            .conversations()
            .create(NewConversation::titled("phantom title"))?;
        tx.conversations().delete(other.id)?;
        tx.conversations()
            .create(NewConversation::titled("phantom again"))?;
        Err(silmari_store::Error::InvalidInput {
            field: "test".into(),
            reason: "roll back".into(),
        })
    });
    assert!(result.is_err());
    assert!(found(store, "phantom").is_empty());
    assert_eq!(found(store, "anchor"), id(&kept));
    assert_eq!(found(store, "chain"), id(&kept));
}

/// Imports and copies into the store index what they write: a JSON Lines
/// import and a copy from another store (their branches too), both merged
/// into a store that holds data.
pub fn search_follows_imports_and_copies(store: &Store) {
    let c = conversation(store, "already here");
    say(store, c, Role::User, "resident text");
    let source = Store::open("memory://").unwrap();
    let imported = source
        .conversations()
        .create(NewConversation::titled("Imported voyage"))
        .unwrap();
    let first = say(&source, imported.id, Role::User, "lighthouse keeper");
    source
        .conversations()
        .branch_from(
            imported.id,
            None,
            NewMessage::new(Role::User, "foghorn instead"),
        )
        .unwrap();
    let mut lines = Vec::new();
    source.export_jsonl(&mut lines, |_| {}).unwrap();
    let merge = silmari_store::TransferOptions {
        merge: true,
        ..Default::default()
    };
    store.import_jsonl(&lines[..], merge, |_| {}).unwrap();
    assert_eq!(found(store, "lighthouse"), id(&first));
    assert_eq!(found(store, "foghorn").len(), 1);
    assert_eq!(found(store, "voyage"), [format!("title:{}", imported.id)]);

    let other = Store::open("memory://").unwrap();
    let copied = other
        .conversations()
        .create(NewConversation::titled("Copied chart"))
        .unwrap();
    let m = say(&other, copied.id, Role::Assistant, "sextant readings");
    other.copy_to(store, merge, |_| {}).unwrap();
    assert_eq!(found(store, "sextant"), id(&m));
    assert_eq!(found(store, "chart"), [format!("title:{}", copied.id)]);
    assert_eq!(found(store, "resident").len(), 1);
}
