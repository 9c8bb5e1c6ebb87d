//! Keyset pages: requests, pages, cursors and list queries.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::timestamps::from_micros;
use crate::error::{Error, Result};
use crate::limits::MIN_YEAR;

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
    /// Search hits, newest first: the last hit's (created_at micros, id, kind).
    SearchNewest(i64, Uuid, u8),
    /// Search hits by relevance: the last hit's (score in millionths,
    /// created_at micros, id, kind).
    SearchRelevance(i64, i64, Uuid, u8),
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CursorKey::Files(t, id) => write!(f, "f.{t}.{}", id.simple()),
            CursorKey::ByUpdated(t, id) => write!(f, "u.{t}.{}", id.simple()),
            CursorKey::ByCreated(t, id) => write!(f, "c.{t}.{}", id.simple()),
            CursorKey::Messages(p) => write!(f, "m.{p}"),
            CursorKey::SearchNewest(t, id, k) => write!(f, "n.{t}.{}.{k}", id.simple()),
            CursorKey::SearchRelevance(s, t, id, k) => {
                write!(f, "r.{s}.{t}.{}.{k}", id.simple())
            }
        }
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("cursor", format!("{s:?} is not a cursor this crate made"));
        let parts: Vec<&str> = s.split('.').collect();
        let int =
            |i: usize| -> Result<i64> { parts.get(i).and_then(|p| p.parse().ok()).ok_or_else(bad) };
        let uuid = |i: usize| -> Result<Uuid> {
            parts
                .get(i)
                .and_then(|p| Uuid::try_parse(p).ok())
                .ok_or_else(bad)
        };
        let kind = |i: usize| -> Result<u8> {
            parts
                .get(i)
                .and_then(|p| p.parse().ok())
                .filter(|k| *k <= 1)
                .ok_or_else(bad)
        };
        let (key, number) = match (parts.first().copied(), parts.len()) {
            (Some("m"), 2) => (CursorKey::Messages(int(1)?), int(1)?),
            (Some("f"), 3) => (CursorKey::Files(int(1)?, uuid(2)?), int(1)?),
            (Some("u"), 3) => (CursorKey::ByUpdated(int(1)?, uuid(2)?), int(1)?),
            (Some("c"), 3) => (CursorKey::ByCreated(int(1)?, uuid(2)?), int(1)?),
            (Some("n"), 4) => (
                CursorKey::SearchNewest(int(1)?, uuid(2)?, kind(3)?),
                int(1)?,
            ),
            (Some("r"), 5) => (
                CursorKey::SearchRelevance(int(1)?, int(2)?, uuid(3)?, kind(4)?),
                int(2)?,
            ),
            _ => return Err(bad()),
        };
        // A stored timestamp lies in years 1 to 9999 (`updated_at` may pass
        // MAX_YEAR by a little); a cursor beyond is none this crate made,
        // and every backend refuses it alike.
        let in_range = from_micros(number).is_some_and(|t| (MIN_YEAR..=9999).contains(&t.year()));
        if !matches!(key, CursorKey::Messages(_)) && !in_range {
            return Err(Error::invalid(
                "cursor",
                format!("{s:?}: its timestamp is out of range"),
            ));
        }
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

/// Which conversations a list holds, by whether they are archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archived {
    /// Only conversations that are not archived (the default).
    #[default]
    Hide,
    /// Archived and not archived alike.
    Include,
    /// Only archived conversations.
    Only,
}

/// Which conversations to list, in which order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationQuery {
    /// Sort key (always newest first, ties broken by id).
    pub order: ConversationOrder,
    /// Page size and position.
    pub page: PageRequest,
    /// Whether archived conversations are listed: not by default.
    #[serde(default)]
    pub archived: Archived,
}

impl ConversationQuery {
    /// The `limit` most recently changed conversations.
    pub fn recent(limit: u32) -> Self {
        ConversationQuery {
            order: ConversationOrder::UpdatedAt,
            page: PageRequest::first(limit),
            archived: Archived::Hide,
        }
    }

    /// The `limit` most recently created conversations.
    pub fn newest(limit: u32) -> Self {
        ConversationQuery {
            order: ConversationOrder::CreatedAt,
            page: PageRequest::first(limit),
            archived: Archived::Hide,
        }
    }

    /// The same query, continuing after `cursor`.
    pub fn after(mut self, cursor: Cursor) -> Self {
        self.page.after = Some(cursor);
        self
    }

    /// The same query, listing archived conversations as well.
    pub fn include_archived(mut self) -> Self {
        self.archived = Archived::Include;
        self
    }

    /// The same query, listing archived conversations only.
    pub fn only_archived(mut self) -> Self {
        self.archived = Archived::Only;
        self
    }
}
