//! The change feed: every committed write reported once, after its commit,
//! in commit order; nothing from a rolled-back or refused write; a slow
//! subscriber lagged, never a blocked writer.

use std::collections::BTreeSet;
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{Change, ChangeEntity, ChangeKind, Subscription, TransferOptions};
use uuid::Uuid;

use crate::support::{assert_invalid, conversation, say};

/// Long enough for PostgreSQL's notifications on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

fn next(feed: &Subscription) -> Change {
    match feed.recv_timeout(PATIENCE) {
        Some(FeedEvent::Change(change)) => change,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn take(feed: &Subscription, n: usize) -> Vec<Change> {
    (0..n).map(|_| next(feed)).collect()
}

type Seen = (ChangeEntity, ChangeKind, Uuid);

fn seen(changes: &[Change]) -> Vec<Seen> {
    changes.iter().map(|c| (c.entity, c.kind, c.id)).collect()
}

fn conv(id: ConversationId, kind: ChangeKind) -> Seen {
    (ChangeEntity::Conversation, kind, *id.as_uuid())
}

fn msg(id: MessageId, kind: ChangeKind) -> Seen {
    (ChangeEntity::Message, kind, *id.as_uuid())
}

fn file(id: FileId, kind: ChangeKind) -> Seen {
    (ChangeEntity::File, kind, *id.as_uuid())
}

/// Writes a marker conversation and returns the events up to and including
/// its own: whatever arrives before it was committed before it.
fn until_marker(store: &Store, feed: &Subscription) -> Vec<Change> {
    let marker = conversation(store, "marker");
    let mut before = Vec::new();
    loop {
        let change = next(feed);
        if change.id == *marker.as_uuid() {
            assert_eq!(change.kind, ChangeKind::Created);
            return before;
        }
        before.push(change);
    }
}

fn assert_numbered_in_order(changes: &[Change]) {
    for pair in changes.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq + 1,
            "seq goes up by one: {changes:?}"
        );
    }
}

pub fn feed_reports_each_write_once_in_order(store: &Store) {
    let feed = store.subscribe().unwrap();
    let chats = store.conversations();
    let f = store
        .files()
        .create(crate::support::new_file("a.txt"))
        .unwrap();
    let c = conversation(store, "watched");
    let m = say(store, c, Role::User, "hello");
    chats
        .edit_message(m.id, MessageEdit::new().content("hello there"))
        .unwrap();
    chats.append_to_message(m.id, "!").unwrap();
    chats.archive(c).unwrap();
    chats.unarchive(c).unwrap();
    chats
        .edit(c, ConversationEdit::new().title("renamed"))
        .unwrap();
    assert!(chats.delete_message(m.id).unwrap());
    assert!(store.files().delete(f.id).unwrap());
    assert!(chats.delete(c).unwrap());

    use ChangeKind::*;
    let expected = vec![
        file(f.id, Created),
        conv(c, Created),
        conv(c, Changed),
        msg(m.id, Created),
        conv(c, Changed),
        msg(m.id, Changed),
        conv(c, Changed),
        msg(m.id, Changed),
        conv(c, Archived),
        conv(c, Unarchived),
        conv(c, Changed),
        conv(c, Changed),
        msg(m.id, Deleted),
        file(f.id, Deleted),
        conv(c, Deleted),
    ];
    let changes = take(&feed, expected.len());
    assert_eq!(seen(&changes), expected);
    assert_numbered_in_order(&changes);
    assert!(changes[0].seq > feed.started_after());
    let message_events = changes.iter().filter(|c| c.entity == ChangeEntity::Message);
    assert!(
        message_events
            .into_iter()
            .all(|e| e.conversation_id == Some(c))
    );
    assert!(
        changes
            .iter()
            .filter(|e| e.entity == ChangeEntity::File)
            .all(|e| e.conversation_id.is_none())
    );
    assert_eq!(until_marker(store, &feed), Vec::new(), "nothing more");
    assert_eq!(
        store
            .changes_since(changes[0].seq - 1)
            .map(|c| seen(&c)[..expected.len()].to_vec()),
        Some(expected),
        "changes_since gives the same"
    );
}

