//! Archive: hidden from `list` unless asked, kept otherwise; unarchived, a
//! conversation returns to its place.

use std::collections::HashSet;

use silmari_store::prelude::*;
use silmari_store::{ConversationOrder, ConversationSummary, Entity};
use time::macros::datetime;

use crate::support::{contents, conversation, get, listed, say, tree};

fn recent_ids(store: &Store) -> Vec<ConversationId> {
    store
        .conversations()
        .list(ConversationQuery::recent(100))
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect()
}

pub fn archive_sets_keeps_and_clears_archived_at(store: &Store) {
    let c = conversation(store, "archive me");
    let m = say(store, c, Role::User, "hello");
    let _later = conversation(store, "later");
    let order = recent_ids(store);
    let before = get(store, c);
    assert_eq!(before.archived_at, None);

    let archived = store.conversations().archive(c).unwrap();
    let at = archived.archived_at.expect("archived_at is set");
    assert!(at >= before.updated_at, "archived now");
    assert_eq!(archived.version, before.version + 1, "the version moves");
    assert_eq!(
        archived.updated_at, before.updated_at,
        "updated_at does not move"
    );
    assert_eq!(archived.message_count, 1);
    assert_eq!((archived.id, archived.title.as_str()), (c, "archive me"));
    let stored = get(store, c);
    assert_eq!(stored.archived_at, Some(at));
    assert_eq!(stored.version, archived.version);
    assert_eq!(stored.messages, vec![m.clone()], "nothing is deleted");
    assert_eq!(listed(store, c), archived, "listed as returned");
    assert_eq!(tree(store, c).conversation, archived);
    assert!(!recent_ids(store).contains(&c), "hidden by default");

    // Archived again: the first archived_at stays.
    let again = store.conversations().archive(c).unwrap();
    assert_eq!(again.archived_at, Some(at));
    assert_eq!(again.version, archived.version + 1);
    assert_eq!(again.updated_at, before.updated_at);

    // update() keeps archived_at as stored, whatever the copy says.
    let mut copy = get(store, c);
    copy.archived_at = None;
    copy.title = "renamed while archived".into();
    let updated = store.conversations().update(&copy).unwrap();
    assert_eq!(updated.archived_at, Some(at));
    assert_eq!(get(store, c).archived_at, Some(at));

    let restored = store.conversations().unarchive(c).unwrap();
    assert_eq!(restored.archived_at, None);
    assert_eq!(restored.version, updated.version + 1);
    assert_eq!(restored.updated_at, updated.updated_at);
    assert_eq!(get(store, c).archived_at, None);
    assert_eq!(listed(store, c), restored);
    let again = store.conversations().unarchive(c).unwrap();
    assert_eq!(again.archived_at, None, "unarchived stays unarchived");

    // Archived and restored without other writes: back in its place.
    let c2 = conversation(store, "round trip");
    let order2 = recent_ids(store);
    store.conversations().archive(c2).unwrap();
    store.conversations().unarchive(c2).unwrap();
    assert_eq!(recent_ids(store), order2);
    assert!(order.len() + 1 == order2.len());
}

/// Every summary, archived or not, from `tree` (not from `list`).
fn summaries(store: &Store, ids: &[ConversationId]) -> Vec<ConversationSummary> {
    ids.iter().map(|c| tree(store, *c).conversation).collect()
}

/// Every page of `query`, checking that only the last page is short.
fn walk(store: &Store, mut query: ConversationQuery) -> (Vec<ConversationSummary>, usize) {
    let limit = query.page.limit as usize;
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = store.conversations().list(query.clone()).unwrap();
        pages += 1;
        all.extend(page.items.iter().cloned());
        match page.next {
            Some(cursor) => {
                assert_eq!(page.items.len(), limit, "a page before the last is full");
                query = query.after(cursor);
            }
            None => return (all, pages),
        }
    }
}

