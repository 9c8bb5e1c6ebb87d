//! Snapshots of SQLite files: taken before migrations (written under a
//! temporary name, synced, then renamed, so that a snapshot is never seen
//! half written), listed, and pruned with every file they left. Restoring
//! one (after checking it whole) is in `restore`.
//!
//! Beside the database `<db>`, a snapshot is `<db>.v<version>-<time>.snapshot`;
//! while it is written it is `<db>.v<version>-<time>.snapshot.partial`, a
//! name [`list`] does not show. Either may have companions (`-journal`,
//! `-wal`, `-shm`), which pruning removes with it.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::{Error, Result};
use crate::model::Snapshot;

const SNAPSHOT_TIME: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:6]Z");

/// The suffix of a complete snapshot.
const COMPLETE: &str = ".snapshot";
/// The suffix of a snapshot still being written (or killed while it was).
const PARTIAL: &str = ".snapshot.partial";
/// Files SQLite may keep beside a database file.
const COMPANIONS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// The directory of the database file `db`.
fn directory(db: &Path) -> PathBuf {
    match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `<db>.v`: what the names of `db`'s snapshots start with.
fn prefix(db: &Path) -> String {
    let name = db.file_name().map(|n| n.to_string_lossy().into_owned());
    format!("{}.v", name.unwrap_or_default())
}

/// A file of the directory that belongs to a snapshot of the database.
struct Entry {
    /// The snapshot's own file name (without a companion's suffix).
    snapshot: String,
    version: i64,
    taken_at: OffsetDateTime,
    /// Written under its temporary name, never finished.
    partial: bool,
    /// A `-journal`, `-wal` or `-shm` file rather than the snapshot itself.
    companion: bool,
}

/// What the file `name` is to the snapshots whose names start with `prefix`.
fn parse(prefix: &str, name: &str) -> Option<Entry> {
    let rest = name.strip_prefix(prefix)?;
    let (base, companion) = match COMPANIONS.iter().find_map(|c| rest.strip_suffix(c)) {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let (stem, partial) = match base.strip_suffix(PARTIAL) {
        Some(stem) => (stem, true),
        None => (base.strip_suffix(COMPLETE)?, false),
    };
    let (version, stamp) = stem.split_once('-')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Entry {
        snapshot: format!("{prefix}{base}"),
        version: version.parse().ok()?,
        taken_at: time::PrimitiveDateTime::parse(stamp, SNAPSHOT_TIME)
            .ok()?
            .assume_utc(),
        partial,
        companion,
    })
}

/// The files of `db`'s directory that belong to its snapshots, with their paths.
fn entries(db: &Path) -> Result<Vec<(PathBuf, Entry)>> {
    let dir = directory(db);
    let prefix = prefix(db);
    let read = std::fs::read_dir(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(read
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            Some((entry.path(), parse(&prefix, &name)?))
        })
        .collect())
}

/// The complete snapshots of `db`, newest first.
pub(super) fn list(db: &Path) -> Result<Vec<Snapshot>> {
    let mut snapshots: Vec<Snapshot> = entries(db)?
        .into_iter()
        .filter(|(_, e)| !e.partial && !e.companion)
        .map(|(path, e)| Snapshot {
            path,
            version: e.version,
            taken_at: e.taken_at,
        })
        .collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.taken_at));
    Ok(snapshots)
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes `path` and its companions; a file that is not there is no error.
pub(super) fn remove_with_companions(path: &Path) {
    let mut all = vec![path.to_path_buf()];
    for companion in COMPANIONS {
        let mut name = path.as_os_str().to_owned();
        name.push(companion);
        all.push(PathBuf::from(name));
    }
    for file in all {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                log::warn!("could not remove {}: {e}", file.display());
            }
            _ => {}
        }
    }
}

/// Makes a rename in `dir` durable.
pub(super) fn sync_directory(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Takes a snapshot of the database behind `conn` (the file `db`, at schema
/// `version`), then prunes all but the newest `keep`. The caller holds the
/// migration lock. The snapshot is written under its temporary name and
/// synced before it is renamed to its final one, and the directory synced
/// after: a snapshot that is listed is complete, even after a crash.
pub(super) fn take(conn: &Connection, db: &Path, version: i64, keep: usize) -> Result<()> {
    let stamp = OffsetDateTime::now_utc()
        .format(SNAPSHOT_TIME)
        .map_err(|e| Error::Backend(Box::new(e)))?;
    let stem = format!("{}{version}-{stamp}", prefix(db));
    let path = db.with_file_name(format!("{stem}{COMPLETE}"));
    let partial = db.with_file_name(format!("{stem}{PARTIAL}"));
    let target = partial
        .to_str()
        .ok_or_else(|| Error::invalid("path", "the database path is not UTF-8"))?;
    // VACUUM INTO refuses a target that exists and is not empty.
    remove_with_companions(&partial);
    // Created here first (empty, which VACUUM INTO accepts), so that a
    // directory the snapshot cannot be written in (read-only, full, no
    // permission) is an `Io` error naming the file.
    File::create_new(&partial).map_err(io(&partial))?;
    let written = conn
        .execute("VACUUM INTO ?1", [target])
        .map_err(Error::from)
        .and_then(|_| {
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(io(&partial))
        })
        .and_then(|()| std::fs::rename(&partial, &path).map_err(io(&partial)));
    if let Err(e) = written {
        remove_with_companions(&partial);
        return Err(e);
    }
    sync_directory(&directory(db))?;
    log::info!(
        "snapshot of {} at version {version}: {}",
        db.display(),
        path.display()
    );
    prune(db, keep)
}

/// Removes every snapshot of `db` but the newest `keep`, with their
/// companions, and whatever snapshots killed while being written left
/// (their temporary files and companions). The caller holds the migration
/// lock, so no snapshot is being written meanwhile.
fn prune(db: &Path, keep: usize) -> Result<()> {
    let kept: HashSet<String> = list(db)?
        .into_iter()
        .take(keep)
        .filter_map(|s| Some(s.path.file_name()?.to_str()?.to_owned()))
        .collect();
    for (path, entry) in entries(db)? {
        if entry.partial || !kept.contains(&entry.snapshot) {
            if !entry.companion {
                log::info!("removing snapshot file {}", path.display());
            }
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                log::warn!("could not remove {}: {e}", path.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_snapshots_partials_and_companions() {
        let p = "app.db.v";
        let e = parse(p, "app.db.v2-20260101T000000.000000Z.snapshot").expect("snapshot");
        assert_eq!((e.version, e.partial, e.companion), (2, false, false));
        let e = parse(
            p,
            "app.db.v2-20260101T000000.000000Z.snapshot.partial-journal",
        )
        .expect("a partial's journal");
        assert_eq!((e.partial, e.companion), (true, true));
        assert_eq!(
            e.snapshot,
            "app.db.v2-20260101T000000.000000Z.snapshot.partial"
        );
        for other in [
            "app.db",
            "app.db-wal",
            "app.db.notes",
            "app.db.v2-20260101T000000.000000Z.snapshot.bak",
            "app.db.v-2-20260101T000000.000000Z.snapshot",
            "app.db.v2-yesterday.snapshot",
            "other.db.v2-20260101T000000.000000Z.snapshot",
        ] {
            assert!(parse(p, other).is_none(), "{other}");
        }
    }
}
