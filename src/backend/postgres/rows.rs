//! Decoding PostgreSQL rows into records, and records into parameters.

use postgres::Row;
use postgres::types::{FromSql, Json};
use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::sql::version_from;
use crate::backend::{Node, Stored, TimeKey};
use crate::error::{Entity, Error, Result};
use crate::model::{
    Attachment, ConversationId, ConversationSummary, FileMetadata, Message, Metadata, Role,
    from_micros, to_micros,
};

/// The conflict error for a unique violation in a batch: names the message
/// the server reports (its key detail), or the batch's first.
pub(super) fn duplicate_in(e: &postgres::Error, chunk: &[Message]) -> Error {
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
pub(super) fn get<'r, T: FromSql<'r>>(
    row: &'r Row,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<T> {
    row.try_get(i).map_err(|e| Error::corrupt(table, column, e))
}

/// Timestamps come back in UTC with microseconds; checked anyway, so a
/// value the other backends could not hold is reported, not returned.
pub(super) fn time_at(
    row: &Row,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<OffsetDateTime> {
    let t: OffsetDateTime = get(row, i, table, column)?;
    from_micros(to_micros(t)).ok_or_else(|| Error::corrupt(table, column, "out of range"))
}

pub(super) fn file_at(row: &Row) -> Result<FileMetadata> {
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

fn optional_time_at(
    row: &Row,
    i: usize,
    table: &'static str,
    column: &'static str,
) -> Result<Option<OffsetDateTime>> {
    let t: Option<OffsetDateTime> = get(row, i, table, column)?;
    t.map(|t| {
        from_micros(to_micros(t)).ok_or_else(|| Error::corrupt(table, column, "out of range"))
    })
    .transpose()
}

fn metadata_at(row: &Row, i: usize, table: &'static str) -> Result<Metadata> {
    let Json(metadata): Json<Metadata> = get(row, i, table, "metadata")?;
    Ok(metadata)
}

/// Decodes a row of `message_columns!()`.
pub(super) fn stored_at(row: &Row) -> Result<Stored> {
    stored_from(row, 0)
}

/// Decodes the message of a row of `message_columns!()`.
pub(super) fn message_at(row: &Row) -> Result<Message> {
    Ok(stored_from(row, 0)?.message)
}

const MESSAGES: &str = "messages";

/// Decodes `message_columns!()` starting at column `at`.
fn stored_from(row: &Row, at: usize) -> Result<Stored> {
    const T: &str = MESSAGES;
    Ok(Stored {
        position: get(row, at, T, "position")?,
        on_path: get(row, at + 1, T, "on_path")?,
        message: Message {
            id: get::<Uuid>(row, at + 2, T, "id")?.into(),
            conversation_id: get::<Uuid>(row, at + 3, T, "conversation_id")?.into(),
            role: role_at(row, at + 4)?,
            content: get(row, at + 5, T, "content")?,
            created_at: time_at(row, at + 6, T, "created_at")?,
            attachments: attachments_at(row, at + 7)?,
            parent_id: get::<Option<Uuid>>(row, at + 8, T, "parent_id")?.map(Into::into),
            metadata: metadata_at(row, at + 9, T)?,
        },
    })
}

/// Decodes a message of `conversation`'s current branch from the columns
/// `id, role, content, created_at, attachments, metadata` starting at `at`
/// (the conversation is known, and the parent is the message before: see
/// `link_branch`); empty metadata may come as NULL.
pub(super) fn branch_message_at(
    row: &Row,
    at: usize,
    conversation: ConversationId,
) -> Result<Message> {
    const T: &str = MESSAGES;
    Ok(Message {
        id: get::<Uuid>(row, at, T, "id")?.into(),
        conversation_id: conversation,
        role: role_at(row, at + 1)?,
        content: get(row, at + 2, T, "content")?,
        created_at: time_at(row, at + 3, T, "created_at")?,
        attachments: attachments_at(row, at + 4)?,
        parent_id: None,
        // Empty metadata comes as NULL (see CONVERSATION_WITH_MESSAGES).
        metadata: get::<Option<Json<Metadata>>>(row, at + 5, T, "metadata")?
            .map(|Json(metadata)| metadata)
            .unwrap_or_default(),
    })
}

pub(super) fn role_at(row: &Row, i: usize) -> Result<Role> {
    let role: &str = get(row, i, MESSAGES, "role")?;
    role.parse()
        .map_err(|e| Error::corrupt(MESSAGES, "role", e))
}

fn attachments_at(row: &Row, i: usize) -> Result<Vec<Attachment>> {
    let Json(attachments) = get(row, i, MESSAGES, "attachments")?;
    Ok(attachments)
}

/// Decodes a row of `node_columns!()`.
pub(super) fn node_at(row: &Row) -> Result<Node> {
    const T: &str = "messages";
    Ok(Node {
        id: get::<Uuid>(row, 0, T, "id")?.into(),
        conversation_id: get::<Uuid>(row, 1, T, "conversation_id")?.into(),
        parent_id: get::<Option<Uuid>>(row, 2, T, "parent_id")?.map(Into::into),
        position: get(row, 3, T, "position")?,
        on_path: get(row, 4, T, "on_path")?,
    })
}

/// Decodes a row of `summary_columns!()`.
pub(super) fn summary_at(row: &Row) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    let count: i64 = get(row, 7, T, "message_count")?;
    Ok(ConversationSummary {
        id: get::<Uuid>(row, 0, T, "id")?.into(),
        title: get(row, 1, T, "title")?,
        created_at: time_at(row, 2, T, "created_at")?,
        updated_at: time_at(row, 3, T, "updated_at")?,
        version: version_from(get(row, 4, T, "version")?, T)?,
        archived_at: optional_time_at(row, 5, T, "archived_at")?,
        metadata: metadata_at(row, 6, T)?,
        message_count: count.max(0) as u64,
    })
}

/// The header of a conversation read with its messages (title,
/// created_at, updated_at, version, archived_at, metadata, message_count).
pub(super) fn header_at(row: &Row, id: Uuid) -> Result<ConversationSummary> {
    const T: &str = "conversations";
    Ok(ConversationSummary {
        id: id.into(),
        title: get(row, 0, T, "title")?,
        created_at: time_at(row, 1, T, "created_at")?,
        updated_at: time_at(row, 2, T, "updated_at")?,
        version: version_from(get(row, 3, T, "version")?, T)?,
        archived_at: optional_time_at(row, 4, T, "archived_at")?,
        metadata: metadata_at(row, 5, T)?,
        message_count: get::<i64>(row, 6, T, "message_count")?.max(0) as u64,
    })
}

/// Writes floats so that `jsonb` keeps them floats: a whole number that
/// serde_json would write as `1e16` becomes `10000000000000000.0`, since
/// `jsonb` stores `1e16` as the integer 10000000000000000, which would read
/// back as an integer, not the `f64` written.
struct FloatsStayFloats;

impl serde_json::ser::Formatter for FloatsStayFloats {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        // Past 2^64 serde_json reads any whole number back as an f64.
        if value.fract() == 0.0 && value.abs() < 18_446_744_073_709_551_616.0 {
            write!(writer, "{value:.1}")
        } else {
            serde_json::ser::CompactFormatter.write_f64(writer, value)
        }
    }
}

/// Metadata as a `jsonb` parameter, floats kept floats.
pub(super) fn metadata_param(metadata: &Metadata) -> Result<Json<Box<RawValue>>> {
    let mut text = Vec::with_capacity(64);
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, FloatsStayFloats);
    metadata
        .serialize(&mut serializer)
        .map_err(|e| Error::Backend(Box::new(e)))?;
    let text = String::from_utf8(text).map_err(|e| Error::Backend(Box::new(e)))?;
    let raw = RawValue::from_string(text).map_err(|e| Error::Backend(Box::new(e)))?;
    Ok(Json(raw))
}

/// The `(timestamp, id)` of a keyset cursor as SQL parameters.
pub(super) fn key_params(after: TimeKey) -> Result<(OffsetDateTime, Uuid)> {
    let (micros, id) = after;
    let t = from_micros(micros)
        .ok_or_else(|| Error::invalid("cursor", "its timestamp is out of range"))?;
    Ok((t, id))
}
