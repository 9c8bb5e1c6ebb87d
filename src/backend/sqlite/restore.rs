//! Restoring a snapshot: the file is checked whole first (an SQLite
//! header, every page present, `integrity_check` clean, a migration history
//! this build accepts at a version of at least 1, and that version's
//! tables), then copied into the live database with SQLite's backup API
//! under the same read transaction. Anything else is refused with
//! [`Error::InvalidInput`] on `snapshot`, the live database untouched.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::backup::Backup;
use rusqlite::{Connection, OpenFlags};

use super::cipher::{Cipher, MAGIC};
use super::maintenance::copy_pages;
use super::migrations::{RESTART_VERSIONS, applied_migrations, migrate};
use super::snapshots::io;
use crate::error::{Error, Result};
use crate::migrate::{SQLITE, VERSIONS_ADDED, restart_version};
use crate::model::MigrationTarget;

/// Replaces the contents of the live database behind `conn` (the file
/// `live`) with the snapshot at `snapshot`, after checking that it is a
/// complete, sound database of this store's schema at a version this build
/// knows; otherwise [`Error::InvalidInput`] on `snapshot`, and the live
/// database is not touched. The caller holds the migration lock.
pub(super) fn restore(
    conn: &mut Connection,
    cipher: &Cipher,
    live: &Path,
    snapshot: &Path,
    patience: Duration,
) -> Result<()> {
    let refuse = |reason: String| {
        Error::invalid(
            "snapshot",
            format!("{} is refused: {reason}", snapshot.display()),
        )
    };
    check_file(snapshot, live, cipher).map_err(|r| r.into_error(&refuse))?;
    // Keyed like the live database: an encrypted store's snapshots are.
    let source = cipher
        .open(
            snapshot,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| refuse(format!("SQLite cannot open it: {e}")))?;
    // One read transaction: what is checked is what is copied.
    source
        .execute_batch("BEGIN")
        .map_err(|e| refuse(format!("SQLite cannot read it: {e}")))?;
    let version = check_contents(&source, snapshot).map_err(|r| r.into_error(&refuse))?;
    // The live versions: every copy read before must stay stale after.
    let live_versions: Option<i64> = conn
        .query_row("SELECT max(version) FROM conversations", [], |r| r.get(0))
        .unwrap_or(None);
    // Every page in one step; on failure the live database is rolled back.
    copy_pages(&Backup::new(&source, conn)?, patience)?;
    if let Err(e) = source.execute_batch("COMMIT") {
        log::warn!("ending the read of {}: {e}", snapshot.display());
    }
    if version >= VERSIONS_ADDED {
        let above = live_versions.unwrap_or(0).saturating_add(1);
        conn.execute(RESTART_VERSIONS, [restart_version(above)])?;
    }
    log::info!(
        "restored snapshot {} (schema version {version})",
        snapshot.display()
    );
    Ok(())
}

/// Why a snapshot is refused, or an error that is not the snapshot's fault.
enum Refusal {
    Because(String),
    Error(Error),
}

impl Refusal {
    fn into_error(self, refuse: &impl Fn(String) -> Error) -> Error {
        match self {
            Refusal::Because(reason) => refuse(reason),
            Refusal::Error(e) => e,
        }
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Error(e)
    }
}

/// The SQLite header's magic string.
/// Checks the file as bytes: a regular file, not the live database, with
/// an SQLite header, whole pages, and at least as many as its header counts;
/// for an encrypted store, no plain header and whole pages (the rest of its
/// header is encrypted, and checked when read).
fn check_file(snapshot: &Path, live: &Path, cipher: &Cipher) -> std::result::Result<(), Refusal> {
    let meta = std::fs::metadata(snapshot).map_err(|e| Refusal::Error(io(snapshot)(e)))?;
    if !meta.is_file() {
        return Err(Refusal::Because("it is not a regular file".to_owned()));
    }
    if let (Ok(a), Ok(b)) = (snapshot.canonicalize(), live.canonicalize())
        && (a == b || same_file(&meta, &b))
    {
        return Err(Refusal::Because(
            "it is the live database itself".to_owned(),
        ));
    }
    let len = meta.len();
    let mut header = [0u8; 100];
    if len < 512 {
        return Err(Refusal::Because(format!(
            "it is {len} bytes long, too short to hold a database (a snapshot cut short?)"
        )));
    }
    File::open(snapshot)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| Refusal::Error(io(snapshot)(e)))?;
    if cipher.encrypted() {
        if &header[..16] == MAGIC {
            return Err(Refusal::Because(
                "it is a plain, unencrypted database, and this store is encrypted".to_owned(),
            ));
        }
        if len % 512 != 0 {
            return Err(Refusal::Because(format!(
                "it is {len} bytes long, not a whole number of pages (a snapshot cut short?)"
            )));
        }
        return Ok(());
    }
    if &header[..16] != MAGIC {
        return Err(Refusal::Because(
            "it does not start with the SQLite header (not a database, or a snapshot \
             whose first page was never written)"
                .to_owned(),
        ));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(Refusal::Because(format!(
            "its header names an impossible page size ({page_size})"
        )));
    }
    if len % page_size != 0 {
        return Err(Refusal::Because(format!(
            "it is {len} bytes long, not a whole number of {page_size}-byte pages \
             (a snapshot cut short?)"
        )));
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    // The header's page count is valid when written by the same change.
    let pages = u64::from(word(28));
    if word(92) == word(24) && pages * page_size > len {
        return Err(Refusal::Because(format!(
            "its header counts {pages} pages but the file holds {} (a snapshot cut short?)",
            len / page_size
        )));
    }
    Ok(())
}

