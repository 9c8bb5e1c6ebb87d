//! The PostgreSQL [`Session`]: record operations on one pooled connection.

use std::cell::{Cell, RefCell};

use postgres::Row;
use postgres::types::ToSql;
use uuid::Uuid;

use super::PgConn;
use super::appends::{append_message, current_leaf, insert_batch, insert_chain};
use super::errors::conflict_on;
use super::queries::*;
use super::rows::{
    branch_message_at, file_at, get, header_at, key_params, message_at, metadata_param, node_at,
    stored_at, summary_at,
};
use super::search_queries::FORGET_SEARCH_INDEX;
use super::{entries, search};
use crate::backend::message_list::{assemble, every_summary, link_branch};
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::sql::{archive_params, savepoint_sql, version_param};
use crate::backend::{
    Branches, Fields, HeaderWrite, Node, PositionRange, Savepoint, Session, Stored, TimeKey, Touch,
};
use crate::error::{Entity, Error, Result};
use crate::model::{
    ChangeBatch, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, Message, MessageEdit, MessageId, PendingChange,
};
use crate::search::tokenize::index_tokens;

pub(super) struct PgSession<'c> {
    pub(super) conn: RefCell<&'c mut PgConn>,
    /// Inside a transaction already: multi-statement reads need no snapshot of their own.
    pub(super) in_transaction: Cell<bool>,
}

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl<'c> PgSession<'c> {
    pub(super) fn new(conn: &'c mut PgConn, in_transaction: bool) -> Self {
        PgSession {
            conn: RefCell::new(conn),
            in_transaction: Cell::new(in_transaction),
        }
    }

    fn query(&self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        let mut conn = self.conn.borrow_mut();
        let statement = conn.statement(sql)?;
        Ok(conn.client.query(&statement, params)?)
    }

    /// Runs `sql`, decoding every row with `decode`.
    fn rows<T>(
        &self,
        sql: &'static str,
        params: Params<'_>,
        decode: impl Fn(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.query(sql, params)?.iter().map(decode).collect()
    }

    /// Runs `sql`, decoding the first row, if any.
    fn row<T>(
        &self,
        sql: &'static str,
        params: Params<'_>,
        decode: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        self.query(sql, params)?.first().map(decode).transpose()
    }

    fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        self.execute_or(sql, params, Error::from)
    }

    /// Runs a statement, mapping its own error with `on_error`.
    pub(super) fn execute_or(
        &self,
        sql: &'static str,
        params: Params<'_>,
        on_error: impl FnOnce(postgres::Error) -> Error,
    ) -> Result<u64> {
        let mut conn = self.conn.borrow_mut();
        let statement = conn.statement(sql)?;
        conn.client.execute(&statement, params).map_err(on_error)
    }

    /// Runs `f` on one consistent snapshot.
    fn snapshot<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.in_transaction.get() {
            return f();
        }
        self.execute(BEGIN_SNAPSHOT, &[])?;
        self.in_transaction.set(true);
        let result = f();
        self.in_transaction.set(false);
        self.execute(if result.is_ok() { COMMIT } else { ROLLBACK }, &[])?;
        result
    }
}

/// A row's `id` column as a conversation id.
fn conversation_id_at(row: &Row) -> Result<ConversationId> {
    Ok(get::<Uuid>(row, 0, "conversations", "id")?.into())
}

