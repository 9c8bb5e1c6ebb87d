//! The stored records: files, conversations, messages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{ConversationId, FileId, MessageId};
use super::inputs::NewMessage;
use super::timestamps::{now, truncate};
use crate::error::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person using the app.
    #[default]
    User,
    /// The assistant.
    Assistant,
    /// A tool's output.
    Tool,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 4] = [Role::System, Role::User, Role::Assistant, Role::Tool];

    /// The lowercase name, as stored and serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("unknown role {s:?} (expected system, user, assistant or tool)"),
                )
            })
    }
}

/// A file attached to a message. Stored inside the message as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attachment {
    /// The uploaded file's id (it need not have a [`FileMetadata`] record).
    pub file_id: FileId,
    /// The file's name as the user saw it.
    pub filename: String,
    /// MIME type, `type/subtype`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

impl Attachment {
    /// An attachment describing an uploaded file.
    pub fn from_file(file: &FileMetadata) -> Self {
        Attachment {
            file_id: file.id,
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            size: file.size,
        }
    }
}

/// Metadata of an uploaded file (the bytes live elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileMetadata {
    /// Id.
    pub id: FileId,
    /// The file's name.
    pub filename: String,
    /// MIME type, `type/subtype`.
    pub content_type: String,
    /// Size in bytes (at most `i64::MAX`).
    pub size: u64,
    /// When the record was created (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// When it was written (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Attached files, in order; empty by default.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Message {
    /// A message of `conversation_id` built from `input`, with a new id (unless
    /// `input` supplies one) and the current time (unless `input` supplies one).
    ///
    /// Use it to add messages to a [`Conversation`] before
    /// [`update`](crate::ConversationRepository::update).
    pub fn new(conversation_id: ConversationId, input: NewMessage) -> Self {
        Message {
            id: input.id.unwrap_or_default(),
            conversation_id,
            role: input.role,
            content: input.content,
            created_at: input.created_at.map_or_else(now, truncate),
            attachments: input.attachments,
        }
    }
}

/// A conversation with all its messages, in append order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Title (may be empty).
    pub title: String,
    /// When it was created (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it or its messages last changed (UTC, microseconds). Every change
    /// moves it strictly forward.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// How many writes this conversation has seen in this store: 1 when
    /// created, and every write to it (a message appended, an `update`)
    /// moves it forward. [`update`](crate::ConversationRepository::update)
    /// refuses a copy whose version is no longer the stored one with
    /// [`Error::Stale`](crate::Error::Stale). Not carried across stores by
    /// copy or export: each store counts its own writes. When the counts are
    /// reset (the schema migrated below version 3 and up again, which drops
    /// and re-creates the column, or a snapshot restored), every
    /// conversation's version restarts above any handed out before (at the
    /// clock's microseconds since 1970), so a copy read before stays stale.
    #[serde(default = "first_version")]
    pub version: u64,
    /// Messages in append order.
    #[serde(default)]
    pub messages: Vec<Message>,
}

impl Conversation {
    /// Appends a new message to this in-memory value and returns it. Nothing
    /// is stored until [`update`](crate::ConversationRepository::update).
    pub fn push_message(&mut self, input: NewMessage) -> &Message {
        self.messages.push(Message::new(self.id, input));
        &self.messages[self.messages.len() - 1]
    }

    /// The list entry for this conversation.
    pub fn summary(&self) -> ConversationSummary {
        ConversationSummary {
            id: self.id,
            title: self.title.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            message_count: self.messages.len() as u64,
        }
    }
}

/// A conversation as it appears in lists: no messages, only their count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Id.
    pub id: ConversationId,
    /// Title.
    pub title: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The conversation's [`version`](Conversation::version).
    #[serde(default = "first_version")]
    pub version: u64,
    /// How many messages it holds.
    pub message_count: u64,
}

/// The version of a conversation no write has touched since it was created.
fn first_version() -> u64 {
    1
}

impl ConversationSummary {
    /// The conversation this summary lists, with `messages`.
    pub(crate) fn into_conversation(self, messages: Vec<Message>) -> Conversation {
        Conversation {
            id: self.id,
            title: self.title,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            messages,
        }
    }
}