pub fn feed_ignores_rolled_back_and_refused_writes(store: &Store) {
    let c = conversation(store, "kept");
    let feed = store.subscribe().unwrap();
    let rolled_back: Result<(), Error> = store.transaction(|tx| {
        tx.conversations()
            .append_message(c, NewMessage::new(Role::User, "never"))?;
        tx.files().create(crate::support::new_file("never.txt"))?;
        Err(Error::InTransaction)
    });
    assert!(rolled_back.is_err());
    assert_invalid(
        store
            .conversations()
            .append_message(c, NewMessage::new(Role::User, "\0")),
        "content",
    );
    assert!(matches!(
        store
            .conversations()
            .append_message(ConversationId::new(), NewMessage::new(Role::User, "x")),
        Err(Error::NotFound { .. })
    ));
    assert!(!store.files().delete(FileId::new()).unwrap());
    assert!(!store.conversations().delete(ConversationId::new()).unwrap());
    assert!(
        !store
            .conversations()
            .delete_message(MessageId::new())
            .unwrap()
    );
    let stale = store.conversations().get(c).unwrap().unwrap();
    let said = say(store, c, Role::User, "moves the version");
    let before = until_marker(store, &feed);
    assert_eq!(before.len(), 2, "only the append: {before:?}");
    assert!(matches!(
        store.conversations().update(&stale),
        Err(Error::Stale { .. })
    ));
    assert_eq!(
        until_marker(store, &feed),
        Vec::new(),
        "nothing from the stale update"
    );

    // A call that failed inside a committed transaction says nothing: its
    // first message was written and undone, and the conversation it
    // touched did not change.
    let mut duplicate = NewMessage::new(Role::User, "duplicate");
    duplicate.id = Some(said.id);
    let added = store
        .transaction(|tx| {
            let refused = tx
                .conversations()
                .append_messages(c, vec![NewMessage::new(Role::User, "undone"), duplicate]);
            assert!(
                matches!(refused, Err(Error::Conflict { .. })),
                "{refused:?}"
            );
            tx.conversations().create(NewConversation::titled("added"))
        })
        .unwrap();
    use ChangeKind::*;
    assert_eq!(
        seen(&until_marker(store, &feed)),
        vec![conv(added.id, Created)]
    );

    // A committed transaction's changes arrive together, in its order.
    let (m1, m2) = store
        .transaction(|tx| {
            let m1 = tx
                .conversations()
                .append_message(c, NewMessage::new(Role::User, "one"))?;
            let m2 = tx
                .conversations()
                .append_message(c, NewMessage::new(Role::Assistant, "two"))?;
            Ok::<_, Error>((m1, m2))
        })
        .unwrap();
    let changes = until_marker(store, &feed);
    assert_eq!(
        seen(&changes),
        vec![conv(c, Changed), msg(m1.id, Created), msg(m2.id, Created)]
    );
}

pub fn feed_follows_commit_order_across_threads(store: &Store) {
    let c = conversation(store, "shared");
    let feed = store.subscribe().unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..10 {
                    say(&store, c, Role::User, &format!("{t}/{i}"));
                }
            });
        }
    });
    let created: Vec<Uuid> = until_marker(store, &feed)
        .into_iter()
        .filter(|e| e.entity == ChangeEntity::Message)
        .map(|e| e.id)
        .collect();
    let stored: Vec<Uuid> = crate::support::get(store, c)
        .messages
        .iter()
        .map(|m| *m.id.as_uuid())
        .collect();
    assert_eq!(created, stored, "events in the order the appends committed");
}

