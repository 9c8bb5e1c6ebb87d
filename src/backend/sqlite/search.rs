//! Search on SQLite: keeping `search_index` (FTS5) in step with every write
//! of a message's content or a conversation's title, and reading candidates.
//!
//! Index queries are built here from the parsed query's tokens, never from
//! the user's text: each token is quoted, and tokens hold only letters and
//! digits.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::queries::*;
use super::rows::{key, role_at, uuid_at};
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::backend::{Branches, TimeKey};
use crate::error::Result;
use crate::model::{ConversationId, MessageId};
use crate::search::query::IndexQuery;
use crate::search::tokenize::index_text;

/// (Re)indexes message `id`'s content.
pub(super) fn index_message(conn: &Connection, id: MessageId, content: &str) -> Result<()> {
    index(conn, MESSAGE_SEARCH_ROWID, key(id), 1, content)
}

/// (Re)indexes conversation `id`'s title.
pub(super) fn index_title(conn: &Connection, id: ConversationId, title: &str) -> Result<()> {
    index(conn, TITLE_SEARCH_ROWID, key(id), -1, title)
}

fn index(
    conn: &Connection,
    rowid_sql: &str,
    id: super::rows::Key,
    sign: i64,
    text: &str,
) -> Result<()> {
    let rowid: Option<i64> = conn
        .prepare_cached(rowid_sql)?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match rowid {
        Some(rowid) => index_at(conn, sign * rowid, text),
        None => Ok(()),
    }
}

/// Sets the index entry `rowid` to `text`'s tokens.
pub(super) fn index_at(conn: &Connection, rowid: i64, text: &str) -> Result<()> {
    let tokens = index_text(text);
    conn.prepare_cached(INDEX_TEXT)?
        .execute(params![rowid, tokens])?;
    Ok(())
}

/// [`Session::unindexed`](crate::backend::Session::unindexed).
pub(super) fn unindexed(conn: &Connection) -> Result<Option<u64>> {
    let has_index: bool = conn
        .prepare_cached(HAS_SEARCH_INDEX)?
        .query_row([], |r| r.get(0))?;
    if !has_index {
        return Ok(None);
    }
    let n: i64 = conn
        .prepare_cached(SEARCH_BACKLOG)?
        .query_row([], |r| r.get(0))?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// [`Session::index_unindexed`](crate::backend::Session::index_unindexed).
pub(super) fn index_unindexed(conn: &Connection, limit: usize) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut indexed = 0;
    for (sql, table) in [
        (UNINDEXED_MESSAGES, "messages"),
        (UNINDEXED_TITLES, "conversations"),
    ] {
        let texts: Vec<(Uuid, String)> =
            super::rows::collect(conn.prepare_cached(sql)?.query([limit])?, |row| {
                Ok((uuid_at(row, 0, table, "id")?, row.get(1)?))
            })?;
        for (id, text) in &texts {
            match table {
                "messages" => index_message(conn, (*id).into(), text)?,
                _ => index_title(conn, (*id).into(), text)?,
            }
        }
        indexed += texts.len() as u64;
    }
    Ok(indexed)
}

/// `index` as an FTS5 expression: every token quoted.
pub(crate) fn fts_expression(index: &IndexQuery) -> String {
    let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    let all: Vec<String> = index
        .tokens
        .iter()
        .map(|t| quote(t))
        .chain(index.prefixes.iter().map(|p| format!("{} *", quote(p))))
        .collect();
    let mut expression = format!("({})", all.join(" AND "));
    for t in &index.excluded {
        expression.push_str(" NOT ");
        expression.push_str(&quote(t));
    }
    expression
}

/// Whether to read the messages the index admits through it (all of them,
/// then sorted) rather than walk every message newest first checking each:
/// a walk reads about `limit × messages / admitted` rows, the index
/// `admitted`; so through the index when `admitted² ≤ limit × messages`
/// (and always up to 2,000).
fn through_index(conn: &Connection, expression: &str, limit: usize) -> Result<bool> {
    let total: i64 = conn
        .prepare_cached(NEXT_SEARCH_ROWID)?
        .query_row([], |r| r.get(0))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let threshold = (limit.saturating_mul(total) as f64).sqrt() as i64;
    let threshold = threshold.max(2_000);
    let count: i64 = conn
        .prepare_cached(COUNT_INDEXED)?
        .query_row(params![expression, threshold + 1], |r| r.get(0))?;
    Ok(count <= threshold)
}

/// Rows read per step of a walk.
const WALK_STEP: i64 = 256;