impl Session for PgSession<'_> {
    fn savepoint(&self, step: Savepoint) -> Result<()> {
        let sql = savepoint_sql(step);
        Ok(self.conn.borrow_mut().client.batch_execute(sql)?)
    }

    fn insert_file(&self, f: &FileMetadata) -> Result<()> {
        self.single(
            [INSERT_FILE, INSERT_FILE_NOTIFYING],
            &[
                f.id.as_uuid(),
                &f.filename,
                &f.content_type,
                &(f.size as i64),
                &f.created_at,
            ],
            conflict_on(Entity::File, f.id),
        )?;
        Ok(())
    }

    fn file(&self, id: FileId) -> Result<Option<FileMetadata>> {
        self.row(FILE, &[id.as_uuid()], file_at)
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let limit = limit as i64;
        match after {
            None => self.rows(FILES_FIRST, &[&limit], file_at),
            Some(after) => {
                let (t, id) = key_params(after)?;
                self.rows(FILES_AFTER, &[&t, &id, &limit], file_at)
            }
        }
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        let deleted = self.single(
            [DELETE_FILE, DELETE_FILE_NOTIFYING],
            &[id.as_uuid()],
            Error::from,
        )?;
        Ok(deleted > 0)
    }

    fn insert_conversation(&self, c: &Conversation) -> Result<()> {
        self.single(
            [INSERT_CONVERSATION, INSERT_CONVERSATION_NOTIFYING],
            &[
                c.id.as_uuid(),
                &c.title,
                &c.created_at,
                &c.updated_at,
                &version_param(c.version),
                &c.archived_at,
                &metadata_param(&c.metadata)?,
                &index_tokens(&c.title),
            ],
            conflict_on(Entity::Conversation, c.id),
        )?;
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let every_position: Params<'_> = &[id.as_uuid(), &i64::MIN, &i64::MAX];
        let rows = self.query(CONVERSATION_WITH_MESSAGES, every_position)?;
        let Some((last, rows)) = rows.split_last() else {
            return Ok(None);
        };
        if get::<Option<i64>>(last, 13, "messages", "position")?.is_some() {
            return Err(Error::corrupt(
                "messages",
                "conversation_id",
                format!("messages of conversation {id}, which is not stored"),
            ));
        }
        let header = header_at(last, *id.as_uuid())?;
        let mut messages = rows
            .iter()
            .map(|row| branch_message_at(row, 7, id))
            .collect::<Result<Vec<_>>>()?;
        link_branch(&mut messages, None);
        Ok(Some(header.into_conversation(messages)))
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        Ok(!self.query(CONVERSATION, &[id.as_uuid()])?.is_empty())
    }

    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool> {
        // Locks the conversation's row, so concurrent appends cannot take the
        // same positions.
        let expected = touch.expected.map(version_param);
        let changed = self.execute(
            TOUCH_CONVERSATION,
            &[id.as_uuid(), &touch.bump, &touch.added, &expected],
        )?;
        Ok(changed > 0)
    }

    fn touch_conversation_of(&self, id: MessageId, touch: Touch) -> Result<Option<ConversationId>> {
        let expected = touch.expected.map(version_param);
        let params: Params<'_> = &[id.as_uuid(), &touch.bump, &touch.added, &expected];
        self.row(TOUCH_CONVERSATION_OF, params, conversation_id_at)
    }

    fn set_fields(
        &self,
        id: ConversationId,
        fields: Fields<'_>,
    ) -> Result<Option<ConversationSummary>> {
        let (mode, at) = archive_params(&fields);
        let metadata = fields.metadata.map(metadata_param).transpose()?;
        let tokens = fields.title.map(index_tokens);
        let params: Params<'_> = &[id.as_uuid(), &fields.title, &metadata, &mode, &at, &tokens];
        self.row(SET_FIELDS, params, summary_at)
    }

    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<ConversationSummary>> {
        let params: Params<'_> = &[
            header.id.as_uuid(),
            &header.title,
            &metadata_param(header.metadata)?,
            &header.now,
            &version_param(header.expected),
            &index_tokens(header.title),
        ];
        self.row(UPDATE_CONVERSATION, params, summary_at)
    }

    fn adjust_count(&self, id: ConversationId, delta: i64) -> Result<()> {
        self.execute(ADJUST_COUNT, &[id.as_uuid(), &delta])?;
        Ok(())
    }

    fn append_message(&self, id: ConversationId, m: &Message) -> Result<Option<MessageId>> {
        append_message(&mut self.conn.borrow_mut(), id, m)
    }

    fn current_leaf(&self, id: ConversationId) -> Result<Option<MessageId>> {
        current_leaf(&mut self.conn.borrow_mut(), id)
    }

    fn insert_messages(
        &self,
        id: ConversationId,
        messages: &[Message],
        on_path: &[bool],
    ) -> Result<()> {
        insert_batch(&mut self.conn.borrow_mut(), id, messages, on_path)
    }

    fn insert_chain(&self, id: ConversationId, messages: &mut [Message]) -> Result<()> {
        insert_chain(&mut self.conn.borrow_mut(), id, messages)
    }

    fn insert_message(&self, stored: &Stored) -> Result<()> {
        entries::insert_message(&mut self.conn.borrow_mut(), stored)
    }

    fn update_message(&self, stored: &Stored, text_changed: bool) -> Result<()> {
        entries::update_message(&mut self.conn.borrow_mut(), stored, text_changed)
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
        let (after, limit) = (range.after_param(), range.limit_param());
        self.rows(sql, &[id.as_uuid(), &after, &limit], stored_at)
    }

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        entries::edit_message(&mut self.conn.borrow_mut(), id, edit)
    }

    fn grow_message(&self, id: MessageId, t: Touch, delta: &str) -> Result<Option<Message>> {
        // The conversation touched and the message grown in one statement.
        let (len, max) = (delta.len() as i64, crate::limits::MAX_CONTENT_BYTES as i64);
        let expected = t.expected.map(version_param);
        let p: Params<'_> = &[
            id.as_uuid(),
            &t.bump,
            &t.added,
            &expected,
            &delta,
            &len,
            &max,
        ];
        let grown = self.row(TOUCH_AND_GROW, p, message_at)?;
        if let Some(m) = &grown {
            entries::set_entry(&mut self.conn.borrow_mut(), id, &m.content)?;
        }
        Ok(grown)
    }

    fn node(&self, id: MessageId) -> Result<Option<Node>> {
        self.row(NODE, &[id.as_uuid()], node_at)
    }

    fn path_to(&self, id: MessageId) -> Result<Vec<Node>> {
        self.rows(PATH_TO, &[id.as_uuid()], node_at)
    }

    fn set_path(&self, id: ConversationId, after: Option<i64>, mark: &[MessageId]) -> Result<()> {
        let after = after.unwrap_or(i64::MIN);
        self.execute(UNMARK_PATH, &[id.as_uuid(), &after])?;
        if !mark.is_empty() {
            let ids: Vec<&Uuid> = mark.iter().map(MessageId::as_uuid).collect();
            self.execute(MARK_PATH, &[&ids])?;
        }
        Ok(())
    }

    fn subtree(&self, id: MessageId) -> Result<Vec<Node>> {
        self.rows(SUBTREE, &[id.as_uuid()], node_at)
    }

    fn children(&self, id: ConversationId, parent: Option<MessageId>) -> Result<Vec<Message>> {
        match parent {
            Some(parent) => self.rows(CHILDREN, &[id.as_uuid(), parent.as_uuid()], message_at),
            None => self.rows(FIRST_MESSAGES, &[id.as_uuid()], message_at),
        }
    }

    fn reparent(&self, id: ConversationId, from: MessageId, to: Option<MessageId>) -> Result<()> {
        let to = to.as_ref().map(MessageId::as_uuid);
        self.execute(REPARENT, &[id.as_uuid(), from.as_uuid(), &to])?;
        Ok(())
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        self.execute(DELETE_MESSAGE, &[id.as_uuid()])?;
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
            (sql, None) => self.rows(sql, &[&limit], summary_at),
            (sql, Some(after)) => {
                let (t, id) = key_params(after)?;
                self.rows(sql, &[&t, &id, &limit], summary_at)
            }
        }
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.snapshot(|| {
            let messages = self.rows(ALL_MESSAGES, &[], message_at)?;
            Ok(assemble(every_summary(self)?, messages))
        })
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let deleted = self.single(
            [DELETE_CONVERSATION, DELETE_CONVERSATION_NOTIFYING],
            &[id.as_uuid()],
            Error::from,
        )?;
        Ok(deleted > 0)
    }

    fn stage_single(&self, change: &PendingChange) {
        self.stage(change);
    }

    fn publish(&self, _instance: &str, batch: &ChangeBatch) -> Result<Option<u64>> {
        self.notify_at_commit(batch);
        Ok(None)
    }

    fn counts(&self) -> Result<Counts> {
        let rows = self.query(COUNTS, &[])?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Backend("COUNT returned no row".into()))?;
        let n =
            |i: usize| -> Result<u64> { Ok(get::<i64>(row, i, "counts", "count")?.max(0) as u64) };
        Ok(Counts {
            files: n(0)?,
            conversations: n(1)?,
            messages: n(2)?,
        })
    }

    fn search_candidates(
        &self,
        kind: TextKind,
        filter: &SearchFilter<'_>,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<Candidate>> {
        search::candidates(&mut self.conn.borrow_mut(), kind, filter, before, limit)
    }

    fn unindexed(&self) -> Result<Option<u64>> {
        search::unindexed(&mut self.conn.borrow_mut())
    }

    fn forget_search_index(&self) -> Result<()> {
        let mut conn = self.conn.borrow_mut();
        if search::unindexed(&mut conn)?.is_some() {
            conn.client.batch_execute(FORGET_SEARCH_INDEX)?;
        }
        Ok(())
    }

    fn index_unindexed(&self, limit: usize) -> Result<u64> {
        search::index_unindexed(&mut self.conn.borrow_mut(), limit)
    }

    fn in_snapshot(&self, read: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        self.snapshot(read)
    }
}
