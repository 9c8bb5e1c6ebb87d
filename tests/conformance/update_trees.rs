//! `update` on a conversation with several branches: it writes the current
//! branch and leaves the others alone, except that a branch hanging from a
//! message it drops moves up to the nearest message it keeps.

use silmari_store::Entity;
use silmari_store::prelude::*;

use crate::support::{
    assert_invalid, assert_tree, branch, chained, contents, conversation, get, ids, say, tree,
    under,
};

/// u1 → a1 → u2 → a2: four messages appended as one chain.
fn four(store: &Store, c: ConversationId) -> [Message; 4] {
    let m = store
        .conversations()
        .append_messages(
            c,
            vec![
                NewMessage::new(Role::User, "u1"),
                NewMessage::new(Role::Assistant, "a1"),
                NewMessage::new(Role::User, "u2"),
                NewMessage::new(Role::Assistant, "a2"),
            ],
        )
        .unwrap();
    m.try_into().unwrap()
}

/// The messages of `t` off its current branch, in order.
fn off_path(t: &silmari_store::ConversationTree) -> Vec<Message> {
    let path: Vec<MessageId> = t.current_path().iter().map(|m| m.id).collect();
    t.messages
        .iter()
        .filter(|m| !path.contains(&m.id))
        .cloned()
        .collect()
}

pub fn update_on_a_tree_leaves_other_branches_alone(store: &Store) {
    let c = conversation(store, "tree");
    let [u1, a1, u2, a2] = four(store, c);
    let a2b = branch(store, c, Some(&u2), "a2b");
    let u2b = store
        .conversations()
        .branch_from(c, Some(a1.id), NewMessage::new(Role::User, "u2b"))
        .unwrap();
    let a2c = say(store, c, Role::Assistant, "a2c");
    // Current: u1 a1 u2b a2c; off it: u2, a2, a2b. a1 is a branch point.
    let before = tree(store, c);
    assert_eq!(ids(&off_path(&before)), [u2.id, a2.id, a2b.id]);

    let mut copy = get(store, c);
    copy.title = "edited".into();
    copy.messages[1].content = "a1, edited".into();
    copy.messages[3].role = Role::Tool;
    let u3 = copy.push_message(NewMessage::new(Role::User, "u3")).clone();
    let stored = store.conversations().update(&copy).unwrap();
    let expected = chained(&copy.messages);
    assert_eq!(stored.messages, expected);
    assert_eq!(get(store, c), stored, "stored as returned");
    let after = tree(store, c);
    assert_eq!(
        off_path(&after),
        off_path(&before),
        "the other branches are exactly as they were"
    );
    assert_eq!(after.current_leaf, Some(u3.id));
    assert_eq!(after.messages.len(), 8);
    assert_eq!(
        store.conversations().alternatives(u2.id).unwrap(),
        vec![u2.clone(), u2b.clone()],
        "the edited branch point keeps its other child"
    );
    assert_eq!(expected[2], u2b, "written back unchanged");
    let mut all = before.messages.clone();
    all[1] = expected[1].clone();
    let at = all.iter().position(|m| m.id == a2c.id).unwrap();
    all[at] = expected[3].clone();
    all.push(expected[4].clone());
    assert_tree(store, c, &all, Some(&expected[4]));

    // Shortened at the end: the other branches stay too.
    let mut copy = get(store, c);
    copy.messages.truncate(2);
    let stored = store.conversations().update(&copy).unwrap();
    assert_eq!(ids(&stored.messages), [u1.id, a1.id]);
    let t = tree(store, c);
    assert_eq!(off_path(&t), off_path(&before));
    assert_eq!(ids(&t.messages), [u1.id, a1.id, u2.id, a2.id, a2b.id]);
    assert_tree(store, c, &t.messages, Some(&stored.messages[1]));
}