/// [`Session::search_candidates`](crate::backend::Session::search_candidates).
pub(super) fn candidates(
    conn: &Connection,
    kind: TextKind,
    filter: &SearchFilter<'_>,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    let expression = fts_expression(filter.index);
    let by_index = match kind {
        TextKind::Title => Some(TITLES),
        TextKind::Message
            if filter.conversation.is_none() && through_index(conn, &expression, limit)? =>
        {
            Some(MESSAGES_BY_INDEX)
        }
        TextKind::Message => None,
    };
    let conversation = filter.conversation.map(key);
    let role = filter.role.map(|r| r.as_str());
    let (since, until) = (
        filter.since.unwrap_or(i64::MIN),
        filter.until.unwrap_or(i64::MAX),
    );
    let all_branches = filter.branches == Branches::All;
    let read = |sql: &str, before: Option<TimeKey>, limit: i64| -> Result<Vec<Candidate>> {
        let (before_time, before_id) = before.unwrap_or((i64::MAX, Uuid::max()));
        let mut statement = conn.prepare_cached(sql)?;
        let rows = statement.query(params![
            expression,
            conversation,
            role,
            since,
            until,
            before_time,
            key(before_id),
            filter.archived_param(),
            all_branches,
            limit,
        ])?;
        super::rows::collect(rows, |row| candidate(row, kind))
    };
    if let Some(sql) = by_index {
        return read(sql, before, i64::try_from(limit).unwrap_or(i64::MAX));
    }
    let walk = match filter.conversation {
        Some(_) => MESSAGES_IN_CONVERSATION,
        None => MESSAGES_BY_TIME,
    };
    let mut found = Vec::new();
    let mut at = before;
    loop {
        let step = read(walk, at, WALK_STEP)?;
        let end = step.len() < WALK_STEP as usize;
        at = step.last().map(|c| (c.created_at, c.id));
        for c in step {
            if filter.index.admits(&c.text) {
                found.push(c);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if end {
            return Ok(found);
        }
    }
}

fn candidate(row: &rusqlite::Row<'_>, kind: TextKind) -> Result<Candidate> {
    let table = match kind {
        TextKind::Message => "messages",
        TextKind::Title => "conversations",
    };
    Ok(Candidate {
        kind,
        created_at: row.get(0)?,
        id: uuid_at(row, 1, table, "id")?,
        conversation_id: uuid_at(row, 2, table, "conversation_id")?.into(),
        conversation_title: row.get(3)?,
        role: match kind {
            TextKind::Message => Some(role_at(row, 4)?),
            TextKind::Title => None,
        },
        text: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_expressions_quote_every_token() {
        let index = IndexQuery {
            tokens: vec!["say \"x\"".into(), "b".into()],
            prefixes: vec!["pre".into()],
            excluded: vec!["no".into(), "nor".into()],
        };
        assert_eq!(
            fts_expression(&index),
            r#"("say ""x""" AND "b" AND "pre" *) NOT "no" NOT "nor""#
        );
    }

    /// The index holds what the tokenizer made, and narrows: a token finds
    /// only the texts that hold it, and follows an edit and a delete.
    #[test]
    fn the_index_holds_each_text_s_tokens() -> Result<()> {
        let mut conn = Connection::open_in_memory()?;
        crate::backend::sqlite::migrations::migrate(
            &mut conn,
            &crate::migrate::SQLITE,
            None,
            0,
            crate::model::MigrationTarget::Latest,
        )?;
        conn.execute_batch(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES \
             ('00000000-0000-7000-8000-000000000001', 't', 0, 0); \
             INSERT INTO messages (id, conversation_id, position, role, content, created_at) VALUES \
             ('00000000-0000-7000-8000-00000000000a', '00000000-0000-7000-8000-000000000001', 1, 'user', '', 0), \
             ('00000000-0000-7000-8000-00000000000b', '00000000-0000-7000-8000-000000000001', 2, 'user', '', 0);",
        )?;
        let a = uuid::Uuid::parse_str("00000000-0000-7000-8000-00000000000a").unwrap();
        let b = uuid::Uuid::parse_str("00000000-0000-7000-8000-00000000000b").unwrap();
        index_message(&conn, a.into(), "Café au lait")?;
        index_message(&conn, b.into(), "東京 cafe")?;
        let count = |expression: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM search_index WHERE search_index MATCH ?1",
                [expression],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(count(r#""cafe""#), 2);
        assert_eq!(count(r#""lait""#), 1);
        assert_eq!(count(r#""東京""#), 1);
        assert_eq!(count(r#""京""#), 1);
        index_message(&conn, a.into(), "thé")?;
        assert_eq!(count(r#""cafe""#), 1);
        assert_eq!(count(r#""the""#), 1);
        conn.execute("DELETE FROM messages WHERE id = ?1", [key(b)])?;
        assert_eq!(count(r#""cafe""#), 0);
        assert_eq!(count(r#""the""#), 1);
        Ok(())
    }
}
