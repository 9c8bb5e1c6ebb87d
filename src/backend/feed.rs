//! The change feed's seam between the facade and a backend: how a write
//! transaction tells other processes what it changed, and how a backend
//! hands the changes of other processes (or app instances) to the facade.

use crate::model::ChangeBatch;

/// A transaction's changes as another process logged them (SQLite's
/// `change_log`): its sequence there, and which store wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRow {
    pub(crate) seq: u64,
    pub(crate) instance: String,
    pub(crate) batch: ChangeBatch,
}

/// Where a backend's listener delivers: the facade's hub.
pub(crate) trait ChangeSink: Send + Sync {
    /// A committed transaction's changes, in commit order (PostgreSQL's
    /// notifications; [`ChangeBatch::Resync`] after a reconnect).
    fn deliver(&self, batch: ChangeBatch);
    /// Rows of the change log, in `seq` order: those of other stores after
    /// the last row delivered are delivered; a gap before them is a resync.
    fn deliver_log(&self, rows: Vec<LogRow>);
    /// The last log row this store delivered or wrote.
    fn log_cursor(&self) -> u64;
    /// The listener starts reading the log after row `seq`.
    fn log_starts_at(&self, seq: u64);
}

/// A running listener: stops (and unregisters) when dropped.
pub(crate) trait Listening: Send {}

/// How a backend carries changes between stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Nothing leaves the store (memory, in-memory SQLite): the facade
    /// delivers each transaction's changes itself, right after its commit.
    Local,
    /// A log table read by other processes (an SQLite file): the facade
    /// delivers its own changes itself; the listener delivers the others'.
    Log,
    /// Notifications to every listening connection, this store's own
    /// included (PostgreSQL): the listener delivers every change.
    Notify,
}
