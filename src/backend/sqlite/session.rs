//! The SQLite [`Session`]: record operations on one pooled connection.

use std::cell::Cell;

use rusqlite::{Connection, params};

use super::conflict_on;
use super::indexer::{
    self, index_message, index_message_at, index_title, index_unindexed, next_rowid, unindexed,
};
use super::queries::*;
use super::rows::{
    attachments_json, branch_message_at, collect, file_at, header_at, key, message_at,
    metadata_json, node_at, stored_at, summary_at, uuid_at,
};
use super::search::candidates;
use super::search_blocks::{Widened, widen_block_of};
use crate::backend::feed::LogRow;
use crate::backend::message_list::{assemble, every_summary, link_branch};
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::sql::{archive_params, savepoint_sql, version_param};
use crate::backend::{
    Branches, Fields, HeaderWrite, Node, PositionRange, Savepoint, Session, Stored, TimeKey, Touch,
};
use crate::error::{Entity, Result};
use crate::model::{
    ChangeBatch, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, Message, MessageEdit, MessageId, to_micros,
};

pub(super) struct SqliteSession<'c> {
    conn: &'c Connection,
    /// Inside a transaction already: multi-statement reads need no snapshot of their own.
    in_transaction: Cell<bool>,
}

impl<'c> SqliteSession<'c> {
    pub(super) fn new(conn: &'c Connection, in_transaction: bool) -> Self {
        SqliteSession {
            conn,
            in_transaction: Cell::new(in_transaction),
        }
    }

    /// Runs `f` on one consistent snapshot.
    fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_transaction.get() {
            return f();
        }
        self.conn.prepare_cached(BEGIN_DEFERRED)?.execute([])?;
        self.in_transaction.set(true);
        let result = f();
        self.in_transaction.set(false);
        let end = if result.is_ok() { COMMIT } else { ROLLBACK };
        self.conn.prepare_cached(end)?.execute([])?;
        result
    }

    /// Runs `sql` with `params`, decoding every row with `decode`.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl Fn(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        collect(self.conn.prepare_cached(sql)?.query(params)?, decode)
    }

    /// Runs `sql` with `params`, decoding the first row, if any.
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        decode: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        rows.next()?.map(decode).transpose()
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
        Ok(self.conn.prepare_cached(sql)?.execute(params)?)
    }
}

/// Inserts each message at its position, search rowids from `from` on,
/// and indexes it; the blocks of rowids are widened once.
fn insert_rows<'m>(
    conn: &Connection,
    rows: impl Iterator<Item = (i64, bool, &'m Message)>,
    from: i64,
) -> Result<()> {
    let mut insert = conn.prepare_cached(INSERT_MESSAGE)?;
    let mut widened = Widened::default();
    for ((position, on_path, m), rowid) in rows.zip(from..) {
        let time = to_micros(m.created_at);
        insert
            .execute(params![
                position,
                on_path,
                key(m.id),
                key(m.conversation_id),
                m.role.as_str(),
                m.content,
                time,
                attachments_json(&m.attachments)?,
                m.parent_id.map(key),
                metadata_json(&m.metadata)?,
                rowid,
            ])
            .map_err(conflict_on(Entity::Message, m.id))?;
        index_message_at(conn, rowid, time, &m.content, &mut widened)?;
    }
    widened.write(conn)
}

