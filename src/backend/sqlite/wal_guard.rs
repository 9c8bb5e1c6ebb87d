//! A guard against opening a database whose `-wal` another program deleted
//! while it was open.
//!
//! SQLite creates `<db>-wal` before `<db>-shm`, and on the last close
//! removes the `-shm` before the `-wal`, so a `-shm` without its `-wal` is
//! never left by SQLite, even after a crash: something else deleted the
//! `-wal`. The connections that had it open go on writing to the deleted
//! file, indexed by the `-shm`. A connection opened now would create a new,
//! empty `-wal` under the same index, and the two files would be taken for
//! one another: when the last of the old connections closes, it checkpoints
//! pages of its deleted `-wal` as the index of the new one describes them,
//! which destroyed the whole database in the adversarial probe
//! (`files::the_wal_deleted_while_stores_are_open`). So no connection is
//! opened in that state; the stores already open keep working and, when
//! the last closes, checkpoint everything they wrote.

use super::Target;
use crate::error::{Error, Result};

/// Refuses to open a database file while its `-shm` exists without its `-wal`.
pub(super) fn refuse_orphaned_shm(target: &Target) -> Result<()> {
    let Target::File(db) = target else {
        return Ok(());
    };
    let beside = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::symlink_metadata(name).is_ok()
    };
    if beside("-shm") && !beside("-wal") {
        return Err(Error::Open {
            path: db.to_path_buf(),
            reason: "its -wal is missing while its -shm is there: another program deleted the \
                     -wal, maybe while the database was open, and opening it now could destroy \
                     it. Close every program using the database; if none is, delete the -shm \
                     (what only the deleted -wal held is gone)"
                .to_owned(),
            source: None,
        });
    }
    Ok(())
}
