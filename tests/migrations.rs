//! The migration lifecycle on real databases (SQLite always, PostgreSQL
//! when configured): up, down, status, plans, refused histories, snapshots.
#![cfg(feature = "sqlite")]

mod common;

use std::path::PathBuf;

use common::schema::{Schema, sqlite_schema};
use silmari_store::prelude::*;
use silmari_store::{Direction, MigrationTarget, SqliteOptions};
use tempfile::TempDir;

/// A database of either dialect, with raw access for inspection and tampering.
enum Db {
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
    },
    #[cfg(feature = "postgres")]
    Postgres(common::pg::Database),
}

impl Db {
    /// The file of an SQLite database.
    fn sqlite_path(&self) -> &PathBuf {
        match self {
            Db::Sqlite { path, .. } => path,
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => panic!("not an SQLite database"),
        }
    }

    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Db::Sqlite { _dir: dir, path }
    }

    #[cfg(feature = "postgres")]
    fn postgres() -> Option<Db> {
        common::pg::Database::create().map(Db::Postgres)
    }

    fn url(&self) -> String {
        match self {
            Db::Sqlite { path, .. } => format!("sqlite:///{}", path.display()),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.url.clone(),
        }
    }

    fn open(&self) -> silmari_store::Result<Store> {
        Store::open(&self.url())
    }

    fn schema(&self) -> Schema {
        match self {
            Db::Sqlite { path, .. } => sqlite_schema(path),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => common::schema::postgres_schema(&db.url),
        }
    }

    fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite { path, .. } => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute_batch(sql)
                    .unwrap();
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.client().batch_execute(sql).unwrap(),
        }
    }

    /// The rows of `sql`, every column read as text (cast in the query).
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match self {
            Db::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                .collect(),
        }
    }

    /// A timestamp literal of this dialect, `micros` after 1970.
    fn timestamp(&self, micros: i64) -> String {
        match self {
            Db::Sqlite { .. } => micros.to_string(),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                format!("(TIMESTAMPTZ 'epoch' + {micros} * INTERVAL '1 microsecond')")
            }
        }
    }

    fn history(&self) -> Vec<(i64, String)> {
        let sql = "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version";
        match self {
            Db::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (i64::from(r.get::<_, i32>(0)), r.get::<_, String>(2)))
                .collect(),
        }
    }
}

/// Runs `case` on SQLite and, when configured, on PostgreSQL.
fn on_every_dialect(case: impl Fn(&Db)) {
    case(&Db::sqlite());
    #[cfg(feature = "postgres")]
    if let Some(db) = Db::postgres() {
        case(&db);
    }
}

fn applied(store: &Store) -> Vec<i64> {
    store
        .migrations()
        .status()
        .unwrap()
        .iter()
        .filter(|m| m.is_applied())
        .map(|m| m.version)
        .collect()
}

#[test]
fn up_down_up_returns_to_the_same_schema() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let fresh = db.schema();
        assert_eq!(applied(&store), [1, 2, 3, 4]);
        let c = store
            .conversations()
            .create(NewConversation::titled("kept"))
            .unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "one"))
            .unwrap();
        let before = store.conversations().get(c.id).unwrap().unwrap().version;

        let reverted = store.migrations().down(3).unwrap();
        assert_eq!(
            reverted
                .iter()
                .map(|s| (s.version, s.direction))
                .collect::<Vec<_>>(),
            [
                (4, Direction::Down),
                (3, Direction::Down),
                (2, Direction::Down)
            ]
        );
        assert_eq!(applied(&store), [1]);
        assert_eq!(store.migrations().current_version().unwrap(), 1);
        let columns = &db.schema()["conversations"].columns;
        for gone in ["message_count", "version"] {
            assert!(!columns.iter().any(|(c, _)| c == gone), "{gone} reverted");
        }

        let applied_again = store.migrations().up().unwrap();
        assert_eq!(applied_again.len(), 3);
        assert_eq!(applied(&store), [1, 2, 3, 4]);
        assert_eq!(db.schema(), fresh, "up → down → up equals a fresh schema");
        // The data survived, and V2 recounted the messages.
        let summary = &store
            .conversations()
            .list(ConversationQuery::recent(1))
            .unwrap()
            .items[0];
        assert_eq!(summary.message_count, 1);
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "two"))
            .unwrap();
        // Re-applying V3 restarted the version above every one handed out
        // before (a copy read before the down stays stale); the append moved it.
        let after = store.conversations().get(c.id).unwrap().unwrap().version;
        assert!(
            after > before + 1,
            "version {after}, {before} before the down"
        );
        assert!(store.check().unwrap().is_healthy());
    });
}

