//! The [`Migrations`] handle: schema status, plans, up and down, snapshots.
//!
//! Layer 4: built on the facade's backend; the planning itself lives in the
//! SQL backends and the planner below them.

use std::path::Path;

use crate::backend::search::log_progress;
use crate::error::{Error, Result};
use crate::model::{IndexProgress, MigrationStatus, MigrationTarget, PlannedMigration, Snapshot};
use crate::store::Store;

impl Store {
    /// Schema migrations: status, plan, up, down, snapshots.
    pub fn migrations(&self) -> Migrations<'_> {
        Migrations { store: self }
    }
}

/// Migration controls of a [`Store`], from [`Store::migrations`].
///
/// The in-memory backend has no schema: it lists no migrations, and moving
/// to a version is [`Error::Unsupported`]. On an SQLite file another
/// connection holding the write lock past the busy timeout makes a step
/// [`Error::Unavailable`], with nothing applied or reverted (try again
/// later); a step whose SQL fails is [`Error::Migration`].
#[derive(Debug, Clone, Copy)]
pub struct Migrations<'a> {
    store: &'a Store,
}

impl Migrations<'_> {
    /// Every migration this build embeds, oldest first, with its state.
    pub fn status(&self) -> Result<Vec<MigrationStatus>> {
        self.store.backend_ref()?.migration_status()
    }

    /// The database's version: the newest applied migration, 0 for none.
    pub fn current_version(&self) -> Result<i64> {
        Ok(self
            .status()?
            .iter()
            .filter(|m| m.is_applied())
            .map(|m| m.version)
            .max()
            .unwrap_or(0))
    }

    /// A dry run: the steps [`migrate`](Self::migrate) would run to reach
    /// `target`, in order, with their SQL. Nothing is changed.
    pub fn plan(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        self.store.backend_ref()?.migration_plan(target)
    }

    /// Moves the schema to `target` and returns the steps it ran. Up, every
    /// step runs with its history row in one transaction: all of them or
    /// none, even if the process dies midway. Down, each step is one
    /// transaction with the removal of its history row. On an SQLite file that holds data, a
    /// [`Snapshot`] is taken first.
    ///
    /// When the schema then has the search index (V5 on), the texts written
    /// before it are indexed next, as [`build_search_index`](Self::build_search_index)
    /// does (progress is logged).
    pub fn migrate(&self, target: MigrationTarget) -> Result<Vec<PlannedMigration>> {
        self.migrate_reporting(target, &mut log_progress())
    }

    fn migrate_reporting(
        &self,
        target: MigrationTarget,
        progress: &mut dyn FnMut(IndexProgress),
    ) -> Result<Vec<PlannedMigration>> {
        let backend = self.store.backend_ref()?;
        let migrated = backend.migrate(target);
        self.store.note_schema_moved();
        if migrated.as_ref().is_ok_and(|steps| !steps.is_empty()) {
            // Down steps drop columns, tables, what the feed reads: reload.
            self.store.announce_resync();
        }
        let steps = migrated?;
        backend.build_search_index(progress)?;
        Ok(steps)
    }

    /// Applies every pending migration (Alembic's `upgrade head`).
    pub fn up(&self) -> Result<Vec<PlannedMigration>> {
        self.migrate(MigrationTarget::Latest)
    }

    /// [`up`](Self::up), reporting the search index build that follows to
    /// `progress` (after each batch), e.g. for a progress bar.
    pub fn up_with_progress(
        &self,
        mut progress: impl FnMut(IndexProgress),
    ) -> Result<Vec<PlannedMigration>> {
        self.migrate_reporting(MigrationTarget::Latest, &mut progress)
    }

    /// Indexes for search every text written before the search index
    /// existed (a database migrated to V5 by this or an earlier call), in
    /// batches of one transaction each, reporting to `progress` after each
    /// batch; the final count. Memory use is bounded by a batch; a build cut
    /// short (a crash, a kill) resumes where it stopped, and writes made
    /// meanwhile index themselves. [`Store::open`] runs it after migrating;
    /// call it when a store was opened with `migrate_on_open(false)`.
    /// Texts not yet indexed are not found by [`Store::search`]. (Single
    /// appends on SQLite are indexed with the next ones, 128 at a time, and
    /// found meanwhile; this indexes those waiting too.)
    pub fn build_search_index(
        &self,
        mut progress: impl FnMut(IndexProgress),
    ) -> Result<IndexProgress> {
        self.store.backend_ref()?.build_search_index(&mut progress)
    }

    /// Builds the search index again from every text: emptied in one
    /// transaction, then indexed in batches as
    /// [`build_search_index`](Self::build_search_index) does (texts not
    /// indexed again yet are not found meanwhile). For an index that
    /// [`Store::check`] reports out of step
    /// ([`HealthReport::search_index_mismatches`](crate::HealthReport::search_index_mismatches)),
    /// or texts changed outside the store.
    pub fn rebuild_search_index(
        &self,
        mut progress: impl FnMut(IndexProgress),
    ) -> Result<IndexProgress> {
        self.store
            .backend_ref()?
            .rebuild_search_index(&mut progress)
    }

    /// Applies pending migrations up to and including `version`.
    pub fn up_to(&self, version: i64) -> Result<Vec<PlannedMigration>> {
        if version < self.current_version()? {
            return Err(Error::invalid(
                "version",
                format!("{version} is below the current version; use down_to"),
            ));
        }
        self.migrate(MigrationTarget::Version(version))
    }

    /// Reverts the newest `steps` applied migrations (`downgrade -1` is `down(1)`).
    pub fn down(&self, steps: usize) -> Result<Vec<PlannedMigration>> {
        let mut applied: Vec<i64> = self
            .status()?
            .iter()
            .filter(|m| m.is_applied())
            .map(|m| m.version)
            .collect();
        applied.sort_unstable();
        if steps > applied.len() {
            return Err(Error::invalid(
                "steps",
                format!("only {} migrations are applied", applied.len()),
            ));
        }
        let target = match applied.len() - steps {
            0 => 0,
            keep => applied[keep - 1],
        };
        self.migrate(MigrationTarget::Version(target))
    }

    /// Reverts down to `version` (Alembic's `downgrade <rev>`); `0` removes
    /// the schema, leaving only refinery's history table.
    pub fn down_to(&self, version: i64) -> Result<Vec<PlannedMigration>> {
        if version > self.current_version()? {
            return Err(Error::invalid(
                "version",
                format!("{version} is above the current version; use up_to"),
            ));
        }
        self.migrate(MigrationTarget::Version(version))
    }

    /// Snapshots taken before migrations, newest first (SQLite files only).
    /// Only complete snapshots are listed: one is written under a temporary
    /// name and renamed once synced, and the next snapshot removes what a
    /// snapshot interrupted midway left.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        self.store.backend_ref()?.snapshots()
    }

    /// Puts a snapshot's contents back into the live database, with SQLite's
    /// backup API. The schema goes back to the snapshot's version.
    ///
    /// The file is checked whole first; anything that is not a complete
    /// SQLite database, clean under `PRAGMA integrity_check`, with a
    /// migration history this build accepts at a version of at least 1 and
    /// that version's tables is refused with [`Error::InvalidInput`] on
    /// `snapshot` (the reason says what is wrong), leaving the live database
    /// untouched. A file that is not there is [`Error::Io`].
    ///
    /// Subscribers to this store's change feed get
    /// [`FeedEvent::Resync`](crate::FeedEvent::Resync) (others, on the
    /// same file, when their listener finds the change log gone back).
    pub fn restore_snapshot(&self, snapshot: &Path) -> Result<()> {
        let restored = self.store.backend_ref()?.restore_snapshot(snapshot);
        // Even a failed restore may have replaced the file.
        self.store.note_schema_moved();
        restored?;
        self.store.announce_resync();
        Ok(())
    }
}
