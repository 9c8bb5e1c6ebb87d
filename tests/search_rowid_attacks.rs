//! Attacks on SQLite's search by rowid blocks (V11): the same history,
//! with fixed ids and times, written to the memory backend and to an SQLite
//! file gives the same hits in the same order for every kind of query
//! (pages, cursors, time ranges, role, all branches, relevance): times
//! changed by `update`, rolled-back and failed calls, equal timestamps,
//! old texts imported after newer ones then the index rebuilt, two stores
//! on one file, migrations down and up, streamed growth. (A review
//! helper's attacks, kept as tests; with `update_message`'s widening taken
//! out, `update_changes_times` fails.)
#![cfg(feature = "sqlite")]

use silmari_store::prelude::*;
use silmari_store::{Archived, SearchHit, SearchQuery, TransferOptions};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

const N: i64 = 3_000;

fn at(s: i64) -> OffsetDateTime {
    datetime!(2020-01-01 0:00 UTC) + time::Duration::seconds(s)
}

fn mid(id: u128) -> MessageId {
    MessageId::from_uuid(Uuid::from_u128(id))
}

fn m(id: u128, text: &str, secs: i64) -> NewMessage {
    let mut n = NewMessage::new(Role::User, text);
    n.id = Some(mid(id));
    n.created_at = Some(at(secs));
    n
}

fn conv(store: &Store, id: u128, title: &str) -> ConversationId {
    let mut c = NewConversation::titled(title);
    c.id = Some(ConversationId::from_uuid(Uuid::from_u128(id)));
    c.created_at = Some(at(0));
    store.conversations().create(c).unwrap().id
}

fn sqlite() -> (TempDir, Store, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("a.db").display());
    let store = Store::open(&url).unwrap();
    (dir, store, url)
}

fn key(h: &SearchHit) -> (Uuid, i64) {
    match &h.message {
        Some(m) => (
            *m.id.as_uuid(),
            (m.created_at.unix_timestamp_nanos() / 1000) as i64,
        ),
        None => (*h.conversation.id.as_uuid(), -1),
    }
}

fn all(store: &Store, query: SearchQuery, limit: u32, pages: usize) -> Vec<(Uuid, i64)> {
    let mut query = query.limit(limit);
    let mut out = Vec::new();
    for _ in 0..pages {
        let page = store.search(&query).unwrap();
        out.extend(page.items.iter().map(key));
        match page.next {
            Some(next) => query = query.after(next),
            None => break,
        }
    }
    out
}

/// Every query variant, the same on both stores.
fn same(mem: &Store, sql: &Store, word: &str, label: &str) {
    let q = || SearchQuery::new(word).newest_first();
    let variants: Vec<(&str, SearchQuery, u32, usize)> = vec![
        ("first 7", q(), 7, 1),
        ("first 1", q(), 1, 1),
        ("paged 1000", q(), 1_000, 10),
        ("paged 33", q(), 33, 5),
        ("until 2500", q().until(at(2_500)), 20, 3),
        ("until 1", q().until(at(1)), 20, 3),
        ("since 3990", q().since(at(3_990)), 20, 3),
        ("since/until", q().since(at(1_500)).until(at(1_600)), 50, 3),
        ("role", q().role(Role::User), 7, 2),
        (
            "all branches",
            q().all_branches().archived(Archived::Include),
            7,
            3,
        ),
        ("relevance", SearchQuery::new(word), 50, 2),
    ];
    for (name, query, limit, pages) in variants {
        let (a, b) = (
            all(mem, query.clone(), limit, pages),
            all(sql, query, limit, pages),
        );
        assert_eq!(a.len(), b.len(), "{label}/{name}: count");
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            first.is_none(),
            "{label}/{name}: at {first:?}: memory {:?} sqlite {:?}",
            first.map(|i| a[i]),
            first.map(|i| b[i])
        );
    }
}

/// 3,000 texts "beacon i" at times 1,000 + i: three blocks of rowids.
fn base(store: &Store) -> ConversationId {
    let c = conv(store, 1, "first");
    let texts = (0..N)
        .map(|i| m(1 + i as u128, &format!("beacon {i}"), 1_000 + i))
        .collect();
    store.conversations().append_messages(c, texts).unwrap();
    c
}

fn retime(store: &Store, c: ConversationId, changes: &[(u128, i64, Option<&str>)]) {
    let mut conversation = store.conversations().get(c).unwrap().unwrap();
    for (id, secs, text) in changes {
        let msg = conversation
            .messages
            .iter_mut()
            .find(|x| x.id == mid(*id))
            .unwrap();
        msg.created_at = at(*secs);
        if let Some(text) = text {
            msg.content = (*text).to_owned();
        }
    }
    store.conversations().update(&conversation).unwrap();
}

fn times_changed(store: &Store) {
    let c = base(store);
    // Old messages (block 0) made the newest, or the oldest, by update().
    retime(
        store,
        c,
        &[
            (5, 100_000, None),
            (10, 100_001, Some("beacon changed")),
            (2_500, -5, None),
            (2_600, 4_500, None),
            (7, 1_000 + 6, None),
        ],
    );
    // Single appends waiting above the mark, then more changes.
    for i in 0..40 {
        store
            .conversations()
            .append_message(c, m(10_000 + i, "beacon single", 50 + i as i64))
            .unwrap();
    }
    retime(
        store,
        c,
        &[(10_005, 200_000, None), (1_500, 3, Some("beacon again"))],
    );
}

#[test]
fn update_changes_times() {
    let (mem, (_d, sql, _)) = (Store::open("memory://").unwrap(), sqlite());
    times_changed(&mem);
    times_changed(&sql);
    same(&mem, &sql, "beacon", "update");
}

