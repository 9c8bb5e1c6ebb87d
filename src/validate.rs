//! Input validation, done once in the facade for every backend.
//!
//! Each function turns a caller's input into the exact record a backend
//! stores (ids chosen, timestamps in UTC and truncated to microseconds), or
//! refuses it with [`Error::InvalidInput`] naming the field and the reason.

use std::collections::HashSet;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::limits::*;
use crate::model::{
    Attachment, Conversation, ConversationEdit, ConversationId, FileMetadata, Message, MessageEdit,
    Metadata, NewConversation, NewFile, NewMessage, truncate,
};

/// A new file record from `input`, created at `now` unless it says otherwise.
pub(crate) fn new_file(input: NewFile, now: OffsetDateTime) -> Result<FileMetadata> {
    let NewFile {
        id,
        filename,
        content_type,
        size,
        created_at,
    } = input;
    file_fields(&filename, &content_type, size)?;
    Ok(FileMetadata {
        id: id.unwrap_or_default(),
        filename,
        content_type,
        size,
        created_at: timestamp("created_at", created_at.unwrap_or(now))?,
    })
}

/// A version the store can have handed out: 1 to `i64::MAX`.
fn version(version: u64) -> Result<u64> {
    if version == 0 || i64::try_from(version).is_err() {
        return Err(Error::invalid(
            "version",
            format!(
                "{version} is not a version the store hands out (1 to {})",
                i64::MAX
            ),
        ));
    }
    Ok(version)
}

/// A new conversation (without messages) from `input`.
pub(crate) fn new_conversation(
    input: NewConversation,
    now: OffsetDateTime,
) -> Result<Conversation> {
    text("title", &input.title, MAX_TITLE_BYTES)?;
    metadata(&input.metadata)?;
    let created_at = timestamp("created_at", input.created_at.unwrap_or(now))?;
    Ok(Conversation {
        id: input.id.unwrap_or_default(),
        title: input.title,
        created_at,
        updated_at: created_at,
        version: 1,
        archived_at: None,
        metadata: input.metadata,
        messages: Vec::new(),
    })
}

/// A new message of `conversation_id` from `input`.
pub(crate) fn new_message(
    conversation_id: ConversationId,
    input: NewMessage,
    now: OffsetDateTime,
) -> Result<Message> {
    message_from(conversation_id, input, now)
}

/// A batch of new messages of `conversation_id`, fields named `messages[i].…`.
pub(crate) fn new_messages(
    conversation_id: ConversationId,
    inputs: Vec<NewMessage>,
    now: OffsetDateTime,
) -> Result<Vec<Message>> {
    if inputs.len() > MAX_BATCH {
        return Err(Error::invalid(
            "messages",
            format!("{} messages, at most {MAX_BATCH} per call", inputs.len()),
        ));
    }
    let mut seen = HashSet::with_capacity(inputs.len());
    let mut messages = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let message = message_from(conversation_id, input, now)
            .map_err(|e| e.within(&format!("messages[{i}].")))?;
        if !seen.insert(message.id) {
            return Err(Error::invalid(
                format!("messages[{i}].id"),
                format!("message {} appears twice in the list", message.id),
            ));
        }
        messages.push(message);
    }
    Ok(messages)
}

fn message_from(
    conversation_id: ConversationId,
    input: NewMessage,
    now: OffsetDateTime,
) -> Result<Message> {
    let NewMessage {
        id,
        role,
        content,
        attachments,
        created_at,
        metadata,
    } = input;
    let message = Message {
        id: id.unwrap_or_default(),
        conversation_id,
        role,
        content,
        created_at: created_at.unwrap_or(now),
        attachments,
        parent_id: None,
        metadata,
    };
    stored_message(message)
}

