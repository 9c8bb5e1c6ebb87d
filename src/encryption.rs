//! Encrypting, re-keying and decrypting SQLite database files (the
//! `encryption` feature): [`Store::encrypt`], [`Store::rekey`],
//! [`Store::decrypt`]. To open an encrypted file, give its key in
//! [`SqliteOptions::key`](crate::SqliteOptions) or
//! [`StoreBuilder::key`](crate::StoreBuilder::key).

use std::path::Path;

use crate::backend::sqlite::reencrypt::{Output, reencrypt};
use crate::config::Key;
use crate::error::Result;
use crate::store::Store;

/// Each of these works on a file that no store or program has open (a store
/// that has it open, here or in another process, makes it fail with
/// [`Error::Unavailable`](crate::Error::Unavailable), changing nothing),
/// and is all or nothing: the new file is written whole beside the old one,
/// synced, and only then put in its place, so a crash or a kill at any
/// moment leaves the original intact and openable with its old key (at
/// most a `…partial` file beside it, removed by the next attempt). A key
/// that does not fit the file is [`Error::Key`](crate::Error::Key), the
/// file untouched.
///
/// In place, the file keeps its permissions (and owner, where allowed), its
/// snapshots ([`Migrations::snapshots`](crate::Migrations::snapshots)) are
/// re-encrypted first, so that none keeps the old key (or none), and a file
/// with other names (hard links, which would keep the old contents) is
/// refused. Unix only for now: the rename over the held file is what
/// Windows refuses.
impl Store {
    /// Encrypts the plain SQLite database file at `path` in place with `key`.
    ///
    /// ```
    /// use silmari_store::{Key, Store};
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("drafts.db");
    /// let url = format!("sqlite:///{}", path.display());
    /// drop(Store::open(&url)?); // a plain file, closed
    /// Store::encrypt(&path, &Key::passphrase("a long passphrase")?)?;
    /// let store = Store::builder()
    ///     .url(&url)
    ///     .key(Key::passphrase("a long passphrase")?)
    ///     .open()?;
    /// # drop(store);
    /// assert!(Store::open(&url).is_err()); // no key: Error::Key
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encrypt(path: impl AsRef<Path>, key: &Key) -> Result<()> {
        reencrypt(path.as_ref(), None, Some(key), Output::InPlace)
    }

    /// Changes the key of the encrypted file at `path` from `old` to `new`,
    /// in place.
    pub fn rekey(path: impl AsRef<Path>, old: &Key, new: &Key) -> Result<()> {
        reencrypt(path.as_ref(), Some(old), Some(new), Output::InPlace)
    }

    /// Writes a plain (unencrypted) copy of the encrypted file at `path`
    /// to the new file `to`, which must not exist (as for
    /// [`backup_to`](Store::backup_to)), readable by its owner only; the
    /// encrypted file is not changed.
    pub fn decrypt(path: impl AsRef<Path>, key: &Key, to: impl AsRef<Path>) -> Result<()> {
        reencrypt(path.as_ref(), Some(key), None, Output::NewFile(to.as_ref()))
    }
}