/// Whether `meta` is the file at `other` under another name (a hard link).
fn same_file(meta: &std::fs::Metadata, other: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(other).is_ok_and(|o| (o.dev(), o.ino()) == (meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = (meta, other);
        false
    }
}

/// Checks the database: `integrity_check` clean, no foreign key violation,
/// a migration history this build accepts at a version of at least 1, and
/// the tables and indexes that version has. Returns the version.
fn check_contents(source: &Connection, snapshot: &Path) -> std::result::Result<i64, Refusal> {
    let unreadable = |e: rusqlite::Error| {
        let mut journal = snapshot.as_os_str().to_owned();
        journal.push("-journal");
        let hint = if Path::new(&journal).exists() {
            " (a -journal beside it shows it was being written when its writer stopped)"
        } else {
            ""
        };
        Refusal::Because(format!("SQLite cannot read it: {e}{hint}"))
    };
    let integrity = column(source, "PRAGMA integrity_check").map_err(unreadable)?;
    if integrity != ["ok"] {
        return Err(Refusal::Because(format!(
            "PRAGMA integrity_check finds {} problem(s), the first: {}",
            integrity.len(),
            integrity.first().map_or("", String::as_str)
        )));
    }
    let violations =
        column(source, "SELECT \"table\" FROM pragma_foreign_key_check").map_err(unreadable)?;
    if !violations.is_empty() {
        return Err(Refusal::Because(format!(
            "{} row(s) break a foreign key, the first in table {}",
            violations.len(),
            violations[0]
        )));
    }
    let applied = applied_migrations(source)
        .map_err(|e| Refusal::Because(format!("its migration history cannot be read: {e}")))?;
    SQLITE
        .verify(&applied)
        .map_err(|e| Refusal::Because(format!("its migration history is refused: {e}")))?;
    let Some(version) = applied.iter().map(|m| i64::from(m.version())).max() else {
        return Err(Refusal::Because(
            "it records no migration (schema version 0): an empty database, \
             or not one of this store's"
                .to_owned(),
        ));
    };
    let actual = schema(source).map_err(unreadable)?;
    let expected = expected_schema(version)?;
    if actual != expected {
        let missing = expected.iter().find(|line| !actual.contains(line));
        let extra = actual.iter().find(|line| !expected.contains(line));
        return Err(Refusal::Because(format!(
            "its tables are not those of schema version {version} (missing: {}; unexpected: {})",
            missing.map_or("nothing", String::as_str),
            extra.map_or("nothing", String::as_str),
        )));
    }
    Ok(version)
}

/// The first column of every row `sql` returns, as text.
fn column(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The schema as SQLite reports it (tables, columns, indexes and their
/// columns, foreign keys, other objects), one sorted line each: equal for
/// two databases at one version however they got there.
fn schema(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    column(
        conn,
        "WITH t AS (SELECT name FROM sqlite_schema \
                    WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\') \
         SELECT 'object ' || type || ' ' || name || ' on ' || tbl_name FROM sqlite_schema \
           WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         UNION ALL \
         SELECT 'column ' || t.name || '.' || c.name || ' #' || c.cid || ' ' || c.type \
                || ' notnull=' || c.\"notnull\" || ' default=' || ifnull(c.dflt_value, 'NULL') \
                || ' pk=' || c.pk \
           FROM t, pragma_table_info(t.name) c \
         UNION ALL \
         SELECT 'index ' || t.name || '.' || i.name || ' unique=' || i.\"unique\" \
                || ' origin=' || i.origin || ' partial=' || i.partial \
                || ' #' || k.seqno || ' ' || ifnull(k.name, '<expression>') \
           FROM t, pragma_index_list(t.name) i, pragma_index_info(i.name) k \
         UNION ALL \
         SELECT 'foreign key ' || t.name || ' #' || f.id || '.' || f.seq || ' ' || f.\"from\" \
                || ' -> ' || f.\"table\" || '.' || ifnull(f.\"to\", '') \
                || ' on delete ' || f.on_delete || ' on update ' || f.on_update \
           FROM t, pragma_foreign_key_list(t.name) f \
         ORDER BY 1",
    )
}

/// The schema of a fresh database migrated to `version`.
fn expected_schema(version: i64) -> Result<Vec<String>> {
    let mut fresh = Connection::open_in_memory()?;
    migrate(
        &mut fresh,
        &SQLITE,
        None,
        0,
        MigrationTarget::Version(version),
    )?;
    Ok(schema(&fresh)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_schema_of_each_version_differs() -> Result<()> {
        let v1 = expected_schema(1)?;
        let v2 = expected_schema(2)?;
        assert!(v1.iter().any(|l| l.starts_with("column messages.content")));
        assert_ne!(v1, v2);
        Ok(())
    }
}
