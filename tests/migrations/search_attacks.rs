//! V8 attacked: random mixes of every write (edits, renames, deletes,
//! cascades, streamed growth past 4 KiB, branches, `update`, rolled-back
//! transactions), a failing call inside a transaction that commits, and two
//! stores writing and searching one file at once. After each step every
//! entry of the index is a text's at or below its mark or listed in
//! `search_stale`, and every token ever written is found in exactly the
//! texts that hold it. (A review helper's attacks, kept as tests.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use silmari_store::prelude::*;
use silmari_store::{Archived, ConversationEdit, MessageEdit, SearchQuery};

use crate::common::Rng;
use crate::on_every_sqlite_file;
use crate::search_edits::indexed_conversation;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh token, never used before.
fn tok() -> String {
    format!("tk{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A number below `n`.
fn pick(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

/// Hits of `query` on every branch, archived or not.
fn hits(store: &Store, query: &str) -> usize {
    let query = SearchQuery::new(query)
        .limit(1000)
        .newest_first()
        .all_branches()
        .archived(Archived::Include);
    store.search(&query).unwrap().items.len()
}

/// Token → number of texts (titles, messages of every branch) holding it.
fn truth(store: &Store) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut add = |text: &str| {
        let mut words: Vec<&str> = text
            .split_whitespace()
            .filter(|w| w.starts_with("tk"))
            .collect();
        words.sort();
        words.dedup();
        for w in words {
            *counts.entry(w.to_owned()).or_insert(0) += 1;
        }
    };
    for c in store.conversations().list_all().unwrap() {
        add(&c.title);
        let tree = store.conversations().tree(c.id).unwrap().unwrap();
        for m in &tree.messages {
            add(&m.content);
        }
    }
    counts
}

/// Every entry of the index is a text's at or below its kind's mark or
/// listed (V8), every such text has its entry, every listed entry exists,
/// and no listed entry names a text.
pub(crate) fn assert_exact(raw: &rusqlite::Connection, at: &str) {
    let has_stale: bool = raw
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('search_stale'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let stale = if has_stale {
        "(SELECT COUNT(*) FROM search_stale)"
    } else {
        "0"
    };
    let named = if has_stale {
        "(SELECT COUNT(*) FROM search_stale s WHERE \
          EXISTS (SELECT 1 FROM messages WHERE search_rowid = s.rowid) \
          OR EXISTS (SELECT 1 FROM conversations WHERE search_rowid = -s.rowid))"
    } else {
        "0"
    };
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM search_index), \
             (SELECT COUNT(*) FROM messages \
              WHERE search_rowid <= (SELECT indexed_upto FROM search_progress)) \
             + (SELECT COUNT(*) FROM conversations \
              WHERE search_rowid <= (SELECT titles_indexed_upto FROM search_progress)) \
             + {stale}, {named}"
    );
    let (entries, expected, named): (i64, i64, i64) = raw
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!((entries, named), (expected, 0), "{at}");
    let stale_in = if has_stale {
        "OR e.rowid IN (SELECT rowid FROM search_stale)"
    } else {
        ""
    };
    let stale_missing = if has_stale {
        "(SELECT COUNT(*) FROM search_stale s WHERE s.rowid NOT IN (SELECT rowid FROM search_index))"
    } else {
        "0"
    };
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM search_index e WHERE NOT ( \
            e.rowid IN (SELECT search_rowid FROM messages WHERE search_rowid <= (SELECT indexed_upto FROM search_progress)) \
            OR -e.rowid IN (SELECT search_rowid FROM conversations WHERE search_rowid <= (SELECT titles_indexed_upto FROM search_progress)) \
            {stale_in})), \
          (SELECT COUNT(*) FROM messages WHERE search_rowid <= (SELECT indexed_upto FROM search_progress) \
            AND search_rowid NOT IN (SELECT rowid FROM search_index)) \
          + (SELECT COUNT(*) FROM conversations WHERE search_rowid <= (SELECT titles_indexed_upto FROM search_progress) \
            AND -search_rowid NOT IN (SELECT rowid FROM search_index)), \
          {stale_missing}"
    );
    let strong: (i64, i64, i64) = raw
        .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    assert_eq!(
        strong,
        (0, 0, 0),
        "{at}: (orphan entries, indexed texts without entry, listed without entry)"
    );
}