pub fn update_dropping_a_message_moves_its_branches_up(store: &Store) {
    let c = conversation(store, "drop");
    let [u1, a1, u2, a2] = four(store, c);
    let a2b = branch(store, c, Some(&u2), "a2b");
    let u2c = branch(store, c, Some(&a1), "u2c");
    store.conversations().switch_branch(a2.id).unwrap();
    assert_eq!(ids(&get(store, c).messages), [u1.id, a1.id, u2.id, a2.id]);

    // a1 and u2 dropped: a2b (below u2) and u2c (below a1) move up to u1.
    let mut copy = get(store, c);
    copy.messages = vec![copy.messages[0].clone(), copy.messages[3].clone()];
    let stored = store.conversations().update(&copy).unwrap();
    let (a2m, a2bm, u2cm) = (
        under(&a2, Some(&u1)),
        under(&a2b, Some(&u1)),
        under(&u2c, Some(&u1)),
    );
    assert_eq!(stored.messages, vec![u1.clone(), a2m.clone()]);
    assert_tree(
        store,
        c,
        &[u1.clone(), a2m.clone(), a2bm.clone(), u2cm.clone()],
        Some(&a2m),
    );
    assert_eq!(
        store.conversations().alternatives(a2.id).unwrap(),
        vec![a2m, a2bm, u2cm]
    );

    // The first message dropped: its branches become first messages.
    let mut copy = get(store, c);
    copy.messages.remove(0);
    store.conversations().update(&copy).unwrap();
    let (a2m, a2bm, u2cm) = (under(&a2, None), under(&a2b, None), under(&u2c, None));
    assert_tree(
        store,
        c,
        &[a2m.clone(), a2bm.clone(), u2cm.clone()],
        Some(&a2m),
    );
    assert_eq!(
        store.conversations().alternatives(u2c.id).unwrap(),
        vec![a2m.clone(), a2bm.clone(), u2cm.clone()]
    );

    // Every message of the current branch dropped: the others stay, none
    // current, until one is switched to.
    let mut copy = get(store, c);
    copy.messages.clear();
    store.conversations().update(&copy).unwrap();
    assert_tree(store, c, &[a2bm.clone(), u2cm.clone()], None);
    let switched = store.conversations().switch_branch(a2b.id).unwrap();
    assert_eq!(switched.messages, vec![a2bm.clone()]);
    assert_tree(store, c, &[a2bm.clone(), u2cm], Some(&a2bm));
}

pub fn update_refuses_reordering_a_branched_conversation(store: &Store) {
    let c = conversation(store, "reorder");
    let [u1, a1, u2, a2] = four(store, c);
    let a2b = branch(store, c, Some(&u2), "a2b");
    let before = (contents(store), tree(store, c));

    let mut swapped = get(store, c);
    swapped.messages.swap(0, 1);
    assert_invalid(store.conversations().update(&swapped), "messages");
    let mut reversed = get(store, c);
    reversed.messages.reverse();
    assert_invalid(store.conversations().update(&reversed), "messages");
    let mut between = get(store, c);
    let new = Message::new(c, NewMessage::new(Role::User, "between"));
    between.messages.insert(1, new);
    assert_invalid(store.conversations().update(&between), "messages");
    assert_eq!(
        (contents(store), tree(store, c)),
        before,
        "nothing was written"
    );

    // With the other branch gone, the same reordering is written.
    assert_eq!(store.conversations().delete_branch(a2.id).unwrap(), 1);
    let mut swapped = get(store, c);
    swapped.messages.swap(0, 1);
    let stored = store.conversations().update(&swapped).unwrap();
    let expected = chained(&[a1, u1, u2, a2b]);
    assert_eq!(stored.messages, expected);
    assert_tree(store, c, &expected, Some(&expected[3]));
}

pub fn update_conflicts_and_stale_copies_write_nothing(store: &Store) {
    let c = conversation(store, "conflict");
    let u1 = say(store, c, Role::User, "u1");
    let a1 = say(store, c, Role::Assistant, "a1");
    let _a1b = branch(store, c, Some(&u1), "a1b");
    let before = (contents(store), tree(store, c));

    // A message of another branch put into the current one.
    let mut copy = get(store, c);
    copy.messages.push(a1.clone());
    let err = store.conversations().update(&copy).unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == a1.id.to_string()),
        "{err:?}"
    );
    assert_eq!((contents(store), tree(store, c)), before);

    // A copy read before a switch (the version moved): Stale.
    let mut copy = get(store, c);
    store.conversations().switch_branch(a1.id).unwrap();
    let switched = (contents(store), tree(store, c));
    copy.title = "stale".into();
    copy.messages[1].content = "a1b, edited on the stale copy".into();
    let err = store.conversations().update(&copy).unwrap_err();
    assert!(err.is_stale(), "{err:?}");
    assert_eq!((contents(store), tree(store, c)), switched);

    // A copy read before a branch: Stale.
    let mut copy = get(store, c);
    let _a1c = branch(store, c, Some(&u1), "a1c");
    let branched = (contents(store), tree(store, c));
    copy.messages.truncate(1);
    let err = store.conversations().update(&copy).unwrap_err();
    assert!(err.is_stale(), "{err:?}");
    assert_eq!((contents(store), tree(store, c)), branched);
}