#[test]
fn down_to_zero_leaves_only_the_history_table() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let plan = store
            .migrations()
            .plan(MigrationTarget::Version(0))
            .unwrap();
        let steps: Vec<(i64, Direction)> = plan.iter().map(|s| (s.version, s.direction)).collect();
        assert_eq!(
            steps,
            [
                (4, Direction::Down),
                (3, Direction::Down),
                (2, Direction::Down),
                (1, Direction::Down)
            ]
        );
        assert!(plan[3].sql.contains("DROP TABLE"));
        assert_eq!(applied(&store), [1, 2, 3, 4], "a plan changes nothing");

        store.migrations().down_to(0).unwrap();
        assert_eq!(
            db.schema().keys().collect::<Vec<_>>(),
            ["refinery_schema_history"]
        );
        assert!(applied(&store).is_empty());
        let status = store.migrations().status().unwrap();
        assert_eq!(status.len(), 4);
        assert!(status.iter().all(|m| !m.is_applied()));

        let plan = store.migrations().plan(MigrationTarget::Latest).unwrap();
        assert_eq!(
            plan.iter().map(|s| s.version).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        store.migrations().up_to(1).unwrap();
        assert_eq!(applied(&store), [1]);
        store.migrations().up().unwrap();
        assert_eq!(applied(&store), [1, 2, 3, 4]);

        assert!(store.migrations().down(5).unwrap_err().is_invalid_input());
        assert!(store.migrations().up_to(9).unwrap_err().is_invalid_input());
    });
}

#[test]
fn a_newer_schema_is_refused_and_left_unchanged() {
    on_every_dialect(|db| {
        drop(db.open().unwrap());
        db.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (99, 'from_a_newer_app', '2030-01-01T00:00:00Z', '1')",
        );
        let (history, schema) = (db.history(), db.schema());
        for migrate in [true, false] {
            let err = Store::builder()
                .url(db.url())
                .migrate_on_open(migrate)
                .open()
                .unwrap_err();
            match err {
                Error::SchemaTooNew {
                    database,
                    supported,
                } => {
                    assert_eq!((database, supported), (99, 4));
                }
                other => panic!("expected SchemaTooNew, got {other:?}"),
            }
        }
        assert_eq!((db.history(), db.schema()), (history, schema));
    });
}

#[test]
fn an_edited_migration_is_refused_and_left_unchanged() {
    on_every_dialect(|db| {
        drop(db.open().unwrap());
        db.execute("UPDATE refinery_schema_history SET checksum = '12345' WHERE version = 1");
        let (history, schema) = (db.history(), db.schema());
        match db.open().unwrap_err() {
            Error::Migration { message, .. } => {
                assert!(
                    message.contains("initial_schema") && message.contains("changed"),
                    "{message}"
                );
            }
            other => panic!("expected a Migration error, got {other:?}"),
        }
        assert_eq!((db.history(), db.schema()), (history, schema));
    });
}

#[test]
fn sqlite_snapshots_before_migrating_a_file_with_data() {
    let db = Db::sqlite();
    let path = db.sqlite_path();
    let store = db.open().unwrap();
    assert!(
        store.migrations().snapshots().unwrap().is_empty(),
        "a fresh file holds no data"
    );
    let c = store
        .conversations()
        .create(NewConversation::titled("precious"))
        .unwrap();
    store.migrations().down(3).unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].version, 4);
    assert!(snapshots[0].path.starts_with(path.parent().unwrap()));
    drop(store);

    // Reopening applies V2 to V4 again: another snapshot, of version 1.
    let store = db.open().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(
        snapshots.iter().map(|s| s.version).collect::<Vec<_>>(),
        [1, 4]
    );
    store.conversations().delete(c.id).unwrap();
    assert!(store.conversations().get(c.id).unwrap().is_none());

    // Restoring the version-4 snapshot brings the conversation back.
    let latest = snapshots.iter().find(|s| s.version == 4).unwrap();
    store.migrations().restore_snapshot(&latest.path).unwrap();
    assert_eq!(
        store.conversations().get(c.id).unwrap().unwrap().title,
        "precious"
    );
    assert_eq!(applied(&store), [1, 2, 3, 4]);
    assert!(store.check().unwrap().is_healthy());

    // Only the newest few are kept.
    for _ in 0..4 {
        store.migrations().down(1).unwrap();
        store.migrations().up().unwrap();
    }
    assert_eq!(
        store.migrations().snapshots().unwrap().len(),
        SqliteOptions::default().snapshots_kept
    );
}