pub fn feed_lags_a_slow_subscriber_and_changes_since_catches_up(store: &Store) {
    let slow = store.subscribe_with_capacity(3).unwrap();
    let fast = store.subscribe().unwrap();
    let ids: Vec<ConversationId> = (0..8)
        .map(|i| conversation(store, &format!("c{i}")))
        .collect();
    let all = take(&fast, ids.len());
    assert_eq!(
        all.iter().map(|c| c.id).collect::<Vec<_>>(),
        ids.iter().map(|c| *c.as_uuid()).collect::<Vec<_>>()
    );
    let kept = take(&slow, 3);
    assert_eq!(kept, all[..3]);
    let missed_from = match slow.recv_timeout(PATIENCE) {
        Some(FeedEvent::Lagged { missed_from }) => missed_from,
        other => panic!("expected lagged, got {other:?}"),
    };
    assert_eq!(missed_from, all[3].seq);
    assert_eq!(store.changes_since(missed_from - 1).unwrap(), all[3..]);
    // Back in step: the next change arrives as usual.
    let again = conversation(store, "after");
    assert_eq!(next(&slow).id, *again.as_uuid());
    assert_eq!(next(&fast).id, *again.as_uuid());
}

pub fn feed_refuses_bad_subscriptions(store: &Store) {
    assert_invalid(store.subscribe_with_capacity(0), "capacity");
    let inside = store.transaction(|_| Ok::<_, Error>(store.subscribe().map(drop)));
    assert!(matches!(inside, Ok(Err(Error::InTransaction))));
    let feed = store.subscribe().unwrap();
    assert_eq!(feed.try_recv(), None);
    let latest = feed.started_after();
    assert_eq!(store.changes_since(latest + 1), None, "not delivered yet");
    let c = conversation(store, "one");
    assert_eq!(next(&feed).id, *c.as_uuid());
    assert_eq!(store.changes_since(latest + 1), Some(Vec::new()));
}

/// A memory store holding `n` conversations of two messages and a file each:
/// its records' ids.
fn source_of(n: usize) -> (Store, BTreeSet<Uuid>) {
    let source = Store::open("memory://").unwrap();
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let c = conversation(&source, &format!("copied {i}"));
        ids.insert(*c.as_uuid());
        for j in 0..2 {
            let m = say(&source, c, Role::User, &format!("{i}.{j}"));
            ids.insert(*m.id.as_uuid());
        }
        let f = source
            .files()
            .create(crate::support::new_file(&format!("{i}.txt")))
            .unwrap();
        ids.insert(*f.id.as_uuid());
    }
    (source, ids)
}

/// The records created in `changes`: each created once, and nothing else
/// reported but a conversation created here changed again (its messages,
/// written in a later batch of the copy or import, move it).
fn created_once(changes: &[Change]) -> BTreeSet<Uuid> {
    assert_numbered_in_order(changes);
    let mut created = BTreeSet::new();
    for change in changes.iter().filter(|c| c.kind == ChangeKind::Created) {
        assert!(created.insert(change.id), "created twice: {changes:?}");
    }
    for change in changes.iter().filter(|c| c.kind != ChangeKind::Created) {
        assert!(
            change.kind == ChangeKind::Changed
                && change.entity == ChangeEntity::Conversation
                && created.contains(&change.id),
            "only records written are reported: {change:?} in {changes:?}"
        );
    }
    created
}

/// A copy into the store and an import into it (merged into what it holds)
/// are heard like any write: one creation per record written, in order.
pub fn feed_hears_copies_and_imports(store: &Store) {
    let feed = store.subscribe().unwrap();
    let (source, copied) = source_of(3);
    source
        .copy_to(store, TransferOptions::default(), |_| {})
        .unwrap();
    assert_eq!(created_once(&until_marker(store, &feed)), copied);

    let (other, imported) = source_of(2);
    let mut dump = Vec::new();
    other.export_jsonl(&mut dump, |_| {}).unwrap();
    let merge = TransferOptions {
        merge: true,
        ..TransferOptions::default()
    };
    store.import_jsonl(&dump[..], merge, |_| {}).unwrap();
    assert_eq!(created_once(&until_marker(store, &feed)), imported);
}
