//! Branches: regenerate a reply, edit a prompt and resend it, start over
//! from the top, step through the alternatives and switch between them.

use silmari_store::Entity;
use silmari_store::prelude::*;

use crate::support::{
    alternatives, assert_invalid, assert_tree, branch, branch_pages, contents, conversation, get,
    ids, say, tree,
};

/// Regenerating a reply: a new child of the prompt, which becomes current;
/// the old reply stays in the tree, as an alternative.
pub fn branch_regenerate_adds_a_current_sibling(store: &Store) {
    let c = conversation(store, "regenerate");
    let prompt = say(store, c, Role::User, "Name a colour");
    let first = say(store, c, Role::Assistant, "Red");
    assert_eq!(
        first.parent_id,
        Some(prompt.id),
        "an append follows the leaf"
    );
    let before = get(store, c);

    let second = store
        .conversations()
        .branch_from(c, Some(prompt.id), NewMessage::new(Role::Assistant, "Blue"))
        .unwrap();
    assert_eq!(second.parent_id, Some(prompt.id));
    assert_eq!(
        (second.conversation_id, second.role, second.content.as_str()),
        (c, Role::Assistant, "Blue")
    );
    let after = get(store, c);
    assert_eq!(
        after.messages,
        vec![prompt.clone(), second.clone()],
        "get() runs from the first message to the new reply"
    );
    assert_eq!(after.version, before.version + 1);
    assert!(after.updated_at > before.updated_at);
    assert_tree(
        store,
        c,
        &[prompt.clone(), first.clone(), second.clone()],
        Some(&second),
    );

    // The "2 / 2" switcher, from either reply; the prompt has none.
    let both = vec![first.clone(), second.clone()];
    assert_eq!(alternatives(store, first.id), both);
    assert_eq!(alternatives(store, second.id), both);
    assert_eq!(alternatives(store, prompt.id), vec![prompt.clone()]);

    // A third, then the conversation goes on below it.
    let third = branch(store, c, Some(&prompt), "Green");
    assert_eq!(
        ids(&alternatives(store, second.id)),
        [first.id, second.id, third.id],
        "oldest first"
    );
    assert_eq!(get(store, c).messages, vec![prompt.clone(), third.clone()]);
    let next = say(store, c, Role::User, "Why green?");
    assert_eq!(next.parent_id, Some(third.id));
    assert_tree(
        store,
        c,
        &[prompt.clone(), first, second, third.clone(), next.clone()],
        Some(&next),
    );
    assert_eq!(get(store, c).messages, vec![prompt, third, next]);
}

/// Editing a prompt and resending it is a branch from the prompt's parent;
/// editing the first prompt is a branch from `None`.
pub fn branch_edit_and_resend_and_start_over(store: &Store) {
    let c = conversation(store, "resend");
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
    let (u1, a1, u2, a2) = (&m[0], &m[1], &m[2], &m[3]);
    assert_eq!(
        [u1.parent_id, a1.parent_id, u2.parent_id, a2.parent_id],
        [None, Some(u1.id), Some(a1.id), Some(u2.id)],
        "a batch is one chain"
    );

    let u2b = store
        .conversations()
        .branch_from(c, u2.parent_id, NewMessage::new(Role::User, "u2, edited"))
        .unwrap();
    assert_eq!(u2b.parent_id, Some(a1.id));
    assert_eq!(
        get(store, c).messages,
        vec![u1.clone(), a1.clone(), u2b.clone()]
    );
    let a2b = say(store, c, Role::Assistant, "a2, again");
    assert_eq!(a2b.parent_id, Some(u2b.id));
    assert_eq!(
        get(store, c).messages,
        vec![u1.clone(), a1.clone(), u2b.clone(), a2b.clone()]
    );
    assert_eq!(ids(&alternatives(store, u2.id)), [u2.id, u2b.id]);
    assert_eq!(alternatives(store, a2.id), vec![a2.clone()]);
    assert_eq!(alternatives(store, a2b.id), vec![a2b.clone()]);

    // The first prompt edited: a new first message.
    let u1b = store
        .conversations()
        .branch_from(c, u1.parent_id, NewMessage::new(Role::User, "start over"))
        .unwrap();
    assert_eq!(u1b.parent_id, None);
    assert_eq!(get(store, c).messages, vec![u1b.clone()]);
    assert_eq!(
        alternatives(store, u1.id),
        vec![u1.clone(), u1b.clone()],
        "the first messages are alternatives too"
    );
    assert_eq!(alternatives(store, u1b.id), vec![u1.clone(), u1b.clone()]);
    let all = [
        u1.clone(),
        a1.clone(),
        u2.clone(),
        a2.clone(),
        u2b.clone(),
        a2b.clone(),
        u1b.clone(),
    ];
    assert_tree(store, c, &all, Some(&u1b));
    let t = tree(store, c);
    assert_eq!(
        ids(&t.children(None).cloned().collect::<Vec<_>>()),
        [u1.id, u1b.id]
    );
    assert_eq!(
        ids(&t.children(Some(a1.id)).cloned().collect::<Vec<_>>()),
        [u2.id, u2b.id]
    );
    assert_eq!(t.children(Some(a2b.id)).count(), 0);
}

