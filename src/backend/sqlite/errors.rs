//! SQLite's errors as the crate's: named for what a user can do about them.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use super::Target;
use crate::error::{Entity, Error};

pub(super) fn display_path(target: &Target) -> PathBuf {
    match target {
        Target::File(path) => path.clone(),
        Target::Memory => PathBuf::from(":memory:"),
    }
}

pub(super) fn open_message(target: &Target, reason: String) -> Error {
    Error::Open {
        path: display_path(target),
        reason,
        source: None,
    }
}

/// Errors while opening, named for what the user can do about them.
pub(super) fn open_error(target: &Target, e: rusqlite::Error) -> Error {
    let reason = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            return Error::NotADatabase {
                path: display_path(target),
            };
        }
        _ if is_busy(&e) => return Error::from(e),
        Some(ErrorCode::ReadOnly) => "the database file or its directory is read-only",
        Some(ErrorCode::CannotOpen) => {
            "the file, or the -wal or -shm beside it, cannot be opened or created \
             (is its directory missing or read-only?)"
        }
        Some(ErrorCode::PermissionDenied) => "permission denied",
        Some(ErrorCode::DatabaseCorrupt) => "the database file is corrupt",
        Some(ErrorCode::SystemIoFailure) => {
            "an I/O error on the file or its -wal or -shm (did another program change one?)"
        }
        Some(ErrorCode::DiskFull) => "the disk is full",
        _ => "SQLite refused it",
    };
    Error::Open {
        path: display_path(target),
        reason: reason.to_owned(),
        source: Some(Box::new(e)),
    }
}

/// An error of the work an open does after connecting (the search index
/// build, which reads every text waiting to be indexed): SQLite's errors
/// named as [`open_error`] names them (a corrupt file is `Open`, saying
/// so), the crate's own unchanged.
pub(super) fn while_opening(target: &Target, e: Error) -> Error {
    match e {
        Error::Backend(source) => match source.downcast::<rusqlite::Error>() {
            Ok(e) => open_error(target, *e),
            Err(source) => Error::Backend(source),
        },
        e => e,
    }
}

/// Whether `e` says another connection held SQLite's lock past the busy
/// timeout (nothing was done; trying again later may work).
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::DiskFull {
                reason: e.to_string(),
                source: Some(Box::new(e)),
            },
            _ if is_busy(&e) => Error::Unavailable {
                reason: "the database stayed locked by another connection for longer than the busy timeout"
                    .to_owned(),
                source: Some(Box::new(e)),
            },
            _ => Error::Backend(Box::new(e)),
        }
    }
}

/// Maps a unique-key violation to [`Error::Conflict`] on `entity` `id`.
pub(super) fn conflict_on(
    entity: Entity,
    id: impl std::fmt::Display,
) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation)
            if matches!(
                e.sqlite_error().map(|s| s.extended_code),
                Some(
                    rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                        | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                )
            ) =>
        {
            Error::conflict(entity, id)
        }
        _ => Error::from(e),
    }
}
