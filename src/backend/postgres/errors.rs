//! PostgreSQL errors as the store's: lost connections, full disks,
//! duplicate keys, and what went wrong while opening.

use std::error::Error as StdError;

use postgres::error::SqlState;

use super::tls;
use crate::config::PostgresUrl;
use crate::error::{Entity, Error};

/// True for errors that mean the connection or server is gone (as opposed to
/// an error of the statement itself).
pub(super) fn is_connection_error(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
            ]
            .contains(code);
    }
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&SqlState::DISK_FULL) {
            return Error::DiskFull {
                reason: e.to_string(),
                source: Some(Box::new(e)),
            };
        }
        if is_connection_error(&e) {
            log::warn!("PostgreSQL connection failed: {e}");
            return Error::Unavailable {
                reason: "the PostgreSQL server closed the connection or cannot be reached"
                    .to_owned(),
                source: Some(Box::new(e)),
            };
        }
        Error::Backend(Box::new(e))
    }
}

/// Maps a unique-key violation to [`Error::Conflict`] on `entity` `id`.
pub(super) fn conflict_on(
    entity: Entity,
    id: impl std::fmt::Display,
) -> impl FnOnce(postgres::Error) -> Error {
    move |e| match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => Error::conflict(entity, id),
        _ => Error::from(e),
    }
}

/// Errors while opening, named for what the user can do about them.
pub(super) fn open_error(url: &PostgresUrl, e: postgres::Error) -> Error {
    let reason = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD => "the password was refused",
        Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            "the server refused this user (check pg_hba.conf and the user name)"
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => "the database does not exist",
        _ if tls::is_tls_failure(&e) => {
            "the TLS handshake failed (is the server's certificate issued by sslrootcert, \
             for this host name?)"
        }
        _ if is_connection_error(&e) => return Error::from(e),
        _ => "the server refused the connection",
    };
    Error::Connect {
        location: url.to_string(),
        reason: reason.to_owned(),
        source: Some(Box::new(e)),
    }
}
