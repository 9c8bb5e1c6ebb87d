//! The change feed between processes on one SQLite file: writers log a
//! transaction's changes in `change_log` while another store listens
//! (`change_listeners`), and a listener thread reads new rows whenever
//! `PRAGMA data_version` says another connection committed.
//!
//! Retention: a log row is kept at least [`RETENTION`]; listeners trim
//! older rows, a thousand per short transaction, every [`RENEW_EVERY`].
//! Writers log only while a listener's row is younger than [`EXPIRES_AFTER`],
//! so a listener that died stops the logging that soon, and the log is
//! trimmed by the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use super::connect::Pooled;
use crate::backend::feed::{ChangeSink, Listening, LogRow};
use crate::error::{Error, Result};
use crate::model::{ChangeBatch, now, to_micros};

/// How often the listener looks at `PRAGMA data_version`.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(50);
/// How often a listener renews its row and trims the log.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How long a listener's row counts without being renewed.
pub(crate) const EXPIRES_AFTER: Duration = Duration::from_secs(30);
/// How long a log row is kept at least.
pub(crate) const RETENTION: Duration = Duration::from_secs(300);
/// Log rows trimmed per transaction.
const TRIM_BATCH: i64 = 1000;

const LISTENERS: &str =
    "SELECT 1 FROM change_listeners WHERE instance <> ?1 AND expires_at > ?2 LIMIT 1";
const LOG: &str =
    "INSERT INTO change_log (instance, committed_at, changes) VALUES (?1, ?2, ?3) RETURNING seq";
const LOG_SINCE: &str = "SELECT seq, instance, changes FROM change_log WHERE seq > ?1 ORDER BY seq";
const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM change_log";
const RENEW: &str = "UPDATE change_listeners SET expires_at = ?2 WHERE instance = ?1";
const REGISTER: &str =
    "INSERT OR REPLACE INTO change_listeners (instance, expires_at) VALUES (?1, ?2)";
const FORGET_EXPIRED: &str = "DELETE FROM change_listeners WHERE expires_at <= ?1";
const UNREGISTER: &str = "DELETE FROM change_listeners WHERE instance = ?1";
/// The oldest rows past the retention, never the newest (whose `seq` the
/// next row's follows).
const TRIM: &str = "DELETE FROM change_log WHERE seq IN \
     (SELECT seq FROM change_log WHERE committed_at < ?1 \
      AND seq < (SELECT MAX(seq) FROM change_log) ORDER BY seq LIMIT ?2)";

fn micros_after(wait: Duration) -> i64 {
    let wait = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
    to_micros(now()).saturating_add(wait)
}

/// Whether a store other than `instance` listens (false for a schema
/// without the feed's tables: one older than V6).
pub(super) fn remote_listeners(conn: &Connection, instance: &str) -> Result<bool> {
    let mut statement = match conn.prepare_cached(LISTENERS) {
        Ok(statement) => statement,
        Err(e) if is_missing_table(&e) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    Ok(statement.exists(params![instance, to_micros(now())])?)
}

fn is_missing_table(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(_, Some(m)) | rusqlite::Error::SqlInputError { msg: m, .. }
        if m.starts_with("no such table"))
}

/// Logs `batch` as written by `instance`; its row's `seq`.
pub(super) fn publish(
    conn: &Connection,
    instance: &str,
    batch: &ChangeBatch,
) -> Result<Option<u64>> {
    let text = match batch {
        ChangeBatch::Changes(changes) => ChangeBatch::encode(changes, usize::MAX).concat(),
        ChangeBatch::Resync => ChangeBatch::RESYNC.to_owned(),
    };
    let seq: i64 = conn
        .prepare_cached(LOG)?
        .query_row(params![instance, to_micros(now()), text], |r| r.get(0))?;
    Ok(u64::try_from(seq).ok())
}

/// Log rows after `after`, oldest first.
pub(super) fn log_since(conn: &Connection, after: u64) -> Result<Vec<LogRow>> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(LOG_SINCE)?;
    let rows = statement.query_map([after], |r| {
        let seq: i64 = r.get(0)?;
        let text = |i| -> rusqlite::Result<Option<String>> {
            Ok(match r.get_ref(i)? {
                ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
                _ => None,
            })
        };
        Ok(LogRow {
            seq: u64::try_from(seq).unwrap_or(0),
            instance: text(1)?.unwrap_or_default(),
            // What this build cannot read (a newer one's text, or a value
            // someone wrote by hand) asks for a reload.
            batch: text(2)?
                .and_then(|changes| ChangeBatch::decode(&changes))
                .unwrap_or(ChangeBatch::Resync),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction.
fn immediate<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match f() {
        Ok(value) => {
            conn.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                log::warn!("change feed: rollback failed: {rollback}");
            }
            Err(e)
        }
    }
}

/// A running listener thread; told to stop (and unregister) when dropped.
/// Not waited for: it may need the write lock to unregister, which the
/// thread dropping it may hold. Its connection counts among the store's,
/// so a closing store waits for it.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Listening for Listener {}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
    }
}

