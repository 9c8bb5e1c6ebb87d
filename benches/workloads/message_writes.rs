//! W8 and W9: one message at a time. W8 edits one message of a long
//! conversation (100 and 10,000 messages: the cost must not grow with it),
//! and each message of 10,000 in turn (on SQLite an edit then meets an
//! indexed text, not one its last edit left waiting for the search index);
//! W9 grows a streamed reply by 200 increments of 41 bytes to about 8 KB.

use std::time::{Duration, Instant};

use criterion::Criterion;
use silmari_store::prelude::*;
use silmari_store::{ConversationId, MessageEdit};

#[cfg(feature = "postgres")]
use super::settle_database;
use super::{Backends, conversation_of, group};

/// Which message each W8 call edits.
#[derive(Clone, Copy)]
pub(super) enum Edited {
    /// The conversation's first message, every time.
    TheFirst,
    /// Every message of the conversation in turn, so that each edit meets
    /// a message it has not edited since the others.
    EachInTurn,
}

/// The messages of `conversation` an edit of kind `edited` goes through.
fn edited_messages(store: &Store, conversation: ConversationId, edited: Edited) -> Vec<MessageId> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let found = store
            .conversations()
            .messages(conversation, page)
            .expect("messages");
        ids.extend(found.items.iter().map(|m| m.id));
        match (edited, found.next) {
            (Edited::EachInTurn, Some(next)) => page = PageRequest::first(1000).after(next),
            _ => break,
        }
    }
    if let Edited::TheFirst = edited {
        ids.truncate(1);
    }
    ids
}

/// One edit after another, each of the next message of `ids` (cycling).
fn in_turn(ids: &[MessageId]) -> impl FnMut() -> MessageId + '_ {
    let mut next = 0;
    move || {
        let id = ids[next % ids.len()];
        next += 1;
        id
    }
}

pub(super) fn w8_edit_message(c: &mut Criterion, b: &mut Backends, length: usize, edited: Edited) {
    let name = match edited {
        Edited::TheFirst => format!("W8 edit one message of {length}"),
        Edited::EachInTurn => format!("W8 edit each message of {length} in turn"),
    };
    let mut g = group(c, &name);
    let text = "Fixed: the storm came in over the harbour at dusk.";
    let mut targets = Vec::new();
    for (name, store) in b.stores() {
        let conversation = conversation_of(store, length);
        let ids = edited_messages(store, conversation, edited);
        b.settle(name);
        {
            let mut id = in_turn(&ids);
            g.bench_function(name, |bench| {
                bench.iter(|| {
                    store
                        .conversations()
                        .edit_message(id(), MessageEdit::new().content(text))
                        .expect("edit")
                })
            });
        }
        targets.push((name, ids));
    }
    let target = |backend: &str| {
        targets
            .iter()
            .find(|(n, _)| *n == backend)
            .map(|(_, ids)| ids.as_slice())
    };
    // The baseline returns what the crate returns (checked once, untimed).
    let edited = |store: &Store, id: MessageId| {
        store
            .conversations()
            .edit_message(id, MessageEdit::new().content(text))
            .expect("edit")
    };
    if let Some(ids) = target("sqlite") {
        let base = &b.sqlite_baseline;
        assert_eq!(
            base.edit(*ids[0].as_uuid(), text, false),
            edited(&b.sqlite, ids[0])
        );
        let mut id = in_turn(ids);
        g.bench_function("sqlite baseline", |bench| {
            bench.iter(|| base.edit(*id().as_uuid(), text, false))
        });
    }
    #[cfg(feature = "postgres")]
    if let (Some((store, base, database)), Some(ids)) = (&mut b.postgres, target("postgres")) {
        assert_eq!(
            base.edit(*ids[0].as_uuid(), text, false),
            edited(store, ids[0])
        );
        settle_database(database);
        let mut id = in_turn(ids);
        g.bench_function("postgres baseline", |bench| {
            bench.iter(|| base.edit(*id().as_uuid(), text, false))
        });
    }
    g.finish();
}

/// 200 increments of this token make about 8 KB.
const TOKEN: &str = "and the letter lay unopened on the desk. ";
const INCREMENTS: usize = 200;

/// Times `increments` deltas on a fresh empty reply each round of 200:
/// criterion's time per iteration is the time per increment.
fn per_increment(
    iterations: u64,
    mut fresh_reply: impl FnMut() -> MessageId,
    mut grow: impl FnMut(MessageId),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let reply = fresh_reply();
        let n = left.min(INCREMENTS as u64);
        let started = Instant::now();
        for _ in 0..n {
            grow(reply);
        }
        total += started.elapsed();
        left -= n;
    }
    total
}

pub(super) fn w9_stream_reply(c: &mut Criterion, b: &mut Backends) {
    let mut g = group(c, "W9 stream a reply, per increment");
    for (name, store) in b.stores() {
        let conversation = store
            .conversations()
            .create(NewConversation::titled("W9"))
            .expect("create");
        b.settle(name);
        g.bench_function(name, |bench| {
            bench.iter_custom(|iterations| {
                per_increment(
                    iterations,
                    || {
                        store
                            .conversations()
                            .append_message(conversation.id, NewMessage::new(Role::Assistant, ""))
                            .expect("reply")
                            .id
                    },
                    |reply| {
                        store
                            .conversations()
                            .append_to_message(reply, TOKEN)
                            .expect("grow");
                    },
                )
            })
        });
    }
    let base = &b.sqlite_baseline;
    let conversation = base.create_conversation("W9");
    g.bench_function("sqlite baseline", |bench| {
        bench.iter_custom(|iterations| {
            per_increment(
                iterations,
                || base.append(conversation, "", &[]).into(),
                |reply| {
                    base.edit(*reply.as_uuid(), TOKEN, true);
                },
            )
        })
    });
    #[cfg(feature = "postgres")]
    if let Some((_, base, database)) = &mut b.postgres {
        let conversation = base.create_conversation("W9");
        let base = std::cell::RefCell::new(base);
        settle_database(database);
        g.bench_function("postgres baseline", |bench| {
            bench.iter_custom(|iterations| {
                per_increment(
                    iterations,
                    || base.borrow_mut().append(conversation, "", &[]).into(),
                    |reply| {
                        base.borrow_mut().edit(*reply.as_uuid(), TOKEN, true);
                    },
                )
            })
        });
    }
    g.finish();
}