/// Every token ever made is found exactly in the texts that hold it.
fn verify(store: &Store, searcher: &Store, all: &[String], at: &str) {
    let truth = truth(store);
    for t in all {
        let want = truth.get(t).copied().unwrap_or(0);
        assert_eq!(hits(searcher, t), want, "{at}: token {t}");
    }
    let report = store.check().unwrap();
    assert_eq!(report.search_index_mismatches, 0, "{at}: {report:?}");
}

fn messages_of(store: &Store) -> Vec<(ConversationId, MessageId, Option<MessageId>)> {
    let mut out = Vec::new();
    for c in store.conversations().list_all().unwrap() {
        let tree = store.conversations().tree(c.id).unwrap().unwrap();
        for m in &tree.messages {
            out.push((c.id, m.id, m.parent_id));
        }
    }
    out
}

/// One random operation on `store`; returns a name. New tokens go to `all`.
fn random_op(store: &Store, rng: &mut Rng, all: &mut Vec<String>) -> String {
    let convs: Vec<ConversationId> = store
        .conversations()
        .list_all()
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    let msgs = messages_of(store);
    let mut t = || {
        let t = tok();
        all.push(t.clone());
        t
    };
    let op = if convs.is_empty() { 0 } else { pick(rng, 14) };
    match op {
        0 => {
            let c = store
                .conversations()
                .create(NewConversation::titled(format!("{} title", t())))
                .unwrap();
            let n = pick(rng, 4);
            let batch = (0..n)
                .map(|_| NewMessage::new(Role::User, format!("{} body", t())))
                .collect();
            store.conversations().append_messages(c.id, batch).unwrap();
            "create".into()
        }
        1 | 2 => {
            let c = convs[pick(rng, convs.len())];
            store
                .conversations()
                .append_message(c, NewMessage::new(Role::User, format!("{} one", t())))
                .unwrap();
            "append".into()
        }
        3..=5 if !msgs.is_empty() => {
            let (_, m, _) = msgs[pick(rng, msgs.len())];
            store
                .conversations()
                .edit_message(m, MessageEdit::new().content(format!("{} edited", t())))
                .unwrap();
            "edit message".into()
        }
        6 | 7 => {
            let c = convs[pick(rng, convs.len())];
            store
                .conversations()
                .edit(c, ConversationEdit::new().title(format!("{} renamed", t())))
                .unwrap();
            "edit title".into()
        }
        8 if !msgs.is_empty() => {
            let (_, m, _) = msgs[pick(rng, msgs.len())];
            store.conversations().delete_message(m).unwrap();
            "delete message".into()
        }
        9 => {
            let c = convs[pick(rng, convs.len())];
            store.conversations().delete(c).unwrap();
            "delete conversation".into()
        }
        10 if !msgs.is_empty() => {
            let (_, m, _) = msgs[pick(rng, msgs.len())];
            let filler = "lorem ipsum dolor ".repeat(100 + pick(rng, 200));
            let extra = if pick(rng, 2) == 0 {
                format!(" {} ", t())
            } else {
                String::new()
            };
            store
                .conversations()
                .append_to_message(m, &format!(" {filler}{extra}"))
                .unwrap();
            "grow".into()
        }
        11 if !msgs.is_empty() => {
            let (c, m, parent) = msgs[pick(rng, msgs.len())];
            let nm = store
                .conversations()
                .branch_from(
                    c,
                    parent,
                    NewMessage::new(Role::Assistant, format!("{} alt", t())),
                )
                .unwrap();
            if pick(rng, 2) == 0 {
                store.conversations().switch_branch(m).unwrap();
            } else {
                store.conversations().switch_branch(nm.id).unwrap();
            }
            "branch".into()
        }
        12 => {
            // update(): title and the current branch's first message rewritten.
            let c = convs[pick(rng, convs.len())];
            let mut conv = store.conversations().get(c).unwrap().unwrap();
            conv.title = format!("{} updated", t());
            if let Some(m) = conv.messages.first_mut() {
                m.content = format!("{} updatedmsg", t());
            }
            store.conversations().update(&conv).unwrap();
            "update".into()
        }
        13 if !msgs.is_empty() => {
            // A transaction: edits, then rolled back whole.
            let (_, m, _) = msgs[pick(rng, msgs.len())];
            let c = convs[pick(rng, convs.len())];
            let (a, b) = (t(), t());
            let r: Result<(), Error> = store.transaction(|tx| {
                tx.conversations()
                    .edit_message(m, MessageEdit::new().content(format!("{a} undone")))?;
                tx.conversations()
                    .edit(c, ConversationEdit::new().title(format!("{b} undone")))?;
                tx.conversations()
                    .append_messages(c, vec![NewMessage::new(Role::User, "tkzz0 x")])?;
                Err(Error::InTransaction)
            });
            assert!(r.is_err());
            "rolled back".into()
        }
        _ => "nothing".into(),
    }
}

