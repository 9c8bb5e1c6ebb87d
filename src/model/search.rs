//! Search: the query an app asks, and the hits it gets back.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ids::{ConversationId, MessageId};
use super::page::{Archived, Cursor, PageRequest};
use super::records::Role;

/// The order of [`Store::search`](crate::Store::search)'s hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchOrder {
    /// Best match first, among the [`RELEVANCE_WINDOW`](crate::limits::RELEVANCE_WINDOW)
    /// newest hits (ties: newest first).
    #[default]
    Relevance,
    /// Newest first (by the message's, or for a title the conversation's,
    /// `created_at`).
    NewestFirst,
}

/// Which messages of a conversation a search looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchBranches {
    /// Only the messages of each conversation's current branch (the default).
    #[default]
    Current,
    /// Every message, on every branch.
    All,
}

/// What [`Store::search`](crate::Store::search) looks for: the query text in
/// the [query language](crate::Store::search), filters, order and page.
///
/// ```
/// use silmari_store::{Role, SearchQuery};
///
/// let query = SearchQuery::new("storm \"the letter\" harb*")
///     .newest_first()
///     .role(Role::Assistant)
///     .limit(20);
/// assert_eq!(query.page.limit, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SearchQuery {
    /// The query text.
    pub text: String,
    /// Only this conversation.
    #[serde(default)]
    pub conversation: Option<ConversationId>,
    /// Only messages of this role (titles are then not searched).
    #[serde(default)]
    pub role: Option<Role>,
    /// Only hits created at or after this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Only hits created before this time.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Whether archived conversations are searched: not by default.
    #[serde(default)]
    pub archived: Archived,
    /// Current branches only (the default), or every branch.
    #[serde(default)]
    pub branches: SearchBranches,
    /// Relevance (the default) or newest first.
    #[serde(default)]
    pub order: SearchOrder,
    /// Page size and position (the cursor of a previous page of the same query).
    pub page: PageRequest,
}

impl SearchQuery {
    /// The first 20 hits of `text`, best first, in conversations that are
    /// not archived, on current branches.
    pub fn new(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            conversation: None,
            role: None,
            since: None,
            until: None,
            archived: Archived::Hide,
            branches: SearchBranches::Current,
            order: SearchOrder::Relevance,
            page: PageRequest::first(20),
        }
    }

    /// Newest hits first.
    pub fn newest_first(mut self) -> Self {
        self.order = SearchOrder::NewestFirst;
        self
    }

    /// Best hits first (the default).
    pub fn by_relevance(mut self) -> Self {
        self.order = SearchOrder::Relevance;
        self
    }

    /// Only in conversation `id`.
    pub fn in_conversation(mut self, id: ConversationId) -> Self {
        self.conversation = Some(id);
        self
    }

    /// Only messages of `role`.
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }

    /// Only hits created at or after `time`.
    pub fn since(mut self, time: OffsetDateTime) -> Self {
        self.since = Some(time);
        self
    }

    /// Only hits created before `time`.
    pub fn until(mut self, time: OffsetDateTime) -> Self {
        self.until = Some(time);
        self
    }

    /// Which conversations, by whether they are archived.
    pub fn archived(mut self, archived: Archived) -> Self {
        self.archived = archived;
        self
    }

    /// Every branch, not only the current ones.
    pub fn all_branches(mut self) -> Self {
        self.branches = SearchBranches::All;
        self
    }

    /// At most `limit` hits per page.
    pub fn limit(mut self, limit: u32) -> Self {
        self.page.limit = limit;
        self
    }

    /// The page after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.page.after = Some(cursor);
        self
    }
}

/// The conversation a hit is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HitConversation {
    /// Its id.
    pub id: ConversationId,
    /// Its title.
    pub title: String,
}

/// The message a hit is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HitMessage {
    /// Its id.
    pub id: MessageId,
    /// Who wrote it.
    pub role: Role,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A part of the matched text with the matched words marked as byte ranges
/// (never markup: a front end escapes `text` and highlights the ranges).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snippet {
    /// The part shown (at most [`SNIPPET_BYTES`](crate::limits::SNIPPET_BYTES),
    /// plus the rest of the first match).
    pub text: String,
    /// Where `text` starts in the whole message (or title), in bytes: more
    /// than 0 when the part starts inside it.
    pub offset: usize,
    /// Whether the whole text goes on after `text`.
    pub truncated: bool,
    /// The matched bytes of `text`, in order.
    pub highlights: Vec<Range<usize>>,
}

/// One search hit: a message, or a conversation by its title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The conversation.
    pub conversation: HitConversation,
    /// The message; `None` for a hit on the conversation's title.
    pub message: Option<HitMessage>,
    /// The matched part of the message's content (or the title).
    pub snippet: Snippet,
    /// How well it matched (higher is better); the same on every backend.
    pub score: f64,
}

/// How far building the search index of texts written before it existed
/// has come ([`Migrations::build_search_index`](crate::Migrations::build_search_index)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct IndexProgress {
    /// Texts (messages and titles) indexed so far.
    pub indexed: u64,
    /// Texts to index in all, counted when the build started.
    pub total: u64,
}
