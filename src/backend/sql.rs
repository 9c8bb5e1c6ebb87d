//! What the SQL backends share beyond the seam: statement macros, the pool
//! settings, the choice of list statement, and the one way `update` writes a
//! conversation, over row operations each dialect supplies.

use time::OffsetDateTime;

use super::message_list::plan;
use super::{Session, TimeKey};
use crate::config::PoolConfig;
use crate::error::{Entity, Error, Result};
use crate::model::{Conversation, ConversationId, ConversationOrder, Message, MessageId};

/// Declares a backend's SQL statements as constants, plus `ALL`, every
/// statement by name, for tests that check each one. (Defined before the
/// backend modules so that they see it.)
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        $($(#[$doc])* pub(super) const $name: &str = $sql;)*
        /// Every statement, by name.
        #[cfg(test)]
        #[allow(dead_code)] // not every backend's tests need it
        pub(super) const ALL: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}

/// Column lists and query shapes both SQL dialects share (placeholders are
/// passed in, since the dialects write them differently).
macro_rules! file_columns {
    () => {
        "id, filename, content_type, size, created_at"
    };
}

/// `position` first, then the columns of a message.
macro_rules! message_columns {
    () => {
        "position, id, conversation_id, role, content, created_at, attachments"
    };
}

/// Conversation summaries by `$column`, newest first, keyset `$filter`.
macro_rules! list_conversations {
    ($column:literal, $filter:literal, $limit:literal) => {
        concat!(
            "SELECT c.id, c.title, c.created_at, c.updated_at, c.version, c.message_count \
             FROM conversations c ",
            $filter,
            " ORDER BY c.",
            $column,
            " DESC, c.id DESC LIMIT ",
            $limit
        )
    };
}

/// An r2d2 pool as [`PoolConfig`](crate::PoolConfig) says: `max_size =
/// pool_size + max_overflow`, `min_idle = pool_size`, `connection_timeout =
/// pool_timeout`, `max_lifetime = pool_recycle`. Connections are not tested
/// with a query on checkout (a round trip per call); backends check cheaply
/// themselves. Built without waiting: the caller has opened one connection
/// already, so errors surface at once.
pub(crate) fn pool<M: r2d2::ManageConnection>(config: &PoolConfig, manager: M) -> r2d2::Pool<M> {
    r2d2::Pool::builder()
        .max_size(config.max_size())
        .min_idle(Some(config.pool_size))
        .connection_timeout(config.pool_timeout)
        .max_lifetime(config.pool_recycle)
        .idle_timeout(None)
        .test_on_check_out(false)
        .build_unchecked(manager)
}

/// [`Error::Unavailable`] for a pool that had no connection to give within
/// its timeout (`what`: the kind of connection, for the message).
pub(crate) fn pool_timeout<M: r2d2::ManageConnection>(
    pool: &r2d2::Pool<M>,
    what: &str,
    e: r2d2::Error,
) -> Error {
    log::warn!("no {what} connection within the pool timeout: {e}");
    Error::Unavailable {
        reason: format!(
            "no usable {what} connection within the pool timeout ({:?})",
            pool.connection_timeout()
        ),
        source: Some(Box::new(e)),
    }
}

/// The four statements of a conversation list: first page and later pages
/// (keyset), by `updated_at` and by `created_at`.
pub(crate) struct ListStatements {
    pub(crate) by_updated_first: &'static str,
    pub(crate) by_updated_after: &'static str,
    pub(crate) by_created_first: &'static str,
    pub(crate) by_created_after: &'static str,
}

impl ListStatements {
    /// The statement for `order`, and the keyset position it continues after.
    pub(crate) fn pick(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
    ) -> (&'static str, Option<TimeKey>) {
        let sql = match (order, after.is_some()) {
            (ConversationOrder::UpdatedAt, false) => self.by_updated_first,
            (ConversationOrder::UpdatedAt, true) => self.by_updated_after,
            (ConversationOrder::CreatedAt, false) => self.by_created_first,
            (ConversationOrder::CreatedAt, true) => self.by_created_after,
        };
        (sql, after)
    }
}

/// `update`'s header write: title and message count of conversation `id`,
/// `updated_at` moved to `max(now, updated_at + 1µs)`, only if it is at
/// version `expected`.
pub(crate) struct HeaderWrite<'a> {
    pub(crate) id: ConversationId,
    pub(crate) expected: u64,
    pub(crate) title: &'a str,
    pub(crate) now: OffsetDateTime,
    pub(crate) message_count: i64,
}

/// What `update`'s header write leaves in a conversation's row.
pub(crate) struct Stamps {
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) version: u64,
}

/// Row operations on one conversation, inside a write transaction: what
/// [`update_conversation`] is made of.
pub(crate) trait MessageRows: Session {
    /// Writes `header` and moves the version forward, holding the row for
    /// the rest of the transaction. `None` when no row matched (no such
    /// conversation, or another version).
    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<Stamps>>;
    /// Every message of the conversation with its position, in order.
    fn stored_messages(&self, id: ConversationId) -> Result<Vec<(i64, Message)>>;
    fn delete_message(&self, id: MessageId) -> Result<()>;
    /// Rewrites the message with `m.id`: its position and fields.
    fn update_message(&self, position: i64, m: &Message) -> Result<()>;
    /// Inserts `m` at `position`; [`Error::Conflict`] when its id is taken.
    fn insert_message(&self, position: i64, m: &Message) -> Result<()>;
}

/// `update` on SQL: the header first, conditional on the caller's version
/// (which also takes the row), then the plan every backend shares from the
/// stored list to the caller's, written row by row.
pub(crate) fn update_conversation(
    rows: &impl MessageRows,
    conversation: &Conversation,
    now: OffsetDateTime,
) -> Result<Conversation> {
    let id = conversation.id;
    let written = rows.write_header(HeaderWrite {
        id,
        expected: conversation.version,
        title: &conversation.title,
        now,
        message_count: conversation.messages.len() as i64,
    })?;
    let Some(stamps) = written else {
        return Err(if rows.conversation_exists(id)? {
            Error::stale(Entity::Conversation, id)
        } else {
            Error::not_found(Entity::Conversation, id)
        });
    };
    let stored_messages = rows.stored_messages(id)?;
    let plan = plan(&stored_messages, &conversation.messages);
    for message in &plan.delete {
        rows.delete_message(*message)?;
    }
    for (position, m) in &plan.update {
        rows.update_message(*position, m)?;
    }
    for (position, m) in &plan.insert {
        rows.insert_message(*position, m)?;
    }
    Ok(Conversation {
        id,
        title: conversation.title.clone(),
        created_at: stamps.created_at,
        updated_at: stamps.updated_at,
        version: stamps.version,
        messages: conversation.messages.clone(),
    })
}

/// A version as an SQL integer (versions count writes, far below
/// `i64::MAX`; validation refuses larger ones before they get here).
pub(crate) fn version_param(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// A stored version as the model's `u64`.
pub(crate) fn version_from(stored: i64, table: &'static str) -> Result<u64> {
    u64::try_from(stored)
        .map_err(|_| Error::corrupt(table, "version", format!("{stored} is negative")))
}
