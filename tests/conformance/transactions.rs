use std::panic::{AssertUnwindSafe, catch_unwind};

use silmari_store::prelude::*;

use silmari_store::{Message, SearchQuery};

use crate::support::{contents, conversation, get, listed, new_file, say};

pub fn transaction_commits(store: &Store) {
    let (c, f) = store
        .transaction(|tx| -> silmari_store::Result<_> {
            let c = tx.conversations().create(NewConversation::titled("tx"))?;
            tx.conversations()
                .append_message(c.id, NewMessage::new(Role::User, "inside"))?;
            let f = tx.files().create(new_file("tx.txt"))?;
            Ok((c, f))
        })
        .unwrap();
    assert_eq!(store.files().get(f.id).unwrap(), Some(f));
    let stored = store.conversations().get(c.id).unwrap().unwrap();
    assert_eq!(stored.messages.len(), 1);
}

/// An app's own error type works through `From<silmari_store::Error>`.
#[derive(Debug)]
enum AppError {
    Store(Error),
    Cancelled,
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Store(e)
    }
}

pub fn transaction_rolls_back_on_err(store: &Store) {
    let existing = store
        .conversations()
        .create(NewConversation::titled("before"))
        .unwrap();
    let before = contents(store);
    let result: Result<(), AppError> = store.transaction(|tx| {
        let c = tx
            .conversations()
            .create(NewConversation::titled("rolled back"))?;
        tx.conversations()
            .append_message(c.id, NewMessage::new(Role::User, "gone"))?;
        tx.conversations()
            .append_message(existing.id, NewMessage::new(Role::User, "gone too"))?;
        tx.files().create(new_file("gone.txt"))?;
        Err(AppError::Cancelled)
    });
    assert!(matches!(result, Err(AppError::Cancelled)), "{result:?}");
    assert_eq!(contents(store), before);

    // A store error inside the closure, propagated with `?`, rolls back too.
    let result: Result<(), AppError> = store.transaction(|tx| {
        tx.files().create(new_file("gone.txt"))?;
        tx.conversations()
            .append_message(ConversationId::new(), NewMessage::new(Role::User, "x"))?;
        Ok(())
    });
    assert!(
        matches!(&result, Err(AppError::Store(e)) if e.is_not_found()),
        "{result:?}"
    );
    assert_eq!(contents(store), before);
}

pub fn transaction_rolls_back_on_panic(store: &Store) {
    let before = contents(store);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), Error> = store.transaction(|tx| {
            tx.files().create(new_file("panic.txt"))?;
            tx.conversations()
                .create(NewConversation::titled("panic"))?;
            panic!("the app panicked mid-transaction");
        });
    }));
    assert!(outcome.is_err(), "the panic reaches the caller");
    assert_eq!(contents(store), before, "nothing of it was kept");
    // The store is usable afterwards, for reads and writes, many times over
    // (more than the pool holds, so a connection left in a transaction would show).
    for i in 0..12 {
        store
            .transaction(|tx| {
                tx.files()
                    .create(new_file(&format!("after{i}.txt")))
                    .map(drop)
            })
            .unwrap();
    }
    assert_eq!(contents(store).0.len(), 12);
}

pub fn transaction_rolls_back_updates_and_deletes(store: &Store) {
    let c = store
        .conversations()
        .create(NewConversation::titled("keep me"))
        .unwrap();
    for i in 0..3 {
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, format!("m{i}")))
            .unwrap();
    }
    let f = store.files().create(new_file("keep.txt")).unwrap();
    let before = contents(store);
    let result: Result<(), Error> = store.transaction(|tx| {
        let mut c = tx.conversations().get(c.id)?.expect("exists");
        c.title = "changed".into();
        c.messages.remove(0);
        c.messages[0].content = "edited".into();
        tx.conversations().update(&c)?;
        tx.conversations()
            .append_message(c.id, NewMessage::new(Role::User, "appended"))?;
        tx.files().delete(f.id)?;
        tx.conversations().delete(c.id)?;
        Err(Error::InTransaction)
    });
    assert!(result.is_err());
    assert_eq!(
        contents(store),
        before,
        "update, append and deletes all undone"
    );
}

pub fn transaction_refuses_direct_store_calls(store: &Store) {
    let result: Result<(), Error> = store.transaction(|tx| {
        tx.files().create(new_file("inside.txt"))?;
        let direct = store.files().list(PageRequest::first(10));
        assert!(matches!(direct, Err(Error::InTransaction)), "{direct:?}");
        let nested: Result<(), Error> = store.transaction(|_| Ok(()));
        assert!(matches!(nested, Err(Error::InTransaction)), "{nested:?}");
        Ok(())
    });
    result.unwrap();
    assert_eq!(
        contents(store).0.len(),
        1,
        "the outer transaction still committed"
    );
    // Another thread is not refused: it just waits or reads committed data.
    let clone = store.clone();
    std::thread::spawn(move || clone.files().list(PageRequest::first(1)).map(drop))
        .join()
        .unwrap()
        .unwrap();
}