/// Switching to an older alternative makes its branch current again, as it
/// was left: down to the newest message below it.
pub fn branch_switch_lands_where_the_branch_was_left(store: &Store) {
    let c = conversation(store, "switch");
    let p = say(store, c, Role::User, "p");
    let r1 = say(store, c, Role::Assistant, "r1");
    let f1 = say(store, c, Role::User, "f1");
    let g1 = say(store, c, Role::Assistant, "g1");
    let r2 = branch(store, c, Some(&p), "r2");
    let f2 = say(store, c, Role::User, "f2");
    let before = get(store, c);
    assert_eq!(ids(&before.messages), [p.id, r2.id, f2.id]);

    let switched = store.conversations().switch_branch(r1.id).unwrap();
    assert_eq!(
        switched.messages,
        vec![p.clone(), r1.clone(), f1.clone(), g1.clone()]
    );
    assert_eq!(switched.version, before.version + 1, "the version moves");
    assert_eq!(
        switched.updated_at, before.updated_at,
        "updated_at does not: no message was written"
    );
    assert_eq!(get(store, c), switched, "stored as returned");
    let mut all = vec![
        p.clone(),
        r1.clone(),
        f1.clone(),
        g1.clone(),
        r2.clone(),
        f2.clone(),
    ];
    assert_tree(store, c, &all, Some(&g1));

    // An append continues the branch switched to.
    let h1 = say(store, c, Role::User, "h1");
    assert_eq!(h1.parent_id, Some(g1.id));
    all.push(h1.clone());
    assert_tree(store, c, &all, Some(&h1));

    // Back and forth, each time where the branch was left.
    let back = store.conversations().switch_branch(r2.id).unwrap();
    assert_eq!(back.messages, vec![p.clone(), r2.clone(), f2.clone()]);
    let mid = store.conversations().switch_branch(f1.id).unwrap();
    assert_eq!(ids(&mid.messages), [p.id, r1.id, f1.id, g1.id, h1.id]);

    // Two branches below r1: switching to r1 lands on the newer one.
    let g1b = branch(store, c, Some(&f1), "g1b");
    all.push(g1b.clone());
    store.conversations().switch_branch(r2.id).unwrap();
    let newest = store.conversations().switch_branch(r1.id).unwrap();
    assert_eq!(ids(&newest.messages), [p.id, r1.id, f1.id, g1b.id]);
    let older = store.conversations().switch_branch(g1.id).unwrap();
    assert_eq!(ids(&older.messages), [p.id, r1.id, f1.id, g1.id, h1.id]);
    assert_tree(store, c, &all, Some(&h1));

    // To the current leaf: the same branch, a new version.
    let same = store.conversations().switch_branch(h1.id).unwrap();
    assert_eq!(same.messages, older.messages);
    assert_eq!(same.version, older.version + 1);

    // To a message that is not there: NotFound, nothing moves.
    let snapshot = (contents(store), tree(store, c));
    let err = store
        .conversations()
        .switch_branch(MessageId::new())
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!((contents(store), tree(store, c)), snapshot);
}

