//! V12: on PostgreSQL each message keeps a token signature, which a search
//! walking messages by time tests before it reads a text. Messages indexed
//! before V12 get theirs from the index build that follows the migration;
//! until then (a build cut short), and for messages a store writes before
//! it sees the new column, a message without one is found the slow way. On
//! SQLite V12 changes nothing.

use silmari_store::prelude::*;
use silmari_store::{MessageEdit, MigrationTarget, PoolConfig, SearchQuery};

use crate::search_folding::store_at;
use crate::{Db, on_every_dialect};

/// More matches than PostgreSQL reads through its index: searches walk.
const COMMON: usize = 2_100;

/// Every hit of `query`, newest first, as message ids.
fn every_hit(store: &Store, query: &str) -> Vec<MessageId> {
    let mut found = Vec::new();
    let mut query = SearchQuery::new(query).newest_first().limit(500);
    loop {
        let page = store.search(&query).unwrap();
        found.extend(
            page.items
                .iter()
                .filter_map(|h| h.message.as_ref().map(|m| m.id)),
        );
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => return found,
        }
    }
}

/// Asserts each query found the same messages in the same order.
fn same(found: &[Vec<MessageId>], expected: &[Vec<MessageId>], at: &str) {
    for (i, (found, expected)) in found.iter().zip(expected).enumerate() {
        assert!(
            found == expected,
            "{at}: query {i} found {} messages, expected {}",
            found.len(),
            expected.len()
        );
    }
}

/// How many messages have no signature (`None` below V12 or on SQLite).
fn unsigned(db: &Db) -> Option<usize> {
    match db {
        Db::Sqlite { .. } => None,
        #[cfg(feature = "postgres")]
        Db::Postgres(_) => {
            let has = db.rows(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'messages' AND column_name = 'search_bits')::text",
            );
            (has[0][0] == "true").then(|| {
                db.rows("SELECT COUNT(*)::text FROM messages WHERE search_bits IS NULL")[0][0]
                    .parse()
                    .unwrap()
            })
        }
    }
}