/// 400 random writes on each of three generators (two fixed seeds and one
/// from `SILMARI_SEED` or the clock), each on a fresh file: exact after
/// every write, every token checked every 25 writes, then after a rebuild.
#[test]
fn random_interleavings_keep_search_exact() {
    let generators = [Rng::seeded(1), Rng::seeded(2), Rng::from_env()];
    for (run, mut generator) in generators.into_iter().enumerate() {
        let seed = generator.next_u64();
        on_every_sqlite_file(|db| {
            let store = db.open().unwrap();
            let raw = db.raw();
            let mut rng = Rng::seeded(seed);
            let mut all = Vec::new();
            for i in 0..400 {
                let name = random_op(&store, &mut rng, &mut all);
                let at = format!("run {run} write {i} ({name})");
                assert_exact(&raw, &at);
                if i % 25 == 24 {
                    verify(&store, &store, &all, &at);
                }
            }
            verify(&store, &store, &all, &format!("run {run} end"));
            store.migrations().rebuild_search_index(|_| {}).unwrap();
            assert_exact(&raw, &format!("run {run} rebuilt"));
            verify(&store, &store, &all, &format!("run {run} rebuilt"));
        });
    }
}

/// Calls that fail inside a transaction that then commits: the failing
/// call's savepoint must undo its listing and its batch.
#[test]
fn a_failing_call_inside_a_committed_transaction() {
    on_every_sqlite_file(|db| {
        let store = db.open().unwrap();
        let raw = db.raw();
        let mut all = Vec::new();
        let mk = |all: &mut Vec<String>| {
            let t = tok();
            all.push(t.clone());
            t
        };
        let a = store
            .conversations()
            .create(NewConversation::titled(format!("{} a", mk(&mut all))))
            .unwrap()
            .id;
        let b = store
            .conversations()
            .create(NewConversation::titled(format!("{} b", mk(&mut all))))
            .unwrap()
            .id;
        let batch: Vec<NewMessage> = (0..200)
            .map(|_| NewMessage::new(Role::User, format!("{} m", mk(&mut all))))
            .collect();
        let am: Vec<Message> = store.conversations().append_messages(a, batch).unwrap();
        let batch: Vec<NewMessage> = (0..5)
            .map(|_| NewMessage::new(Role::User, format!("{} m", mk(&mut all))))
            .collect();
        let bm: Vec<Message> = store.conversations().append_messages(b, batch).unwrap();
        drop(store);
        let store = db.open().unwrap();
        verify(&store, &store, &all, "start");
        let tokens: Vec<String> = (0..200).map(|_| mk(&mut all)).collect();
        let r: Result<(), Error> = store.transaction(|tx| {
            // 120 edits listed.
            for (i, m) in am.iter().enumerate().take(120) {
                tx.conversations()
                    .edit_message(m.id, MessageEdit::new().content(format!("{} e", tokens[i])))?;
            }
            // update() of a that edits a message, renames, then fails on an
            // insert whose id is b's first message (after catch_up ran).
            let mut conv = tx.conversations().get(a).unwrap().unwrap();
            conv.title = format!("{} failedtitle", tokens[150]);
            conv.messages[150].content = format!("{} failedmsg", tokens[151]);
            let mut intruder = bm[0].clone();
            intruder.conversation_id = a;
            intruder.parent_id = conv.messages.last().map(|m| m.id);
            conv.messages.push(intruder);
            let err = tx.conversations().update(&conv);
            assert!(err.is_err(), "{err:?}");
            // More edits that cross the bound.
            for (i, m) in am.iter().enumerate().skip(120).take(20) {
                tx.conversations()
                    .edit_message(m.id, MessageEdit::new().content(format!("{} e", tokens[i])))?;
            }
            // An edit of a message that does not exist fails.
            let missing = tx
                .conversations()
                .edit_message(MessageId::new(), MessageEdit::new().content("tkmissing"));
            assert!(missing.is_err());
            tx.conversations().edit(
                b,
                ConversationEdit::new().title(format!("{} ok", tokens[160])),
            )?;
            Ok(())
        });
        r.unwrap();
        assert_exact(&raw, "after");
        verify(&store, &store, &all, "after commit");
    });
}

