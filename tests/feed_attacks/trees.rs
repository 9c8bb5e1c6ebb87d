//! What tree operations, a record deleted and created again, imports,
//! copies and two writers on one file report: exactly the records written,
//! with the right kinds, once each, in commit order. The cases taking a
//! store run on PostgreSQL too (`postgres`).

use std::collections::{BTreeSet, HashMap};
use std::thread;

use silmari_store::prelude::*;
use silmari_store::{Change, ChangeEntity, ChangeKind};
use uuid::Uuid;

use crate::{ACROSS, changes, conv, drain, new_file, raw, until_marker, url};

/// Refused writes (not found, stale), no-op deletes and a search index
/// rebuild report nothing; switching a branch, deleting one, `update` and
/// a transaction writing records many times report each record written
/// once, with the kind that says most, in the order first written.
pub fn tree_operations_report_exactly_the_records_they_wrote(store: &Store) {
    let c = conv(store, "tree");
    let a = store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, "a"))
        .unwrap();
    let b = store
        .conversations()
        .append_message(c, NewMessage::new(Role::Assistant, "b"))
        .unwrap();
    let b2 = store
        .conversations()
        .branch_from(c, Some(a.id), NewMessage::new(Role::Assistant, "b2"))
        .unwrap();
    let b3 = store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, "b3"))
        .unwrap();
    let feed = store.subscribe().unwrap();
    use ChangeEntity::*;
    use ChangeKind::*;
    let summary = |events: Vec<FeedEvent>| -> Vec<(ChangeEntity, ChangeKind, Uuid)> {
        changes(&events)
            .into_iter()
            .map(|c| (c.entity, c.kind, c.id))
            .collect()
    };
    let cu = *c.as_uuid();

    store.conversations().switch_branch(b.id).unwrap();
    assert_eq!(
        summary(until_marker(store, &feed)),
        [(Conversation, Changed, cu)]
    );

    // Refused: a switch to a message that is not there; deleting nothing.
    assert!(
        store
            .conversations()
            .switch_branch(MessageId::new())
            .is_err()
    );
    assert_eq!(
        store
            .conversations()
            .delete_branch(MessageId::new())
            .unwrap(),
        0
    );
    assert!(!store.files().delete(FileId::new()).unwrap());
    assert!(!store.conversations().delete(ConversationId::new()).unwrap());
    assert!(
        store
            .conversations()
            .archive(ConversationId::new())
            .is_err()
    );
    assert_eq!(summary(until_marker(store, &feed)), []);

    // delete_branch: the conversation and every message of the subtree.
    assert_eq!(store.conversations().delete_branch(b2.id).unwrap(), 2);
    let got = summary(until_marker(store, &feed));
    assert_eq!(got[0], (Conversation, Changed, cu));
    let mut deleted: Vec<Uuid> = got[1..]
        .iter()
        .map(|(e, k, id)| {
            assert_eq!((*e, *k), (Message, Deleted));
            *id
        })
        .collect();
    deleted.sort();
    let mut expected = vec![*b2.id.as_uuid(), *b3.id.as_uuid()];
    expected.sort();
    assert_eq!(deleted, expected);

    // update: title, one message edited, one dropped, one added.
    let mut whole = store.conversations().get(c).unwrap().unwrap();
    whole.title = "renamed".into();
    whole.messages[0].content = "a edited".into();
    whole.messages.truncate(1);
    let added = MessageId::new();
    let mut new = whole.messages[0].clone();
    new.id = added;
    new.parent_id = Some(a.id);
    new.content = "added".into();
    whole.messages.push(new);
    store.conversations().update(&whole).unwrap();
    let got = summary(until_marker(store, &feed));
    assert_eq!(
        got,
        [
            (Conversation, Changed, cu),
            (Message, Deleted, *b.id.as_uuid()),
            (Message, Changed, *a.id.as_uuid()),
            (Message, Created, *added.as_uuid()),
        ]
    );
    // A stale update: nothing.
    assert!(store.conversations().update(&whole).is_err());
    assert_eq!(summary(until_marker(store, &feed)), []);

    // Search index rebuild: no record changes, no events.
    store.migrations().rebuild_search_index(|_| {}).unwrap();
    assert_eq!(summary(until_marker(store, &feed)), []);

    // Same record many times in one transaction: once, the kind that says
    // most, in the order first written (past 32 records: the index).
    let (f, many) = store
        .transaction(|tx| {
            let f = tx.files().create(new_file("x"))?;
            let many = (0..40)
                .map(|i| {
                    tx.conversations()
                        .create(NewConversation::titled(format!("m{i}")))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            for m in &many {
                tx.conversations()
                    .edit(m.id, ConversationEdit::new().title("edited"))?;
            }
            for i in 0..5 {
                tx.conversations()
                    .edit(c, ConversationEdit::new().title(format!("t{i}")))?;
            }
            tx.conversations().archive(c)?;
            tx.conversations()
                .append_message(c, NewMessage::new(Role::User, "z"))?;
            Ok::<_, Error>((f, many))
        })
        .unwrap();
    let got = summary(until_marker(store, &feed));
    let mut expected = vec![(File, Created, *f.id.as_uuid())];
    expected.extend(
        many.iter()
            .map(|m| (Conversation, Created, *m.id.as_uuid())),
    );
    expected.push((Conversation, Archived, cu));
    assert_eq!(got[..got.len() - 1], expected[..]);
    assert_eq!(
        (got[got.len() - 1].0, got[got.len() - 1].1),
        (Message, Created)
    );
    assert!(changes(&drain(&feed, std::time::Duration::from_millis(50))).is_empty());
}

#[test]
fn tree_operations_report_exactly_the_records_they_wrote_memory() {
    tree_operations_report_exactly_the_records_they_wrote(&Store::open("memory://").unwrap());
}

#[test]
#[cfg(feature = "sqlite")]
fn tree_operations_report_exactly_the_records_they_wrote_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir.path().join("t.db"))).unwrap();
    tree_operations_report_exactly_the_records_they_wrote(&store);
}

