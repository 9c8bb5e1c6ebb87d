//! Migrations of the PostgreSQL backend, under an advisory lock so that
//! several app instances starting at once do not both migrate.

use super::PgConn;
use super::queries::{
    COMMIT, DELETE_HISTORY, HISTORY, HISTORY_EXISTS, LOCK_MIGRATIONS, ROLLBACK, UNLOCK_MIGRATIONS,
};
use crate::error::{Error, Result};
use crate::migrate::{
    Direction, MigrationTarget, POSTGRES, PlannedMigration, history_entry, migration_error,
};

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
pub(super) fn migrate(conn: &mut PgConn, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
    let applied = applied_migrations(conn)?;
    let plan = POSTGRES.plan(&applied, target)?;
    let Some(last) = plan.last() else {
        return Ok(plan);
    };
    match last.direction {
        Direction::Up => {
            let version = i32::try_from(last.version)
                .map_err(|_| Error::invalid("version", "out of range"))?;
            POSTGRES
                .runner()
                .set_target(refinery::Target::Version(version))
                .run(&mut conn.client)
                .map_err(migration_error)?;
        }
        Direction::Down => {
            for step in &plan {
                revert(conn, step)?;
            }
        }
    }
    Ok(plan)
}

/// Runs one down script and forgets its version, in one transaction.
fn revert(conn: &mut PgConn, step: &PlannedMigration) -> Result<()> {
    let failed = |e: postgres::Error| Error::Migration {
        message: format!("reverting V{}__{} failed: {e}", step.version, step.name),
        source: Some(Box::new(e)),
    };
    conn.client.batch_execute("BEGIN").map_err(failed)?;
    let result = conn
        .client
        .batch_execute(&step.sql)
        .and_then(|()| {
            let version = i32::try_from(step.version).unwrap_or(i32::MAX);
            conn.client.execute(DELETE_HISTORY, &[&version]).map(drop)
        })
        .and_then(|()| conn.client.batch_execute(COMMIT));
    if let Err(e) = result {
        if let Err(rollback) = conn.client.batch_execute(ROLLBACK) {
            log::warn!("rollback after a failed down step failed: {rollback}");
        }
        return Err(failed(e));
    }
    log::info!("reverted migration V{}__{}", step.version, step.name);
    Ok(())
}