pub fn archive_lists_page_through_each_filter(store: &Store) {
    // Shared timestamps, so ties are broken by id across archived and not.
    let created = [
        datetime!(2024-05-01 10:00 UTC),
        datetime!(2024-05-01 10:00 UTC),
        datetime!(2024-05-01 10:00 UTC),
        datetime!(2024-05-02 10:00 UTC),
        datetime!(2024-05-02 10:00 UTC),
        datetime!(2024-05-03 10:00 UTC),
        datetime!(2024-05-03 10:00 UTC),
        datetime!(2024-05-04 10:00 UTC),
    ];
    let ids: Vec<ConversationId> = created
        .iter()
        .enumerate()
        .map(|(i, t)| {
            store
                .conversations()
                .create(NewConversation {
                    title: format!("c{i}"),
                    created_at: Some(*t),
                    ..Default::default()
                })
                .unwrap()
                .id
        })
        .collect();
    // Messages make the updated_at order differ from the created_at order.
    for i in [0, 3, 1] {
        say(store, ids[i], Role::User, "moved up");
    }
    for i in [1, 2, 4, 7] {
        store.conversations().archive(ids[i]).unwrap();
    }
    let all = summaries(store, &ids);
    assert_eq!(all.iter().filter(|s| s.archived_at.is_some()).count(), 4);

    for order in [ConversationOrder::UpdatedAt, ConversationOrder::CreatedAt] {
        let key = |s: &ConversationSummary| match order {
            ConversationOrder::UpdatedAt => (s.updated_at, s.id),
            ConversationOrder::CreatedAt => (s.created_at, s.id),
        };
        let mut sorted = all.clone();
        sorted.sort_by_key(|s| std::cmp::Reverse(key(s)));
        let hidden: Vec<_> = sorted
            .iter()
            .filter(|s| s.archived_at.is_none())
            .cloned()
            .collect();
        let only: Vec<_> = sorted
            .iter()
            .filter(|s| s.archived_at.is_some())
            .cloned()
            .collect();
        let base = |limit| ConversationQuery {
            order,
            ..ConversationQuery::recent(limit)
        };
        for limit in [1u32, 2, 3, 5] {
            for (name, query, expected) in [
                ("default", base(limit), &hidden),
                ("only_archived", base(limit).only_archived(), &only),
                ("include_archived", base(limit).include_archived(), &sorted),
            ] {
                let (got, pages) = walk(store, query);
                let unique: HashSet<ConversationId> = got.iter().map(|s| s.id).collect();
                assert_eq!(
                    unique.len(),
                    got.len(),
                    "{order:?} {name} {limit}: duplicates"
                );
                assert_eq!(&got, expected, "{order:?} {name} limit {limit}");
                assert_eq!(
                    pages,
                    expected.len().div_ceil(limit as usize),
                    "{order:?} {name} limit {limit}"
                );
            }
        }
    }

    // list_all: every conversation, archived or not, most recently updated first.
    let mut by_updated = all.clone();
    by_updated.sort_by_key(|s| std::cmp::Reverse((s.updated_at, s.id)));
    let every = store.conversations().list_all().unwrap();
    let listed: Vec<(ConversationId, bool)> = every
        .iter()
        .map(|c| (c.id, c.archived_at.is_some()))
        .collect();
    let expected: Vec<(ConversationId, bool)> = by_updated
        .iter()
        .map(|s| (s.id, s.archived_at.is_some()))
        .collect();
    assert_eq!(listed, expected);
    for c in &every {
        assert_eq!(Some(c), store.conversations().get(c.id).unwrap().as_ref());
    }
}

pub fn archive_missing_and_deleted_conversations(store: &Store) {
    let before = contents(store);
    for result in [
        store.conversations().archive(ConversationId::new()),
        store.conversations().unarchive(ConversationId::new()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotFound {
                    entity: Entity::Conversation,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(contents(store), before);

    // Deleting an archived conversation is for good.
    let c = conversation(store, "doomed");
    let m = say(store, c, Role::User, "gone");
    let kept = conversation(store, "kept");
    store.conversations().archive(c).unwrap();
    store.conversations().archive(kept).unwrap();
    assert!(store.conversations().delete(c).unwrap());
    assert_eq!(store.conversations().get(c).unwrap(), None);
    assert_eq!(store.conversations().tree(c).unwrap(), None);
    let all = store.conversations().list_all().unwrap();
    assert_eq!(all.iter().map(|x| x.id).collect::<Vec<_>>(), [kept]);
    let archived = store
        .conversations()
        .list(ConversationQuery::recent(10).only_archived())
        .unwrap();
    assert_eq!(
        archived.items.iter().map(|s| s.id).collect::<Vec<_>>(),
        [kept]
    );
    assert!(
        store
            .conversations()
            .alternatives(m.id)
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        store
            .conversations()
            .unarchive(c)
            .unwrap_err()
            .is_not_found()
    );
    assert!(!store.conversations().delete(c).unwrap());
}
