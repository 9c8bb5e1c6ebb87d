//! Migrations of the PostgreSQL backend, under an advisory lock so that
//! several app instances starting at once do not both migrate.

use super::PgConn;
use super::queries::{
    COMMIT, DELETE_HISTORY, HISTORY, HISTORY_EXISTS, LOCK_MIGRATIONS, ROLLBACK, UNLOCK_MIGRATIONS,
};
use crate::error::Result;
use crate::migrate::{Dialect, history_entry, revert_failed, run_plan};
use crate::model::{MigrationTarget, PlannedMigration};

/// refinery's history, read without trusting it.
pub(super) fn applied_migrations(conn: &mut PgConn) -> Result<Vec<refinery::Migration>> {
    let exists = conn.statement(HISTORY_EXISTS)?;
    let exists: bool = conn.client.query_one(&exists, &[])?.try_get(0)?;
    if !exists {
        return Ok(Vec::new());
    }
    let history = conn.statement(HISTORY)?;
    conn.client
        .query(&history, &[])?
        .iter()
        .map(|row| {
            let applied_on: String = row.try_get(2)?;
            let checksum: String = row.try_get(3)?;
            history_entry(row.try_get(0)?, row.try_get(1)?, &applied_on, &checksum)
        })
        .collect()
}

/// Runs `f` holding the migration lock.
pub(super) fn locked<T>(conn: &mut PgConn, f: impl FnOnce(&mut PgConn) -> Result<T>) -> Result<T> {
    conn.run(LOCK_MIGRATIONS)?;
    let result = f(conn);
    let unlocked = conn.run(UNLOCK_MIGRATIONS);
    let value = result?;
    unlocked?;
    Ok(value)
}

/// Moves the schema to `target`; the caller holds the lock.
pub(super) fn migrate(
    conn: &mut PgConn,
    dialect: &Dialect,
    target: MigrationTarget,
) -> Result<Vec<PlannedMigration>> {
    let applied = applied_migrations(conn)?;
    let plan = dialect.plan(&applied, target)?;
    run_plan(&mut conn.client, dialect, &plan, revert)?;
    // V3's script restarts the versions itself (see its backfill), in the
    // same transaction as the column.
    Ok(plan)
}

/// Runs one down script and forgets its version, in one transaction.
fn revert(client: &mut postgres::Client, step: &PlannedMigration) -> Result<()> {
    let failed = |e: postgres::Error| revert_failed(step, e);
    client.batch_execute("BEGIN").map_err(failed)?;
    let result = client
        .batch_execute(&step.sql)
        .and_then(|()| {
            let version = i32::try_from(step.version).unwrap_or(i32::MAX);
            client.execute(DELETE_HISTORY, &[&version]).map(drop)
        })
        .and_then(|()| client.batch_execute(COMMIT));
    if let Err(e) = result {
        if let Err(rollback) = client.batch_execute(ROLLBACK) {
            log::warn!("rollback after a failed down step failed: {rollback}");
        }
        return Err(failed(e));
    }
    log::info!("reverted migration V{}__{}", step.version, step.name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::postgres::test_database::TestDatabase;
    use crate::error::Error;
    use crate::migrate::POSTGRES;

    fn versions(conn: &mut PgConn) -> Vec<i32> {
        applied_migrations(conn)
            .expect("history")
            .iter()
            .map(|m| m.version())
            .collect()
    }

    fn has(conn: &mut PgConn, sql: &str) -> bool {
        conn.client.query_one(sql, &[]).expect("query").get(0)
    }

    /// An up step's script and its history row commit together (see the
    /// SQLite test of the same name).
    #[test]
    fn an_up_step_and_its_history_row_commit_together() {
        let Some(mut db) = TestDatabase::create() else {
            return;
        };
        let conn = &mut db.conn;
        migrate(conn, &POSTGRES, MigrationTarget::Version(2)).expect("V2");
        conn.client
            .batch_execute(
                "CREATE FUNCTION refuse_v3() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.version = 3 THEN RAISE EXCEPTION 'history row refused'; END IF; \
                 RETURN NEW; END $$; \
                 CREATE TRIGGER refuse_v3 BEFORE INSERT ON refinery_schema_history \
                 FOR EACH ROW EXECUTE FUNCTION refuse_v3();",
            )
            .expect("trigger");
        let err = migrate(conn, &POSTGRES, MigrationTarget::Latest).expect_err("refused");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(versions(conn), [1, 2]);
        assert!(
            !has(
                conn,
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_name = 'conversations' AND column_name = 'version')"
            ),
            "V3's column was rolled back with its history row"
        );
        conn.client
            .batch_execute("DROP TRIGGER refuse_v3 ON refinery_schema_history")
            .expect("drop trigger");
        migrate(conn, &POSTGRES, MigrationTarget::Latest).expect("V3");
        assert_eq!(
            versions(conn),
            (1..=POSTGRES.latest())
                .map(|v| v as i32)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn failing_migrations_leave_the_version_they_found() {
        let Some(mut db) = TestDatabase::create() else {
            return;
        };
        let conn = &mut db.conn;
        migrate(conn, &POSTGRES, MigrationTarget::Latest).expect("migrate");
        conn.client
            .batch_execute(
                "INSERT INTO conversations (id, title, created_at, updated_at) \
                 VALUES (gen_random_uuid(), 'kept', now(), now())",
            )
            .expect("insert");

        let before = versions(conn);
        let broken_up = POSTGRES.with_failing_next_version();
        let err =
            migrate(conn, &broken_up, MigrationTarget::Latest).expect_err("the next version fails");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(versions(conn), before);
        assert!(!has(conn, "SELECT to_regclass('half_done') IS NOT NULL"));

        let broken_down = POSTGRES.with_failing_v2_down();
        let err = migrate(conn, &broken_down, MigrationTarget::Version(1)).expect_err("down fails");
        assert!(matches!(err, Error::Migration { .. }), "{err:?}");
        assert_eq!(
            versions(conn),
            [1, 2],
            "the steps above V2 were reverted, V2 not"
        );
        assert!(has(
            conn,
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_name = 'conversations' AND column_name = 'message_count')"
        ));
        assert!(has(
            conn,
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE title = 'kept')"
        ));
    }
}
