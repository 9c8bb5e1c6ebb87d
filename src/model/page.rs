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
