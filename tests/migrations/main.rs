//! The migration lifecycle on real databases (SQLite always, PostgreSQL
//! when configured): up, down, status, plans, refused histories, snapshots.
#![cfg(feature = "sqlite")]

mod chat_model;
#[path = "../common/mod.rs"]
mod common;
mod db;
mod search_attacks;
mod search_batches;
mod search_blocks;
mod search_edits;
mod search_folding;
mod search_index;
mod search_pairs;
mod search_signatures;

use silmari_store::prelude::*;
use silmari_store::{Direction, MigrationTarget, SqliteOptions};

use db::Db;

/// Runs `case` on SQLite (and an encrypted SQLite file, with the
/// `encryption` feature) and, when configured, on PostgreSQL.
fn on_every_dialect(case: impl Fn(&Db)) {
    case(&Db::sqlite());
    #[cfg(feature = "encryption")]
    case(&Db::sqlite_encrypted());
    #[cfg(feature = "postgres")]
    if let Some(db) = Db::postgres() {
        case(&db);
    }
}

/// Runs `case` on an SQLite file (and an encrypted one, with the
/// `encryption` feature).
fn on_every_sqlite_file(case: impl Fn(&Db)) {
    case(&Db::sqlite());
    #[cfg(feature = "encryption")]
    case(&Db::sqlite_encrypted());
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

/// `common::LATEST` is the newest version of both dialects' scripts.
#[test]
fn latest_is_the_newest_script() {
    for dialect in ["sqlite", "postgres"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let ups = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('V') && !n.ends_with(".down.sql"))
            .count();
        assert_eq!(ups as i64, common::LATEST, "{dialect}");
    }
}

#[test]
fn up_down_up_returns_to_the_same_schema() {
    on_every_dialect(|db| {
        let store = db.open().unwrap();
        let fresh = db.schema();
        assert_eq!(applied(&store), common::versions());
        let c = store
            .conversations()
            .create(NewConversation::titled("kept"))
            .unwrap();
        store
            .conversations()
            .append_message(c.id, NewMessage::new(Role::User, "one"))
            .unwrap();
        let before = store.conversations().get(c.id).unwrap().unwrap().version;

        let reverted = store
            .migrations()
            .down(common::LATEST as usize - 1)
            .unwrap();
        assert_eq!(
            reverted
                .iter()
                .map(|s| (s.version, s.direction))
                .collect::<Vec<_>>(),
            (2..=common::LATEST)
                .rev()
                .map(|v| (v, Direction::Down))
                .collect::<Vec<_>>()
        );
        assert_eq!(applied(&store), [1]);
        assert_eq!(store.migrations().current_version().unwrap(), 1);
        let columns = &db.schema()["conversations"].columns;
        for gone in ["message_count", "version"] {
            assert!(!columns.iter().any(|(c, _)| c == gone), "{gone} reverted");
        }

        let applied_again = store.migrations().up().unwrap();
        assert_eq!(applied_again.len() as i64, common::LATEST - 1);
        assert_eq!(applied(&store), common::versions());
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
            (1..=common::LATEST)
                .rev()
                .map(|v| (v, Direction::Down))
                .collect::<Vec<_>>()
        );
        assert!(plan.last().unwrap().sql.contains("DROP TABLE"));
        assert_eq!(
            applied(&store),
            common::versions(),
            "a plan changes nothing"
        );

        store.migrations().down_to(0).unwrap();
        assert_eq!(
            db.schema().keys().collect::<Vec<_>>(),
            ["refinery_schema_history"]
        );
        assert!(applied(&store).is_empty());
        let status = store.migrations().status().unwrap();
        assert_eq!(status.len(), common::LATEST as usize);
        assert!(status.iter().all(|m| !m.is_applied()));

        let plan = store.migrations().plan(MigrationTarget::Latest).unwrap();
        assert_eq!(
            plan.iter().map(|s| s.version).collect::<Vec<_>>(),
            common::versions()
        );
        store.migrations().up_to(1).unwrap();
        assert_eq!(applied(&store), [1]);
        store.migrations().up().unwrap();
        assert_eq!(applied(&store), common::versions());

        let too_many = common::LATEST as usize + 1;
        assert!(
            store
                .migrations()
                .down(too_many)
                .unwrap_err()
                .is_invalid_input()
        );
        assert!(
            store
                .migrations()
                .up_to(common::LATEST + 1)
                .unwrap_err()
                .is_invalid_input()
        );
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
            let err = db.builder().migrate_on_open(migrate).open().unwrap_err();
            match err {
                Error::SchemaTooNew {
                    database,
                    supported,
                } => {
                    assert_eq!((database, supported), (99, common::LATEST));
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
    on_every_sqlite_file(|db| {
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
        store.migrations().down_to(1).unwrap();
        let snapshots = store.migrations().snapshots().unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].version, common::LATEST);
        assert!(snapshots[0].path.starts_with(path.parent().unwrap()));
        drop(store);

        // Reopening applies V2 to the latest again: another snapshot, of version 1.
        let store = db.open().unwrap();
        let snapshots = store.migrations().snapshots().unwrap();
        assert_eq!(
            snapshots.iter().map(|s| s.version).collect::<Vec<_>>(),
            [1, common::LATEST]
        );
        store.conversations().delete(c.id).unwrap();
        assert!(store.conversations().get(c.id).unwrap().is_none());

        // Restoring the latest version's snapshot brings the conversation back.
        let latest = snapshots
            .iter()
            .find(|s| s.version == common::LATEST)
            .unwrap();
        store.migrations().restore_snapshot(&latest.path).unwrap();
        assert_eq!(
            store.conversations().get(c.id).unwrap().unwrap().title,
            "precious"
        );
        assert_eq!(applied(&store), common::versions());
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
    });
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
    assert_eq!(report.schema_version, common::LATEST);
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
    let pending: Vec<i64> = (common::LATEST - 2..=common::LATEST).collect();
    assert_eq!(store.check().unwrap().pending_migrations, pending);
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
