//! The change feed on PostgreSQL: every write transaction sends its changes
//! with `NOTIFY` as part of the transaction (in the same message as its
//! `COMMIT`, or inside its one statement), so PostgreSQL delivers them at
//! commit, in commit order, never for a rolled-back transaction; a listener
//! thread per subscribed store `LISTEN`s and hands them to the hub (this
//! store's own changes come back the same way, in order with the others).
//! After a lost connection it reconnects and sends a resync: what was
//! notified meanwhile was not received.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use r2d2::ManageConnection;

use super::session::{Params, PgSession};
use super::{Manager, PgConn};
use crate::backend::feed::{ChangeSink, Listening};
use crate::error::{Error, Result};
use crate::model::{ChangeBatch, PendingChange};

/// The longest payload sent in one notification (PostgreSQL's limit is
/// 8000 bytes).
const PAYLOAD_MAX: usize = 7900;
/// How long the listener waits for a notification before it looks at its
/// stop flag.
const WAIT: Duration = Duration::from_millis(100);
/// The longest pause between two reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// The channel of the stores on `schema`: one per schema, so stores on
/// other schemas of the database are not told. An identifier of at most
/// 63 bytes whatever the schema's name (FNV-1a of it).
pub(super) fn channel(schema: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in schema.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("silmari_changes_{hash:016x}")
}

/// `batch` as notification payloads.
pub(super) fn payloads(batch: &ChangeBatch) -> Vec<String> {
    match batch {
        ChangeBatch::Changes(changes) => ChangeBatch::encode(changes, PAYLOAD_MAX),
        ChangeBatch::Resync => vec![ChangeBatch::RESYNC.to_owned()],
    }
}

/// `NOTIFY` statements for `payloads`, then `COMMIT`, as one simple query.
/// The payloads are the crate's text form (letters, digits and commas:
/// checked again here), never user text, so they can be literals.
pub(super) fn notify_and_commit(channel: &str, payloads: &[String]) -> Result<String> {
    let mut sql = String::new();
    for payload in payloads {
        if !payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b',')
        {
            return Err(Error::Backend(
                "internal error: a change feed payload is not in its text form".into(),
            ));
        }
        sql.push_str(&format!("NOTIFY {channel}, '{payload}'; "));
    }
    sql.push_str("COMMIT");
    Ok(sql)
}

impl PgSession<'_> {
    /// Runs a statement that writes by itself: as `sql[0]`, or outside a
    /// transaction with a staged change as `sql[1]`, which also notifies
    /// the change feed's channel when it writes a row (one statement, one
    /// round trip, notified only if committed).
    pub(super) fn single(
        &self,
        sql: [&'static str; 2],
        params: Params<'_>,
        on_error: impl FnOnce(postgres::Error) -> Error,
    ) -> Result<u64> {
        let staged = self.conn.borrow_mut().staged.take();
        let Some(payload) = staged else {
            return self.execute_or(sql[0], params, on_error);
        };
        let channel = self.conn.borrow().channel.to_string();
        let mut all = params.to_vec();
        all.push(&channel);
        all.push(&payload);
        self.execute_or(sql[1], &all, on_error)
    }

    /// Stages `change` for the next single statement, outside a transaction.
    pub(super) fn stage(&self, change: &PendingChange) {
        if !self.in_transaction.get() {
            let mut payload = String::new();
            change.encode_into(&mut payload);
            self.conn.borrow_mut().staged = Some(payload);
        }
    }

    /// Sends `batch` with the transaction's `COMMIT` (outside a
    /// transaction the one statement notified already).
    pub(super) fn notify_at_commit(&self, batch: &ChangeBatch) {
        if self.in_transaction.get() {
            self.conn.borrow_mut().notify.extend(payloads(batch));
        }
    }
}

/// A running listener thread; told to stop when dropped (within
/// [`WAIT`]; its connection closes with it).
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
}

impl Listening for Listener {}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A connection of the listener's own, listening.
fn listen_on(manager: &Manager) -> Result<PgConn> {
    let mut conn = manager.connect().map_err(|e| Error::Unavailable {
        reason: format!("change feed: no connection to listen on: {e}"),
        source: Some(Box::new(e)),
    })?;
    let channel = Arc::clone(&conn.channel);
    conn.client.batch_execute(&format!("LISTEN {channel}"))?;
    Ok(conn)
}

/// Starts listening (done when this returns: changes committed after it
/// are delivered) and the thread that hands notifications to `sink`.
pub(super) fn listen(manager: Arc<Manager>, sink: Arc<dyn ChangeSink>) -> Result<Listener> {
    let conn = listen_on(&manager)?;
    let stop = Arc::new(AtomicBool::new(false));
    thread::Builder::new()
        .name("silmari-feed".into())
        .spawn({
            let stop = Arc::clone(&stop);
            move || run(conn, &manager, &*sink, &stop)
        })
        .map_err(|e| Error::Backend(format!("change feed: no listener thread: {e}").into()))?;
    Ok(Listener { stop })
}

/// What waiting for a notification gave.
enum Heard {
    Payload(String),
    Nothing,
    Lost,
}

fn hear(conn: &mut PgConn) -> Heard {
    let heard = conn.client.notifications().timeout_iter(WAIT).next();
    match heard {
        Ok(Some(notification)) => Heard::Payload(notification.payload().to_owned()),
        Ok(None) if !conn.client.is_closed() => Heard::Nothing,
        Ok(None) => Heard::Lost,
        Err(e) => {
            log::warn!("change feed: the listening connection failed: {e}");
            Heard::Lost
        }
    }
}

fn run(conn: PgConn, manager: &Manager, sink: &dyn ChangeSink, stop: &AtomicBool) {
    let mut conn = Some(conn);
    let mut pause = WAIT;
    while !stop.load(Ordering::SeqCst) {
        let Some(listening) = conn.as_mut() else {
            thread::sleep(pause);
            pause = (pause * 2).min(RECONNECT_MAX);
            match listen_on(manager) {
                Ok(again) => {
                    log::info!("change feed: listening again after a lost connection");
                    conn = Some(again);
                    pause = WAIT;
                    sink.deliver(ChangeBatch::Resync);
                }
                Err(e) => log::warn!("change feed: reconnecting failed: {e}"),
            }
            continue;
        };
        match hear(listening) {
            Heard::Payload(payload) => {
                // Text this build did not write (a newer one's): reload.
                sink.deliver(ChangeBatch::decode(&payload).unwrap_or(ChangeBatch::Resync));
            }
            Heard::Nothing => {}
            Heard::Lost => {
                log::warn!("change feed: lost the listening connection; reconnecting");
                conn = None;
            }
        }
    }
}