fn rolled_back(store: &Store) {
    let c = base(store);
    // A transaction that widens blocks, then fails.
    let r: silmari_store::Result<()> = store.transaction(|tx| {
        let texts = (0..1_500)
            .map(|i| m(50_000 + i, "beacon rolled", 900_000 + i as i64))
            .collect();
        tx.conversations().append_messages(c, texts)?;
        Err(Error::Backend("roll back".into()))
    });
    assert!(r.is_err());
    // A transaction holding a failing call (duplicate id after new texts).
    store
        .transaction(|tx| -> silmari_store::Result<()> {
            let mut texts: Vec<NewMessage> = (0..1_100)
                .map(|i| m(60_000 + i, "beacon failed", 800_000 + i as i64))
                .collect();
            texts.push(m(1, "dup", 5));
            assert!(tx.conversations().append_messages(c, texts).is_err());
            let texts = (0..1_100)
                .map(|i| m(70_000 + i, "beacon kept", 500 + i as i64))
                .collect();
            tx.conversations().append_messages(c, texts)?;
            Ok(())
        })
        .unwrap();
}

#[test]
fn transactions_roll_back() {
    let (mem, (_d, sql, _)) = (Store::open("memory://").unwrap(), sqlite());
    rolled_back(&mem);
    rolled_back(&sql);
    same(&mem, &sql, "beacon", "rollback");
}

fn equal_times(store: &Store) {
    let c = conv(store, 2, "ties");
    // Ids against rowid order, every text at one time; a newer tail.
    let texts = (0..N as u128)
        .map(|i| m(1 + (i * 7_919) % 3_001, "beacon tie", 2_000))
        .collect();
    store.conversations().append_messages(c, texts).unwrap();
    let texts = (0..10)
        .map(|i| m(90_000 + i, "beacon tail", 2_000))
        .collect();
    store.conversations().append_messages(c, texts).unwrap();
}

#[test]
fn equal_timestamps() {
    let (mem, (_d, sql, _)) = (Store::open("memory://").unwrap(), sqlite());
    equal_times(&mem);
    equal_times(&sql);
    same(&mem, &sql, "beacon", "ties");
    let q = SearchQuery::new("beacon").newest_first();
    assert_eq!(
        all(&mem, q.clone(), 7, 500),
        all(&sql, q, 7, 500),
        "ties paged by 7"
    );
}

/// Old texts imported after newer ones (copy_to with merge), an old one
/// edited, then the index rebuilt.
fn imported(store: &Store, rebuild: bool) {
    let source = Store::open("memory://").unwrap();
    let old = conv(&source, 3, "old");
    let texts = (0..1_500)
        .map(|i| m(20_000 + i, "beacon old", -10_000 + i as i64))
        .collect();
    source.conversations().append_messages(old, texts).unwrap();
    base(store);
    source
        .copy_to(
            store,
            TransferOptions {
                merge: true,
                ..Default::default()
            },
            |_| {},
        )
        .unwrap();
    store
        .conversations()
        .edit_message(mid(20_003), MessageEdit::new().content("beacon edited"))
        .unwrap();
    if rebuild {
        store.migrations().rebuild_search_index(|_| {}).unwrap();
    }
}

#[test]
fn imports_and_rebuild() {
    let (mem, (_d, sql, _)) = (Store::open("memory://").unwrap(), sqlite());
    imported(&mem, false);
    imported(&sql, true);
    same(&mem, &sql, "beacon", "import+rebuild");
}

#[test]
fn two_handles_on_one_file() {
    let mem = Store::open("memory://").unwrap();
    let (_d, a, url) = sqlite();
    let b = Store::open(&url).unwrap();
    for (one, other) in [(&mem, &mem), (&a, &b)] {
        let c = base(one);
        retime(other, c, &[(3, 500_000, None)]);
        for i in 0..200 {
            let s = if i % 2 == 0 { one } else { other };
            s.conversations()
                .append_message(c, m(30_000 + i, "beacon both", 300_000 - i as i64))
                .unwrap();
        }
        retime(one, c, &[(30_001, 600_000, None), (4, 1, None)]);
    }
    same(&mem, &a, "beacon", "handle a");
    same(&mem, &b, "beacon", "handle b");
}

#[test]
fn migrations_down_and_up() {
    let mem = Store::open("memory://").unwrap();
    let (_d, sql, _) = sqlite();
    let c = base(&mem);
    base(&sql);
    for (down, time) in [(1usize, 700_000i64), (2, 710_000), (4, 720_000)] {
        sql.migrations().down(down).unwrap();
        for s in [&mem, &sql] {
            retime(s, c, &[(11 + down as u128, time, None)]);
            s.conversations()
                .append_message(c, m(40_000 + down as u128, "beacon down", time - 1))
                .unwrap();
        }
        sql.migrations().up().unwrap();
        sql.migrations().build_search_index(|_| {}).unwrap();
        same(&mem, &sql, "beacon", &format!("down {down}"));
    }
}

fn grown(store: &Store) {
    let c = base(store);
    let long = "beacon ".repeat(1_000);
    store
        .conversations()
        .append_message(c, m(80_000, &long, 5_000))
        .unwrap();
    store
        .conversations()
        .append_to_message(mid(80_000), " more")
        .unwrap();
    for id in [2u128, 3] {
        store
            .conversations()
            .append_to_message(mid(id), &" grown".repeat(800))
            .unwrap();
    }
}

#[test]
fn streamed_growth() {
    let (mem, (_d, sql, _)) = (Store::open("memory://").unwrap(), sqlite());
    grown(&mem);
    grown(&sql);
    same(&mem, &sql, "beacon", "grown");
    same(&mem, &sql, "grown", "grown word");
}
