//! Encryption at rest (the `encryption` feature, SQLCipher): every
//! connection keyed before any other statement, the ways a file and a key
//! fail to fit told apart, and copies (backups, snapshots) that keep the
//! key. Without the feature, [`Cipher`] holds nothing and does nothing.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::Target;
use super::errors::display_path;
use crate::config::SqliteOptions;
use crate::error::{Error, KeyProblem, Result};

/// The first 16 bytes of every plain SQLite database file.
pub(super) const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The key of a store's connections, if it has one. A passphrase's key is
/// derived once (SQLCipher 4's PBKDF2-HMAC-SHA512, 256,000 iterations,
/// about a tenth of a second) and the store's other connections are keyed
/// with the result, where SQLCipher would derive it again for each.
#[derive(Clone)]
pub(super) struct Cipher {
    #[cfg(feature = "encryption")]
    key: Option<crate::config::Key>,
    /// The key a passphrase derived to with the file's salt, shared by
    /// the clones (the pool's manager, the backend).
    #[cfg(feature = "encryption")]
    derived: std::sync::Arc<std::sync::Mutex<Option<crate::config::Key>>>,
}

impl Cipher {
    /// The key `options` give (the store's configuration refused one for
    /// anything but a file).
    pub(super) fn new(options: &SqliteOptions) -> Cipher {
        #[cfg(feature = "encryption")]
        {
            Cipher::with_key(options.key.clone())
        }
        #[cfg(not(feature = "encryption"))]
        {
            let _ = options;
            Cipher {}
        }
    }

    /// Keys with `key` (none: a plain file).
    #[cfg(feature = "encryption")]
    pub(super) fn with_key(key: Option<crate::config::Key>) -> Cipher {
        quiet_sqlcipher();
        Cipher {
            key,
            derived: std::sync::Arc::default(),
        }
    }

    /// Whether a key was derived for the file.
    pub(super) fn has_derived(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.derived
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// Forgets the key derived for the file; true if there was one.
    pub(super) fn forget_derived(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.derived
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .is_some()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// Whether the database is encrypted.
    pub(super) fn encrypted(&self) -> bool {
        #[cfg(feature = "encryption")]
        {
            self.key.is_some()
        }
        #[cfg(not(feature = "encryption"))]
        {
            false
        }
    }

    /// Keys `conn` (a connection to the file at `path`), which must not
    /// have run any statement yet.
    pub(super) fn key(&self, conn: &Connection, path: &Path) -> rusqlite::Result<()> {
        #[cfg(feature = "encryption")]
        if let Some(key) = &self.key {
            let Some(passphrase) = key.passphrase_bytes() else {
                return apply_key(conn, key.material());
            };
            let mut derived = self
                .derived
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(derived) = &*derived {
                return apply_key(conn, derived.material());
            }
            apply_key(conn, passphrase)?;
            // A file without its salt yet (new, empty): SQLCipher makes one
            // up and derives the key itself; it is derived here only from a
            // salt the file holds, which no other process can change.
            if std::fs::metadata(path).is_ok_and(|m| m.len() >= 16) {
                // Read from the file's head by SQLCipher, without deriving.
                let salt: String = conn.query_row("PRAGMA cipher_salt", [], |r| r.get(0))?;
                let key = derive(passphrase, &salt)?;
                apply_key(conn, key.material())?;
                *derived = Some(key);
            }
        }
        let _ = (conn, path);
        Ok(())
    }

    /// Opens the database file at `path` (a copy, a snapshot) with `flags`,
    /// keyed like the live database.
    pub(super) fn open(&self, path: &Path, flags: OpenFlags) -> Result<Connection> {
        let conn = Connection::open_with_flags(path, flags)?;
        // A copy's own salt: derived again for it, not with the store's.
        self.without_derived().key(&conn, path)?;
        Ok(conn)
    }

    /// The same key, to be derived anew (for another file).
    fn without_derived(&self) -> Cipher {
        #[cfg(feature = "encryption")]
        {
            Cipher::with_key(self.key.clone())
        }
        #[cfg(not(feature = "encryption"))]
        {
            self.clone()
        }
    }

    /// Before the first read: refuses a key for a plain database file,
    /// which SQLCipher would otherwise report as a wrong key.
    pub(super) fn check_file(&self, target: &Target) -> Result<()> {
        let Target::File(path) = target else {
            return Ok(());
        };
        if self.encrypted() && holds_plain_database(path) {
            return Err(Error::Key {
                path: path.clone(),
                problem: KeyProblem::NotEncrypted,
            });
        }
        Ok(())
    }

    /// The error for a file SQLite found not to be a database: with a key,
    /// the wrong key; without one, a key missing if the file looks like an
    /// encrypted one (whole pages of bytes that SQLite could not read, in
    /// a build that can decrypt), else not a database.
    pub(super) fn not_a_database(&self, target: &Target) -> Error {
        let path = display_path(target);
        if self.encrypted() {
            return Error::Key {
                path,
                problem: KeyProblem::Wrong,
            };
        }
        let looks_encrypted = cfg!(feature = "encryption")
            && std::fs::metadata(&path).is_ok_and(|m| m.len() >= 1024 && m.len() % 512 == 0);
        if looks_encrypted {
            Error::Key {
                path,
                problem: KeyProblem::Missing,
            }
        } else {
            Error::NotADatabase { path }
        }
    }
}

/// Whether the file at `db` holds a plain SQLite database with at least
/// one page (in the file or its log), as SQLite itself reads it without a
/// key. Asked of SQLite, never by opening the file here: closing a second
/// descriptor of a database file drops the locks every connection of this
/// process holds on it (POSIX advisory locks), which SQLite's own opens
/// account for. A file that is not there, or cannot be read, is not one.
fn holds_plain_database(db: &Path) -> bool {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(db, flags).is_ok_and(|conn| {
        // A writer holding the file a moment is waited for, not taken for
        // a file that cannot be read.
        conn.busy_timeout(std::time::Duration::from_secs(5)).is_ok()
            && conn
                .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
                .is_ok_and(|pages| pages > 0)
    })
}

/// Hands `material` to SQLCipher as the key of `conn`'s main database.
#[cfg(feature = "encryption")]
#[allow(unsafe_code)]
fn apply_key(conn: &Connection, material: &[u8]) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    let len = std::os::raw::c_int::try_from(material.len())
        .map_err(|_| rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), None))?;
    // SAFETY: the handle is `conn`'s open database, used on this thread
    // while `conn` is borrowed; SQLCipher copies the `len` bytes it is
    // given before `sqlite3_key` returns, and keeps no pointer to them.
    let rc = unsafe { ffi::sqlite3_key(conn.handle(), material.as_ptr().cast(), len) };
    if rc == ffi::SQLITE_OK {
        // SQLCipher 4's settings, whatever defaults the process set (the
        // key derived here assumes them; files stay readable elsewhere).
        conn.query_row("PRAGMA cipher_compatibility = 4", [], |_| Ok(()))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(()),
                e => Err(e),
            })
    } else {
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("SQLCipher refused the key".to_owned()),
        ))
    }
}

