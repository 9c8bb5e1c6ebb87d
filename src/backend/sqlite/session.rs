//! The SQLite [`Session`]: record operations on one pooled connection.

use std::cell::Cell;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::conflict_on;
use super::queries::*;
use crate::backend::message_list::assemble;
use crate::backend::sql::{
    HeaderWrite, MessageRows, Stamps, update_conversation, version_from, version_param,
};
use crate::backend::{PositionRange, Positioned, Session, TimeKey, Touch};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Attachment, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, Message, MessageEdit, MessageId, from_micros, to_micros,
};

pub(super) struct SqliteSession<'c> {
    conn: &'c Connection,
    /// Inside a transaction already: multi-statement reads need no snapshot of their own.
    in_transaction: Cell<bool>,
}

/// A UUID bound as its hyphenated lowercase text without allocating.
struct Key([u8; 36]);

fn key(id: impl Into<Uuid>) -> Key {
    let mut buf = [0u8; 36];
    id.into().hyphenated().encode_lower(&mut buf);
    Key(buf)
}

impl ToSql for Key {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
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
}

impl MessageRows for SqliteSession<'_> {
    fn write_header(&self, header: HeaderWrite<'_>) -> Result<Option<Stamps>> {
        const T: &str = "conversations";
        let mut stmt = self.conn.prepare_cached(UPDATE_CONVERSATION)?;
        let mut rows = stmt.query(params![
            key(header.id),
            header.title,
            to_micros(header.now),
            header.message_count,
            version_param(header.expected),
        ])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        Ok(Some(Stamps {
            created_at: time_at(row, 0, T, "created_at")?,
            updated_at: time_at(row, 1, T, "updated_at")?,
            version: version_from(row.get(2)?, T)?,
        }))
    }

    fn stored_messages(&self, id: ConversationId) -> Result<Vec<(i64, Message)>> {
        let mut stmt = self.conn.prepare_cached(MESSAGES)?;
        collect(stmt.query([key(id)])?, message_at)
    }

    fn delete_message(&self, id: MessageId) -> Result<()> {
        self.conn
            .prepare_cached(DELETE_MESSAGE)?
            .execute([key(id)])?;
        Ok(())
    }

    fn update_message(&self, position: i64, m: &Message) -> Result<()> {
        self.conn.prepare_cached(UPDATE_MESSAGE)?.execute(params![
            key(m.id),
            position,
            m.role.as_str(),
            m.content,
            to_micros(m.created_at),
            attachments_json(&m.attachments)?,
        ])?;
        Ok(())
    }

    fn insert_message(&self, position: i64, m: &Message) -> Result<()> {
        insert_message(&mut *self.conn.prepare_cached(INSERT_MESSAGE)?, position, m)
    }
}

fn uuid_at(row: &Row<'_>, i: usize, table: &'static str, column: &'static str) -> Result<Uuid> {
    let text = row.get_ref(i)?;
    let text = text
        .as_str()
        .map_err(|e| Error::corrupt(table, column, e))?;
    Uuid::try_parse(text).map_err(|e| Error::corrupt(table, column, e))
}

fn time_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<OffsetDateTime> {
    let micros: i64 = row.get(i)?;
    from_micros(micros)
        .ok_or_else(|| Error::corrupt(table, column, format!("{micros} is out of range")))
}

/// Decodes a row of `file_columns!()`.
fn file_at(row: &Row<'_>) -> Result<FileMetadata> {
    const T: &str = "file_metadata";
    let size: i64 = row.get(3)?;
    Ok(FileMetadata {
        id: uuid_at(row, 0, T, "id")?.into(),
        filename: row.get(1)?,
        content_type: row.get(2)?,
        size: u64::try_from(size)
            .map_err(|_| Error::corrupt(T, "size", format!("{size} is negative")))?,
        created_at: time_at(row, 4, T, "created_at")?,
    })
}

/// Decodes a row of `message_columns!()`.
fn message_at(row: &Row<'_>) -> Result<(i64, Message)> {
    message_from(row, 0)
}

