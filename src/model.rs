//! The domain model: ids, records, inputs and keyset pages.
//!
//! Every type here derives serde's `Serialize` and `Deserialize`, so an app can
//! hand records straight to its front end. Timestamps are UTC
//! [`OffsetDateTime`]s with microsecond precision on every backend and are
//! serialized as RFC 3339 strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::error::{Error, Result};

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Wraps a UUID; new ids are version 7 (time-ordered), so ids made later
        /// sort after ids made earlier. Serialized as the hyphenated UUID string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (of any version).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The wrapped UUID.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|e| Error::invalid(stringify!($name), e.to_string()))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// Id of a [`Conversation`].
    ConversationId
);
typed_id!(
    /// Id of a [`Message`].
    MessageId
);
typed_id!(
    /// Id of a [`FileMetadata`] record.
    FileId
);

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
    /// How many messages it holds.
    pub message_count: u64,
}

impl ConversationSummary {
    /// The conversation this summary lists, with `messages`.
    pub(crate) fn into_conversation(self, messages: Vec<Message>) -> Conversation {
        Conversation {
            id: self.id,
            title: self.title,
            created_at: self.created_at,
            updated_at: self.updated_at,
            messages,
        }
    }
}

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
}

/// An opaque keyset cursor: where the next page starts.
///
/// It serializes as a short string an app can hand to its front end and take
/// back. A cursor only fits the kind of list it came from; any other use is an
/// [`Error::InvalidInput`] naming `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(pub(crate) CursorKey);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CursorKey {
    /// Files, newest first: the last item's (created_at micros, id).
    Files(i64, Uuid),
    /// Conversations by `updated_at`, newest first.
    ByUpdated(i64, Uuid),
    /// Conversations by `created_at`, newest first.
    ByCreated(i64, Uuid),
    /// Messages of a conversation in append order: the last item's position.
    Messages(i64),
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CursorKey::Files(t, id) => write!(f, "f.{t}.{}", id.simple()),
            CursorKey::ByUpdated(t, id) => write!(f, "u.{t}.{}", id.simple()),
            CursorKey::ByCreated(t, id) => write!(f, "c.{t}.{}", id.simple()),
            CursorKey::Messages(p) => write!(f, "m.{p}"),
        }
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", format!("{s:?} is not a cursor this crate made"));
        let mut parts = s.split('.');
        let (kind, first) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
        let number: i64 = first.parse().map_err(|_| bad())?;
        let uuid = parts.next().map(Uuid::try_parse);
        if parts.next().is_some() {
            return Err(bad());
        }
        let key = match (kind, uuid) {
            ("m", None) => CursorKey::Messages(number),
            ("f", Some(Ok(id))) => CursorKey::Files(number, id),
            ("u", Some(Ok(id))) => CursorKey::ByUpdated(number, id),
            ("c", Some(Ok(id))) => CursorKey::ByCreated(number, id),
            _ => return Err(bad()),
        };
        Ok(Cursor(key))
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which page of a list to read: at most `limit` items after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PageRequest {
    /// Most items to return, 1 to [`MAX_PAGE_SIZE`](crate::limits::MAX_PAGE_SIZE).
    pub limit: u32,
    /// Start after this cursor; `None` for the first page.
    #[serde(default)]
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { limit, after: None }
    }

    /// The same request, continuing after `cursor` (usually the previous page's `next`).
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.after = Some(cursor);
        self
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<Cursor>,
}

/// The order of [`ConversationRepository::list`](crate::ConversationRepository::list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationOrder {
    /// Most recently changed first.
    #[default]
    UpdatedAt,
    /// Most recently created first.
    CreatedAt,
}

/// Which conversations to list, in which order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationQuery {
    /// Sort key (always newest first, ties broken by id).
    pub order: ConversationOrder,
    /// Page size and position.
    pub page: PageRequest,
}

impl ConversationQuery {
    /// The `limit` most recently changed conversations.
    pub fn recent(limit: u32) -> Self {
        ConversationQuery {
            order: ConversationOrder::UpdatedAt,
            page: PageRequest::first(limit),
        }
    }

    /// The `limit` most recently created conversations.
    pub fn newest(limit: u32) -> Self {
        ConversationQuery {
            order: ConversationOrder::CreatedAt,
            page: PageRequest::first(limit),
        }
    }

    /// The same query, continuing after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.page.after = Some(cursor);
        self
    }
}

/// The current UTC time truncated to microseconds.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// `t` in UTC, truncated to microseconds: the precision every backend keeps.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    // Out-of-range conversions keep `t`; validation then refuses its year.
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Microseconds since the Unix epoch (for storage and cursors).
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    // Validated timestamps lie within years 1..=9999, far inside i64 microseconds.
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]; `None` when out of range.
pub(crate) fn from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// A strictly later `updated_at` than `previous`: now, or one microsecond
/// after `previous` when the clock has not moved on (or went back).
pub(crate) fn bump(previous: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    let next = previous
        .checked_add(Duration::microseconds(1))
        .unwrap_or(previous);
    now.max(next)
}
