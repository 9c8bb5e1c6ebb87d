//! A writer process killed (SIGKILL) in the middle of its logged
//! transactions while another store on the file listens: the listener
//! reports exactly the transactions that committed, every one of them, and
//! goes on hearing later writers.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{ChangeEntity, ChangeKind};
use uuid::Uuid;

use crate::{common, count, drain, url};

const NAME: &str = "killed::a_writer_killed_mid_transaction_is_reported_exactly_as_committed";
/// Messages per transaction of the child: long enough transactions that the
/// kill lands inside one.
const MESSAGES: usize = 200;

/// The child: transactions of a conversation and its messages, one after
/// another until killed, a line out after each commit.
fn writer_child(path: &str) {
    let store = Store::open(&url(Path::new(path))).unwrap();
    loop {
        let id = store
            .transaction(|tx| {
                let c = tx
                    .conversations()
                    .create(NewConversation::titled("doomed?"))?;
                let messages = (0..MESSAGES)
                    .map(|i| NewMessage::new(Role::User, format!("message {i}")))
                    .collect();
                tx.conversations().append_messages(c.id, messages)?;
                Ok::<_, Error>(c.id)
            })
            .unwrap();
        println!("COMMITTED {id}");
    }
}

#[test]
fn a_writer_killed_mid_transaction_is_reported_exactly_as_committed() {
    if common::in_child() {
        if let Ok(path) = std::env::var(common::CHILD_VAR) {
            writer_child(&path);
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let store = Store::open(&url(&path)).unwrap();
    // Room for every event of the transactions committed before the kill
    // (the default 16,384 is about eighty of them): a lag here would hide a loss.
    let feed = store.subscribe_with_capacity(1 << 16).unwrap();
    let mut child = common::child(NAME, path.to_str().unwrap());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged: HashSet<Uuid> = HashSet::new();
    while acknowledged.len() < 5 {
        let line = lines.next().expect("the child writes").unwrap();
        if let Some(id) = common::after_tag(&line, "COMMITTED ") {
            acknowledged.insert(id.trim().parse().unwrap());
        }
    }
    // A little into the next transaction, then SIGKILL.
    std::thread::sleep(Duration::from_millis(3));
    child.kill().unwrap();
    child.wait().unwrap();
    // Commits acknowledged after the ones counted, before the kill.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = common::after_tag(&line, "COMMITTED ") {
            acknowledged.insert(id.trim().parse().unwrap());
        }
    }
    let events = drain(&feed, Duration::from_millis(500));
    assert!(
        !events.contains(&FeedEvent::Resync),
        "a kill is no reason to reload: {events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, FeedEvent::Lagged { .. })),
        "the queue had room for every event"
    );
    let created: HashSet<Uuid> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Change(c)
                if c.entity == ChangeEntity::Conversation && c.kind == ChangeKind::Created =>
            {
                Some(c.id)
            }
            _ => None,
        })
        .collect();
    let committed: HashSet<Uuid> = store
        .conversations()
        .list(ConversationQuery::recent(1000))
        .unwrap()
        .items
        .iter()
        .map(|c| *c.id.as_uuid())
        .collect();
    assert!(
        acknowledged.is_subset(&committed),
        "an acknowledged commit is stored"
    );
    assert_eq!(
        created, committed,
        "the feed reports exactly the committed transactions"
    );
    let messages = events
        .iter()
        .filter(|e| matches!(e, FeedEvent::Change(c) if c.entity == ChangeEntity::Message))
        .count();
    assert_eq!(messages, committed.len() * MESSAGES, "every message, once");
    assert_eq!(
        count(&path, "SELECT count(*) FROM change_log"),
        committed.len() as i64,
        "a log row per committed transaction, none for the killed one"
    );
    // The file and the feed go on: another store's write is heard.
    let later = Store::open(&url(&path)).unwrap();
    let c = later
        .conversations()
        .create(NewConversation::titled("after the kill"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let heard = std::iter::from_fn(|| feed.recv_timeout(deadline - Instant::now()))
        .any(|e| matches!(e, FeedEvent::Change(x) if x.id == *c.id.as_uuid()));
    assert!(heard, "a later writer is heard");
}
