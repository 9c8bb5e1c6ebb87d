//! Re-encrypting a database file no store has open (the `encryption`
//! feature): encrypting a plain file in place, changing the key of an
//! encrypted one, and writing a plain copy of one.
//!
//! Every change writes a whole new file beside the target with SQLCipher's
//! `sqlcipher_export`, syncs it, and only then renames it over the target:
//! a process killed at any moment leaves the original file intact and
//! openable with its old key, or the new file complete. While the new file
//! is written, the original is held under an exclusive lock, taken only if
//! no other connection has it open; a connection that opened the file
//! before and writes after the rename gets SQLite's "database moved" error,
//! never a write to the replaced file that is then lost.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use uuid::Uuid;

use super::cipher::Cipher;
use super::errors::{is_busy, open_error};
use super::maintenance::{destination, publish};
use super::migrations::MigrationLock;
use super::snapshots::{self, io, remove_with_companions, sync_directory};
use super::{Target, resolve, wal_guard};
use crate::config::Key;
use crate::error::{Error, KeyProblem, Result};

/// How long the file may stay busy (another connection finishing) before
/// the change is refused.
const PATIENCE: Duration = Duration::from_secs(5);

/// Where the re-encrypted database goes.
pub(crate) enum Output<'a> {
    /// Over the original file, atomically.
    InPlace,
    /// To a new file at this path, which must not exist.
    NewFile(&'a Path),
}

/// Writes the database file at `db`, opened with key `from` (none: a plain
/// file), encrypted with key `to` (none: plain) to `output`. In place, its
/// snapshots are re-encrypted too, first: none keeps the old key (or none)
/// once the file has the new one.
pub(crate) fn reencrypt(
    db: &Path,
    from: Option<&Key>,
    to: Option<&Key>,
    output: Output<'_>,
) -> Result<()> {
    let named = resolve(db)?;
    if !named.is_file() {
        return Err(Error::Open {
            path: named,
            reason: "there is no database file there".to_owned(),
            source: None,
        });
    }
    // Through a symbolic link, the file it names is the one replaced (the
    // link itself replaced would leave the old file, plain, where it was).
    let db = std::fs::canonicalize(&named).map_err(io(&named))?;
    let _lock = MigrationLock::acquire(Some(&db))?;
    let conn = open_source(&Target::File(db.clone()), &Cipher::with_key(from.cloned()))?;
    match output {
        Output::InPlace => {
            refuse_other_names(&db)?;
            hold_alone(&conn, &db)?;
            for snapshot in snapshots::list(&db)? {
                reencrypt_snapshot(&snapshot.path, from, to)?;
            }
            replace(&conn, &db, to)?;
        }
        Output::NewFile(path) => {
            let out = destination(path)?;
            let partial = companion(&out, &format!(".{}.partial", Uuid::new_v4().simple()));
            let written = export(&conn, &partial, to).and_then(|()| publish(&partial, &out));
            remove_with_companions(&partial);
            written?;
        }
    }
    // The original's connection closes last: on a replaced file, nothing is
    // left to checkpoint (its journal mode is no longer WAL).
    drop(conn);
    log::info!("re-encrypted {}", db.display());
    Ok(())
}

/// Writes the database behind `conn` (the file `file`, held by it alone)
/// beside it with key `to`, with the file's permissions and owner, and
/// renames it over `file`.
fn replace(conn: &Connection, file: &Path, to: Option<&Key>) -> Result<()> {
    let partial = companion(file, "-reencrypt.partial");
    // A file a killed change left behind; the lock keeps others out.
    remove_with_companions(&partial);
    let written = export(conn, &partial, to)
        .and_then(|()| keep_access(file, &partial))
        .and_then(|()| {
            // The journal of leaving WAL holds the old first page; nobody
            // else can be using it (the exclusive lock), and it is not hot.
            match std::fs::remove_file(companion(file, "-journal")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io(file)(e));
                }
                _ => {}
            }
            std::fs::rename(&partial, file).map_err(io(&partial))
        });
    if written.is_err() {
        remove_with_companions(&partial);
    }
    written?;
    // Replaced: from here the new key opens it, whatever else fails.
    if let Err(e) = sync_directory(file.parent().unwrap_or(Path::new("."))) {
        log::warn!(
            "{} replaced, but its directory was not synced: {e}",
            file.display()
        );
    }
    Ok(())
}

/// Re-encrypts the snapshot at `path` in place from `from` to `to`; a plain
/// one is encrypted too, and one that another key opens is left as it is
/// (with a warning).
fn reencrypt_snapshot(path: &Path, from: Option<&Key>, to: Option<&Key>) -> Result<()> {
    let target = Target::File(path.to_path_buf());
    let conn = match open_source(&target, &Cipher::with_key(from.cloned())) {
        Err(Error::Key {
            problem: KeyProblem::NotEncrypted,
            ..
        }) => open_source(&target, &Cipher::with_key(None))?,
        Err(Error::Key { problem, .. }) => {
            log::warn!("snapshot {} left as it is: {problem}", path.display());
            return Ok(());
        }
        other => other?,
    };
    replace(&conn, path, to)
}