#[test]
fn the_health_report_shows_what_is_wrong() {
    let db = Db::sqlite();
    let store = db.open().unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("c"))
        .unwrap();
    store
        .conversations()
        .append_messages(c.id, vec![NewMessage::new(Role::User, "a"); 3])
        .unwrap();
    let report = store.check().unwrap();
    assert!(report.is_healthy(), "{report:?}");
    assert_eq!(report.schema_version, 4);
    assert!(report.pending_migrations.is_empty());
    assert_eq!(
        report.integrity_check.as_deref(),
        Some(&["ok".to_owned()][..])
    );
    assert_eq!(report.foreign_key_violations, Some(0));
    let pragmas = report.pragmas.as_ref().unwrap();
    assert_eq!(
        (
            pragmas.journal_mode.as_str(),
            pragmas.synchronous,
            pragmas.foreign_keys
        ),
        ("wal", 1, true)
    );
    assert_eq!(
        (report.counts.conversations, report.counts.messages),
        (1, 3)
    );
    assert!(report.size_bytes.unwrap() > 0);

    db.execute("UPDATE conversations SET message_count = 7");
    let report = store.check().unwrap();
    assert_eq!(report.message_count_mismatches, 1);
    assert!(!report.is_healthy());

    store.migrations().down(3).unwrap();
    assert_eq!(store.check().unwrap().pending_migrations, [2, 3, 4]);
}

#[test]
fn online_backup_copies_a_store_in_use() {
    let db = Db::sqlite();
    let store = db.open().unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("busy"))
        .unwrap();
    store
        .conversations()
        .append_messages(c.id, vec![NewMessage::new(Role::User, "x"); 500])
        .unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..200 {
                store
                    .conversations()
                    .append_message(c.id, NewMessage::new(Role::User, format!("during {i}")))
                    .unwrap();
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    store.backup_to(&copy).unwrap();
    writer.join().unwrap();
    assert!(
        store.backup_to(&copy).is_err(),
        "an existing file is not overwritten"
    );

    let restored = Store::open(&format!("sqlite:///{}", copy.display())).unwrap();
    let n = restored
        .conversations()
        .get(c.id)
        .unwrap()
        .unwrap()
        .messages
        .len();
    assert!(
        (500..=700).contains(&n),
        "a consistent copy of some moment: {n}"
    );
    assert!(
        restored.check().unwrap().is_healthy(),
        "message_count matches: one snapshot"
    );
    assert!(matches!(
        Store::open("memory://")
            .unwrap()
            .backup_to(dir.path().join("m.db")),
        Err(Error::Unsupported { .. })
    ));
}

/// `check()` finds a damaged tree: a parent in another conversation, two
/// messages on the current branch with one parent, a current branch broken
/// by a message off it.
#[test]
fn the_health_report_finds_a_broken_tree() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let chats = store.conversations();
        let a = chats.create(NewConversation::titled("a")).unwrap();
        let b = chats.create(NewConversation::titled("b")).unwrap();
        let a1 = chats
            .append_message(a.id, NewMessage::new(Role::User, "a1"))
            .unwrap();
        let a2 = chats
            .append_message(a.id, NewMessage::new(Role::Assistant, "a2"))
            .unwrap();
        chats
            .branch_from(a.id, Some(a1.id), NewMessage::new(Role::Assistant, "a2'"))
            .unwrap();
        let b1 = chats
            .append_message(b.id, NewMessage::new(Role::User, "b1"))
            .unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.tree_mismatches, 0, "{report:?}");
        assert!(report.is_healthy());

        // b1's parent is a message of another conversation.
        db.execute(&format!(
            "UPDATE messages SET parent_id = '{}' WHERE id = '{}'",
            a1.id, b1.id
        ));
        let report = store.check().unwrap();
        assert_eq!(report.tree_mismatches, 1);
        assert!(!report.is_healthy());
        db.execute(&format!(
            "UPDATE messages SET parent_id = NULL WHERE id = '{}'",
            b1.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 0);

        // Both replies of a1 on the current branch.
        let sqlite = matches!(db, Db::Sqlite { .. });
        let (on, off) = if sqlite {
            ("1", "0")
        } else {
            ("true", "false")
        };
        db.execute(&format!(
            "UPDATE messages SET on_path = {on} WHERE id = '{}'",
            a2.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 2);
        db.execute(&format!(
            "UPDATE messages SET on_path = {off} WHERE id = '{}'",
            a2.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 0);

        // The first message off the current branch below a reply on it.
        db.execute(&format!(
            "UPDATE messages SET on_path = {off} WHERE id = '{}'",
            a1.id
        ));
        assert_eq!(store.check().unwrap().tree_mismatches, 1);
    });
}

