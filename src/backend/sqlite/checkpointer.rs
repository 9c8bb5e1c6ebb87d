//! The background checkpointer of a database file ([`Checkpoint::Background`]).
//!
//! SQLite's own checkpoints run inside the commit that fills the log: that
//! commit copies a thousand pages and syncs the database file before it
//! returns, which made the slowest appends tens of times slower than the
//! median. Here every pooled connection's WAL hook only notes how long the
//! log is (SQLite calls it inside `COMMIT`, on the committing thread); the
//! backend passes that on after the commit, and a thread with a connection
//! of its own copies the log back (`PASSIVE`: it never waits for a reader
//! or a writer, nor they for it), pass after pass while commits leave the
//! log past the mark. (Passes a mark apart kept the mean lower still, but
//! each pass's longer syncs slowed the commits that met them: the tail,
//! which this is for, was about twice as long; BENCHMARKS.md.)
//!
//! The log only starts again from its beginning when a writer begins after
//! a checkpoint that copied all of it, which writers that never pause do
//! not allow. So a commit that leaves the log at [`RESTART_FACTOR`] marks
//! waits for one more pass of the thread (a short one: the thread has been
//! copying all along) before it returns; the next transaction then starts
//! the log again. That pause is the only one, once per [`RESTART_FACTOR`]
//! marks of log, and it needs no lock: readers and other writers go on. A
//! reader that stays on an old snapshot keeps the log from starting again
//! (as with SQLite's own checkpoints). A checkpointer that finds another at
//! work (another store's, another process's) gets `SQLITE_BUSY` at once,
//! never waiting on a lock, and tries again a millisecond later.
//!
//! Writers in two processes (or a reader that never lets go) can keep the
//! log from starting again: each process's pass copies what was there when
//! it began, and the other has appended by the time its next transaction
//! starts. A log that passes [`HARD_FACTOR`] restart marks is therefore
//! cut short by a `RESTART` checkpoint of the thread: it holds new writers
//! back (they wait in their busy handler, as for any writer) while it
//! copies what remains (little: passes ran all along) and the readers move
//! off the log, then the log starts again. That is the only time the
//! thread makes writers wait, and it never makes them fail: it gives up
//! (`SQLITE_BUSY`) after [`RESTART_PATIENCE`].

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::Wal;

use crate::config::Checkpoint;
use crate::error::{Error, Result};

/// The log length, in marks, at which a commit waits for the thread to
/// copy the rest, so that the log can start again; also the size, in
/// marks, a log file is cut back to when it does.
pub(super) const RESTART_FACTOR: u32 = 8;

/// The log length, in restart marks, at which the thread makes room with a
/// `RESTART` checkpoint (which holds new writers back while it runs).
const HARD_FACTOR: c_int = 4;

/// How long a `RESTART` checkpoint waits for writers and readers to let it
/// start and finish.
const RESTART_PATIENCE: Duration = Duration::from_millis(100);

/// The longest a commit waits for the thread.
const LONGEST_WAIT: Duration = Duration::from_secs(1);

thread_local! {
    /// Pages in the log after this thread's last commit (0: none since read).
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// The WAL hook of a pooled connection: notes the log's length.
fn note_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Sets a pooled connection of a database file up for `checkpoint`: the
/// hook that reports the log's length to the checkpointer, or SQLite's own
/// checkpoints at the mark; and how long a log file may stay.
pub(super) fn configure(conn: &Connection, checkpoint: Checkpoint) -> rusqlite::Result<()> {
    let kept_bytes = i64::from(checkpoint.pages()) * i64::from(RESTART_FACTOR) * 4096;
    conn.execute_batch(&format!("PRAGMA journal_size_limit = {kept_bytes}"))?;
    match checkpoint {
        Checkpoint::Background { .. } => conn.wal_hook(Some(note_wal_pages)),
        Checkpoint::Inline { pages } => {
            conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {pages}"))?;
        }
    }
    Ok(())
}

/// The thread and how to reach it; stops it when dropped.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    mark: c_int,
    restart: c_int,
    /// [`HARD_FACTOR`] restart marks.
    hard: c_int,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    signal: Mutex<Signal>,
    /// Wakes the thread.
    wake: Condvar,
    /// Wakes commits waiting for a pass.
    passed: Condvar,
}