/// Decodes `message_columns!()` starting at column `at`.
fn message_from(row: &Row<'_>, at: usize) -> Result<(i64, Message)> {
    const T: &str = "messages";
    let role = row.get_ref(at + 3)?;
    let role = role
        .as_str()
        .map_err(|e| Error::corrupt(T, "role", e))?
        .parse()
        .map_err(|e| Error::corrupt(T, "role", e))?;
    let attachments = row.get_ref(at + 6)?;
    let attachments = attachments
        .as_str()
        .map_err(|e| Error::corrupt(T, "attachments", e))?;
    let attachments: Vec<Attachment> =
        serde_json::from_str(attachments).map_err(|e| Error::corrupt(T, "attachments", e))?;
    Ok((
        row.get(at)?,
        Message {
            id: uuid_at(row, at + 1, T, "id")?.into(),
            conversation_id: uuid_at(row, at + 2, T, "conversation_id")?.into(),
            role,
            content: row.get(at + 4)?,
            created_at: time_at(row, at + 5, T, "created_at")?,
            attachments,
        },
    ))
}

/// Decodes a conversation list row (id, title, created_at, updated_at,
/// version, count).
fn summary_at(row: &Row<'_>) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    let count: i64 = row.get(5)?;
    Ok(ConversationSummary {
        id: uuid_at(row, 0, T, "id")?.into(),
        title: row.get(1)?,
        created_at: time_at(row, 2, T, "created_at")?,
        updated_at: time_at(row, 3, T, "updated_at")?,
        version: version_from(row.get(4)?, T)?,
        message_count: count.max(0) as u64,
    })
}

/// Runs [`INSERT_MESSAGE`] for `m` at `position`.
fn insert_message(insert: &mut rusqlite::Statement<'_>, position: i64, m: &Message) -> Result<()> {
    insert
        .execute(params![
            position,
            key(m.id),
            key(m.conversation_id),
            m.role.as_str(),
            m.content,
            to_micros(m.created_at),
            attachments_json(&m.attachments)?,
        ])
        .map_err(conflict_on(Entity::Message, m.id))?;
    Ok(())
}

fn attachments_json(attachments: &[Attachment]) -> Result<String> {
    if attachments.is_empty() {
        return Ok("[]".to_owned());
    }
    serde_json::to_string(attachments).map_err(|e| Error::Backend(Box::new(e)))
}

/// Decodes every row of `rows`.
fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}