/// The ids of conversation `id`'s messages in position order, and its
/// stored `message_count`, read with SQL (any schema version).
fn stored_messages(db: &Db, id: ConversationId) -> (Vec<String>, String) {
    let ids = db
        .rows(&format!(
            "SELECT CAST(id AS TEXT) FROM messages WHERE conversation_id = '{id}' ORDER BY position"
        ))
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect();
    let count = db.rows(&format!(
        "SELECT CAST(message_count AS TEXT) FROM conversations WHERE id = '{id}'"
    ));
    (ids, count[0][0].clone())
}

/// Checks that conversation `id` is one branch of `ids`, in that order, the
/// last the current leaf, as `tree()`, `get()` and `list()` read it.
fn assert_one_branch(store: &Store, id: ConversationId, ids: &[MessageId]) {
    let tree = store.conversations().tree(id).unwrap().unwrap();
    let got: Vec<MessageId> = tree.messages.iter().map(|m| m.id).collect();
    assert_eq!(got, ids, "every message, in order");
    let parents: Vec<Option<MessageId>> = tree.messages.iter().map(|m| m.parent_id).collect();
    let chain: Vec<Option<MessageId>> = std::iter::once(None)
        .chain(ids.iter().copied().map(Some))
        .take(ids.len())
        .collect();
    assert_eq!(parents, chain, "each message below the one before");
    assert_eq!(
        tree.current_leaf,
        ids.last().copied(),
        "the last is the leaf"
    );
    assert_eq!(tree.conversation.message_count, ids.len() as u64);
    let current: Vec<MessageId> = store
        .conversations()
        .get(id)
        .unwrap()
        .unwrap()
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(current, ids, "get() returns them all");
}

/// A healthy report but for the migrations still to apply.
fn assert_healthy_at(store: &Store, pending: &[i64]) {
    let report = store.check().unwrap();
    assert_eq!(report.pending_migrations, pending, "{report:?}");
    assert_eq!(report.message_count_mismatches, 0, "{report:?}");
    assert!(
        report.foreign_key_violations.is_none_or(|n| n == 0),
        "{report:?}"
    );
    assert!(
        report
            .integrity_check
            .as_ref()
            .is_none_or(|lines| lines == &["ok".to_owned()]),
        "{report:?}"
    );
    assert!(report.misplaced_tables.is_empty(), "{report:?}");
    if pending.is_empty() {
        assert!(report.is_healthy(), "{report:?}");
    }
}

#[test]
fn conversations_written_at_version_3_become_single_branch_trees() {
    on_every_dialect(|db| {
        let store = Store::builder()
            .url(db.url())
            .migrate_on_open(false)
            .open()
            .unwrap();
        store.migrations().up_to(3).unwrap();
        assert_eq!(applied(&store), [1, 2, 3]);

        // Written as a version-3 build wrote them: positions with gaps (a
        // message deleted), ids in no order (v4), each message created
        // before the one it follows, so only the position gives the order.
        let base = 1_700_000_000_000_000_i64;
        let mut written: Vec<(ConversationId, Vec<MessageId>)> = Vec::new();
        for (c, n) in [5_i64, 1, 0, 3].into_iter().enumerate() {
            let id = ConversationId::from_uuid(uuid::Uuid::new_v4());
            db.execute(&format!(
                "INSERT INTO conversations (id, title, created_at, updated_at, message_count, version) \
                 VALUES ('{id}', 'c{c} ''quoted''', {t}, {t}, {n}, 7)",
                t = db.timestamp(base + c as i64),
            ));
            let mut ids = Vec::new();
            for i in 0..n {
                let m = MessageId::from_uuid(uuid::Uuid::new_v4());
                db.execute(&format!(
                    "INSERT INTO messages (id, conversation_id, position, role, content, created_at, attachments) \
                     VALUES ('{m}', '{id}', {position}, 'user', 'm{i}', {t}, '[]')",
                    position = 10 * (i + 1) + if i >= 2 { 5 } else { 0 },
                    t = db.timestamp(base - i),
                ));
                ids.push(m);
            }
            written.push((id, ids));
        }
        let total: usize = written.iter().map(|(_, ids)| ids.len()).sum();
        assert_healthy_at(&store, &[4]);

        store.migrations().up().unwrap();
        assert_eq!(applied(&store), [1, 2, 3, 4]);
        for (id, ids) in &written {
            assert_one_branch(&store, *id, ids);
            let tree = store.conversations().tree(*id).unwrap().unwrap();
            assert!(tree.conversation.archived_at.is_none());
            assert!(tree.conversation.metadata.is_empty());
            assert!(tree.messages.iter().all(|m| m.metadata.is_empty()));
        }
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts.conversations, counts.messages),
            (written.len() as u64, total as u64)
        );
        assert_eq!(
            store
                .conversations()
                .list(ConversationQuery::recent(10))
                .unwrap()
                .items
                .len(),
            written.len(),
            "none archived"
        );
        assert_healthy_at(&store, &[]);

        // The trees work: an append goes below the last message, a branch
        // from the first message becomes the current one.
        let (id, ids) = &written[0];
        let after = store
            .conversations()
            .append_message(*id, NewMessage::new(Role::Assistant, "after"))
            .unwrap();
        assert_eq!(after.parent_id, ids.last().copied());
        let branch = store
            .conversations()
            .branch_from(*id, Some(ids[0]), NewMessage::new(Role::User, "again"))
            .unwrap();
        let current = store.conversations().get(*id).unwrap().unwrap();
        assert_eq!(
            current.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            [ids[0], branch.id]
        );
        assert_eq!(
            store
                .conversations()
                .alternatives(branch.id)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect::<Vec<_>>(),
            [ids[1], branch.id]
        );
        assert_healthy_at(&store, &[]);
    });
}