/// `messages()` pages through the current branch only, whatever the other
/// branches hold between its messages.
pub fn branch_pages_walk_only_the_current_branch(store: &Store) {
    let c = conversation(store, "pages");
    let root = say(store, c, Role::System, "root");
    // Two branches below the root, grown in turns: their positions interleave.
    let mut a = vec![branch(store, c, Some(&root), "a0")];
    let mut b = vec![branch(store, c, Some(&root), "b0")];
    for i in 1..6 {
        store.conversations().switch_branch(a[i - 1].id).unwrap();
        a.push(say(store, c, Role::User, &format!("a{i}")));
        store.conversations().switch_branch(b[i - 1].id).unwrap();
        b.push(say(store, c, Role::User, &format!("b{i}")));
    }
    let expected_b: Vec<Message> = std::iter::once(root.clone()).chain(b.clone()).collect();
    let expected_a: Vec<Message> = std::iter::once(root.clone()).chain(a.clone()).collect();
    assert_eq!(get(store, c).messages, expected_b);
    for limit in [1, 2, 3, 4, 7, 100] {
        let (paged, pages) = branch_pages(store, c, limit);
        assert_eq!(paged, expected_b, "limit {limit}");
        assert_eq!(pages, 7usize.div_ceil(limit as usize), "limit {limit}");
    }

    let switched = store.conversations().switch_branch(a[0].id).unwrap();
    assert_eq!(
        switched.messages, expected_a,
        "lands on a5, the newest below a0"
    );
    for limit in [2, 3, 5] {
        let (paged, pages) = branch_pages(store, c, limit);
        assert_eq!(paged, expected_a, "limit {limit}");
        assert_eq!(pages, 7usize.div_ceil(limit as usize), "limit {limit}");
    }
    let t = tree(store, c);
    assert_eq!(t.messages.len(), 13);
    assert_eq!(t.conversation.message_count, 13);
    assert_eq!(t.children(Some(root.id)).count(), 2);
}

/// A branch from a parent in another conversation, or from no message at
/// all, is refused, and so is an input `append_message` would refuse;
/// nothing is written, not even the switch to the parent's branch.
pub fn branch_from_refusals_write_nothing(store: &Store) {
    let c = conversation(store, "refusals");
    let m0 = say(store, c, Role::User, "m0");
    let m1 = say(store, c, Role::Assistant, "m1");
    let m1b = branch(store, c, Some(&m0), "m1b");
    let other = conversation(store, "other");
    let o = say(store, other, Role::User, "o");
    let before = (contents(store), tree(store, c), tree(store, other));
    assert_eq!(ids(&get(store, c).messages), [m0.id, m1b.id]);

    let to = |parent: Option<MessageId>, input: NewMessage| {
        store.conversations().branch_from(c, parent, input)
    };
    let reply = || NewMessage::new(Role::Assistant, "reply");

    assert_invalid(to(Some(o.id), reply()), "parent_id");
    let err = to(Some(MessageId::new()), reply()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                entity: Entity::Message,
                ..
            }
        ),
        "{err:?}"
    );
    for parent in [None, Some(m1.id)] {
        let err = store
            .conversations()
            .branch_from(ConversationId::new(), parent, reply())
            .unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }
    assert_invalid(
        to(Some(m1.id), NewMessage::new(Role::User, "nul\0byte")),
        "content",
    );
    // From the off-path m1, with an id that is taken: the switch to m1's
    // branch is rolled back with the refused insert.
    let err = to(
        Some(m1.id),
        NewMessage {
            id: Some(m0.id),
            ..reply()
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { entity: Entity::Message, id } if *id == m0.id.to_string()),
        "{err:?}"
    );
    let err = store
        .conversations()
        .alternatives(MessageId::new())
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");

    let after = (contents(store), tree(store, c), tree(store, other));
    assert_eq!(after, before, "nothing was written");
}

/// A batch continues the current branch whatever its size (PostgreSQL
/// copies 1,000 or more, reading the current leaf and the last position in
/// one statement): after a switch to an older branch, its first message's
/// parent is that branch's leaf, not the last message written, and every
/// message of the batch comes after all the others, in order.
pub fn branch_batches_of_any_size_continue_the_current_branch(store: &Store) {
    for size in [2, 1_200] {
        let c = conversation(store, &format!("a batch of {size}"));
        let p = say(store, c, Role::User, "p");
        let r1 = say(store, c, Role::Assistant, "r1");
        let r2 = branch(store, c, Some(&p), "r2");
        let f2 = say(store, c, Role::User, "f2");
        store.conversations().switch_branch(r1.id).unwrap();
        let batch: Vec<NewMessage> = (0..size)
            .map(|i| NewMessage::new(Role::User, format!("batch {i}")))
            .collect();
        let made = store.conversations().append_messages(c, batch).unwrap();
        assert_eq!(made.len(), size);
        assert_eq!(made[0].parent_id, Some(r1.id), "{size}: below the leaf");
        for pair in made.windows(2) {
            assert_eq!(pair[1].parent_id, Some(pair[0].id), "{size}: a chain");
        }
        let mut all = vec![p.clone(), r1.clone(), r2, f2];
        all.extend(made.iter().cloned());
        assert_tree(store, c, &all, made.last());
        let mut current = vec![p, r1];
        current.extend(made);
        assert_eq!(get(store, c).messages, current, "{size}: the branch");
    }
}
