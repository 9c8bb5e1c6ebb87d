//! Deleting in a tree: one message (its children move up to its parent) or a
//! whole branch (the message and everything below it).

use silmari_store::prelude::*;

use crate::support::{
    alternatives, assert_tree, branch, contents, conversation, get, ids, say, tree, under,
};

/// p → r1 → f1 → g1, and f2 below r1 (current): r1 is a branch point.
pub fn delete_message_at_a_branch_point_splices(store: &Store) {
    let c = conversation(store, "splice");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let f1 = say(store, c, Role::User, "f1");
    let g1 = say(store, c, Role::Assistant, "g1");
    let f2 = branch(store, c, Some(&r1), "f2");
    let before = get(store, c);
    assert_eq!(ids(&before.messages), [p.id, r1.id, f2.id]);

    assert!(store.conversations().delete_message(r1.id).unwrap());
    let (f1m, f2m) = (under(&f1, Some(&p)), under(&f2, Some(&p)));
    let after = get(store, c);
    assert_eq!(
        after.messages,
        vec![p.clone(), f2m.clone()],
        "the current branch closes over the gap"
    );
    assert_eq!(after.version, before.version + 1);
    assert!(after.updated_at > before.updated_at);
    assert_eq!(
        alternatives(store, f1.id),
        vec![f1m.clone(), f2m.clone()],
        "r1's children are alternatives below p now"
    );
    assert_tree(
        store,
        c,
        &[p.clone(), f1m.clone(), g1.clone(), f2m.clone()],
        Some(&f2m),
    );

    // The current leaf deleted: its parent becomes the leaf.
    assert!(store.conversations().delete_message(f2.id).unwrap());
    assert_eq!(get(store, c).messages, vec![p.clone()]);
    assert_tree(store, c, &[p.clone(), f1m.clone(), g1.clone()], Some(&p));
    let next = say(store, c, Role::Assistant, "next");
    assert_eq!(next.parent_id, Some(p.id), "appends go below the new leaf");
    assert_eq!(alternatives(store, f1.id), vec![f1m, next]);

    // A first message that is a branch point: its children become first
    // messages.
    let c2 = conversation(store, "root");
    let u = say(store, c2, Role::User, "u");
    let a1 = say(store, c2, Role::Assistant, "a1");
    let a2 = branch(store, c2, Some(&u), "a2");
    assert!(store.conversations().delete_message(u.id).unwrap());
    let (a1m, a2m) = (under(&a1, None), under(&a2, None));
    assert_eq!(get(store, c2).messages, vec![a2m.clone()]);
    assert_eq!(alternatives(store, a1.id), vec![a1m.clone(), a2m.clone()]);
    assert_tree(store, c2, &[a1m, a2m.clone()], Some(&a2m));
}

/// Deleting the branch the conversation is on: the leaf moves up to the
/// deleted message's parent; the other branches stay as they were.
pub fn delete_branch_of_the_current_branch(store: &Store) {
    let c = conversation(store, "current");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let f1 = say(store, c, Role::User, "f1");
    let g1 = say(store, c, Role::Assistant, "g1");
    let r2 = branch(store, c, Some(&p), "r2");
    let f2 = say(store, c, Role::User, "f2");
    let g2 = say(store, c, Role::Assistant, "g2");
    let _f2b = branch(store, c, Some(&r2), "f2b");
    store.conversations().switch_branch(g2.id).unwrap();
    assert_eq!(ids(&get(store, c).messages), [p.id, r2.id, f2.id, g2.id]);
    let before = get(store, c);

    assert_eq!(
        store.conversations().delete_branch(r2.id).unwrap(),
        4,
        "r2, f2, g2 and f2b"
    );
    let after = get(store, c);
    assert_eq!(after.messages, vec![p.clone()], "the leaf is r2's parent");
    assert!(after.version > before.version);
    assert_tree(
        store,
        c,
        &[p.clone(), r1.clone(), f1.clone(), g1.clone()],
        Some(&p),
    );
    assert_eq!(alternatives(store, r1.id), vec![r1.clone()]);

    // In the middle of the current branch.
    store.conversations().switch_branch(r1.id).unwrap();
    assert_eq!(store.conversations().delete_branch(f1.id).unwrap(), 2);
    assert_eq!(get(store, c).messages, vec![p.clone(), r1.clone()]);
    assert_tree(store, c, &[p.clone(), r1.clone()], Some(&r1));
    let next = say(store, c, Role::User, "next");
    assert_eq!(next.parent_id, Some(r1.id));

    // The first message: nothing is left.
    assert_eq!(store.conversations().delete_branch(p.id).unwrap(), 3);
    assert_tree(store, c, &[], None);
    assert!(get(store, c).messages.is_empty());
}

/// Deleting a branch the conversation is not on leaves the current branch.
pub fn delete_branch_off_the_current_branch(store: &Store) {
    let c = conversation(store, "off");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let f1 = say(store, c, Role::User, "f1");
    let _g1 = say(store, c, Role::Assistant, "g1");
    let f1b = branch(store, c, Some(&r1), "f1b");
    let r2 = branch(store, c, Some(&p), "r2");
    let f2 = say(store, c, Role::User, "f2");
    let before = get(store, c);
    assert_eq!(ids(&before.messages), [p.id, r2.id, f2.id]);

    assert_eq!(
        store.conversations().delete_branch(f1.id).unwrap(),
        2,
        "f1 and g1"
    );
    let after = get(store, c);
    assert_eq!(after.messages, before.messages);
    assert!(after.version > before.version);
    let t = tree(store, c);
    assert_eq!(ids(&t.messages), [p.id, r1.id, f1b.id, r2.id, f2.id]);
    assert_tree(store, c, &t.messages, Some(&f2));

    assert_eq!(store.conversations().delete_branch(r1.id).unwrap(), 2);
    assert_eq!(get(store, c).messages, before.messages);
    assert_tree(store, c, &[p, r2.clone(), f2.clone()], Some(&f2));
    assert_eq!(alternatives(store, r2.id), vec![r2]);
}

/// Deleting what is not there: `false` and 0, and nothing moves, not even
/// the version.
pub fn delete_missing_moves_nothing(store: &Store) {
    let c = conversation(store, "missing");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let _r2 = branch(store, c, Some(&p), "r2");
    let before = (contents(store), tree(store, c));
    assert!(
        !store
            .conversations()
            .delete_message(MessageId::new())
            .unwrap()
    );
    assert_eq!(
        store
            .conversations()
            .delete_branch(MessageId::new())
            .unwrap(),
        0
    );
    assert_eq!((contents(store), tree(store, c)), before);

    // Deleted once, then again.
    assert!(store.conversations().delete_message(r1.id).unwrap());
    let once = (contents(store), tree(store, c));
    assert!(!store.conversations().delete_message(r1.id).unwrap());
    assert_eq!(store.conversations().delete_branch(r1.id).unwrap(), 0);
    assert_eq!((contents(store), tree(store, c)), once);
}
