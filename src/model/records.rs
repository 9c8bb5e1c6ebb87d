//! The stored records: files, conversations, messages.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{ConversationId, FileId, MessageId};
use super::inputs::NewMessage;
use super::metadata::Metadata;
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
    /// The message it answers or follows: the one before it on its branch,
    /// `None` for a first message. Set by the store (an append follows the
    /// current leaf, [`branch_from`](crate::ConversationRepository::branch_from)
    /// names it); what a caller puts here is not read.
    #[serde(default)]
    pub parent_id: Option<MessageId>,
    /// App-defined data kept with the message (see [`Metadata`]).
    #[serde(default)]
    pub metadata: Metadata,
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
            parent_id: None,
            metadata: input.metadata,
        }
    }
}

/// A conversation with the messages of its current branch: from the first
/// message to the current leaf, in order. Other branches are left out; read
/// them with [`tree`](crate::ConversationRepository::tree).
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
    /// When it was archived, or `None` when it is not. Archived
    /// conversations are left out of [`list`](crate::ConversationRepository::list)
    /// unless the query asks for them.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    /// App-defined data kept with the conversation (see [`Metadata`]).
    #[serde(default)]
    pub metadata: Metadata,
    /// The current branch, from its first message to the current leaf (the
    /// last): in a conversation that never branched, every message in
    /// append order.
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

    /// The list entry for this conversation. Its `message_count` counts the
    /// messages of this value: of the current branch (all of them in a
    /// conversation that never branched).
    pub fn summary(&self) -> ConversationSummary {
        self.summary_counting(self.messages.len() as u64)
    }

    /// The list entry for this conversation, holding `message_count`
    /// messages in all.
    pub(crate) fn summary_counting(&self, message_count: u64) -> ConversationSummary {
        ConversationSummary {
            id: self.id,
            title: self.title.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            archived_at: self.archived_at,
            metadata: self.metadata.clone(),
            message_count,
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
    /// When it was archived, if it is.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    /// The conversation's [`metadata`](Conversation::metadata).
    #[serde(default)]
    pub metadata: Metadata,
    /// How many messages it holds, on every branch.
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
            archived_at: self.archived_at,
            metadata: self.metadata,
            messages,
        }
    }
}

/// A conversation with every message on every branch: what
/// [`tree`](crate::ConversationRepository::tree) reads.
///
/// Messages form a tree through their
/// [`parent_id`](Message::parent_id); the current branch runs from a first
/// message down to [`current_leaf`](Self::current_leaf).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationTree {
    /// The conversation's row; `message_count` counts every branch.
    pub conversation: ConversationSummary,
    /// The last message of the current branch (`None`: no messages).
    pub current_leaf: Option<MessageId>,
    /// Every message, oldest first (a parent always before its children).
    pub messages: Vec<Message>,
}

impl ConversationTree {
    /// The messages whose parent is `parent` (`None`: the first messages),
    /// oldest first: the alternatives a "2 / 3" switcher steps through.
    pub fn children(&self, parent: Option<MessageId>) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(move |m| m.parent_id == parent)
    }

    /// The current branch, from its first message to the current leaf.
    pub fn current_path(&self) -> Vec<&Message> {
        let by_id: std::collections::HashMap<MessageId, &Message> =
            self.messages.iter().map(|m| (m.id, m)).collect();
        let mut path = Vec::new();
        let mut next = self.current_leaf;
        while let Some(message) = next.and_then(|id| by_id.get(&id)) {
            path.push(*message);
            next = message.parent_id;
            if path.len() > self.messages.len() {
                break; // a cycle: only a damaged store could hold one
            }
        }
        path.reverse();
        path
    }
}
