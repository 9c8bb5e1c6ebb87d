//! Inputs of the create and append calls.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{ConversationId, FileId, MessageId};
use super::metadata::Metadata;
use super::records::{Attachment, Role};

/// Input of [`FileRepository::create`](crate::FileRepository::create).
///
/// `id` and `created_at` are normally left `None`: the store makes a UUID v7
/// and takes the current time. Supply them to import existing records.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewFile {
    /// Id to use instead of a new one.
    #[serde(default)]
    pub id: Option<FileId>,
    /// The file's name; not empty.
    pub filename: String,
    /// MIME type, `type/subtype`.
    pub content_type: String,
    /// Size in bytes; at most `i64::MAX`.
    pub size: u64,
    /// Creation time to use instead of now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// Input of [`ConversationRepository::create`](crate::ConversationRepository::create).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewConversation {
    /// Id to use instead of a new one.
    #[serde(default)]
    pub id: Option<ConversationId>,
    /// Title; may be empty.
    pub title: String,
    /// Creation time to use instead of now (also the first `updated_at`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// App-defined data (see [`Metadata`]).
    #[serde(default)]
    pub metadata: Metadata,
}

impl NewConversation {
    /// A conversation input with this title.
    pub fn titled(title: impl Into<String>) -> Self {
        NewConversation {
            title: title.into(),
            ..Default::default()
        }
    }
}

/// Input of [`ConversationRepository::append_message`](crate::ConversationRepository::append_message).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewMessage {
    /// Id to use instead of a new one.
    #[serde(default)]
    pub id: Option<MessageId>,
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// Attached files.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Time to use instead of now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// App-defined data (see [`Metadata`]).
    #[serde(default)]
    pub metadata: Metadata,
}

impl NewMessage {
    /// A message input with this role and text, no attachments.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        NewMessage {
            role,
            content: content.into(),
            ..Default::default()
        }
    }

    /// The same input with these attachments.
    pub fn with_attachments(mut self, attachments: Vec<Attachment>) -> Self {
        self.attachments = attachments;
        self
    }

    /// The same input with this metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A change to one message, for
/// [`ConversationRepository::edit_message`](crate::ConversationRepository::edit_message):
/// each part left `None` stays as stored.
///
/// ```
/// use silmari_store::MessageEdit;
///
/// let edit = MessageEdit::new().content("Fixed the typo.").if_version(7);
/// assert_eq!(edit.content.as_deref(), Some("Fixed the typo."));
/// assert!(edit.attachments.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageEdit {
    /// The new text.
    #[serde(default)]
    pub content: Option<String>,
    /// The new attachment list (replaces the old one whole).
    #[serde(default)]
    pub attachments: Option<Vec<Attachment>>,
    /// The new metadata (replaces the old object whole).
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Write only if the conversation is still at this
    /// [`version`](crate::Conversation::version), else
    /// [`Error::Stale`](crate::Error::Stale): for an edit made on a copy the
    /// user was looking at.
    #[serde(default)]
    pub if_version: Option<u64>,
}

impl MessageEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same edit, setting the text.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// The same edit, replacing the attachment list.
    pub fn attachments(mut self, attachments: Vec<Attachment>) -> Self {
        self.attachments = Some(attachments);
        self
    }

    /// The same edit, replacing the metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The same edit, made only if the conversation is at `version`.
    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }
}

/// A change to a conversation's own fields, for
/// [`ConversationRepository::edit`](crate::ConversationRepository::edit):
/// each part left `None` stays as stored. Its messages are not read or
/// written.
///
/// ```
/// use silmari_store::{ConversationEdit, Metadata};
///
/// let mut pinned = Metadata::new();
/// pinned.insert("pinned".into(), true.into());
/// let edit = ConversationEdit::new().title("Trip to Lisbon").metadata(pinned);
/// assert_eq!(edit.title.as_deref(), Some("Trip to Lisbon"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConversationEdit {
    /// The new title.
    #[serde(default)]
    pub title: Option<String>,
    /// The new metadata (replaces the old object whole).
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Write only if the conversation is still at this
    /// [`version`](crate::Conversation::version), else
    /// [`Error::Stale`](crate::Error::Stale).
    #[serde(default)]
    pub if_version: Option<u64>,
}

impl ConversationEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same edit, setting the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The same edit, replacing the metadata.
    pub fn metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The same edit, made only if the conversation is at `version`.
    pub fn if_version(mut self, version: u64) -> Self {
        self.if_version = Some(version);
        self
    }
}
