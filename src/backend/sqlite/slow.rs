//! Statements slower than [`SqliteOptions::slow_statement`], logged at
//! `debug` (target `silmari_store::slow`) with their SQL text and duration.
//!
//! SQLite reports each statement's run time to a profile callback, which
//! rusqlite takes as a plain function: the threshold of the store whose
//! connection a thread is using is kept in a thread-local, set each time the
//! store hands out a connection. Without a threshold no callback is
//! registered and nothing is measured.
//!
//! [`SqliteOptions::slow_statement`]: crate::SqliteOptions::slow_statement

use std::cell::Cell;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

thread_local! {
    /// The threshold of the store whose connection this thread uses.
    static THRESHOLD: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// Registers the profile callback on `conn` when there is a threshold.
pub(super) fn watch(conn: &Connection, threshold: Option<Duration>) {
    if threshold.is_some() {
        conn.trace_v2(TraceEventCodes::SQLITE_TRACE_PROFILE, Some(profile));
    }
}

/// Measures this thread's next statements against `threshold` (a store
/// without one registers no callback, so it leaves the setting alone).
pub(super) fn enter(threshold: Option<Duration>) {
    if threshold.is_some() {
        THRESHOLD.set(threshold);
    }
}

fn profile(event: TraceEvent<'_>) {
    if let TraceEvent::Profile(statement, took) = event
        && THRESHOLD.get().is_some_and(|threshold| took >= threshold)
    {
        // The statement as prepared: placeholders, never the bound values.
        log::debug!(
            target: "silmari_store::slow",
            "slow SQLite statement ({took:?}): {}",
            statement.sql()
        );
    }
}
