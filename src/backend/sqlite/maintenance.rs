//! Maintenance of SQLite databases: online backup and the health report
//! (snapshot restore: `snapshots`).

use std::path::Path;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use super::migrations::applied_migrations;
use super::session::SqliteSession;
use crate::backend::Session;
use crate::error::{Error, Result};
use crate::migrate::SQLITE;
use crate::model::{BackendKind, Counts, HealthReport, MigrationTarget, SqlitePragmas};

/// Copies the live database to a new file at `path` with SQLite's backup
/// API, in one step under one read snapshot: in WAL mode writers go on
/// meanwhile, and the copy is consistent.
pub(super) fn backup(conn: &Connection, path: &Path) -> Result<()> {
    if path.exists() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "refusing to overwrite an existing file",
            ),
        });
    }
    let mut target = Connection::open(path)?;
    {
        let backup = Backup::new(conn, &mut target)?;
        // -1: every page in one step, so a concurrent write cannot restart it.
        while backup.step(-1)? != StepResult::Done {}
    }
    let mode: String = target.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    log::info!("backed up to {} (journal {mode})", path.display());
    Ok(())
}

fn strings(conn: &Connection, sql: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn number(conn: &Connection, sql: &str) -> Result<i64> {
    Ok(conn.query_row(sql, [], |r| r.get(0))?)
}

/// The health report of the database behind `conn`.
pub(super) fn check(conn: &Connection, path: Option<&Path>) -> Result<HealthReport> {
    let applied = applied_migrations(conn)?;
    let schema_version = applied
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    let pending_migrations = SQLITE
        .plan(&applied, MigrationTarget::Latest)?
        .iter()
        .map(|step| step.version)
        .collect();
    let pragmas = SqlitePragmas {
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        synchronous: number(conn, "PRAGMA synchronous")?,
        foreign_keys: number(conn, "PRAGMA foreign_keys")? == 1,
        busy_timeout_ms: number(conn, "PRAGMA busy_timeout")?,
    };
    let integrity_check = strings(conn, "PRAGMA integrity_check")?;
    let foreign_key_violations = {
        let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        let mut n = 0u64;
        while rows.next()?.is_some() {
            n += 1;
        }
        n
    };
    let counts = if schema_version >= 1 {
        SqliteSession::new(conn, false).counts()?
    } else {
        Counts::default()
    };
    let message_count_mismatches = if schema_version >= 2 {
        number(
            conn,
            "SELECT COUNT(*) FROM conversations c WHERE c.message_count <> \
             (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)",
        )? as u64
    } else {
        0
    };
    let size_bytes = match path {
        Some(path) => {
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            Some(len(path) + len(Path::new(&wal)))
        }
        None => {
            Some((number(conn, "PRAGMA page_count")? * number(conn, "PRAGMA page_size")?) as u64)
        }
    };
    Ok(HealthReport {
        backend: BackendKind::Sqlite,
        schema_version,
        pending_migrations,
        integrity_check: Some(integrity_check),
        foreign_key_violations: Some(foreign_key_violations),
        pragmas: Some(pragmas),
        counts,
        message_count_mismatches,
        size_bytes,
        schema: None,
        misplaced_tables: Vec::new(),
    })
}
