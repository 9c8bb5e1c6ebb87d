//! V7 on SQLite: single appends wait above a mark and are indexed a batch
//! at a time; a store opened again indexes what waited, and down to V6
//! and up again leaves every text findable. V8: edits of indexed texts
//! wait too, their old entries listed for the batch to drop.

use silmari_store::prelude::*;
use silmari_store::{MigrationTarget, SearchQuery};

use crate::on_every_sqlite_file;

/// The mark and the highest search rowid of a message, read raw.
fn mark_and_top(raw: &rusqlite::Connection) -> (i64, i64) {
    raw.query_row(
        "SELECT (SELECT indexed_upto FROM search_progress), \
             (SELECT COALESCE(MAX(search_rowid), 0) FROM messages)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Index entries of messages, and messages at or below the mark with the
/// message entries listed as held by no text (V8).
fn entries_and_indexed(raw: &rusqlite::Connection) -> (i64, i64) {
    raw.query_row(
        "SELECT (SELECT COUNT(*) FROM search_index WHERE rowid > 0), \
             (SELECT COUNT(*) FROM messages \
              WHERE search_rowid <= (SELECT indexed_upto FROM search_progress)) \
             + (SELECT COUNT(*) FROM search_stale WHERE rowid > 0)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A store on `db`, a raw connection beside it, and a new conversation.
fn opened(db: &crate::db::Db, title: &str) -> (Store, rusqlite::Connection, ConversationId) {
    let store = db.open().unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled(title))
        .unwrap()
        .id;
    (store, db.raw(), c)
}

fn hits(store: &Store, query: &str) -> usize {
    let query = SearchQuery::new(query).limit(1000).newest_first();
    store.search(&query).unwrap().items.len()
}

fn append(store: &Store, c: ConversationId, text: String) {
    store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, text))
        .unwrap();
}

#[test]
fn appends_wait_above_the_mark_a_batch_at_most() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "batches");
        let (mut waited, mut moves, mut last_mark) = (0, 0, 0);
        for i in 0..600 {
            append(&store, c, format!("entry{i} of the log"));
            let (mark, top) = mark_and_top(&raw);
            assert!(top - mark < 128, "{} wait after append {i}", top - mark);
            waited = waited.max(top - mark);
            if mark != last_mark {
                moves += 1;
                last_mark = mark;
                // Exactly the messages at or below the mark have entries.
                let (entries, indexed) = entries_and_indexed(&raw);
                assert_eq!(entries, indexed, "after append {i}");
            }
        }
        assert_eq!(waited, 127, "the most that waited");
        assert_eq!(moves, 600 / 128, "one batch per 128 appends");
        assert_eq!(hits(&store, "entry599"), 1, "the newest, above the mark");
        assert_eq!(hits(&store, "entry3"), 1, "an old one, in the index");
        assert_eq!(hits(&store, "log"), 600);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

#[test]
fn a_store_opened_again_indexes_what_waited() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "waiting");
        for i in 0..50 {
            append(&store, c, format!("waiting{i} line"));
        }
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(top - mark, 50);
        drop(store);
        let store = db.open().unwrap();
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(mark, top, "indexed on open");
        assert_eq!(entries_and_indexed(&raw), (50, 50));
        assert_eq!(hits(&store, "line"), 50);
    });
}

#[test]
fn down_to_v6_and_up_again_keeps_waiting_texts_findable() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "down");
        for i in 0..140 {
            append(&store, c, format!("kept{i} words"));
        }
        let (mark, top) = mark_and_top(&raw);
        assert!(mark > 0 && top > mark, "some indexed, some waiting");
        store
            .migrations()
            .migrate(MigrationTarget::Version(6))
            .unwrap();
        // V6 has no mark: what waited lost its rowid and was indexed by
        // the build that follows a migration.
        let report = store.check().unwrap();
        assert_eq!(report.schema_version, 6);
        assert_eq!(report.search_index_mismatches, 0, "{report:?}");
        let unindexed: i64 = db
            .raw()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE search_rowid IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unindexed, 0);
        store.migrations().up().unwrap();
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(mark, top, "V7 starts with everything indexed");
        assert_eq!(hits(&store, "words"), 140);
        assert_eq!(hits(&store, "kept139"), 1);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