/// A file and a message deleted and created again (same ids) in one
/// transaction are there before and after: each is reported once,
/// `Changed`, as is their conversation; nothing is reported `Deleted`.
pub fn deleted_then_recreated_in_one_transaction_is_reported_changed(store: &Store) {
    let f = store.files().create(new_file("kept.txt")).unwrap();
    let c = conv(store, "kept");
    let m = store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, "kept"))
        .unwrap();
    let feed = store.subscribe().unwrap();
    store
        .transaction(|tx| {
            assert!(tx.files().delete(f.id)?);
            tx.files().create(NewFile {
                id: Some(f.id),
                ..new_file("kept.txt")
            })?;
            assert!(tx.conversations().delete_message(m.id)?);
            tx.conversations().append_message(
                c,
                NewMessage {
                    id: Some(m.id),
                    ..NewMessage::new(Role::User, "kept")
                },
            )?;
            Ok::<_, Error>(())
        })
        .unwrap();
    assert!(store.files().get(f.id).unwrap().is_some());
    let whole = store.conversations().get(c).unwrap().unwrap();
    assert!(whole.messages.iter().any(|x| x.id == m.id));
    let got = changes(&until_marker(store, &feed));
    let reported: HashMap<Uuid, (ChangeEntity, ChangeKind)> =
        got.iter().map(|c| (c.id, (c.entity, c.kind))).collect();
    let expected = HashMap::from([
        (*f.id.as_uuid(), (ChangeEntity::File, ChangeKind::Changed)),
        (
            *c.as_uuid(),
            (ChangeEntity::Conversation, ChangeKind::Changed),
        ),
        (
            *m.id.as_uuid(),
            (ChangeEntity::Message, ChangeKind::Changed),
        ),
    ]);
    assert_eq!(reported, expected, "all: {got:?}");
    assert_eq!(got.len(), 3, "once each: {got:?}");
}

#[test]
fn deleted_then_recreated_in_one_transaction_is_reported_changed_memory() {
    deleted_then_recreated_in_one_transaction_is_reported_changed(
        &Store::open("memory://").unwrap(),
    );
}

