//! Decoding SQLite rows into records, and binding values into statements.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::sql::version_from;
use crate::backend::{Node, Stored};
use crate::error::{Error, Result};
use crate::model::{
    Attachment, ConversationId, ConversationSummary, FileMetadata, Message, Metadata, Role,
    from_micros,
};

/// A UUID bound as its hyphenated lowercase text without allocating.
pub(super) struct Key([u8; 36]);

pub(super) fn key(id: impl Into<Uuid>) -> Key {
    let mut buf = [0u8; 36];
    id.into().hyphenated().encode_lower(&mut buf);
    Key(buf)
}

impl ToSql for Key {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

pub(super) fn uuid_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Uuid> {
    let text = row.get_ref(i)?;
    let text = text
        .as_str()
        .map_err(|e| Error::corrupt(table, column, e))?;
    Uuid::try_parse(text).map_err(|e| Error::corrupt(table, column, e))
}

fn optional_uuid_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Option<Uuid>> {
    if row.get_ref(i)? == ValueRef::Null {
        return Ok(None);
    }
    uuid_at(row, i, table, column).map(Some)
}

pub(super) fn time_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<OffsetDateTime> {
    let micros: i64 = row.get(i)?;
    from_micros(micros)
        .ok_or_else(|| Error::corrupt(table, column, format!("{micros} is out of range")))
}

fn optional_time_at(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Option<OffsetDateTime>> {
    if row.get_ref(i)? == ValueRef::Null {
        return Ok(None);
    }
    time_at(row, i, table, column).map(Some)
}

/// A JSON column decoded as `T`.
fn json_at<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<T> {
    let text = row.get_ref(i)?;
    let text = text
        .as_str()
        .map_err(|e| Error::corrupt(table, column, e))?;
    serde_json::from_str(text).map_err(|e| Error::corrupt(table, column, e))
}

pub(super) fn metadata_at(row: &Row<'_>, i: usize, table: &'static str) -> Result<Metadata> {
    // Most rows hold none: no parser for the empty object.
    if row.get_ref(i)? == ValueRef::Text(b"{}") {
        return Ok(Metadata::new());
    }
    json_at(row, i, table, "metadata")
}

/// Decodes a row of `file_columns!()`.
pub(super) fn file_at(row: &Row<'_>) -> Result<FileMetadata> {
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
pub(super) fn stored_at(row: &Row<'_>) -> Result<Stored> {
    stored_from(row, 0)
}

/// Decodes the message of a row of `message_columns!()`.
pub(super) fn message_at(row: &Row<'_>) -> Result<Message> {
    Ok(stored_from(row, 0)?.message)
}

const MESSAGES: &str = "messages";

/// Decodes `message_columns!()` starting at column `at`.
fn stored_from(row: &Row<'_>, at: usize) -> Result<Stored> {
    const T: &str = MESSAGES;
    Ok(Stored {
        position: row.get(at)?,
        on_path: row.get(at + 1)?,
        message: Message {
            id: uuid_at(row, at + 2, T, "id")?.into(),
            conversation_id: uuid_at(row, at + 3, T, "conversation_id")?.into(),
            role: role_at(row, at + 4)?,
            content: row.get(at + 5)?,
            created_at: time_at(row, at + 6, T, "created_at")?,
            attachments: attachments_at(row, at + 7)?,
            parent_id: optional_uuid_at(row, at + 8, T, "parent_id")?.map(Into::into),
            metadata: metadata_at(row, at + 9, T)?,
        },
    })
}

/// Decodes a message of `conversation`'s current branch from the columns
/// `id, role, content, created_at, attachments, metadata` starting at `at`
/// (the conversation is known, and the parent is the message before: see
/// `link_branch`).
pub(super) fn branch_message_at(
    row: &Row<'_>,
    at: usize,
    conversation: ConversationId,
) -> Result<Message> {
    const T: &str = MESSAGES;
    Ok(Message {
        id: uuid_at(row, at, T, "id")?.into(),
        conversation_id: conversation,
        role: role_at(row, at + 1)?,
        content: row.get(at + 2)?,
        created_at: time_at(row, at + 3, T, "created_at")?,
        attachments: attachments_at(row, at + 4)?,
        parent_id: None,
        metadata: metadata_at(row, at + 5, T)?,
    })
}

pub(super) fn role_at(row: &Row<'_>, i: usize) -> Result<Role> {
    let role = row.get_ref(i)?;
    let role = role
        .as_str()
        .map_err(|e| Error::corrupt(MESSAGES, "role", e))?;
    role.parse()
        .map_err(|e| Error::corrupt(MESSAGES, "role", e))
}

fn attachments_at(row: &Row<'_>, i: usize) -> Result<Vec<Attachment>> {
    // Most messages have none: no parser for the empty list.
    if row.get_ref(i)? == ValueRef::Text(b"[]") {
        return Ok(Vec::new());
    }
    json_at(row, i, MESSAGES, "attachments")
}

/// Decodes a row of `node_columns!()`.
pub(super) fn node_at(row: &Row<'_>) -> Result<Node> {
    const T: &str = "messages";
    Ok(Node {
        id: uuid_at(row, 0, T, "id")?.into(),
        conversation_id: uuid_at(row, 1, T, "conversation_id")?.into(),
        parent_id: optional_uuid_at(row, 2, T, "parent_id")?.map(Into::into),
        position: row.get(3)?,
        on_path: row.get(4)?,
    })
}

/// Decodes a row of `summary_columns!()`.
pub(super) fn summary_at(row: &Row<'_>) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    let count: i64 = row.get(7)?;
    Ok(ConversationSummary {
        id: uuid_at(row, 0, T, "id")?.into(),
        title: row.get(1)?,
        created_at: time_at(row, 2, T, "created_at")?,
        updated_at: time_at(row, 3, T, "updated_at")?,
        version: version_from(row.get(4)?, T)?,
        archived_at: optional_time_at(row, 5, T, "archived_at")?,
        metadata: metadata_at(row, 6, T)?,
        message_count: count.max(0) as u64,
    })
}

/// The header of a conversation read with its messages (title,
/// created_at, updated_at, version, archived_at, metadata, message_count).
pub(super) fn header_at(row: &Row<'_>, id: Uuid) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    Ok(ConversationSummary {
        id: id.into(),
        title: row.get(0)?,
        created_at: time_at(row, 1, T, "created_at")?,
        updated_at: time_at(row, 2, T, "updated_at")?,
        version: version_from(row.get(3)?, T)?,
        archived_at: optional_time_at(row, 4, T, "archived_at")?,
        metadata: metadata_at(row, 5, T)?,
        message_count: row.get::<_, i64>(6)?.max(0) as u64,
    })
}

pub(super) fn json<T: serde::Serialize + ?Sized>(
    value: &T,
    empty: &'static str,
    is_empty: bool,
) -> Result<String> {
    if is_empty {
        return Ok(empty.to_owned());
    }
    serde_json::to_string(value).map_err(|e| Error::Backend(Box::new(e)))
}

pub(super) fn attachments_json(attachments: &[Attachment]) -> Result<String> {
    json(attachments, "[]", attachments.is_empty())
}

pub(super) fn metadata_json(metadata: &Metadata) -> Result<String> {
    json(metadata, "{}", metadata.is_empty())
}

/// Decodes every row of `rows`.
pub(super) fn collect<T>(
    mut rows: rusqlite::Rows<'_>,
    decode: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(decode(row)?);
    }
    Ok(out)
}
