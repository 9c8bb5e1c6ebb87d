//! Decoding PostgreSQL rows into records, and records into parameters.

use postgres::Row;
use postgres::types::{FromSql, Json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::TimeKey;
use crate::backend::sql::version_from;
use crate::error::{Entity, Error, Result};
use crate::model::{
    Attachment, ConversationSummary, FileMetadata, Message, Role, from_micros, to_micros,
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

pub(super) fn message_at(row: &Row) -> Result<(i64, Message)> {
    message_from(row, 0)
}

/// Decodes `message_columns!()` starting at column `at`.
pub(super) fn message_from(row: &Row, at: usize) -> Result<(i64, Message)> {
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

pub(super) fn summary_at(row: &Row) -> Result<ConversationSummary> {
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

/// The `(timestamp, id)` of a keyset cursor as SQL parameters.
pub(super) fn key_params(after: TimeKey) -> Result<(OffsetDateTime, Uuid)> {
    let (micros, id) = after;
    let t = from_micros(micros)
        .ok_or_else(|| Error::invalid("cursor", "its timestamp is out of range"))?;
    Ok((t, id))
}
