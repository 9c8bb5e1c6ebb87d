//! Online backups of a live database: [`Store::backup_to`].

use std::path::Path;

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Copies the live database to a new file at `path` with SQLite's online
    /// backup API; the store stays usable meanwhile. Other backends:
    /// [`Error::Unsupported`](crate::Error::Unsupported).
    ///
    /// The copy is written beside `path` under a temporary name
    /// (`<path>.<random>.partial`), synced, and only then given its name, so
    /// a backup interrupted at any moment (a crash, a kill, a full disk)
    /// leaves no file at `path`: at most a `.partial` file, which may be
    /// deleted (cut short, it is refused by
    /// [`restore_snapshot`](crate::Migrations::restore_snapshot)). Anything already at `path` (a file, a directory,
    /// even a dangling symbolic link) is refused with
    /// [`Error::Io`](crate::Error::Io) (`AlreadyExists`), as is a directory
    /// that does not exist (`NotFound`); an empty path is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) on `path`.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<()> {
        self.backend_ref()?.backup_to(path.as_ref())
    }
}
