//! Every write of the store, with its changes recorded, published to other
//! stores as part of the transaction, and delivered to this store's
//! subscribers after the commit, in commit order.

use std::sync::Arc;

use super::Store;
use super::hub::{Hub, State};
use super::recorder::{Recorder, recycle};
use super::recording::Recording;
use crate::backend::feed::{LogRow, Transport};
use crate::backend::{Body, Finish, Session};
use crate::error::Result;
use crate::model::ChangeBatch;

/// What a committed transaction hands its subscribers: delivered after
/// the commit, with the hub held from before the commit so that
/// transactions deliver in the order they commit.
struct Delivery<'h> {
    state: std::sync::MutexGuard<'h, State>,
    earlier: Earlier,
    batch: ChangeBatch,
    /// The log row this transaction wrote.
    logged: Option<u64>,
}

/// Other stores' changes committed before a transaction.
enum Earlier {
    /// None can be: the backend has no log (memory).
    None,
    /// Change log rows after the hub's cursor.
    Rows(Vec<LogRow>),
    /// The log could not be read: delivered as a resync.
    Unreadable,
}

impl Store {
    /// The feed's hub.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// Tells this store's subscribers to reload: the data changed under
    /// the feed (a snapshot restored, a migration).
    pub(crate) fn announce_resync(&self) {
        if self.inner.hub.has_subscribers() {
            self.inner.hub.lock().deliver(ChangeBatch::Resync);
        }
    }

    /// Runs `body` in one write transaction (one statement without an
    /// explicit transaction when `single_statement` and the feed allows),
    /// recording, publishing and delivering its changes.
    pub(super) fn write_body(&self, single_statement: bool, body: &mut Body<'_>) -> Result<()> {
        let backend = &*self.inner.backend;
        let hub = &*self.inner.hub;
        let transport = backend.transport();
        let mut delivery: Option<Delivery<'_>> = None;
        let mut wrapped = |session: &dyn Session| -> Result<Finish> {
            // Read holding the write lock: a subscriber added before this
            // transaction got it is counted here, and `subscribe` returns
            // only once every transaction that began before it is done (its
            // barrier waits for the lock).
            let local = transport != Transport::Notify && hub.has_subscribers();
            let remote = match transport {
                Transport::Local => false,
                Transport::Log => session.remote_listeners(&hub.instance)?,
                Transport::Notify => true,
            };
            if !local && !remote {
                return body(session);
            }
            let recorder = Recorder::new();
            let finish = body(&Recording {
                inner: session,
                recorder: &recorder,
            })?;
            if finish == Finish::Rollback || recorder.is_empty() {
                return Ok(finish);
            }
            let batch = recorder.batch();
            let logged = if remote {
                session.publish(&hub.instance, &batch)?
            } else {
                None
            };
            if local {
                let earlier = match transport {
                    // A log that cannot be read is no reason to refuse the
                    // write: what it held is announced as a resync.
                    Transport::Log => match session.log_since(hub.log_cursor()) {
                        Ok(rows) => Earlier::Rows(rows),
                        Err(e) => {
                            log::warn!("change feed: reading the log failed: {e}");
                            Earlier::Unreadable
                        }
                    },
                    _ => Earlier::None,
                };
                delivery = Some(Delivery {
                    state: hub.lock(),
                    earlier,
                    batch,
                    logged,
                });
            }
            Ok(finish)
        };
        // A single statement commits by itself, before this store could
        // take its hub for the delivery: only where changes come back
        // through the listener (PostgreSQL) is that in order.
        let written = if single_statement && transport == Transport::Notify {
            backend.write_autocommit(&mut wrapped)
        } else {
            backend.write(&mut wrapped)
        };
        if let (Ok(()), Some(mut delivery)) = (&written, delivery) {
            match delivery.earlier {
                Earlier::None => {}
                Earlier::Rows(rows) => delivery.state.deliver_log(hub, rows),
                Earlier::Unreadable => delivery.state.deliver(ChangeBatch::Resync),
            }
            if let Some(seq) = delivery.logged {
                delivery.state.wrote_log(hub, seq);
            }
            match delivery.batch {
                ChangeBatch::Changes(mut changes) => {
                    delivery.state.deliver_changes(&mut changes);
                    drop(delivery.state);
                    recycle(changes);
                }
                resync => delivery.state.deliver(resync),
            }
        }
        written
    }
}