#[test]
fn down_and_up_again_keeps_every_message_of_every_branch() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let chats = store.conversations();
        let user = |text: &str| NewMessage::new(Role::User, text);
        let mut pinned = Metadata::new();
        pinned.insert("pinned".into(), true.into());

        // a → b → c, a → d → e, and f, a second first message; the current
        // branch switched back to c, so the leaf is not the newest message.
        let branched = chats
            .create(NewConversation {
                title: "branched".into(),
                metadata: pinned.clone(),
                ..Default::default()
            })
            .unwrap();
        let a = chats.append_message(branched.id, user("a")).unwrap();
        let b = chats.append_message(branched.id, user("b")).unwrap();
        let c = chats.append_message(branched.id, user("c")).unwrap();
        let d = chats
            .branch_from(
                branched.id,
                Some(a.id),
                user("d").with_metadata(pinned.clone()),
            )
            .unwrap();
        let e = chats.append_message(branched.id, user("e")).unwrap();
        let f = chats.branch_from(branched.id, None, user("f")).unwrap();
        chats.switch_branch(b.id).unwrap();
        assert_eq!(
            chats.tree(branched.id).unwrap().unwrap().current_leaf,
            Some(c.id)
        );

        let archived = chats.create(NewConversation::titled("archived")).unwrap();
        let g = chats.append_message(archived.id, user("g")).unwrap();
        let h = chats
            .append_message(archived.id, user("h").with_metadata(pinned.clone()))
            .unwrap();
        chats.archive(archived.id).unwrap();

        // A message deleted from the middle: a gap in the positions.
        let spliced = chats.create(NewConversation::titled("spliced")).unwrap();
        let made = chats
            .append_messages(spliced.id, vec![user("i"), user("j"), user("k")])
            .unwrap();
        chats.delete_message(made[1].id).unwrap();

        let empty = chats.create(NewConversation::titled("empty")).unwrap();
        let created = [
            (branched.id, vec![a.id, b.id, c.id, d.id, e.id, f.id]),
            (archived.id, vec![g.id, h.id]),
            (spliced.id, vec![made[0].id, made[2].id]),
            (empty.id, vec![]),
        ];
        let total = 10;
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &[]);

        store.migrations().down(1).unwrap();
        assert_eq!(applied(&store), [1, 2, 3]);
        for (id, ids) in &created {
            let (stored, count) = stored_messages(db, *id);
            let want: Vec<String> = ids.iter().map(ToString::to_string).collect();
            assert_eq!(stored, want, "every message kept, in creation order");
            assert_eq!(count, ids.len().to_string(), "message_count kept");
        }
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &[4]);

        store.migrations().up().unwrap();
        assert_eq!(applied(&store), [1, 2, 3, 4]);
        for (id, ids) in &created {
            assert_one_branch(&store, *id, ids);
            // What the down dropped: archive and metadata.
            let tree = chats.tree(*id).unwrap().unwrap();
            assert!(tree.conversation.archived_at.is_none());
            assert!(tree.conversation.metadata.is_empty());
            assert!(tree.messages.iter().all(|m| m.metadata.is_empty()));
        }
        assert_eq!(store.counts().unwrap().messages, total);
        assert_healthy_at(&store, &[]);
    });
}