/// A build that indexes the same texts again and again (here a hostile
/// trigger takes the titles' mark back; a damaged index can do as much) is
/// refused with an error after a bounded number of batches, instead of
/// running forever.
#[test]
fn a_build_that_never_finishes_is_refused_not_endless() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        for i in 0..600 {
            store
                .conversations()
                .create(NewConversation::titled(format!("looping title {i}")))
                .unwrap();
        }
        drop(store);
        // Every title to index again, and again after every batch: each
        // batch is a full one.
        db.execute(
            "UPDATE search_progress SET titles_indexed_upto = 0; \
             CREATE TRIGGER take_back AFTER UPDATE OF titles_indexed_upto ON search_progress \
             BEGIN UPDATE search_progress SET titles_indexed_upto = 0; END",
        );
        let started = std::time::Instant::now();
        let error = db.open().expect_err("the build cannot finish");
        assert!(
            matches!(&error, Error::Migration { message, .. } if message.contains("did not finish")),
            "{error:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    });
}

/// A build while another store keeps appending (here one append between
/// every two batches) ends: what is written after it began is the writers'
/// to index (found by a review: it used to chase them, then fail).
#[test]
fn a_build_beside_a_writer_ends() {
    on_every_sqlite_file(|db| {
        let writer = db.open().unwrap();
        let c = writer
            .conversations()
            .create(NewConversation::titled("busy"))
            .unwrap()
            .id;
        append(&writer, c, "waiting".to_owned());
        let builder = db.builder().migrate_on_open(false).open().unwrap();
        let mut batches = 0;
        let built = builder.migrations().build_search_index(|_| {
            batches += 1;
            append(&writer, c, format!("meanwhile {batches}"));
        });
        assert!(built.is_ok(), "after {batches} batches: {built:?}");
        assert_eq!(hits(&writer, "meanwhile"), batches);
    });
}

/// An insert of a batch that fails halfway inside a transaction the caller
/// commits all the same leaves no index entry above the mark (found by a
/// review: the entry outlived its message, and `check` counted it).
#[test]
fn a_batch_failing_halfway_in_a_committed_transaction_leaves_the_index_exact() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let chats = store.conversations();
        let c = chats.create(NewConversation::titled("t")).unwrap().id;
        let taken = chats
            .append_message(c, NewMessage::new(Role::User, "first"))
            .unwrap();
        let mut duplicate = NewMessage::new(Role::User, "second");
        duplicate.id = Some(taken.id);
        store
            .transaction(|tx| -> silmari_store::Result<()> {
                let refused = tx
                    .conversations()
                    .append_messages(c, vec![NewMessage::new(Role::User, "stray"), duplicate]);
                assert!(
                    matches!(refused, Err(Error::Conflict { .. })),
                    "{refused:?}"
                );
                Ok(())
            })
            .unwrap();
        let stray = chats
            .get(c)
            .unwrap()
            .unwrap()
            .messages
            .into_iter()
            .find(|m| m.content == "stray");
        if let Some(stray) = stray {
            chats.delete_message(stray.id).unwrap();
        }
        for i in 0..130 {
            append(&store, c, format!("m{i}"));
        }
        let report = store.check().unwrap();
        assert_eq!(report.search_index_mismatches, 0, "{report:?}");
    });
}

/// A long text does not wait above the mark, nor a streamed reply once it
/// grows long: what a search reads beside the index stays small, whatever
/// the texts (found by a review: 127 waiting texts of 512 KiB made every
/// rare-word search take 1.4 s).
#[test]
fn long_texts_are_indexed_at_once() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "long");
        append(&store, c, "short".to_owned());
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(top - mark, 1, "a short text waits");
        append(&store, c, "東京駅 café ".repeat(400));
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(mark, top, "a long one is indexed, with the one waiting");
        let reply = store
            .conversations()
            .append_message(c, NewMessage::new(Role::Assistant, ""))
            .unwrap();
        for _ in 0..200 {
            // 32 bytes each: past 4 KiB halfway.
            store
                .conversations()
                .append_to_message(reply.id, "a streamed delta of some length ")
                .unwrap();
        }
        let (mark, top) = mark_and_top(&raw);
        assert_eq!(
            (top - mark, long_waiting(&raw)),
            (1, 1),
            "a reply that grew past 4 KiB waits, the only long text waiting"
        );
        assert_eq!(hits(&store, "delta"), 1);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