/// Refuses a file with other names (hard links): they would keep its old
/// contents, plain or under the old key.
fn refuse_other_names(db: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let names = std::fs::metadata(db).map_err(io(db))?.nlink();
        if names > 1 {
            return Err(Error::Open {
                path: db.to_path_buf(),
                reason: format!(
                    "the file has {names} names (hard links), and the others would keep \
                     its old contents; remove them first"
                ),
                source: None,
            });
        }
    }
    let _ = db;
    Ok(())
}

/// Gives `partial` the permissions and (where allowed) the owner of `file`,
/// which it is about to replace.
fn keep_access(file: &Path, partial: &Path) -> Result<()> {
    let meta = std::fs::metadata(file).map_err(io(file))?;
    std::fs::set_permissions(partial, meta.permissions()).map_err(io(partial))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Only root may give a file away; anyone else already owns both.
        if let Err(e) = std::os::unix::fs::chown(partial, Some(meta.uid()), Some(meta.gid())) {
            log::debug!("{} keeps its new owner: {e}", file.display());
        }
    }
    Ok(())
}

/// Opens the database at `target` with `cipher`'s key, read and checked as
/// a store opens it: the same errors for a key that does not fit.
fn open_source(target: &Target, cipher: &Cipher) -> Result<Connection> {
    let Target::File(db) = target else {
        return Err(Error::invalid("path", "an in-memory database has no file"));
    };
    wal_guard::refuse_orphaned_shm(target)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).map_err(|e| open_error(target, e))?;
    cipher.key(&conn, db).map_err(|e| open_error(target, e))?;
    cipher.check_file(target)?;
    conn.busy_timeout(PATIENCE)
        .map_err(|e| open_error(target, e))?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => cipher.not_a_database(target),
        _ => open_error(target, e),
    })?;
    Ok(conn)
}

/// Takes and keeps an exclusive lock on the database behind `conn`, which
/// SQLite grants only while no other connection, in any process, has it
/// open in WAL mode (leaving WAL needs that) or holds a lock on it.
fn hold_alone(conn: &Connection, db: &Path) -> Result<()> {
    let busy = |source: Option<rusqlite::Error>| Error::Unavailable {
        reason: format!(
            "{} is open in a store or another program; close it everywhere first",
            db.display()
        ),
        source: source.map(|e| Box::new(e) as _),
    };
    // A store dropped just now may still be closing its connections (its
    // pool finishes opening one it had started): wait for them a while.
    let deadline = Instant::now() + PATIENCE;
    conn.query_row("PRAGMA main.locking_mode = EXCLUSIVE", [], |_| Ok(()))?;
    // The journal of leaving WAL is emptied, not kept whole (exclusive
    // locking mode keeps the file), so the old first page does not linger.
    conn.query_row("PRAGMA main.journal_size_limit = 0", [], |_| Ok(()))?;
    loop {
        let mode = conn.query_row("PRAGMA main.journal_mode = DELETE", [], |r| {
            r.get::<_, String>(0)
        });
        match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("delete") => break,
            Ok(_) if Instant::now() < deadline => {}
            Err(e) if is_busy(&e) && Instant::now() < deadline => {}
            Ok(_) => return Err(busy(None)),
            Err(e) if is_busy(&e) => return Err(busy(Some(e))),
            Err(e) => return Err(Error::from(e)),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // In exclusive locking mode, the lock a write takes is never given back.
    conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").map_err(|e| {
        if is_busy(&e) {
            busy(Some(e))
        } else {
            Error::from(e)
        }
    })
}

/// Writes the whole database behind `conn` to the new file `partial`,
/// keyed with `key` (none: plain), in one read transaction, and syncs it.
fn export(conn: &Connection, partial: &Path, key: Option<&Key>) -> Result<()> {
    // Created here first, so that a path the file system refuses is an
    // `Io` error naming it; readable by its owner only (a plain copy stays
    // so; one replacing a file takes that file's permissions).
    let mut create = std::fs::OpenOptions::new();
    create.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
    create.open(partial).map_err(io(partial))?;
    let name = partial
        .to_str()
        .ok_or_else(|| Error::invalid("path", "the database path is not UTF-8"))?;
    // An empty key attaches a plain database (SQLCipher's rule).
    let material: &[u8] = key.map_or(&[], Key::material);
    conn.execute(
        "ATTACH DATABASE ?1 AS silmari_export KEY ?2",
        rusqlite::params![name, material],
    )?;
    if key.is_some() {
        // SQLCipher 4's settings, as every connection of a store has them.
        conn.execute_batch("PRAGMA silmari_export.cipher_compatibility = 4")?;
    }
    let copied = conn
        .execute_batch("BEGIN")
        .and_then(|()| conn.query_row("SELECT sqlcipher_export('silmari_export')", [], |_| Ok(())))
        .and_then(|()| conn.execute_batch("COMMIT"));
    if copied.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let detached = conn.execute_batch("DETACH DATABASE silmari_export");
    copied?;
    detached?;
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(io(partial))
}

/// `path` with `suffix` appended to its file name.
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