#[test]
fn v12_signs_every_message_and_the_unsigned_are_found_meanwhile() {
    on_every_dialect(|db| {
        let (store, c) = store_at(db, 11, "chapters");
        let texts = (0..COMMON)
            .map(|i| format!("chapter {i} of the book"))
            .chain(["Chäpter ÜBER alles", "CHAPTERS of 東京タワー", "no match"].map(String::from));
        let batch: Vec<NewMessage> = texts.map(|t| NewMessage::new(Role::User, t)).collect();
        store.conversations().append_messages(c.id, batch).unwrap();
        store.migrations().build_search_index(|_| {}).unwrap();
        let queries = [
            "chapter",
            "chapt*",
            "chapters",
            "東京",
            "über",
            "chapter -book",
        ];
        let found = |store: &Store| queries.map(|q| every_hit(store, q));
        let before = found(&store);
        assert_eq!(
            before.each_ref().map(Vec::len),
            [COMMON + 1, COMMON + 2, 1, 1, 1, 1]
        );
        assert_eq!(unsigned(db), None);

        // Up to V12: the index build that follows signs every message. A
        // store of one connection has learnt the schema of V11 meanwhile.
        let pool = PoolConfig {
            pool_size: 1,
            max_overflow: 0,
            ..PoolConfig::default()
        };
        let stale = db
            .builder()
            .migrate_on_open(false)
            .pool(pool)
            .open()
            .unwrap();
        assert_eq!(every_hit(&stale, "chapter").len(), COMMON + 1);
        store.migrations().up().unwrap();
        let postgres = unsigned(db).is_some();
        assert_eq!(unsigned(db), postgres.then_some(0));
        same(&found(&store), &before, "signed by the build");
        // A build cut short: nothing signed, everything found.
        let all = COMMON + 3;
        if postgres {
            db.execute("UPDATE messages SET search_bits = NULL");
        }
        assert_eq!(unsigned(db), postgres.then_some(all));
        let backlog = store.check().unwrap().search_index_mismatches;
        assert_eq!(backlog, if postgres { all as u64 } else { 0 });
        same(&found(&store), &before, "unsigned");
        store.migrations().build_search_index(|_| {}).unwrap();
        assert_eq!(unsigned(db), postgres.then_some(0));

        // The store that has not seen the column writes no signature: a
        // message it appends has none, and one it edits or streams into
        // loses the one that described its old text (the trigger of V12).
        // Each is found by the walk all the same, and signed by the next
        // build.
        let chats = stale.conversations();
        let late = chats.create(NewConversation::titled("late")).unwrap();
        let appended = chats
            .append_message(late.id, NewMessage::new(Role::User, "a late chapter"))
            .unwrap();
        let old = store.conversations().get(c.id).unwrap().unwrap();
        let edited = old
            .messages
            .iter()
            .find(|m| m.content == "no match")
            .unwrap()
            .id;
        let edit = MessageEdit::new().content("now a stormy chapter");
        chats.edit_message(edited, edit).unwrap();
        let reply = store
            .conversations()
            .append_message(late.id, NewMessage::new(Role::Assistant, "thinking"))
            .unwrap();
        for delta in [", then a ", "chapter ", "streamed"] {
            chats.append_to_message(reply.id, delta).unwrap();
        }
        assert_eq!(unsigned(db), postgres.then_some(3));
        let chapters = every_hit(&store, "chapter");
        assert_eq!(chapters.len(), COMMON + 4);
        for id in [appended.id, edited, reply.id] {
            assert!(chapters.contains(&id), "{id:?}");
        }
        store.migrations().build_search_index(|_| {}).unwrap();
        assert_eq!(unsigned(db), postgres.then_some(0));
        assert_eq!(store.check().unwrap().search_index_mismatches, 0);
        assert_eq!(every_hit(&store, "chapter"), chapters, "signed");
        assert_eq!(
            every_hit(&store, "chapter -book")[..3],
            [reply.id, appended.id, edited]
        );

        // Written at V12: signed at once.
        let m = NewMessage::new(Role::User, "chapter the last");
        let last = store.conversations().append_message(c.id, m).unwrap();
        assert_eq!(unsigned(db), postgres.then_some(0));
        assert_eq!(every_hit(&store, "chapter")[0], last.id);
        let edit = MessageEdit::new().content("chapter, the last, edited");
        store.conversations().edit_message(last.id, edit).unwrap();
        assert_eq!(unsigned(db), postgres.then_some(0), "signed by its edit");

        // Down to V11 (the column goes), written there, and up again.
        store
            .migrations()
            .migrate(MigrationTarget::Version(11))
            .unwrap();
        assert_eq!(unsigned(db), None);
        let m = NewMessage::new(Role::User, "chapter at V11");
        let at_11 = store.conversations().append_message(c.id, m).unwrap();
        store.migrations().up().unwrap();
        assert_eq!(unsigned(db), postgres.then_some(0));
        assert_eq!(every_hit(&store, "chapter")[..2], [at_11.id, last.id]);
        assert_eq!(every_hit(&store, "chapter").len(), COMMON + 6);
    });
}

/// A signature that lies (a bit cleared where the text has the word: a
/// damaged row, or a bug) hides the text from a walk; a check of the
/// stored tokens cannot see that, so the health report does not count
/// it, but `rebuild_search_index` writes every signature again.
#[test]
fn a_rebuild_writes_every_signature_again() {
    #[cfg(feature = "postgres")]
    if let Some(db) = Db::postgres() {
        let store = db.open().unwrap();
        let c = store
            .conversations()
            .create(NewConversation::titled("damaged"))
            .unwrap();
        let batch = (0..COMMON).map(|i| NewMessage::new(Role::User, format!("chapter {i}")));
        store
            .conversations()
            .append_messages(c.id, batch.collect())
            .unwrap();
        db.execute("UPDATE messages SET search_bits = decode(repeat('00', 96), 'hex')");
        assert_eq!(every_hit(&store, "chapter").len(), 0, "hidden by the bits");
        store.migrations().rebuild_search_index(|_| {}).unwrap();
        assert_eq!(every_hit(&store, "chapter").len(), COMMON);
    }
}
