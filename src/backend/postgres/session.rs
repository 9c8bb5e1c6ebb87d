//! The PostgreSQL [`Session`]: record operations on one pooled connection.

use std::cell::{Cell, RefCell};

use postgres::Row;
use postgres::types::{Json, ToSql};
use time::OffsetDateTime;
use uuid::Uuid;

use super::queries::*;
use super::rows::{
    duplicate_in, file_at, get, key_params, message_at, message_from, summary_at, time_at,
};
use super::{PgConn, conflict_on};
use crate::backend::message_list::assemble;
use crate::backend::sql::{
    HeaderWrite, MessageRows, Stamps, update_conversation, version_from, version_param,
};
use crate::backend::{PositionRange, Positioned, Session, TimeKey, Touch};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Attachment, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, Message, MessageEdit, MessageId,
};

pub(super) struct PgSession<'c> {
    conn: RefCell<&'c mut PgConn>,
    /// Inside a transaction already: multi-statement reads need no snapshot of their own.
    in_transaction: Cell<bool>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

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

    fn execute(&self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        self.execute_or(sql, params, Error::from)
    }

    /// Runs a statement, mapping its own error with `on_error`.
    fn execute_or(
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

impl MessageRows for PgSession<'_> {
    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<Stamps>> {
        const T: &str = "conversations";
        let rows = self.query(
            UPDATE_CONVERSATION,
            &[
                header.id.as_uuid(),
                &header.title,
                &header.now,
                &header.message_count,
                &version_param(header.expected),
            ],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(Stamps {
            created_at: time_at(row, 0, T, "created_at")?,
            updated_at: time_at(row, 1, T, "updated_at")?,
            version: version_from(get(row, 2, T, "version")?, T)?,
        }))
    }

    fn stored_messages(&self, id: ConversationId) -> Result<Vec<(i64, Message)>> {
        self.query(MESSAGES, &[id.as_uuid()])?
            .iter()
            .map(message_at)
            .collect()
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        self.execute(DELETE_MESSAGE, &[id.as_uuid()])?;
        Ok(())
    }

    fn update_message(&self, position: i64, m: &Message) -> Result<()> {
        self.execute(
            UPDATE_MESSAGE,
            &[
                m.id.as_uuid(),
                &position,
                &m.role.as_str(),
                &m.content,
                &m.created_at,
                &Json(&m.attachments),
            ],
        )?;
        Ok(())
    }

    fn insert_message(&self, position: i64, m: &Message) -> Result<()> {
        self.execute_or(
            INSERT_MESSAGE,
            &[
                &position,
                m.id.as_uuid(),
                m.conversation_id.as_uuid(),
                &m.role.as_str(),
                &m.content,
                &m.created_at,
                &Json(&m.attachments),
            ],
            conflict_on(Entity::Message, m.id),
        )?;
        Ok(())
    }
}

/// Messages per multi-row INSERT of a batch append.
const APPEND_CHUNK: usize = 5_000;

