//! Maintenance of SQLite databases: online backup and the health report
//! (snapshot restore: `snapshots`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::cipher::Cipher;
use super::migrations::applied_migrations;
use super::session::SqliteSession;
use super::snapshots::{io, remove_with_companions, sync_directory};
use crate::backend::Session;
use crate::error::{Error, Result};
use crate::migrate::SQLITE;
use crate::model::{BackendKind, Counts, HealthReport, MigrationTarget, SqlitePragmas};
use uuid::Uuid;

/// Copies the live database to a new file at `path` with SQLite's backup
/// API, in one step under one read snapshot: in WAL mode writers go on
/// meanwhile, and the copy is consistent. The copy is written under a
/// temporary name beside `path`, synced, and only then linked to `path`
/// (which must not exist, not even as a dangling link): a backup
/// interrupted at any moment leaves no file at `path`. A lock held by
/// another connection is waited for up to `patience`.
pub(super) fn backup(
    conn: &Connection,
    cipher: &Cipher,
    path: &Path,
    patience: Duration,
) -> Result<()> {
    let target = destination(path)?;
    let mut name = target.as_os_str().to_owned();
    name.push(format!(".{}.partial", Uuid::new_v4().simple()));
    let partial = PathBuf::from(name);
    let written =
        write_copy(conn, cipher, &partial, patience).and_then(|()| publish(&partial, &target));
    remove_with_companions(&partial);
    written?;
    log::info!("backed up to {}", target.display());
    Ok(())
}

/// `path` made absolute, refused when it names no file, is already taken
/// or lies in a directory that is not there.
pub(super) fn destination(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::invalid("path", "the backup path is empty"));
    }
    let target = std::path::absolute(path).map_err(io(path))?;
    let Some(dir) = target.parent().filter(|_| target.file_name().is_some()) else {
        return Err(Error::invalid(
            "path",
            format!("{} names no file", path.display()),
        ));
    };
    if std::fs::symlink_metadata(&target).is_ok() {
        return Err(exists(&target));
    }
    if !dir.is_dir() {
        return Err(Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the backup's directory does not exist",
            ),
        });
    }
    Ok(target)
}

fn exists(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "refusing to overwrite an existing file",
        ),
    }
}

/// Writes the whole database into the new file `partial`, in the rollback
/// journal mode a lone copy needs, keyed like the live one, closed and synced.
fn write_copy(
    conn: &Connection,
    cipher: &Cipher,
    partial: &Path,
    patience: Duration,
) -> Result<()> {
    // Created here first, so that a path the file system refuses (too long,
    // read-only, no permission) is an `Io` error naming it.
    File::create_new(partial).map_err(io(partial))?;
    // A plain path: never read as a `file:` URI.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut target = cipher.open(partial, flags)?;
    copy_pages(&Backup::new(conn, &mut target)?, patience)?;
    let _mode: String = target.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    target.close().map_err(|(_, e)| Error::from(e))?;
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io(partial))
}

/// Gives the finished copy its name, never replacing a file that appeared
/// there meanwhile.
pub(super) fn publish(partial: &Path, target: &Path) -> Result<()> {
    match std::fs::hard_link(partial, target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(target)),
        // A file system without hard links: rename, after one more look.
        Err(_) if std::fs::symlink_metadata(target).is_ok() => return Err(exists(target)),
        Err(_) => std::fs::rename(partial, target).map_err(io(partial))?,
    }
    match target.parent() {
        Some(dir) => sync_directory(dir),
        None => Ok(()),
    }
}

/// Runs `backup` to the end, every page in one step (so a concurrent write
/// cannot restart it). SQLite's step does not wait for a lock held by
/// another connection: it answers busy or locked at once, or after the
/// destination's busy handler gave up. It is retried for `patience` (the
/// store's busy timeout), then
/// [`Error::Unavailable`].
pub(super) fn copy_pages(backup: &Backup<'_, '_>, patience: Duration) -> Result<()> {
    let deadline = Instant::now() + patience;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _ if Instant::now() >= deadline => {
                return Err(Error::Unavailable {
                    reason: "the database stayed locked by another connection for longer \
                             than the busy timeout"
                        .to_owned(),
                    source: None,
                });
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
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
/// `busy_timeout` is the store's (SQLite reports 0 under the store's own
/// busy handler).
pub(super) fn check(
    conn: &Connection,
    path: Option<&Path>,
    busy_timeout: Duration,
) -> Result<HealthReport> {
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
        busy_timeout_ms: i64::try_from(busy_timeout.as_millis()).unwrap_or(i64::MAX),
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
    let tree_mismatches = if schema_version >= 4 {
        number(conn, crate::backend::sql::TREE_MISMATCHES)? as u64
    } else {
        0
    };
    let search_index_mismatches = if schema_version >= 11 {
        // An indexed message outside its rowid block's range could be missed by a
        // search that reads by rowid: the index is rebuilt, blocks too.
        number(conn, super::queries::SEARCH_MISMATCHES)? as u64
            + number(
                conn,
                "SELECT COUNT(*) FROM messages m \
                 LEFT JOIN search_blocks b ON b.block = m.search_rowid >> 10 \
                 WHERE m.search_rowid <= (SELECT indexed_upto FROM search_progress WHERE id = 1) \
                 AND (b.block IS NULL OR m.created_at > b.newest OR m.created_at < b.oldest)",
            )? as u64
    } else if schema_version >= 8 {
        number(conn, super::queries::SEARCH_MISMATCHES)? as u64
    } else if schema_version >= 7 {
        number(conn, super::queries::SEARCH_MISMATCHES_V7)? as u64
    } else if schema_version >= 5 {
        number(conn, super::queries::SEARCH_MISMATCHES_V5)? as u64
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
        tree_mismatches,
        search_index_mismatches,
        size_bytes,
        schema: None,
        misplaced_tables: Vec::new(),
    })
}
