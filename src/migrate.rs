//! Schema migrations over refinery.
//!
//! Each SQL dialect has its folder under `migrations/`, embedded into the
//! binary at build time; refinery records applied versions in
//! `refinery_schema_history`. Both dialects hold the same versions with the
//! same names.

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::store::Store;

/// The embedded migration sets, one module per SQL dialect.
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite {
    refinery::embed_migrations!("migrations/sqlite");
}

#[cfg(feature = "postgres")]
pub(crate) mod postgres {
    refinery::embed_migrations!("migrations/postgres");
}

/// One known migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Version number (`V{n}`).
    pub version: i64,
    /// Name (`V{n}__{name}.sql`).
    pub name: String,
    /// When it was applied; `None` while pending.
    pub applied_on: Option<OffsetDateTime>,
    /// refinery's checksum of the script.
    pub checksum: u64,
}

impl MigrationStatus {
    /// True once applied.
    pub fn is_applied(&self) -> bool {
        self.applied_on.is_some()
    }
}

/// Migration controls of a [`Store`], from [`Store::migrations`].
#[derive(Debug, Clone, Copy)]
pub struct Migrations<'a> {
    pub(crate) store: &'a Store,
}

impl Migrations<'_> {
    /// Every migration this build embeds, oldest first, with its state. The
    /// in-memory backend has no schema and lists none.
    pub fn status(&self) -> Result<Vec<MigrationStatus>> {
        self.store.backend_ref().migration_status()
    }

    /// Applies every pending migration, each in its own transaction.
    pub fn up(&self) -> Result<()> {
        self.store.backend_ref().migrate_up()
    }
}

/// The status of each of `known` given the `applied` history, refusing a
/// history that is newer than this build.
pub(crate) fn status_of(
    known: &[refinery::Migration],
    applied: &[refinery::Migration],
) -> Result<Vec<MigrationStatus>> {
    check_not_newer(known, applied)?;
    Ok(known
        .iter()
        .map(|m| {
            let applied_on = applied
                .iter()
                .find(|a| a.version() == m.version())
                .and_then(|a| a.applied_on().copied());
            MigrationStatus {
                version: i64::from(m.version()),
                name: m.name().to_owned(),
                applied_on,
                checksum: m.checksum(),
            }
        })
        .collect())
}

/// [`Error::SchemaTooNew`] when `applied` holds a version beyond `known`.
pub(crate) fn check_not_newer(
    known: &[refinery::Migration],
    applied: &[refinery::Migration],
) -> Result<()> {
    let supported = known
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    let database = applied
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0);
    if database > supported {
        return Err(Error::SchemaTooNew {
            database,
            supported,
        });
    }
    Ok(())
}

/// Wraps refinery's error as [`Error::Migration`].
pub(crate) fn migration_error(e: refinery::Error) -> Error {
    Error::Migration {
        message: e.to_string(),
        source: Some(Box::new(e)),
    }
}
