//! Appends of messages into PostgreSQL: one below the current leaf in a
//! single statement, and batches by a multi-row `INSERT … FROM UNNEST` of
//! arrays, or binary `COPY` for large ones.
//!
//! The multi-row INSERT makes the server parse every array and plan a
//! statement; binary `COPY` streams rows in their wire format, which a
//! durable server takes faster for large batches. Either runs inside the
//! write transaction like any statement: a row the server refuses (a
//! duplicate id) fails it, the transaction is rolled back, and nothing of
//! the batch stays. Each message's search tokens go with it.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Json, ToSql, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::PgConn;
use super::entries::{self, Params};
use super::errors::conflict_on;
use super::queries::{
    APPEND_MESSAGE, APPEND_MESSAGE_SIGNED, APPEND_MESSAGES, APPEND_MESSAGES_SIGNED, COPY_MESSAGES,
    COPY_MESSAGES_SIGNED, CURRENT_LEAF, LAST_POSITION, LEAF_AND_LAST,
};
use super::rows::{duplicate_in, get, metadata_param};
use super::search::signs;
use crate::backend::message_list::link_branch;
use crate::error::{Entity, Error, Result};
use crate::model::{Attachment, ConversationId, Message, MessageId};
use crate::search::signature::Signature;
use crate::search::tokenize::{index_text, index_tokens};

/// Batches at least this long are copied; shorter ones are inserted in one
/// statement (a copy costs a round trip more, which only volume repays).
const COPY_FROM: usize = 1_000;

/// Messages per multi-row INSERT.
const APPEND_CHUNK: usize = 5_000;

/// The types of `message_columns!()`, `search_tokens` and (signed)
/// `search_bits`, in order.
const TYPES: [Type; 12] = [
    Type::INT8,
    Type::BOOL,
    Type::UUID,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::JSONB,
    Type::UUID,
    Type::JSONB,
    Type::TEXT_ARRAY,
    Type::BYTEA,
];

/// Appends `messages` to conversation `id` after its last position, each
/// on the current branch or not as `on_path` says. The caller holds the
/// conversation's row (so no other writer takes these positions).
pub(super) fn insert_batch(
    conn: &mut PgConn,
    id: ConversationId,
    messages: &[Message],
    on_path: &[bool],
) -> Result<()> {
    if messages.len() >= COPY_FROM {
        return copy_messages(conn, id, messages, on_path, None);
    }
    // One multi-row INSERT per chunk, from arrays.
    let signed = signs(conn)?;
    let flags = on_path.chunks(APPEND_CHUNK);
    for (chunk, on_path) in messages.chunks(APPEND_CHUNK).zip(flags) {
        let ids: Vec<&Uuid> = chunk.iter().map(|m| m.id.as_uuid()).collect();
        let roles: Vec<&str> = chunk.iter().map(|m| m.role.as_str()).collect();
        let contents: Vec<&str> = chunk.iter().map(|m| m.content.as_str()).collect();
        let times: Vec<OffsetDateTime> = chunk.iter().map(|m| m.created_at).collect();
        let attachments: Vec<Json<&Vec<Attachment>>> =
            chunk.iter().map(|m| Json(&m.attachments)).collect();
        let parents: Vec<Option<&Uuid>> = chunk
            .iter()
            .map(|m| m.parent_id.as_ref().map(MessageId::as_uuid))
            .collect();
        let metadata = chunk
            .iter()
            .map(|m| metadata_param(&m.metadata))
            .collect::<Result<Vec<_>>>()?;
        let tokens: Vec<String> = chunk.iter().map(|m| index_text(&m.content)).collect();
        let signatures: Vec<Signature> = match signed {
            true => tokens.iter().map(|t| Signature::of_joined(t)).collect(),
            false => Vec::new(),
        };
        let bits: Vec<&[u8]> = signatures.iter().map(Signature::as_bytes).collect();
        let refused = |e: postgres::Error| {
            if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
                duplicate_in(&e, chunk)
            } else {
                Error::from(e)
            }
        };
        let mut params: Params<'_> = vec![
            id.as_uuid(),
            &ids,
            &roles,
            &contents,
            &times,
            &attachments,
            &parents,
            &on_path,
            &metadata,
            &tokens,
        ];
        let statements = (APPEND_MESSAGES, APPEND_MESSAGES_SIGNED);
        let sql = entries::signed(conn, statements, &mut params, &bits)?;
        let statement = conn.statement(sql)?;
        conn.client.execute(&statement, &params).map_err(refused)?;
    }
    Ok(())
}