/// A passphrase's key as SQLCipher 4 derives it from the 16-byte `salt`
/// (given in hex): PBKDF2-HMAC-SHA512, 256,000 iterations, 32 bytes; with
/// the salt, as the raw key SQLCipher takes without deriving it again.
#[cfg(feature = "encryption")]
#[allow(unsafe_code)]
fn derive(passphrase: &[u8], salt: &str) -> rusqlite::Result<crate::config::Key> {
    use std::os::raw::{c_char, c_int};
    const ITERATIONS: c_int = 256_000;
    let fail = |what: &str| {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("deriving the key: {what}")),
        )
    };
    let mut salt_bytes = [0_u8; 16];
    let digits = salt.as_bytes();
    if digits.len() != 32 {
        return Err(fail("SQLCipher gave no 16-byte salt"));
    }
    for (byte, pair) in salt_bytes.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| fail("a salt not in hex"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| fail("a salt not in hex"))?;
    }
    let len = c_int::try_from(passphrase.len()).map_err(|_| fail("a passphrase too long"))?;
    let mut key = zeroize::Zeroizing::new([0_u8; 32]);
    // SAFETY: every pointer is valid for the length passed with it for the
    // whole call (the passphrase, the 16-byte salt, the 32-byte output);
    // `EVP_sha512` returns a static digest; OpenSSL keeps none of them.
    let done = unsafe {
        openssl_sys::PKCS5_PBKDF2_HMAC(
            passphrase.as_ptr().cast::<c_char>(),
            len,
            salt_bytes.as_ptr(),
            16,
            ITERATIONS,
            openssl_sys::EVP_sha512(),
            32,
            key.as_mut_ptr(),
        )
    };
    if done != 1 {
        return Err(fail("OpenSSL failed"));
    }
    Ok(crate::config::Key::derived(&key, &salt_bytes))
}

/// SQLCipher prints its own log lines to stderr; a library never prints,
/// and the errors it logs reach the caller as typed errors. Its log level
/// is global to the process: set to none, once.
#[cfg(feature = "encryption")]
fn quiet_sqlcipher() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let quieted = Connection::open_in_memory()
            .and_then(|c| c.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(())));
        if let Err(e) = quieted {
            log::debug!("SQLCipher's log level could not be set: {e}");
        }
    });
}