/// A whole conversation as `update` will store it: every field checked,
/// every timestamp normalized, message ids unique and owned by it.
pub(crate) fn conversation(conversation: &Conversation) -> Result<Conversation> {
    text("title", &conversation.title, MAX_TITLE_BYTES)?;
    metadata(&conversation.metadata)?;
    let mut seen = HashSet::with_capacity(conversation.messages.len());
    let mut messages = Vec::with_capacity(conversation.messages.len());
    for (i, message) in conversation.messages.iter().enumerate() {
        let prefix = format!("messages[{i}].");
        if message.conversation_id != conversation.id {
            return Err(Error::invalid(
                format!("{prefix}conversation_id"),
                format!(
                    "is {} but the message is in conversation {}",
                    message.conversation_id, conversation.id
                ),
            ));
        }
        if !seen.insert(message.id) {
            return Err(Error::invalid(
                format!("{prefix}id"),
                format!("message {} appears twice in the list", message.id),
            ));
        }
        messages.push(stored_message(message.clone()).map_err(|e| e.within(&prefix))?);
    }
    Ok(Conversation {
        id: conversation.id,
        title: conversation.title.clone(),
        created_at: timestamp("created_at", conversation.created_at)?,
        updated_at: timestamp("updated_at", conversation.updated_at)?,
        version: version(conversation.version)?,
        archived_at: conversation.archived_at,
        metadata: conversation.metadata.clone(),
        messages,
    })
}

/// A conversation edit, every part it sets checked.
pub(crate) fn conversation_edit(edit: ConversationEdit) -> Result<ConversationEdit> {
    if let Some(title) = &edit.title {
        text("title", title, MAX_TITLE_BYTES)?;
    }
    if let Some(value) = &edit.metadata {
        metadata(value)?;
    }
    if let Some(expected) = edit.if_version {
        version(expected).map_err(|e| e.within("if_"))?;
    }
    Ok(edit)
}

/// A message edit, every part it sets checked as a new message's would be.
pub(crate) fn message_edit(edit: MessageEdit) -> Result<MessageEdit> {
    if let Some(content) = &edit.content {
        text("content", content, MAX_CONTENT_BYTES)?;
    }
    if let Some(attachments) = &edit.attachments {
        attachment_list(attachments)?;
    }
    if let Some(value) = &edit.metadata {
        metadata(value)?;
    }
    if let Some(expected) = edit.if_version {
        version(expected).map_err(|e| e.within("if_"))?;
    }
    Ok(edit)
}

/// Text to append to a message's content: no NUL byte, at most
/// [`MAX_CONTENT_BYTES`] (the whole content is checked where it is stored).
pub(crate) fn delta(delta: &str) -> Result<()> {
    text("delta", delta, MAX_CONTENT_BYTES)
}

/// A page size as a `usize`, refused when 0 or above [`MAX_PAGE_SIZE`].
pub(crate) fn page_limit(limit: u32) -> Result<usize> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}, got {limit}"),
        ));
    }
    Ok(limit as usize)
}

/// Field names are the message's own (`content`); callers add their prefix
/// to an error, so the common, valid case formats nothing.
fn stored_message(mut message: Message) -> Result<Message> {
    text("content", &message.content, MAX_CONTENT_BYTES)?;
    attachment_list(&message.attachments)?;
    metadata(&message.metadata)?;
    message.created_at = timestamp("created_at", message.created_at)?;
    Ok(message)
}