pub fn transaction_sees_its_own_writes(store: &Store) {
    store
        .transaction(|tx| -> silmari_store::Result<()> {
            let c = tx
                .conversations()
                .create(NewConversation::titled("visible"))?;
            tx.conversations()
                .append_message(c.id, NewMessage::new(Role::User, "one"))?;
            let got = tx.conversations().get(c.id)?.expect("own write visible");
            assert_eq!(got.messages.len(), 1);
            let page = tx.conversations().messages(c.id, PageRequest::first(10))?;
            assert_eq!(page.items.len(), 1);
            assert_eq!(tx.conversations().list_all()?.len(), 1);
            let listed = tx.conversations().list(ConversationQuery::recent(5))?;
            assert_eq!(listed.items[0].message_count, 1);
            Ok(())
        })
        .unwrap();
}

/// A call that fails inside a transaction leaves nothing of itself, and the
/// transaction goes on: the closure handles the error, later calls work,
/// and the commit keeps exactly what succeeded. Each refused call here
/// fails after writing part of its work (the first of two messages, a
/// renamed title before a foreign message), or on the database's own
/// unique key (which aborts a PostgreSQL transaction unless undone alone).
pub fn transaction_goes_on_after_a_failed_call(store: &Store) {
    let c = conversation(store, "kept");
    let first = say(store, c, Role::User, "first");
    let other = conversation(store, "other");
    let foreign = say(store, other, Role::User, "not c's");
    let file = store.files().create(new_file("taken.txt")).unwrap();
    let before = get(store, c);
    let before_all = contents(store);

    let (added, reply) = store
        .transaction(|tx| -> silmari_store::Result<_> {
            let conversations = tx.conversations();
            let mut duplicate = NewMessage::new(Role::User, "second");
            duplicate.id = Some(first.id);
            let refused = conversations.append_messages(
                c,
                vec![NewMessage::new(Role::User, "stray zebra"), duplicate],
            );
            assert!(
                matches!(refused, Err(Error::Conflict { .. })),
                "{refused:?}"
            );

            let mut again = new_file("again.txt");
            again.id = Some(file.id);
            let refused = tx.files().create(again);
            assert!(
                matches!(refused, Err(Error::Conflict { .. })),
                "{refused:?}"
            );

            let mut renamed = conversations.get(c)?.expect("c");
            renamed.title = "stray title".into();
            renamed.messages.push(Message {
                conversation_id: c,
                ..foreign.clone()
            });
            let refused = conversations.update(&renamed);
            assert!(
                matches!(refused, Err(Error::Conflict { .. })),
                "{refused:?}"
            );

            assert_eq!(conversations.get(c)?.as_ref(), Some(&before), "as before");
            let added = conversations.create(NewConversation::titled("added"))?;
            let reply =
                conversations.append_message(c, NewMessage::new(Role::Assistant, "reply zebra"))?;
            Ok((added, reply))
        })
        .unwrap();

    let after = get(store, c);
    assert_eq!(after.title, "kept");
    assert_eq!(after.messages, vec![first, reply.clone()]);
    assert_eq!(after.version, before.version + 1, "one write: the reply");
    assert_eq!(
        store.files().get(file.id).unwrap().as_ref(),
        before_all.0.first()
    );
    assert_eq!(
        store
            .files()
            .list(PageRequest::first(10))
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        store.conversations().list_all().unwrap().len(),
        before_all.1.len() + 1
    );
    assert!(store.conversations().get(added.id).unwrap().is_some());
    let hits: Vec<_> = crate::search_corpus::all_hits(store, SearchQuery::new("zebra"), 5)
        .into_iter()
        .filter_map(|h| h.message.map(|m| m.id))
        .collect();
    assert_eq!(hits, vec![reply.id], "the stray message is not indexed");
    assert!(
        crate::search_corpus::all_hits(store, SearchQuery::new("stray"), 5).is_empty(),
        "nor the refused title"
    );
    let report = store.check().unwrap();
    assert_eq!(
        (
            report.message_count_mismatches,
            report.tree_mismatches,
            report.search_index_mismatches
        ),
        (0, 0, 0),
        "{report:?}"
    );
    assert_eq!(listed(store, c).message_count, 2);
}