#[test]
#[cfg(feature = "sqlite")]
fn deleted_then_recreated_in_one_transaction_is_reported_changed_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir.path().join("re.db"))).unwrap();
    deleted_then_recreated_in_one_transaction_is_reported_changed(&store);
}

/// An import into a subscribed store is heard once per record by it and,
/// in the same order, by another store on the same file; a copy into a
/// subscribed store is heard as one creation per record.
#[test]
#[cfg(feature = "sqlite")]
fn import_and_copy_are_heard_once_per_record_in_one_order_by_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open("memory://").unwrap();
    for i in 0..5 {
        let c = conv(&source, &format!("s{i}"));
        for j in 0..3 {
            source
                .conversations()
                .append_message(c, NewMessage::new(Role::User, format!("{j}")))
                .unwrap();
        }
        source.files().create(new_file(&format!("{i}"))).unwrap();
    }
    let mut dump = Vec::new();
    source.export_jsonl(&mut dump, |_| {}).unwrap();

    let path = dir.path().join("target.db");
    let target = Store::open(&url(&path)).unwrap();
    let other = Store::open(&url(&path)).unwrap();
    let own = target.subscribe().unwrap();
    let far = other.subscribe().unwrap();
    target
        .import_jsonl(&dump[..], Default::default(), |_| {})
        .unwrap();
    let copy_into = Store::open(&url(&dir.path().join("copy.db"))).unwrap();
    let copy_feed = copy_into.subscribe().unwrap();
    source
        .copy_to(&copy_into, Default::default(), |_| {})
        .unwrap();
    let a = changes(&until_marker(&target, &own));
    thread::sleep(ACROSS);
    let b = changes(&drain(&far, ACROSS));
    let strip = |v: &[Change]| -> Vec<(ChangeEntity, ChangeKind, Uuid)> {
        v.iter().map(|c| (c.entity, c.kind, c.id)).collect()
    };
    assert_eq!(a.len(), 5 + 5 + 15, "{a:?}");
    let distinct: BTreeSet<Uuid> = a.iter().map(|c| c.id).collect();
    assert_eq!(distinct.len(), a.len(), "once per record: {a:?}");
    // The other store also hears the marker.
    assert_eq!(b.len(), a.len() + 1, "{b:?}");
    assert_eq!(strip(&a), strip(&b[..b.len() - 1]));
    let copied = changes(&drain(&copy_feed, std::time::Duration::from_millis(100)));
    let created: Vec<Uuid> = copied
        .iter()
        .filter(|c| c.kind == ChangeKind::Created)
        .map(|c| c.id)
        .collect();
    assert_eq!(created.len(), 25, "{copied:?}");
    assert_eq!(
        created.iter().collect::<BTreeSet<_>>().len(),
        25,
        "once each"
    );
}

/// Two stores on one file, both writing from two threads and both
/// listening: each hears every transaction once, in the order of the
/// change_log (the commit order: one row per transaction), `seq` by one.
#[test]
#[cfg(feature = "sqlite")]
fn two_writers_on_one_file_each_hear_every_transaction_once_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.db");
    let x = Store::open(&url(&path)).unwrap();
    let y = Store::open(&url(&path)).unwrap();
    let fx = x.subscribe().unwrap();
    let fy = y.subscribe().unwrap();
    thread::scope(|s| {
        for store in [&x, &y] {
            for t in 0..2 {
                s.spawn(move || {
                    for i in 0..40 {
                        conv(store, &format!("{t}/{i}"));
                    }
                });
            }
        }
    });
    thread::sleep(ACROSS);
    let ex = changes(&drain(&fx, ACROSS));
    let ey = changes(&drain(&fy, ACROSS));
    let log: Vec<Uuid> = raw(&path)
        .prepare("SELECT changes FROM change_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|t| t.unwrap()[2..34].parse().unwrap())
        .collect();
    let ids = |v: &[Change]| v.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(log.len(), 160);
    assert_eq!(ids(&ex), log, "x in commit order");
    assert_eq!(ids(&ey), log, "y in commit order");
    for pair in ex.windows(2).chain(ey.windows(2)) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
}
