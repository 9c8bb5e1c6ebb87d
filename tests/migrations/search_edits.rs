//! V8 on SQLite: an edit of an indexed text writes no index. The text takes
//! a new search rowid above its kind's mark and waits for its batch; its
//! old entry is listed in `search_stale` until that batch drops it. Every
//! search sees the new text and never the old one, the health check counts
//! nothing out of step, and the list stays bounded.

use silmari_store::prelude::*;
use silmari_store::{
    Checkpoint, ConversationEdit, MessageEdit, MigrationTarget, SearchQuery, SqliteOptions,
};

use crate::on_every_sqlite_file;
use crate::search_attacks::assert_exact;

/// Entries listed as held by no text: of messages, of titles.
fn stale(raw: &rusqlite::Connection) -> (i64, i64) {
    raw.query_row(
        "SELECT (SELECT COUNT(*) FROM search_stale WHERE rowid > 0), \
             (SELECT COUNT(*) FROM search_stale WHERE rowid < 0)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn hits(store: &Store, query: &str) -> usize {
    let query = SearchQuery::new(query).limit(1000).newest_first();
    store.search(&query).unwrap().items.len()
}

/// A conversation titled `title` of `texts`, written as one batch (so
/// indexed at once); its id and its messages'.
pub(crate) fn indexed_conversation(
    store: &Store,
    title: &str,
    texts: impl Iterator<Item = String>,
) -> (ConversationId, Vec<MessageId>) {
    let c = store
        .conversations()
        .create(NewConversation::titled(title))
        .unwrap()
        .id;
    let batch = texts.map(|text| NewMessage::new(Role::User, text));
    let ids = store
        .conversations()
        .append_messages(c, batch.collect())
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    (c, ids)
}

/// A store on `db` with one conversation of `n` indexed messages, a raw
/// connection beside it, and the messages' ids.
fn with_indexed(db: &crate::db::Db, n: usize) -> (Store, rusqlite::Connection, Vec<MessageId>) {
    let store = db.open().unwrap();
    let (_, ids) = indexed_conversation(&store, "edits", (0..n).map(|i| format!("before{i} text")));
    (store, db.raw(), ids)
}

fn edit(store: &Store, id: MessageId, text: String) {
    store
        .conversations()
        .edit_message(id, MessageEdit::new().content(text))
        .unwrap();
}

#[test]
fn an_edit_waits_for_its_batch_and_its_old_entry_goes_with_it() {
    on_every_sqlite_file(|db| {
        let (store, raw, ids) = with_indexed(db, 300);
        assert_eq!(stale(&raw), (0, 0));
        for (i, id) in ids.iter().enumerate().take(100) {
            edit(&store, *id, format!("after{i} text"));
            assert_eq!(stale(&raw).0, i as i64 + 1, "edit {i}");
            assert_eq!(hits(&store, &format!("before{i}")), 0, "edit {i}");
            assert_eq!(hits(&store, &format!("after{i}")), 1, "edit {i}");
            if i % 10 == 0 {
                assert_exact(&raw, &format!("edit {i}"));
            }
        }
        // Edited again while it waits: nothing more is listed.
        edit(&store, ids[0], "again0 text".into());
        assert_eq!(stale(&raw).0, 100);
        assert_eq!((hits(&store, "after0"), hits(&store, "again0")), (0, 1));
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
        // The 128th waiting text brings the batch, which drops the list.
        for (i, id) in ids.iter().enumerate().take(128).skip(100) {
            edit(&store, *id, format!("after{i} text"));
        }
        assert_eq!(stale(&raw), (0, 0));
        assert_exact(&raw, "after the batch");
        assert_eq!(hits(&store, "text"), 300);
        assert_eq!(hits(&store, "before5"), 0);
        assert_eq!(hits(&store, "before200"), 1);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

#[test]
fn a_renamed_title_waits_like_an_edited_message() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("Harbour notes"))
            .unwrap()
            .id;
        drop(store);
        // Opening again indexes the waiting title.
        let store = db.open().unwrap();
        let raw = db.raw();
        let title_hits = |q: &str| {
            let query = SearchQuery::new(q).newest_first();
            store.search(&query).unwrap().items.len()
        };
        assert_eq!(title_hits("harbour"), 1);
        store
            .conversations()
            .edit(c, ConversationEdit::new().title("Lighthouse notes"))
            .unwrap();
        assert_eq!(stale(&raw), (0, 1));
        assert_exact(&raw, "renamed");
        assert_eq!((title_hits("harbour"), title_hits("lighthouse")), (0, 1));
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);

        // Written again unchanged (`update` writes the title with every
        // other change): nothing is listed and the title stays indexed.
        drop(store);
        let store = db.open().unwrap();
        let title_rowid = || -> i64 {
            raw.query_row("SELECT search_rowid FROM conversations", [], |r| r.get(0))
                .unwrap()
        };
        let before = title_rowid();
        let conversations = store.conversations();
        conversations
            .edit(c, ConversationEdit::new().title("Lighthouse notes"))
            .unwrap();
        let mut whole = conversations.get(c).unwrap().unwrap();
        whole
            .messages
            .push(Message::new(c, NewMessage::new(Role::User, "a new line")));
        conversations.update(&whole).unwrap();
        assert_eq!((stale(&raw), title_rowid()), ((0, 0), before));
        assert_exact(&raw, "written unchanged");
    });
}