/// App metadata: at most [`MAX_METADATA_BYTES`] of compact JSON, nested at
/// most [`MAX_METADATA_DEPTH`] deep, no NUL character anywhere (PostgreSQL's
/// `jsonb` cannot hold one).
pub(crate) fn metadata(value: &Metadata) -> Result<()> {
    if value.is_empty() {
        return Ok(());
    }
    check_json(value, 1).map_err(|reason| Error::invalid("metadata", reason))?;
    let bytes = serde_json::to_vec(value).map_err(|e| Error::invalid("metadata", e.to_string()))?;
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "metadata",
            format!(
                "is {} bytes of JSON, at most {MAX_METADATA_BYTES} allowed",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Depth and NUL checks of a JSON object at nesting level `depth`, without
/// recursion deeper than the limit.
fn check_json(object: &Metadata, depth: usize) -> Result<(), String> {
    use serde_json::Value;
    fn value(v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::String(s) if s.contains('\0') => Err("contains a NUL character".into()),
            Value::Array(items) => {
                deeper(depth)?;
                items.iter().try_for_each(|v| value(v, depth + 1))
            }
            Value::Object(map) => check_json(map, depth + 1),
            _ => Ok(()),
        }
    }
    fn deeper(depth: usize) -> Result<(), String> {
        if depth >= MAX_METADATA_DEPTH {
            return Err(format!("is nested deeper than {MAX_METADATA_DEPTH} levels"));
        }
        Ok(())
    }
    if depth > MAX_METADATA_DEPTH {
        return Err(format!("is nested deeper than {MAX_METADATA_DEPTH} levels"));
    }
    for (key, v) in object {
        if key.contains('\0') {
            return Err("contains a NUL character in a key".into());
        }
        value(v, depth)?;
    }
    Ok(())
}

fn attachment_list(attachments: &[Attachment]) -> Result<()> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(Error::invalid(
            "attachments",
            format!(
                "{} attachments, at most {MAX_ATTACHMENTS} allowed",
                attachments.len()
            ),
        ));
    }
    for (i, a) in attachments.iter().enumerate() {
        file_fields(&a.filename, &a.content_type, a.size)
            .map_err(|e| e.within(&format!("attachments[{i}].")))?;
    }
    Ok(())
}

fn file_fields(filename: &str, content_type: &str, size: u64) -> Result<()> {
    text("filename", filename, MAX_FILENAME_BYTES)?;
    if filename.trim().is_empty() {
        return Err(Error::invalid("filename", "must not be empty"));
    }
    text("content_type", content_type, MAX_CONTENT_TYPE_BYTES)?;
    if let Err(reason) = check_content_type(content_type) {
        return Err(Error::invalid("content_type", reason));
    }
    if size > MAX_FILE_SIZE {
        return Err(Error::invalid(
            "size",
            format!("{size} does not fit a signed 64-bit integer"),
        ));
    }
    Ok(())
}

/// Refuses NUL bytes (PostgreSQL cannot store them) and strings over `max` bytes.
fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if let Some(at) = value.find('\0') {
        return Err(Error::invalid(
            field,
            format!("contains a NUL byte at offset {at}"),
        ));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("is {} bytes long, at most {max} allowed", value.len()),
        ));
    }
    Ok(())
}

/// `type/subtype`, each an RFC 9110 token, optionally followed by `;` parameters.
fn check_content_type(value: &str) -> Result<(), String> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let (essence, params) = value.split_once(';').unwrap_or((value, ""));
    let ok_essence = essence.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty() && !s.is_empty() && t.chars().all(is_tchar) && s.chars().all(is_tchar)
    });
    if !ok_essence {
        return Err(format!("{value:?} does not look like type/subtype"));
    }
    if params
        .chars()
        .any(|c| !(c == '\t' || (' '..='~').contains(&c)))
    {
        return Err(format!(
            "{value:?} has control or non-ASCII characters in its parameters"
        ));
    }
    Ok(())
}

/// UTC, truncated to microseconds, within the supported years.
pub(crate) fn timestamp(field: &str, t: OffsetDateTime) -> Result<OffsetDateTime> {
    let t = truncate(t);
    if !(MIN_YEAR..=MAX_YEAR).contains(&t.year()) {
        return Err(Error::invalid(
            field,
            format!("year {} is outside {MIN_YEAR}..={MAX_YEAR}", t.year()),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::check_content_type;

    #[test]
    fn content_types() {
        for ok in [
            "text/plain",
            "image/svg+xml",
            "text/plain; charset=utf-8",
            "a/b",
        ] {
            assert!(check_content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "text /plain",
            "text/pl ain",
            "tëxt/plain",
            "a/b/c",
            "a/b;\u{7}",
        ] {
            assert!(check_content_type(bad).is_err(), "{bad:?}");
        }
    }
}
