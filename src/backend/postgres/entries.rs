//! Writes of one message that may change its text (insert, update, edit,
//! a streamed delta), each storing the text's search entry beside it: its
//! tokens and, from V12 on, its token signature
//! ([`signature`](crate::search::signature)). Batches are in
//! [`appends`](super::appends), the index build in [`search`](super::search).

use postgres::types::{Json, ToSql};

use super::PgConn;
use super::errors::conflict_on;
use super::queries::{
    EDIT_MESSAGE, EDIT_MESSAGE_SIGNED, INSERT_MESSAGE, INSERT_MESSAGE_SIGNED, UPDATE_MESSAGE,
    UPDATE_MESSAGE_SIGNED,
};
use super::rows::{message_at, metadata_param};
use super::search::signs;
use super::search_queries::{SET_SEARCH_TOKENS, SET_SEARCH_TOKENS_SIGNED};
use crate::backend::Stored;
use crate::error::{Entity, Error, Result};
use crate::model::{Message, MessageEdit, MessageId};
use crate::search::signature::Signature;
use crate::search::tokenize::index_tokens;

/// A statement's parameters, in order.
pub(super) type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// `plain`, or `signed` with `bits` (a signature, a list of them, or NULL
/// where the text stays as it is) as its last parameter when the schema
/// keeps signatures.
pub(super) fn signed<'a>(
    conn: &mut PgConn,
    (plain, signed): (&'static str, &'static str),
    params: &mut Params<'a>,
    bits: &'a (dyn ToSql + Sync),
) -> Result<&'static str> {
    if !signs(conn)? {
        return Ok(plain);
    }
    params.push(bits);
    Ok(signed)
}

/// Runs `sql`, mapping its own error with `on_error`.
fn execute(
    conn: &mut PgConn,
    sql: &'static str,
    params: &Params<'_>,
    on_error: impl FnOnce(postgres::Error) -> Error,
) -> Result<u64> {
    let statement = conn.statement(sql)?;
    conn.client.execute(&statement, params).map_err(on_error)
}

/// [`Session::insert_message`](crate::backend::Session::insert_message).
pub(super) fn insert_message(conn: &mut PgConn, stored: &Stored) -> Result<()> {
    let m = &stored.message;
    let (role, attachments) = (m.role.as_str(), Json(&m.attachments));
    let parent = m.parent_id.as_ref().map(MessageId::as_uuid);
    let (metadata, tokens) = (metadata_param(&m.metadata)?, index_tokens(&m.content));
    let signature = Signature::of_list(&tokens);
    let bits = Some(signature.as_bytes());
    let mut params: Params<'_> = vec![
        &stored.position,
        &stored.on_path,
        m.id.as_uuid(),
        m.conversation_id.as_uuid(),
        &role,
        &m.content,
        &m.created_at,
        &attachments,
        &parent,
        &metadata,
        &tokens,
    ];
    let statements = (INSERT_MESSAGE, INSERT_MESSAGE_SIGNED);
    let sql = signed(conn, statements, &mut params, &bits)?;
    execute(conn, sql, &params, conflict_on(Entity::Message, m.id))?;
    Ok(())
}

/// [`Session::update_message`](crate::backend::Session::update_message):
/// the search entry is written again only when the text changed.
pub(super) fn update_message(conn: &mut PgConn, stored: &Stored, text_changed: bool) -> Result<()> {
    let m = &stored.message;
    let (role, attachments) = (m.role.as_str(), Json(&m.attachments));
    let parent = m.parent_id.as_ref().map(MessageId::as_uuid);
    let metadata = metadata_param(&m.metadata)?;
    let tokens = text_changed.then(|| index_tokens(&m.content));
    let signature = tokens.as_deref().map(Signature::of_list);
    let bits = signature.as_ref().map(Signature::as_bytes);
    let mut params: Params<'_> = vec![
        m.id.as_uuid(),
        &stored.position,
        &stored.on_path,
        &role,
        &m.content,
        &m.created_at,
        &attachments,
        &parent,
        &metadata,
        &tokens,
    ];
    let statements = (UPDATE_MESSAGE, UPDATE_MESSAGE_SIGNED);
    let sql = signed(conn, statements, &mut params, &bits)?;
    execute(conn, sql, &params, Error::from)?;
    Ok(())
}

/// [`Session::edit_message`](crate::backend::Session::edit_message): the
/// message as edited, `None` when there is none.
pub(super) fn edit_message(
    conn: &mut PgConn,
    id: MessageId,
    edit: &MessageEdit,
) -> Result<Option<Message>> {
    let attachments = edit.attachments.as_deref().map(Json);
    let metadata = edit.metadata.as_ref().map(metadata_param).transpose()?;
    let tokens = edit.content.as_deref().map(index_tokens);
    let signature = tokens.as_deref().map(Signature::of_list);
    let bits = signature.as_ref().map(Signature::as_bytes);
    let mut params: Params<'_> = vec![
        id.as_uuid(),
        &edit.content,
        &attachments,
        &metadata,
        &tokens,
    ];
    let sql = signed(
        conn,
        (EDIT_MESSAGE, EDIT_MESSAGE_SIGNED),
        &mut params,
        &bits,
    )?;
    let statement = conn.statement(sql)?;
    let rows = conn.client.query(&statement, &params)?;
    rows.first().map(message_at).transpose()
}

/// Writes the search entry of message `id`, whose text grew to `content`.
pub(super) fn set_entry(conn: &mut PgConn, id: MessageId, content: &str) -> Result<()> {
    let tokens = index_tokens(content);
    let signature = Signature::of_list(&tokens);
    let bits = Some(signature.as_bytes());
    let mut params: Params<'_> = vec![id.as_uuid(), &tokens];
    let statements = (SET_SEARCH_TOKENS, SET_SEARCH_TOKENS_SIGNED);
    let sql = signed(conn, statements, &mut params, &bits)?;
    execute(conn, sql, &params, Error::from)?;
    Ok(())
}
