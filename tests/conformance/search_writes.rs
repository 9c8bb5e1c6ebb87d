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

    // update() that renumbers: a message put first, the others' texts
    // unchanged (their index entries kept), one of them with a new role.
    let mut copy = get(store, c);
    let first = NewMessage::new(Role::System, "opening bearings");
    copy.messages.insert(0, Message::new(c, first));
    copy.messages[2].role = Role::User;
    let stored = store.conversations().update(&copy).unwrap();
    assert_eq!(found(store, "bearings"), id(&stored.messages[0]));
    assert_eq!(found(store, "compass"), id(&stored.messages[1]));
    assert_eq!(found(store, "sextant"), id(&stored.messages[2]));
    let by_user = SearchQuery::new("sextant").role(Role::User);
    assert_eq!(store.search(&by_user).unwrap().items.len(), 1);
    assert_eq!(store.check().unwrap().search_index_mismatches, 0);

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

/// Single appends found before and after the store indexes them (SQLite
/// indexes them a batch of 128 at a time, and searches read the newest
/// beside its index): each of 300 appends is found at once by its own
/// word, edits and streamed deltas of messages on both sides of a batch
/// are found by their new words only, and deleted ones not at all.
pub fn search_follows_appends_across_index_batches(store: &Store) {
    let c = conversation(store, "batches");
    // Edited, then deleted, before any batch could index it: nothing of it
    // is left in the index (`check` below counts the index's entries).
    let doomed = say(store, c, Role::User, "doomed words");
    let after = say(store, c, Role::User, "the following line");
    store
        .conversations()
        .edit_message(doomed.id, MessageEdit::new().content("doomed edited"))
        .unwrap();
    assert!(store.conversations().delete_message(doomed.id).unwrap());
    // Each message's own word now, or None once deleted; and words gone.
    let mut words: Vec<(Message, Option<String>)> = vec![(after, Some("following".to_owned()))];
    let mut gone: Vec<String> = vec!["doomed".to_owned(), "edited".to_owned()];
    for i in 0..300usize {
        let word = format!("note{i}x");
        let m = say(store, c, Role::User, &format!("a line about {word} here"));
        assert_eq!(found(store, &word), id(&m), "just appended");
        words.push((m, Some(word)));
        // Now and then an older message changes: an edit, a delta, a delete.
        let older = i / 2;
        let (m, word) = &mut words[older];
        let Some(old) = word.clone() else { continue };
        match i % 23 {
            5 => {
                let new = format!("edited{i}y");
                store
                    .conversations()
                    .edit_message(m.id, MessageEdit::new().content(format!("now {new}")))
                    .unwrap();
                gone.push(old);
                *word = Some(new);
            }
            11 => {
                let new = format!("grown{i}z");
                store
                    .conversations()
                    .append_to_message(m.id, &format!(" and {new}"))
                    .unwrap();
                assert_eq!(found(store, &new), id(m), "a delta");
                assert_eq!(found(store, &old), id(m), "the text before it");
            }
            17 => {
                assert!(store.conversations().delete_message(m.id).unwrap());
                gone.push(old);
                *word = None;
            }
            _ => {}
        }
    }
    for (m, word) in &words {
        if let Some(word) = word {
            assert_eq!(found(store, word), id(m), "{word}");
        }
    }
    for word in &gone {
        assert!(found(store, word).is_empty(), "{word} is gone");
    }
    let report = store.check().unwrap();
    assert_eq!(report.search_index_mismatches, 0, "{report:?}");
}

/// Titles found before and after the store indexes them (SQLite indexes
/// conversations created one at a time a batch of 128 at a time): each of
/// 300 is found at once, renamed ones by their new title only, and deleted
/// ones not at all, on both sides of a batch.
pub fn search_follows_titles_across_index_batches(store: &Store) {
    let title = |c: ConversationId| vec![format!("title:{c}")];
    // Renamed, then deleted, before any batch could index it.
    let doomed = conversation(store, "doomed voyage");
    let next = conversation(store, "following voyage");
    store
        .conversations()
        .edit(doomed, ConversationEdit::new().title("doomed renamed"))
        .unwrap();
    assert!(store.conversations().delete(doomed).unwrap());
    let mut names: Vec<(ConversationId, Option<String>)> =
        vec![(next, Some("following".to_owned()))];
    let mut gone: Vec<String> = vec!["doomed".to_owned(), "renamed".to_owned()];
    for i in 0..300usize {
        let word = format!("chart{i}x");
        let c = conversation(store, &format!("sea {word}"));
        assert_eq!(found(store, &word), title(c), "just created");
        names.push((c, Some(word)));
        let (older, name) = &mut names[i / 2];
        let Some(old) = name.clone() else { continue };
        match i % 19 {
            4 => {
                let new = format!("renamed{i}y");
                store
                    .conversations()
                    .edit(*older, ConversationEdit::new().title(format!("sea {new}")))
                    .unwrap();
                gone.push(old);
                *name = Some(new);
            }
            13 => {
                assert!(store.conversations().delete(*older).unwrap());
                gone.push(old);
                *name = None;
            }
            _ => {}
        }
    }
    for (c, name) in &names {
        if let Some(name) = name {
            assert_eq!(found(store, name), title(*c), "{name}");
        }
    }
    for word in &gone {
        assert!(found(store, word).is_empty(), "{word} is gone");
    }
    let report = store.check().unwrap();
    assert_eq!(report.search_index_mismatches, 0, "{report:?}");
}