impl Session for PgSession<'_> {
    fn insert_file(&self, f: &FileMetadata) -> Result<()> {
        self.execute_or(
            INSERT_FILE,
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
        self.query(FILE, &[id.as_uuid()])?
            .first()
            .map(file_at)
            .transpose()
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let limit = limit as i64;
        let rows = match after {
            None => self.query(FILES_FIRST, &[&limit])?,
            Some(after) => {
                let (t, id) = key_params(after)?;
                self.query(FILES_AFTER, &[&t, &id, &limit])?
            }
        };
        rows.iter().map(file_at).collect()
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        Ok(self.execute(DELETE_FILE, &[id.as_uuid()])? > 0)
    }

    fn insert_conversation(&self, c: &Conversation) -> Result<()> {
        self.execute_or(
            INSERT_CONVERSATION,
            &[
                c.id.as_uuid(),
                &c.title,
                &c.created_at,
                &c.updated_at,
                &version_param(c.version),
            ],
            conflict_on(Entity::Conversation, c.id),
        )?;
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        const T: &str = "conversations";
        let rows = self.query(CONVERSATION_WITH_MESSAGES, &[id.as_uuid()])?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut conversation = Conversation {
            id,
            title: get(first, 0, T, "title")?,
            created_at: time_at(first, 1, T, "created_at")?,
            updated_at: time_at(first, 2, T, "updated_at")?,
            version: version_from(get(first, 3, T, "version")?, T)?,
            messages: Vec::with_capacity(rows.len()),
        };
        if get::<Option<Uuid>>(first, 5, "messages", "id")?.is_none() {
            return Ok(Some(conversation));
        }
        for row in &rows {
            conversation.messages.push(message_from(row, 4)?.1);
        }
        Ok(Some(conversation))
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

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        let attachments = edit.attachments.as_deref().map(Json);
        self.query(EDIT_MESSAGE, &[id.as_uuid(), &edit.content, &attachments])?
            .first()
            .map(|row| Ok(message_at(row)?.1))
            .transpose()
    }

    fn grow_message(&self, id: MessageId, delta: &str, max: usize) -> Result<Option<Message>> {
        let (len, max) = (delta.len() as i64, max as i64);
        self.query(GROW_MESSAGE, &[id.as_uuid(), &delta, &len, &max])?
            .first()
            .map(|row| Ok(message_at(row)?.1))
            .transpose()
    }

    fn message_exists(&self, id: MessageId) -> Result<bool> {
        Ok(!self.query(MESSAGE_EXISTS, &[id.as_uuid()])?.is_empty())
    }

    fn remove_message(&self, id: MessageId) -> Result<Option<ConversationId>> {
        self.query(REMOVE_MESSAGE, &[id.as_uuid()])?
            .first()
            .map(|row| Ok(get::<Uuid>(row, 0, "messages", "conversation_id")?.into()))
            .transpose()
    }

    fn insert_messages(&self, conversation: ConversationId, messages: &[Message]) -> Result<()> {
        if let [m] = messages {
            self.execute_or(
                APPEND_MESSAGE,
                &[
                    m.id.as_uuid(),
                    conversation.as_uuid(),
                    &m.role.as_str(),
                    &m.content,
                    &m.created_at,
                    &Json(&m.attachments),
                ],
                conflict_on(Entity::Message, m.id),
            )?;
            return Ok(());
        }
        // Many at once: one multi-row INSERT per chunk, from arrays.
        for chunk in messages.chunks(APPEND_CHUNK) {
            let ids: Vec<&Uuid> = chunk.iter().map(|m| m.id.as_uuid()).collect();
            let roles: Vec<&str> = chunk.iter().map(|m| m.role.as_str()).collect();
            let contents: Vec<&str> = chunk.iter().map(|m| m.content.as_str()).collect();
            let times: Vec<OffsetDateTime> = chunk.iter().map(|m| m.created_at).collect();
            let attachments: Vec<Json<&Vec<Attachment>>> =
                chunk.iter().map(|m| Json(&m.attachments)).collect();
            self.execute_or(
                APPEND_MESSAGES,
                &[
                    conversation.as_uuid(),
                    &ids,
                    &roles,
                    &contents,
                    &times,
                    &attachments,
                ],
                |e| {
                    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                        duplicate_in(&e, chunk)
                    } else {
                        Error::from(e)
                    }
                },
            )?;
        }
        Ok(())
    }

    fn message_page(&self, id: ConversationId, range: PositionRange) -> Result<Vec<Positioned>> {
        let (after, limit) = (range.after.unwrap_or(i64::MIN), range.limit as i64);
        self.query(MESSAGES_PAGE, &[id.as_uuid(), &after, &limit])?
            .iter()
            .map(message_at)
            .collect()
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let limit = limit as i64;
        let rows = match LISTS.pick(order, after) {
            (sql, None) => self.query(sql, &[&limit])?,
            (sql, Some(after)) => {
                let (t, id) = key_params(after)?;
                self.query(sql, &[&t, &id, &limit])?
            }
        };
        rows.iter().map(summary_at).collect()
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.snapshot(|| {
            let messages = self
                .query(ALL_MESSAGES, &[])?
                .iter()
                .map(|row| message_at(row).map(|(_, m)| m))
                .collect::<Result<Vec<_>>>()?;
            let summaries = self
                .query(ALL_CONVERSATIONS, &[])?
                .iter()
                .map(summary_at)
                .collect::<Result<Vec<_>>>()?;
            Ok(assemble(summaries, messages))
        })
    }

    fn update_conversation(&self, c: &Conversation, now: OffsetDateTime) -> Result<Conversation> {
        update_conversation(self, c, now)
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        Ok(self.execute(DELETE_CONVERSATION, &[id.as_uuid()])? > 0)
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
}