/// `update` that renumbers a conversation (a message put first) and
/// changes one text lists and moves that text only: the others keep their
/// index entries, and every text is found by its words.
#[test]
fn an_update_that_reorders_keeps_the_entries_of_unchanged_texts() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let raw = db.raw();
        let texts = (0..20).map(|i| format!("kept{i} text"));
        let (c, _) = indexed_conversation(&store, "reorder", texts);
        let rowids = || -> Vec<i64> {
            let mut statement = raw
                .prepare("SELECT search_rowid FROM messages ORDER BY created_at, id")
                .unwrap();
            let rows = statement.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let before = rowids();
        let conversations = store.conversations();
        let mut whole = conversations.get(c).unwrap().unwrap();
        let first = Message::new(c, NewMessage::new(Role::System, "opening words"));
        whole.messages.insert(0, first);
        whole.messages[6].content = "changed5 text".into();
        conversations.update(&whole).unwrap();
        let after = rowids();
        let moved: Vec<usize> = (0..before.len())
            .filter(|&i| after[i] != before[i])
            .collect();
        assert_eq!(moved, [5], "only the changed text moves");
        // The changed text's old entry is gone: the message put first was
        // inserted after the rewrites, and an insert indexes what waits.
        assert_eq!(stale(&raw), (0, 0));
        assert_eq!((hits(&store, "kept5"), hits(&store, "changed5")), (0, 1));
        assert_eq!((hits(&store, "kept19"), hits(&store, "opening")), (1, 1));
        assert_eq!(hits(&store, "text"), 20);
        assert_exact(&raw, "after a reordering update");
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

#[test]
fn edits_of_texts_then_deleted_keep_the_list_bounded() {
    on_every_sqlite_file(|db| {
        let (store, raw, ids) = with_indexed(db, 400);
        let mut most = 0;
        // Each edit lists an entry and leaves a text waiting, which the
        // delete then takes away: no batch comes from waiting texts.
        for (i, id) in ids.iter().enumerate() {
            edit(&store, *id, format!("gone{i} text"));
            assert!(store.conversations().delete_message(*id).unwrap());
            most = most.max(stale(&raw).0);
        }
        // The edit that lists the 128th drops them all.
        assert_eq!(most, 127, "listed at most");
        assert_exact(&raw, "after 400 edits and deletes");
        assert_eq!(hits(&store, "text"), 0);
        assert_eq!(hits(&store, "gone399"), 0);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

#[test]
fn a_rolled_back_edit_lists_nothing_and_a_rebuild_empties_the_list() {
    on_every_sqlite_file(|db| {
        let (store, raw, ids) = with_indexed(db, 10);
        let result: Result<(), Error> = store.transaction(|tx| {
            tx.conversations()
                .edit_message(ids[0], MessageEdit::new().content("undone text"))?;
            Err(Error::InTransaction)
        });
        assert!(result.is_err());
        assert_eq!(stale(&raw), (0, 0));
        assert_eq!((hits(&store, "before0"), hits(&store, "undone")), (1, 0));
        edit(&store, ids[1], "kept text".into());
        assert_eq!(stale(&raw), (1, 0));
        store.migrations().rebuild_search_index(|_| {}).unwrap();
        assert_eq!(stale(&raw), (0, 0));
        assert_exact(&raw, "rebuilt");
        assert_eq!((hits(&store, "before1"), hits(&store, "kept")), (0, 1));
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

#[test]
fn down_to_v7_drops_the_listed_entries_and_edits_there_unindex_at_once() {
    on_every_sqlite_file(|db| {
        let (store, raw, ids) = with_indexed(db, 20);
        for (i, id) in ids.iter().enumerate().take(5) {
            edit(&store, *id, format!("after{i} text"));
        }
        assert_eq!(stale(&raw), (5, 0));
        store
            .migrations()
            .migrate(MigrationTarget::Version(7))
            .unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.schema_version, 7);
        assert_eq!(report.search_index_mismatches, 0, "{report:?}");
        assert_eq!((hits(&store, "before0"), hits(&store, "after0")), (0, 1));
        // Under this build at V7 (no list), an edit drops the old entry at once.
        edit(&store, ids[10], "moved text".into());
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
        assert_eq!((hits(&store, "before10"), hits(&store, "moved")), (0, 1));
        store.migrations().up().unwrap();
        assert_eq!(stale(&raw), (0, 0));
        assert_exact(&raw, "up again");
        assert_eq!(hits(&store, "text"), 20);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

/// An edit or a streamed delta of a text that waits for its batch writes
/// the pages the hand-written `UPDATE`s of the same write do: it reads the
/// text's search rowid, where setting it to itself wrote a page of its
/// index at every call.
#[test]
fn a_waiting_text_s_edits_write_the_pages_of_their_updates() {
    on_every_sqlite_file(|db| {
        let never = Checkpoint::Inline { pages: 1_000_000 };
        let options = SqliteOptions {
            checkpoint: never,
            snapshots_kept: 0,
            ..SqliteOptions::default()
        };
        let store = db.builder().sqlite(options).open().unwrap();
        let raw = db.raw();
        let (c, ids) = indexed_conversation(&store, "pages", (0..10).map(|i| format!("text {i}")));
        // The first edit moves the text above the mark, where it waits.
        edit(&store, ids[0], "waiting text".into());
        let logged = |write: &dyn Fn(usize)| -> i64 {
            let restarted: i64 = raw
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .unwrap();
            assert_eq!(restarted, 0, "the log restarts");
            (0..20).for_each(write);
            raw.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
                .unwrap()
        };
        let (id, conversation) = (ids[0].to_string(), c.to_string());
        let by_hand = |content: &str, i: usize| {
            let sql = format!(
                "BEGIN IMMEDIATE; UPDATE messages SET content = {content} WHERE id = '{id}'; \
                 UPDATE conversations SET updated_at = updated_at + 1, version = version + 1 \
                 WHERE id = '{conversation}'; COMMIT;"
            );
            raw.execute_batch(&sql.replace("{i}", &i.to_string()))
                .unwrap();
        };
        let edits = logged(&|i| edit(&store, ids[0], format!("edit {i}")));
        assert_eq!(edits, logged(&|i| by_hand("'edit {i}'", i)), "edits");
        let deltas = logged(&|i| {
            store
                .conversations()
                .append_to_message(ids[0], &format!(" delta{i}"))
                .map(drop)
                .unwrap()
        });
        assert_eq!(
            deltas,
            logged(&|i| by_hand("content || ' delta{i}'", i)),
            "deltas"
        );
        assert_eq!(hits(&store, "delta19"), 1);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}