/// Appends `m` to conversation `id` below its current leaf, on the
/// current branch; its parent (the leaf it found). The caller holds the
/// conversation's row.
pub(super) fn append_message(
    conn: &mut PgConn,
    id: ConversationId,
    m: &Message,
) -> Result<Option<MessageId>> {
    let tokens = index_tokens(&m.content);
    let signature = Signature::of_list(&tokens);
    let bits = signature.as_bytes();
    let (attachments, metadata) = (Json(&m.attachments), metadata_param(&m.metadata)?);
    let role = m.role.as_str();
    let mut params: Params<'_> = vec![
        m.id.as_uuid(),
        id.as_uuid(),
        &role,
        &m.content,
        &m.created_at,
        &attachments,
        &metadata,
        &tokens,
    ];
    let statements = (APPEND_MESSAGE, APPEND_MESSAGE_SIGNED);
    let sql = entries::signed(conn, statements, &mut params, &bits)?;
    let statement = conn.statement(sql)?;
    let rows = conn
        .client
        .query(&statement, &params)
        .map_err(conflict_on(Entity::Message, m.id))?;
    match rows.first() {
        Some(row) => Ok(get::<Option<Uuid>>(row, 0, "messages", "parent_id")?.map(Into::into)),
        None => Ok(None),
    }
}

/// The last message of conversation `id`'s current branch.
pub(super) fn current_leaf(conn: &mut PgConn, id: ConversationId) -> Result<Option<MessageId>> {
    let statement = conn.statement(CURRENT_LEAF)?;
    match conn.client.query_opt(&statement, &[id.as_uuid()])? {
        Some(row) => Ok(Some(get::<Uuid>(&row, 0, "messages", "id")?.into())),
        None => Ok(None),
    }
}

/// [`Session::insert_chain`](crate::backend::Session::insert_chain): a
/// chain to copy reads the current leaf and the last position in one
/// statement (a copy would read the position alone in another).
pub(super) fn insert_chain(
    conn: &mut PgConn,
    id: ConversationId,
    messages: &mut [Message],
) -> Result<()> {
    let on_path = vec![true; messages.len()];
    if messages.len() < COPY_FROM {
        link_branch(messages, current_leaf(conn, id)?);
        return insert_batch(conn, id, messages, &on_path);
    }
    let statement = conn.statement(LEAF_AND_LAST)?;
    let row = conn.client.query_one(&statement, &[id.as_uuid()])?;
    let leaf = get::<Option<Uuid>>(&row, 0, "messages", "id")?;
    let last = get::<i64>(&row, 1, "messages", "position")?;
    link_branch(messages, leaf.map(Into::into));
    copy_messages(conn, id, messages, &on_path, Some(last))
}

/// [`insert_batch`] by binary `COPY`, after position `last` (read here
/// when `None`).
fn copy_messages(
    conn: &mut PgConn,
    id: ConversationId,
    messages: &[Message],
    on_path: &[bool],
    last: Option<i64>,
) -> Result<()> {
    let base: i64 = match last {
        Some(last) => last,
        None => {
            let statement = conn.statement(LAST_POSITION)?;
            conn.client.query_one(&statement, &[id.as_uuid()])?.get(0)
        }
    };
    let signed = signs(conn)?;
    let (copy, types) = match signed {
        true => (conn.statement(COPY_MESSAGES_SIGNED)?, &TYPES[..]),
        false => (conn.statement(COPY_MESSAGES)?, &TYPES[..TYPES.len() - 1]),
    };
    let refused = |e: postgres::Error| {
        if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
            duplicate_in(&e, messages)
        } else {
            Error::from(e)
        }
    };
    let mut writer = BinaryCopyInWriter::new(conn.client.copy_in(&copy)?, types);
    for ((position, m), on_path) in (base + 1..).zip(messages).zip(on_path) {
        let parent = m.parent_id.as_ref().map(MessageId::as_uuid);
        let tokens = index_tokens(&m.content);
        let signature = Signature::of_list(&tokens);
        let bits = signature.as_bytes();
        let metadata = metadata_param(&m.metadata)?;
        let row: [&(dyn ToSql + Sync); 12] = [
            &position,
            on_path,
            m.id.as_uuid(),
            id.as_uuid(),
            &m.role.as_str(),
            &m.content,
            &m.created_at,
            &Json(&m.attachments),
            &parent,
            &metadata,
            &tokens,
            &bits,
        ];
        writer.write(&row[..types.len()]).map_err(refused)?;
    }
    writer.finish().map_err(refused)?;
    Ok(())
}
