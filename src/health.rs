//! Health checks: [`Store::check`] and [`Store::counts`].
//!
//! Layer 4: the report types are plain data in the model; each backend fills
//! in what it can see.

use crate::error::Result;
use crate::model::{Counts, HealthReport};
use crate::store::Store;

impl Store {
    /// A structured health report: schema version and pending migrations,
    /// integrity and foreign-key checks and the pragmas in effect (SQLite),
    /// row counts, size on disk.
    pub fn check(&self) -> Result<HealthReport> {
        self.backend_ref()?.check()
    }

    /// Rows per table.
    pub fn counts(&self) -> Result<Counts> {
        self.run_read(|s| s.counts())
    }
}