/// Messages waiting above the mark with more than 4 KiB, read raw.
fn long_waiting(raw: &rusqlite::Connection) -> i64 {
    raw.query_row(
        "SELECT COUNT(*) FROM messages WHERE search_rowid > \
         (SELECT indexed_upto FROM search_progress) AND length(CAST(content AS BLOB)) > 4096",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Long replies streamed side by side, each delta with words of its own:
/// at most one long text waits at any time (the other is indexed again at
/// each delta, as before), every word of both is found at every step, the
/// index holds exactly the texts at or below the mark, and a reply past
/// 256 KiB no longer waits.
#[test]
fn long_streamed_replies_wait_one_at_a_time_and_are_found_at_every_delta() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "streams");
        let conversations = store.conversations();
        let reply = |_| {
            conversations
                .append_message(c, NewMessage::new(Role::Assistant, ""))
                .unwrap()
                .id
        };
        let replies: Vec<MessageId> = (0..2).map(reply).collect();
        for step in 0..400 {
            let which = if step < 150 { 0 } else { step % 2 };
            let delta = format!("reply{which} step{step} {:<40}", "and more words");
            conversations
                .append_to_message(replies[which], &delta)
                .unwrap();
            assert!(long_waiting(&raw) <= 1, "step {step}");
            if step % 25 == 0 || step > 390 {
                assert_eq!(hits(&store, &format!("step{step}")), 1, "step {step}");
                assert_eq!(hits(&store, "step0"), 1, "step {step}");
                let (entries, indexed) = entries_and_indexed(&raw);
                assert_eq!(entries, indexed, "step {step}");
            }
        }
        assert_eq!(long_waiting(&raw), 1);
        assert_eq!(hits(&store, "reply1"), 1);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);

        // Past 256 KiB a reply no longer waits: each delta indexes it.
        let big = "w".repeat(64 * 1024);
        for _ in 0..5 {
            conversations.append_to_message(replies[0], &big).unwrap();
        }
        assert_eq!(long_waiting(&raw), 0, "the big reply is indexed");
        assert_eq!(hits(&store, "reply0"), 1);
        let (entries, indexed) = entries_and_indexed(&raw);
        assert_eq!(entries, indexed);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}

/// An open whose index build meets an SQLite error (a corrupt page among
/// the waiting texts, after a kill and a deleted `-wal`, in CI; here a
/// hostile trigger) is a typed `Error::Open` naming the file, not a bare
/// backend error.
#[test]
fn an_open_whose_index_build_fails_is_a_typed_open_error() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "waits");
        append(&store, c, "a waiting text".to_owned());
        drop(store);
        raw.execute_batch(
            "CREATE TRIGGER refuse BEFORE UPDATE ON search_progress \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .unwrap();
        let error = db.open().expect_err("the build fails");
        assert!(matches!(&error, Error::Open { .. }), "{error:?}");
        raw.execute_batch("DROP TRIGGER refuse").unwrap();
        let store = db.open().unwrap();
        assert_eq!(hits(&store, "waiting"), 1);
    });
}

/// Found by a review: a reply put back to wait counts toward the batch (a
/// reply of 4,090 bytes grown past 4 KiB with 127 texts waiting starts the
/// batch); and a long text an index rebuild has not reached yet, grown
/// while the rebuild runs, waits only if no other long text does.
#[test]
fn a_reply_put_back_to_wait_counts_and_a_rebuild_keeps_one_long_text_waiting() {
    on_every_sqlite_file(|db| {
        let (store, raw, c) = opened(db, "review");
        let conversations = store.conversations();
        let say = |role, text: String| {
            conversations
                .append_message(c, NewMessage::new(role, text))
                .unwrap()
                .id
        };
        let reply = say(Role::Assistant, "x".repeat(4090));
        say(Role::User, "y ".repeat(2100)); // long: everything indexed
        for i in 0..127 {
            say(Role::User, format!("s{i}"));
        }
        conversations
            .append_to_message(reply, " grownpast")
            .unwrap();
        let (mark, top) = mark_and_top(&raw);
        assert!(top - mark < 128, "{} wait", top - mark);
        assert_eq!(hits(&store, "grownpast"), 1);

        for i in 0..1200 {
            say(Role::User, format!("short{i} text"));
        }
        let long = [0, 1].map(|i| say(Role::Assistant, format!("long{i} ").repeat(700)));
        let mut during = None;
        store
            .migrations()
            .rebuild_search_index(|_| {
                if during.is_none() {
                    for id in long {
                        conversations.append_to_message(id, " grown").unwrap();
                    }
                    during = Some(long_waiting(&raw));
                }
            })
            .unwrap();
        let during = during.expect("the rebuild reported progress");
        assert!(
            during <= 1,
            "{during} long texts waiting during the rebuild"
        );
        assert_eq!(hits(&store, "grown"), 2);
        let (entries, indexed) = entries_and_indexed(&raw);
        assert_eq!(entries, indexed);
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
    });
}