/// Registers `instance` as a listener on `conn`'s file and starts the
/// thread that delivers other stores' logged changes to `sink`.
pub(super) fn listen(conn: Pooled, instance: &str, sink: Arc<dyn ChangeSink>) -> Result<Listener> {
    let instance = instance.to_owned();
    let last = immediate(&conn, || {
        conn.prepare_cached(FORGET_EXPIRED)?
            .execute([to_micros(now())])?;
        conn.prepare_cached(REGISTER)?
            .execute(params![instance, micros_after(EXPIRES_AFTER)])?;
        restart_exhausted_log(&conn)
    })
    .map_err(|e| match e {
        Error::Backend(source) => Error::Backend(
            format!("change feed: registering a listener failed (is the schema at V6?): {source}")
                .into(),
        ),
        other => other,
    })?;
    sink.log_starts_at(u64::try_from(last).unwrap_or(0));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = thread::Builder::new()
        .name("silmari-feed".into())
        .spawn({
            let stop = Arc::clone(&stop);
            move || run(&conn, &instance, &*sink, &stop)
        })
        .map_err(|e| Error::Backend(format!("change feed: no listener thread: {e}").into()))?;
    Ok(Listener { stop, thread })
}

/// The log's last `seq`, after emptying a log whose `seq` came near the
/// end of its range (a row someone wrote by hand): SQLite would hand out
/// random smaller ones after it, which no listener reads. Listeners whose
/// cursor is then above the last row resync.
fn restart_exhausted_log(conn: &Connection) -> Result<i64> {
    let last: i64 = conn.prepare_cached(LAST_SEQ)?.query_row([], |r| r.get(0))?;
    if last <= i64::MAX / 2 {
        return Ok(last);
    }
    log::warn!("change feed: the change log's seq is near its end; emptying the log");
    conn.execute_batch("DELETE FROM change_log")?;
    Ok(0)
}

fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

fn run(conn: &Connection, instance: &str, sink: &dyn ChangeSink, stop: &AtomicBool) {
    // None: the first look reads the log, whatever committed before it.
    let mut seen = None;
    let mut renew_at = Instant::now() + RENEW_EVERY;
    // Said once per run of failures (with a resync: changes may be missed).
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        thread::park_timeout(POLL_EVERY);
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let read = data_version(conn).and_then(|version| {
            if Some(version) != seen {
                read_log(conn, sink)?;
                seen = Some(version);
            }
            Ok(())
        });
        let renewed = if Instant::now() >= renew_at {
            renew_at = Instant::now() + RENEW_EVERY;
            renew(conn, instance, sink)
        } else {
            Ok(())
        };
        match read.and(renewed) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                log::warn!("change feed: reading the change log failed: {e}");
                sink.deliver(ChangeBatch::Resync);
                failing = true;
            }
            Err(_) => {}
        }
    }
    if let Err(e) = conn
        .prepare_cached(UNREGISTER)
        .and_then(|mut s| s.execute([instance]))
    {
        log::warn!("change feed: unregistering the listener failed: {e}");
    }
}

/// Delivers the log's new rows; a log that went back (a snapshot of the
/// file restored) is a resync, read on from its end.
fn read_log(conn: &Connection, sink: &dyn ChangeSink) -> Result<()> {
    let rows = log_since(conn, sink.log_cursor())?;
    if !rows.is_empty() {
        sink.deliver_log(rows);
        return Ok(());
    }
    let last: i64 = conn.prepare_cached(LAST_SEQ)?.query_row([], |r| r.get(0))?;
    let last = u64::try_from(last).unwrap_or(0);
    if last < sink.log_cursor() {
        sink.log_starts_at(last);
        sink.deliver(ChangeBatch::Resync);
    }
    Ok(())
}

/// Renews the listener's row (a resync when it had expired: writers may
/// have stopped logging meanwhile) and trims the log.
fn renew(conn: &Connection, instance: &str, sink: &dyn ChangeSink) -> Result<()> {
    let expired = immediate(conn, || {
        let expires_at = micros_after(EXPIRES_AFTER);
        let still: Option<i64> = conn
            .prepare_cached("SELECT expires_at FROM change_listeners WHERE instance = ?1")?
            .query_row([instance], |r| r.get(0))
            .optional()?;
        let expired = still.is_none_or(|at| at <= to_micros(now()));
        if still.is_some() {
            conn.prepare_cached(RENEW)?
                .execute(params![instance, expires_at])?;
        } else {
            conn.prepare_cached(REGISTER)?
                .execute(params![instance, expires_at])?;
        }
        conn.prepare_cached(FORGET_EXPIRED)?
            .execute([to_micros(now())])?;
        restart_exhausted_log(conn)?;
        Ok(expired)
    })?;
    if expired {
        sink.deliver(ChangeBatch::Resync);
    }
    // In batches, each a short transaction, until the rows past the
    // retention are gone: a busy writer logs far more than a batch.
    let cutoff = to_micros(now()).saturating_sub(i64::try_from(RETENTION.as_micros()).unwrap_or(0));
    loop {
        let trimmed = immediate(conn, || {
            Ok(conn
                .prepare_cached(TRIM)?
                .execute(params![cutoff, TRIM_BATCH])?)
        })?;
        if trimmed < usize::try_from(TRIM_BATCH).unwrap_or(usize::MAX) {
            return Ok(());
        }
    }
}