impl Session for SqliteSession<'_> {
    fn savepoint(&self, step: Savepoint) -> Result<()> {
        match step {
            Savepoint::RollBack => Ok(self.conn.execute_batch(savepoint_sql(step))?),
            _ => self.execute(savepoint_sql(step), []).map(drop),
        }
    }

    fn insert_file(&self, f: &FileMetadata) -> Result<()> {
        self.conn
            .prepare_cached(INSERT_FILE)?
            .execute(params![
                key(f.id),
                f.filename,
                f.content_type,
                f.size as i64,
                to_micros(f.created_at),
            ])
            .map_err(conflict_on(Entity::File, f.id))?;
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        self.row(FILE, [key(id)], file_at)
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let limit = limit as i64;
        match after {
            None => self.rows(FILES_FIRST, [limit], file_at),
            Some((t, id)) => self.rows(FILES_AFTER, params![t, key(id), limit], file_at),
        }
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        Ok(self.execute(DELETE_FILE, [key(id)])? > 0)
    }

    fn insert_conversation(&self, c: &Conversation) -> Result<()> {
        self.conn
            .prepare_cached(INSERT_CONVERSATION)?
            .execute(params![
                key(c.id),
                c.title,
                to_micros(c.created_at),
                to_micros(c.updated_at),
                version_param(c.version),
                c.archived_at.map(to_micros),
                metadata_json(&c.metadata)?,
            ])
            .map_err(conflict_on(Entity::Conversation, c.id))?;
        index_title(self.conn, c.id, &c.title)
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let mut stmt = self.conn.prepare_cached(CONVERSATION_WITH_MESSAGES)?;
        let mut rows = stmt.query([key(id)])?;
        let Some(first) = rows.next()? else {
            return Ok(None);
        };
        let header = header_at(first, *id.as_uuid())?;
        // Sized once from the count (every branch's, so an upper bound),
        // capped so that a corrupt count cannot reserve much.
        let mut messages = Vec::with_capacity(header.message_count.min(1024) as usize);
        if first.get_ref(7)? != rusqlite::types::ValueRef::Null {
            messages.push(branch_message_at(first, 7, id)?);
            while let Some(row) = rows.next()? {
                messages.push(branch_message_at(row, 7, id)?);
            }
        }
        link_branch(&mut messages, None);
        Ok(Some(header.into_conversation(messages)))
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        Ok(self.row(CONVERSATION, [key(id)], |_| Ok(()))?.is_some())
    }

    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool> {
        let changed = self.execute(
            TOUCH_CONVERSATION,
            params![
                key(id),
                touch.bump.map(to_micros),
                touch.added,
                touch.expected.map(version_param),
            ],
        )?;
        Ok(changed > 0)
    }

    fn touch_conversation_of(&self, id: MessageId, touch: Touch) -> Result<Option<ConversationId>> {
        let params = params![
            key(id),
            touch.bump.map(to_micros),
            touch.added,
            touch.expected.map(version_param),
        ];
        self.row(TOUCH_CONVERSATION_OF, params, |row| {
            Ok(uuid_at(row, 0, "conversations", "id")?.into())
        })
    }

    fn set_fields(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
    ) -> Result<Option<ConversationSummary>> {
        let (mode, at) = archive_params(&fields);
        let metadata = fields.metadata.map(metadata_json).transpose()?;
        let renamed = indexer::renamed(self.conn, id, fields.title)?;
        let params = params![key(id), fields.title, metadata, mode, at.map(to_micros)];
        let summary = self.row(SET_FIELDS, params, summary_at)?;
        if let (Some(title), Some(_)) = (renamed, &summary) {
            index_title(self.conn, id, title)?;
        }
        Ok(summary)
    }

    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<ConversationSummary>> {
        let params = params![
            key(header.id),
            header.title,
            metadata_json(header.metadata)?,
            to_micros(header.now),
            version_param(header.expected),
        ];
        let renamed = indexer::renamed(self.conn, header.id, Some(header.title))?;
        let summary = self.row(UPDATE_CONVERSATION, params, summary_at)?;
        if let (Some(title), Some(_)) = (renamed, &summary) {
            index_title(self.conn, header.id, title)?;
        }
        Ok(summary)
    }

    fn adjust_count(&self, id: ConversationId, delta: i64) -> Result<()> {
        self.execute(ADJUST_COUNT, params![key(id), delta])?;
        Ok(())
    }

    fn append_message(&self, id: ConversationId, m: &Message) -> Result<Option<MessageId>> {
        let mut stmt = self.conn.prepare_cached(APPEND_MESSAGE)?;
        let mut rows = stmt
            .query(params![
                key(m.id),
                key(id),
                m.role.as_str(),
                m.content,
                to_micros(m.created_at),
                attachments_json(&m.attachments)?,
                metadata_json(&m.metadata)?,
            ])
            .map_err(conflict_on(Entity::Message, m.id))?;
        let row = rows.next().map_err(conflict_on(Entity::Message, m.id))?;
        let (parent, rowids) = match row {
            Some(row) => {
                let parent = match row.get_ref(0)? {
                    rusqlite::types::ValueRef::Null => None,
                    _ => Some(uuid_at(row, 0, "messages", "parent_id")?.into()),
                };
                (parent, Some((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
            }
            None => (None, None),
        };
        drop(rows);
        if let Some((rowid, mark)) = rowids {
            let len = m.content.len();
            indexer::written(self.conn, indexer::Texts::Messages, (rowid, mark), len)?;
        }
        Ok(parent)
    }

    fn current_leaf(&self, id: ConversationId) -> Result<Option<MessageId>> {
        self.row(CURRENT_LEAF, [key(id)], |row| {
            Ok(uuid_at(row, 0, "messages", "id")?.into())
        })
    }

    fn insert_messages(
        &self,
        id: ConversationId,
        messages: &[Message],
        on_path: &[bool],
    ) -> Result<()> {
        let first: i64 = self
            .conn
            .prepare_cached(NEXT_POSITION)?
            .query_row([key(id)], |r| r.get(0))?;
        // One statement, bound and run per message, as a hand-written loop
        // would; search rowids taken in order from the next free one, above
        // every message indexed first, and indexed as they are written.
        indexer::catch_up(self.conn)?;
        let from = next_rowid(self.conn)?;
        if !messages.is_empty() {
            indexer::inserting(self.conn, from + messages.len() as i64 - 1)?;
        }
        let rows = (first..).zip(on_path).zip(messages);
        let rows = rows.map(|((position, on_path), m)| (position, *on_path, m));
        insert_rows(self.conn, rows, from)
    }

    fn insert_message(&self, stored: &Stored) -> Result<()> {
        let row = (stored.position, stored.on_path, &stored.message);
        indexer::catch_up(self.conn)?;
        let rowid = next_rowid(self.conn)?;
        indexer::inserting(self.conn, rowid)?;
        insert_rows(self.conn, std::iter::once(row), rowid)
    }

    fn update_message(&self, stored: &Stored, text_changed: bool) -> Result<()> {
        let m = &stored.message;
        self.execute(
            UPDATE_MESSAGE,
            params![
                key(m.id),
                stored.position,
                stored.on_path,
                m.role.as_str(),
                m.content,
                to_micros(m.created_at),
                attachments_json(&m.attachments)?,
                m.parent_id.map(key),
                metadata_json(&m.metadata)?,
            ],
        )?;
        if text_changed {
            index_message(self.conn, m.id, &m.content)
        } else {
            widen_block_of(self.conn, m.id) // its entry stays: its block takes its time
        }
    }

    fn message_page(
        &self,
        id: ConversationId,
        branches: Branches,
        range: PositionRange,
    ) -> Result<Vec<Stored>> {
        let sql = match branches {
            Branches::Current => BRANCH_PAGE,
            Branches::All => TREE_PAGE,
        };
        let params = params![key(id), range.after_param(), range.limit_param()];
        self.rows(sql, params, stored_at)
    }

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        let attachments = edit.attachments.as_deref().map(attachments_json);
        let metadata = edit.metadata.as_ref().map(metadata_json);
        let params = params![
            key(id),
            edit.content,
            attachments.transpose()?,
            metadata.transpose()?
        ];
        let message = self.row(EDIT_MESSAGE, params, message_at)?;
        if let (Some(m), Some(_)) = (&message, &edit.content) {
            index_message(self.conn, m.id, &m.content)?;
        }
        Ok(message)
    }

    fn grow_message(&self, id: MessageId, touch: Touch, delta: &str) -> Result<Option<Message>> {
        if self.touch_conversation_of(id, touch)?.is_none() {
            return Ok(None);
        }
        let max = crate::limits::MAX_CONTENT_BYTES as i64;
        let params = params![key(id), delta, delta.len() as i64, max];
        let message = self.row(GROW_MESSAGE, params, message_at)?;
        if let Some(m) = &message {
            indexer::index_grown(self.conn, m.id, &m.content)?;
        }
        Ok(message)
    }

    fn node(&self, id: MessageId) -> Result<Option<Node>> {
        self.row(NODE, [key(id)], node_at)
    }

    fn path_to(&self, id: MessageId) -> Result<Vec<Node>> {
        self.rows(PATH_TO, [key(id)], node_at)
    }

    fn set_path(&self, id: ConversationId, after: Option<i64>, mark: &[MessageId]) -> Result<()> {
        self.execute(UNMARK_PATH, params![key(id), after.unwrap_or(i64::MIN)])?;
        let mut stmt = self.conn.prepare_cached(MARK_PATH)?;
        for message in mark {
            stmt.execute([key(*message)])?;
        }
        Ok(())
    }

    fn subtree(&self, id: MessageId) -> Result<Vec<Node>> {
        self.rows(SUBTREE, [key(id)], node_at)
    }

    fn children(&self, id: ConversationId, parent: Option<MessageId>) -> Result<Vec<Message>> {
        self.rows(CHILDREN, params![key(id), parent.map(key)], message_at)
    }

    fn reparent(&self, id: ConversationId, from: MessageId, to: Option<MessageId>) -> Result<()> {
        self.execute(REPARENT, params![key(id), key(from), to.map(key)])?;
        Ok(())
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        self.execute(DELETE_MESSAGE, [key(id)])?;
        Ok(())
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        archived: bool,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match LISTS.pick(order, archived, after) {
            (sql, None) => self.rows(sql, params![limit], summary_at),
            (sql, Some((t, id))) => self.rows(sql, params![t, key(id), limit], summary_at),
        }
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.snapshot(|| {
            let messages = self.rows(ALL_MESSAGES, [], message_at)?;
            Ok(assemble(every_summary(self)?, messages))
        })
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        Ok(self.execute(DELETE_CONVERSATION, [key(id)])? > 0)
    }

    fn counts(&self) -> Result<Counts> {
        let n = |v: i64| v.max(0) as u64;
        Ok(self.conn.prepare_cached(COUNTS)?.query_row([], |r| {
            Ok(Counts {
                files: n(r.get(0)?),
                conversations: n(r.get(1)?),
                messages: n(r.get(2)?),
            })
        })?)
    }

    fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        candidates(self.conn, kind, filter, before, limit)
    }

    fn unindexed(&self) -> Result<Option<u64>> {
        unindexed(self.conn)
    }

    fn forget_search_index(&self) -> Result<()> {
        indexer::forget(self.conn)
    }

    fn index_unindexed(&self, limit: usize) -> Result<u64> {
        index_unindexed(self.conn, limit)
    }

    fn remote_listeners(&self, instance: &str) -> Result<bool> {
        super::feed::remote_listeners(self.conn, instance)
    }

    fn publish(&self, instance: &str, batch: &ChangeBatch) -> Result<Option<u64>> {
        super::feed::publish(self.conn, instance, batch)
    }

    fn log_since(&self, after: u64) -> Result<Vec<LogRow>> {
        super::feed::log_since(self.conn, after)
    }

    fn in_snapshot(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.snapshot(read)
    }
}