impl Session for SqliteSession<'_> {
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
        let mut stmt = self.conn.prepare_cached(FILE)?;
        let mut rows = stmt.query([key(id)])?;
        rows.next()?.map(file_at).transpose()
    }

    fn files(&self, after: Option<TimeKey>, limit: usize) -> Result<Vec<FileMetadata>> {
        let limit = limit as i64;
        match after {
            None => collect(
                self.conn.prepare_cached(FILES_FIRST)?.query([limit])?,
                file_at,
            ),
            Some((t, id)) => collect(
                self.conn
                    .prepare_cached(FILES_AFTER)?
                    .query(params![t, key(id), limit])?,
                file_at,
            ),
        }
    }

    fn delete_file(&self, id: FileId) -> Result<bool> {
        Ok(self.conn.prepare_cached(DELETE_FILE)?.execute([key(id)])? > 0)
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
            ])
            .map_err(conflict_on(Entity::Conversation, c.id))?;
        Ok(())
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        const T: &str = "conversations";
        let mut stmt = self.conn.prepare_cached(CONVERSATION_WITH_MESSAGES)?;
        let mut rows = stmt.query([key(id)])?;
        let Some(first) = rows.next()? else {
            return Ok(None);
        };
        let mut conversation = Conversation {
            id,
            title: first.get(0)?,
            created_at: time_at(first, 1, T, "created_at")?,
            updated_at: time_at(first, 2, T, "updated_at")?,
            version: version_from(first.get(3)?, T)?,
            messages: Vec::new(),
        };
        if first.get_ref(5)? == rusqlite::types::ValueRef::Null {
            return Ok(Some(conversation));
        }
        conversation.messages.push(message_from(first, 4)?.1);
        while let Some(row) = rows.next()? {
            conversation.messages.push(message_from(row, 4)?.1);
        }
        Ok(Some(conversation))
    }

    fn conversation_exists(&self, id: ConversationId) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(CONVERSATION)?;
        Ok(stmt.query([key(id)])?.next()?.is_some())
    }

    fn touch_conversation(&self, id: ConversationId, touch: Touch) -> Result<bool> {
        let changed = self
            .conn
            .prepare_cached(TOUCH_CONVERSATION)?
            .execute(params![
                key(id),
                touch.bump.map(to_micros),
                touch.added,
                touch.expected.map(version_param),
            ])?;
        Ok(changed > 0)
    }

    fn edit_message(&self, id: MessageId, edit: &MessageEdit) -> Result<Option<Message>> {
        let attachments = edit.attachments.as_deref().map(attachments_json);
        let mut stmt = self.conn.prepare_cached(EDIT_MESSAGE)?;
        let mut rows = stmt.query(params![key(id), edit.content, attachments.transpose()?])?;
        rows.next()?.map(|row| Ok(message_at(row)?.1)).transpose()
    }

    fn grow_message(&self, id: MessageId, delta: &str, max: usize) -> Result<Option<Message>> {
        let mut stmt = self.conn.prepare_cached(GROW_MESSAGE)?;
        let mut rows = stmt.query(params![key(id), delta, delta.len() as i64, max as i64])?;
        rows.next()?.map(|row| Ok(message_at(row)?.1)).transpose()
    }

    fn message_exists(&self, id: MessageId) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(MESSAGE_EXISTS)?;
        Ok(stmt.query([key(id)])?.next()?.is_some())
    }

    fn remove_message(&self, id: MessageId) -> Result<Option<ConversationId>> {
        const T: &str = "messages";
        let mut stmt = self.conn.prepare_cached(REMOVE_MESSAGE)?;
        let mut rows = stmt.query([key(id)])?;
        rows.next()?
            .map(|row| Ok(uuid_at(row, 0, T, "conversation_id")?.into()))
            .transpose()
    }

    fn insert_messages(&self, conversation: ConversationId, messages: &[Message]) -> Result<()> {
        if let [m] = messages {
            self.conn
                .prepare_cached(APPEND_MESSAGE)?
                .execute(params![
                    key(m.id),
                    key(conversation),
                    m.role.as_str(),
                    m.content,
                    to_micros(m.created_at),
                    attachments_json(&m.attachments)?,
                ])
                .map_err(conflict_on(Entity::Message, m.id))?;
            return Ok(());
        }
        let first: i64 = self
            .conn
            .prepare_cached(NEXT_POSITION)?
            .query_row([key(conversation)], |r| r.get(0))?;
        // One statement, bound and run per message, as a hand-written loop would.
        let mut insert = self.conn.prepare_cached(INSERT_MESSAGE)?;
        for (position, m) in (first..).zip(messages) {
            insert_message(&mut insert, position, m)?;
        }
        Ok(())
    }

    fn message_page(&self, id: ConversationId, range: PositionRange) -> Result<Vec<Positioned>> {
        let mut stmt = self.conn.prepare_cached(MESSAGES_PAGE)?;
        let after = range.after.unwrap_or(i64::MIN);
        let rows = stmt.query(params![key(id), after, range.limit as i64])?;
        collect(rows, message_at)
    }

    fn conversations(
        &self,
        order: ConversationOrder,
        after: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>> {
        let limit = limit as i64;
        match LISTS.pick(order, after) {
            (sql, None) => collect(self.conn.prepare_cached(sql)?.query([limit])?, summary_at),
            (sql, Some((t, id))) => collect(
                self.conn
                    .prepare_cached(sql)?
                    .query(params![t, key(id), limit])?,
                summary_at,
            ),
        }
    }

    fn all_conversations(&self) -> Result<Vec<Conversation>> {
        self.snapshot(|| {
            let mut stmt = self.conn.prepare_cached(ALL_MESSAGES)?;
            let messages = collect(stmt.query([])?, message_at)?;
            let mut stmt = self.conn.prepare_cached(ALL_CONVERSATIONS)?;
            let summaries = collect(stmt.query([])?, summary_at)?;
            Ok(assemble(summaries, messages.into_iter().map(|(_, m)| m)))
        })
    }

    fn update_conversation(&self, c: &Conversation, now: OffsetDateTime) -> Result<Conversation> {
        update_conversation(self, c, now)
    }

    fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(DELETE_CONVERSATION)?
            .execute([key(id)])?
            > 0)
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
}
