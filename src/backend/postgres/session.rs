//! The PostgreSQL [`Session`]: record operations on one pooled connection.

use std::cell::{Cell, RefCell};

use postgres::Row;
use postgres::types::{FromSql, Json, ToSql};
use time::OffsetDateTime;
use uuid::Uuid;

use super::queries::*;
use super::{PgConn, conflict_on};
use crate::backend::message_list::assemble;
use crate::backend::sql::{MessageRows, Stamps, update_conversation, version_from};
use crate::backend::{Session, TimeKey};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Attachment, Conversation, ConversationId, ConversationOrder, ConversationSummary, Counts,
    FileId, FileMetadata, Message, MessageId, Role, from_micros, to_micros,
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
    fn write_header(
        &self,
        id: ConversationId,
        expected: u64,
        title: &str,
        now: OffsetDateTime,
        message_count: i64,
    ) -> Result<Option<Stamps>> {
        const T: &str = "conversations";
        let rows = self.query(
            UPDATE_CONVERSATION,
            &[
                id.as_uuid(),
                &title,
                &now,
                &message_count,
                &version_param(expected),
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

/// The conflict error for a unique violation in a batch: names the message
/// the server reports (its key detail), or the batch's first.
fn duplicate_in(e: &postgres::Error, chunk: &[Message]) -> Error {
    let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or("");
    let message = chunk
        .iter()
        .find(|m| detail.contains(&m.id.to_string()))
        .or(chunk.first());
    match message {
        Some(m) => Error::conflict(Entity::Message, m.id),
        None => Error::Backend("unique violation in an empty batch".into()),
    }
}

/// Column `i` of `row`; a value that does not decode is a corrupt row.
fn get<'r, T: FromSql<'r>>(
    row: &'r Row,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<T> {
    row.try_get(i).map_err(|e| Error::corrupt(table, column, e))
}

/// Timestamps come back in UTC with microseconds; checked anyway, so a
/// value the other backends could not hold is reported, not returned.
fn time_at(
    row: &Row,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<OffsetDateTime> {
    let t: OffsetDateTime = get(row, i, table, column)?;
    from_micros(to_micros(t)).ok_or_else(|| Error::corrupt(table, column, "out of range"))
}

fn file_at(row: &Row) -> Result<FileMetadata> {
    const T: &str = "file_metadata";
    let size: i64 = get(row, 3, T, "size")?;
    Ok(FileMetadata {
        id: get::<Uuid>(row, 0, T, "id")?.into(),
        filename: get(row, 1, T, "filename")?,
        content_type: get(row, 2, T, "content_type")?,
        size: u64::try_from(size)
            .map_err(|_| Error::corrupt(T, "size", format!("{size} is negative")))?,
        created_at: time_at(row, 4, T, "created_at")?,
    })
}

fn message_at(row: &Row) -> Result<(i64, Message)> {
    message_from(row, 0)
}

/// Decodes `message_columns!()` starting at column `at`.
fn message_from(row: &Row, at: usize) -> Result<(i64, Message)> {
    const T: &str = "messages";
    let role: &str = get(row, at + 3, T, "role")?;
    let role: Role = role.parse().map_err(|e| Error::corrupt(T, "role", e))?;
    let Json(attachments): Json<Vec<Attachment>> = get(row, at + 6, T, "attachments")?;
    Ok((
        get(row, at, T, "position")?,
        Message {
            id: get::<Uuid>(row, at + 1, T, "id")?.into(),
            conversation_id: get::<Uuid>(row, at + 2, T, "conversation_id")?.into(),
            role,
            content: get(row, at + 4, T, "content")?,
            created_at: time_at(row, at + 5, T, "created_at")?,
            attachments,
        },
    ))
}

fn summary_at(row: &Row) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    let count: i64 = get(row, 5, T, "message_count")?;
    Ok(ConversationSummary {
        id: get::<Uuid>(row, 0, T, "id")?.into(),
        title: get(row, 1, T, "title")?,
        created_at: time_at(row, 2, T, "created_at")?,
        updated_at: time_at(row, 3, T, "updated_at")?,
        version: version_from(get(row, 4, T, "version")?, T)?,
        message_count: count.max(0) as u64,
    })
}

/// A version as an SQL bigint (versions count writes: far below `i64::MAX`).
fn version_param(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// The `(timestamp, id)` of a keyset cursor as SQL parameters.
fn key_params(after: TimeKey) -> Result<(OffsetDateTime, Uuid)> {
    let (micros, id) = after;
    let t = from_micros(micros)
        .ok_or_else(|| Error::invalid("cursor", "its timestamp is out of range"))?;
    Ok((t, id))
}

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

    fn touch_conversation(
        &self,
        id: ConversationId,
        bump: Option<OffsetDateTime>,
        added: usize,
    ) -> Result<bool> {
        // Locks the conversation's row, so concurrent appends cannot take the
        // same positions.
        let changed = self.execute(TOUCH_CONVERSATION, &[id.as_uuid(), &bump, &(added as i64)])?;
        Ok(changed > 0)
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

    fn message_page(
        &self,
        conversation: ConversationId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, Message)>> {
        self.query(
            MESSAGES_PAGE,
            &[
                conversation.as_uuid(),
                &after.unwrap_or(i64::MIN),
                &(limit as i64),
            ],
        )?
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

    fn update_conversation(
        &self,
        conversation: &Conversation,
        now: OffsetDateTime,
    ) -> Result<Conversation> {
        update_conversation(self, conversation, now)
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