/// Two stores (two pools) on one file, writing and searching at once.
#[test]
fn two_stores_write_and_search_at_once() {
    on_every_sqlite_file(|db| {
        // A conversation of 150 indexed messages written by `store`.
        let written = |store: &Store, tag: &str| {
            let texts = (0..150).map(|i| format!("tkx{i}{tag} start"));
            indexed_conversation(store, &format!("tk{tag} title"), texts)
        };
        let (s1, s2) = (db.open().unwrap(), db.open().unwrap());
        let ((c1, m1), (c2, m2)) = (written(&s1, "a"), written(&s2, "b"));
        let run =
            |writer: &Store, reader: &Store, ids: &[MessageId], c: ConversationId, tag: &str| {
                let mut rng = Rng::seeded(tag.len() as u64 + 11);
                let mut current: HashMap<MessageId, String> = HashMap::new();
                let mut title = String::new();
                for round in 0..500 {
                    let t = format!("tk{tag}r{round}");
                    if pick(&mut rng, 5) == 0 {
                        writer
                            .conversations()
                            .edit(c, ConversationEdit::new().title(format!("{t} title")))
                            .unwrap();
                        if !title.is_empty() {
                            assert_eq!(hits(reader, &title), 0, "{tag} {round}: old title {title}");
                        }
                        title = t.clone();
                        assert_eq!(hits(reader, &t), 1, "{tag} {round}: new title {t}");
                    } else {
                        let m = ids[pick(&mut rng, ids.len())];
                        writer
                            .conversations()
                            .edit_message(m, MessageEdit::new().content(format!("{t} body")))
                            .unwrap();
                        if let Some(old) = current.insert(m, t.clone()) {
                            assert_eq!(hits(reader, &old), 0, "{tag} {round}: old {old}");
                        }
                        assert_eq!(hits(reader, &t), 1, "{tag} {round}: new {t}");
                    }
                    if round % 20 == 0 {
                        let report = reader.check().unwrap();
                        assert_eq!(report.search_index_mismatches, 0, "{tag} {round}");
                    }
                }
            };
        let (r1, r2, rm1, rm2, run) = (&s1, &s2, &m1, &m2, &run);
        std::thread::scope(|scope| {
            scope.spawn(move || run(r1, r2, rm1, c1, "p"));
            scope.spawn(move || run(r2, r1, rm2, c2, "qq"));
            scope.spawn(|| {
                // A third store creating, growing and deleting conversations.
                let s3 = db.open().unwrap();
                for i in 0..60 {
                    let c = s3
                        .conversations()
                        .create(NewConversation::titled(format!("tkdel{i} t")))
                        .unwrap()
                        .id;
                    let ms = s3
                        .conversations()
                        .append_messages(
                            c,
                            (0..20)
                                .map(|j| NewMessage::new(Role::User, format!("tkdel{i}m{j} x")))
                                .collect(),
                        )
                        .unwrap();
                    s3.conversations()
                        .edit_message(ms[3].id, MessageEdit::new().content(format!("tkdel{i}e x")))
                        .unwrap();
                    s3.conversations()
                        .edit(c, ConversationEdit::new().title(format!("tkdel{i}t2 t")))
                        .unwrap();
                    s3.conversations().delete(c).unwrap();
                    assert_eq!(hits(&s3, &format!("tkdel{i}e")), 0);
                }
            });
        });
        let raw = db.raw();
        assert_exact(&raw, "end");
        assert_eq!(s1.check().unwrap().search_index_mismatches, 0);
    });
}