#[derive(Default)]
struct Signal {
    /// Passes asked for so far (each asks for one that starts later).
    asked: u64,
    /// The last request the thread has served: its pass started after it.
    served: u64,
    /// A commit left the log at the hard mark: the next pass restarts it.
    restart: bool,
    /// The store is closing.
    stop: bool,
}

impl Shared {
    fn signal(&self) -> MutexGuard<'_, Signal> {
        // The counters stay meaningful whatever a panicking holder left.
        self.signal.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own, to copy the
    /// log back whenever a commit leaves `pages` pages or more in it.
    pub(super) fn start(conn: super::connect::Pooled, pages: u32) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let mark = c_int::try_from(pages).unwrap_or(c_int::MAX);
        let thread = std::thread::Builder::new()
            .name("silmari-checkpoint".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&conn, &shared)
            })
            .map_err(|e| Error::Unavailable {
                reason: "cannot start the checkpoint thread".to_owned(),
                source: Some(Box::new(e)),
            })?;
        Ok(Checkpointer {
            shared,
            mark,
            restart: mark.saturating_mul(RESTART_FACTOR as c_int),
            hard: mark
                .saturating_mul(RESTART_FACTOR as c_int)
                .saturating_mul(HARD_FACTOR),
            thread: Some(thread),
        })
    }

    /// Called after a commit on this thread: asks for a pass when the
    /// commit left the log at the mark or beyond, and at the restart mark
    /// waits for it.
    pub(super) fn after_commit(&self) {
        let pages = WAL_PAGES.replace(0);
        if pages < self.mark {
            return;
        }
        let mut signal = self.shared.signal();
        signal.asked += 1;
        signal.restart |= pages >= self.hard;
        let asked = signal.asked;
        self.shared.wake.notify_one();
        if pages < self.restart {
            return;
        }
        let until = Instant::now() + LONGEST_WAIT;
        while signal.served < asked && !signal.stop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            signal = self
                .shared
                .passed
                .wait_timeout(signal, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.signal().stop = true;
        self.shared.wake.notify_one();
        self.shared.passed.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("the checkpoint thread panicked");
        }
    }
}

/// The thread: a passive checkpoint for every batch of requests, until the
/// store closes.
fn run(conn: &super::connect::Pooled, shared: &Shared) {
    loop {
        let (asked, restart) = {
            let mut signal = shared.signal();
            while signal.served == signal.asked && !signal.stop {
                signal = shared
                    .wake
                    .wait(signal)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if signal.stop {
                return;
            }
            (signal.asked, std::mem::take(&mut signal.restart))
        };
        // A restart holds the store's writers back: they wait as SQLite does.
        if restart && let Err(e) = restart_log(conn, &conn.waiting().hold()) {
            log::warn!("restarting the log failed (a later pass tries again): {e}");
        }
        if let Err(e) = pass(conn, shared) {
            log::warn!("background checkpoint failed (the next commit asks again): {e}");
        }
        shared.signal().served = asked;
        shared.passed.notify_all();
    }
}

/// A `RESTART` checkpoint: copies the whole log back, holding new writers
/// back meanwhile, and waits (up to the connection's busy timeout) for the
/// readers to move off it, so that the next writer starts it again.
fn restart_log(conn: &Connection, _holding: &super::busy::Holding<'_>) -> rusqlite::Result<()> {
    // Writers wait while it runs: it gives up soon rather than keep them
    // waiting toward their own busy timeouts (its passes never wait).
    conn.busy_timeout(RESTART_PATIENCE)?;
    let (busy, frames): (bool, i64) =
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    log::debug!("log of {frames} pages restarted (busy: {busy})");
    Ok(())
}

/// How often, a millisecond apart, a pass tries again while another
/// connection (another store's, another process's) is checkpointing.
const BUSY_TRIES: u32 = 50;

/// One passive checkpoint; while another connection is checkpointing,
/// tried again after it (that one may have started before the commits
/// waiting for this pass).
fn pass(conn: &Connection, shared: &Shared) -> rusqlite::Result<()> {
    for _ in 0..BUSY_TRIES {
        let busy: bool = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(0))?;
        if !busy || shared.signal().stop {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
