//! Online backups of a live database: [`Store::backup_to`].

use std::path::Path;

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Copies the live database to a new file at `path` with SQLite's online
    /// backup API; the store stays usable meanwhile. An existing file is not
    /// overwritten. Other backends: [`Error::Unsupported`](crate::Error::Unsupported).
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<()> {
        self.backend_ref().backup_to(path.as_ref())
    }
}
