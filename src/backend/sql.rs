//! What the SQL backends share beyond the seam: statement macros, the pool
//! settings, the choice of list statement, and how values are bound.

use super::{Archive, Fields, Savepoint, TimeKey};
use crate::config::PoolConfig;
use crate::error::{Error, Result};
use crate::model::ConversationOrder;

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

/// `position` and `on_path` first, then the columns of a message.
macro_rules! message_columns {
    () => {
        "position, on_path, id, conversation_id, role, content, created_at, attachments, \
         parent_id, metadata"
    };
}

/// Where a message sits in its tree.
macro_rules! node_columns {
    () => {
        "id, conversation_id, parent_id, position, on_path"
    };
}

/// The columns of a conversation summary.
macro_rules! summary_columns {
    () => {
        "id, title, created_at, updated_at, version, archived_at, metadata, message_count"
    };
}

/// Conversation summaries by `$column`, newest first, archived or not as
/// `$archived` (`TRUE` or `FALSE`, written into the text) says, keyset
/// `$filter`. `archived` (generated from `archived_at`) is the first key of
/// the list indexes. The flag is not a placeholder: for a bound flag
/// PostgreSQL's plan cache never found a generic plan cheaper than a custom
/// one, so it planned every listing again, which cost most of the call.
macro_rules! list_conversations {
    ($column:literal, $archived:literal, $filter:literal, $limit:literal) => {
        concat!(
            "SELECT ",
            summary_columns!(),
            " FROM conversations WHERE archived = ",
            $archived,
            $filter,
            " ORDER BY ",
            $column,
            " DESC, id DESC LIMIT ",
            $limit
        )
    };
}

/// Finds, walking up from message `$id`, the message and its ancestors up
/// to and including the first on the current branch (`$off`: the test that
/// a row is not on it).
macro_rules! path_to {
    ($id:literal, $off:literal) => {
        concat!(
            "WITH RECURSIVE up(",
            node_columns!(),
            ") AS (",
            "SELECT ",
            node_columns!(),
            " FROM messages WHERE id = ",
            $id,
            " UNION ALL SELECT m.id, m.conversation_id, m.parent_id, m.position, m.on_path ",
            "FROM messages m JOIN up ON m.id = up.parent_id WHERE ",
            $off,
            ") SELECT ",
            node_columns!(),
            " FROM up ORDER BY position DESC"
        )
    };
}

/// Message `$id` and every message below it, in position order.
macro_rules! subtree {
    ($id:literal) => {
        concat!(
            "WITH RECURSIVE down(",
            node_columns!(),
            ") AS (",
            "SELECT ",
            node_columns!(),
            " FROM messages WHERE id = ",
            $id,
            " UNION ALL SELECT m.id, m.conversation_id, m.parent_id, m.position, m.on_path ",
            "FROM messages m JOIN down d ",
            "ON m.conversation_id = d.conversation_id AND m.parent_id = d.id",
            ") SELECT ",
            node_columns!(),
            " FROM down ORDER BY position"
        )
    };
}

/// The statements of a savepoint step, the same in both dialects (one
/// name: a call never sets a second savepoint inside its own).
pub(crate) fn savepoint_sql(step: Savepoint) -> &'static str {
    match step {
        Savepoint::Begin => "SAVEPOINT silmari_call",
        Savepoint::Release => "RELEASE SAVEPOINT silmari_call",
        Savepoint::RollBack => "ROLLBACK TO SAVEPOINT silmari_call; RELEASE SAVEPOINT silmari_call",
    }
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

/// The eight statements of a conversation list: first page and later pages
/// (keyset), by `updated_at` and by `created_at`, of the conversations that
/// are not archived and of those that are.
pub(crate) struct ListStatements {
    pub(crate) by_updated_first: &'static str,
    pub(crate) by_updated_after: &'static str,
    pub(crate) by_created_first: &'static str,
    pub(crate) by_created_after: &'static str,
    pub(crate) archived_by_updated_first: &'static str,
    pub(crate) archived_by_updated_after: &'static str,
    pub(crate) archived_by_created_first: &'static str,
    pub(crate) archived_by_created_after: &'static str,
}

impl ListStatements {
    /// The statement for `order` over archived conversations or the others,
    /// and the keyset position it continues after.
    pub(crate) fn pick(
        &self,
        order: ConversationOrder,
        archived: bool,
        after: Option<TimeKey>,
    ) -> (&'static str, Option<TimeKey>) {
        let sql = match (order, archived, after.is_some()) {
            (ConversationOrder::UpdatedAt, false, false) => self.by_updated_first,
            (ConversationOrder::UpdatedAt, false, true) => self.by_updated_after,
            (ConversationOrder::CreatedAt, false, false) => self.by_created_first,
            (ConversationOrder::CreatedAt, false, true) => self.by_created_after,
            (ConversationOrder::UpdatedAt, true, false) => self.archived_by_updated_first,
            (ConversationOrder::UpdatedAt, true, true) => self.archived_by_updated_after,
            (ConversationOrder::CreatedAt, true, false) => self.archived_by_created_first,
            (ConversationOrder::CreatedAt, true, true) => self.archived_by_created_after,
        };
        (sql, after)
    }
}

/// Messages whose place in their conversation's tree is unsound (for
/// `check`): a parent that is not an earlier message of the same
/// conversation, or a current branch that is not one chain (a message on it
/// whose parent is off it, or two on it with one parent). The same text in
/// both dialects.
pub(crate) const TREE_MISMATCHES: &str = "SELECT COUNT(*) FROM messages m WHERE \
    (m.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages p \
        WHERE p.id = m.parent_id AND p.conversation_id = m.conversation_id \
          AND p.position < m.position)) \
    OR (m.on_path AND m.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages p \
        WHERE p.id = m.parent_id AND p.on_path)) \
    OR (m.on_path AND EXISTS (SELECT 1 FROM messages s \
        WHERE s.conversation_id = m.conversation_id \
          AND s.parent_id IS NOT DISTINCT FROM m.parent_id AND s.on_path AND s.id <> m.id))";

/// The archive parameters of `fields`: a mode (0 keep, 1 set unless set,
/// 2 clear) and the time to set.
pub(crate) fn archive_params(fields: &Fields<'_>) -> (i32, Option<time::OffsetDateTime>) {
    match fields.archive {
        None => (0, None),
        Some(Archive::At(t)) => (1, Some(t)),
        Some(Archive::Clear) => (2, None),
    }
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
