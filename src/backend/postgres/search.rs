//! Search on PostgreSQL: candidates from the GIN indexes on
//! `array_to_tsvector(search_tokens)`. The `tsquery` is built here from the
//! parsed query's tokens (each quoted; tokens hold only letters and
//! digits), never from the user's text, and bound as a parameter.

use postgres::Row;
use postgres::types::ToSql;
use uuid::Uuid;

use super::PgConn;
use super::queries::{
    COUNTS_INDEXED, HAS_SEARCH_INDEX, INDEX_MESSAGES, INDEX_TITLES, SEARCH_BACKLOG,
    SEARCH_MESSAGES_BY_INDEX, SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION,
    SEARCH_TITLES, SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION, SERVER_ENCODING,
    UNINDEXED_MESSAGES, UNINDEXED_TITLES,
};
use super::rows::{get, role_at, time_at};
use super::search_statistics;
use crate::backend::search::{
    AdmittedCount, Candidate, SearchFilter, TextKind, most_through_index,
};
use crate::backend::{Branches, TimeKey};
use crate::error::Result;
use crate::model::{from_micros, to_micros};
use crate::search::query::IndexQuery;
use crate::search::tokenize::index_text;

/// `index` as a `tsquery`: every token quoted, prefixes marked `:*`.
pub(crate) fn tsquery(index: &IndexQuery) -> String {
    let quote = |t: &str| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
    let all = |tokens: Vec<String>| {
        let quoted: Vec<String> = tokens.iter().map(|t| quote(t)).collect();
        quoted.join(" & ")
    };
    let tokens = match index.fallback() {
        // A text whose pairs did not all fit: by its words.
        Some(fallback) => format!("(({}) | ({}))", all(index.required()), all(fallback)),
        None => all(index.required()),
    };
    // A query of prefixes alone requires no token.
    let mut parts: Vec<String> = Some(tokens).filter(|t| !t.is_empty()).into_iter().collect();
    parts.extend(index.prefixes.iter().map(|p| format!("{}:*", quote(p))));
    parts.extend(index.excluded.iter().map(|t| format!("!{}", quote(t))));
    parts.join(" & ")
}

/// The walks that take the query's tokens ($11), excluded tokens ($12)
/// and fallback tokens ($13, NULL for none) as arrays, checked only in
/// texts that may hold the needle $14 (`holds_tokens!`).
const TOKEN_WALKS: [&str; 2] = [SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION];

/// The walks that check the `tsquery` $1 only in texts that may hold the
/// needle $11 (`holds_tsquery_after_needle!`).
const NEEDLE_WALKS: [&str; 2] = [SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION];

/// Whether `sql` is a walk, which skips a text without the needle.
fn is_walk(sql: &str) -> bool {
    TOKEN_WALKS.contains(&sql) || NEEDLE_WALKS.contains(&sql)
}

/// The needle of a walk: the query's longest token or prefix (the rarest,
/// as a rule), which every ASCII text it admits holds in lower case.
fn needle_of(index: &IndexQuery) -> Option<&str> {
    index
        .tokens
        .iter()
        .chain(&index.prefixes)
        .map(String::as_str)
        .max_by_key(|t| t.len())
}

/// Whether the database's encoding is UTF-8 (asked once per connection).
fn is_utf8(conn: &mut PgConn) -> Result<bool> {
    if let Some(utf8) = conn.utf8 {
        return Ok(utf8);
    }
    let statement = conn.statement(SERVER_ENCODING)?;
    let encoding: String = conn.client.query_one(&statement, &[])?.try_get(0)?;
    let utf8 = encoding == "UTF8";
    conn.utf8 = Some(utf8);
    Ok(utf8)
}

/// How many rows of a walk by time cost as much as one row read through
/// the GIN index (its share of the index scan, the row, its conversation
/// and its place in the sort of them all).
const WALK_ROWS_PER_INDEX_ROW: u32 = 4;

/// Whether a search of messages walks them by time rather than reading
/// what the index admits ([`most_through_index`]): without a count when
/// the statistics estimate more than that (a common word), else by
/// counting up to it.
fn walks_by_time(
    conn: &mut PgConn,
    index: &IndexQuery,
    query: &str,
    limit: usize,
    admitted: &AdmittedCount,
) -> Result<bool> {
    let estimate = search_statistics::estimate(conn, index)?;
    let most = most_through_index(limit, estimate.messages, WALK_ROWS_PER_INDEX_ROW);
    if estimate.admitted.is_some_and(|n| n > most) {
        return Ok(true);
    }
    let n = admitted.up_to(most.saturating_add(1), |bound| {
        // The smallest count that reaches the bound (or the largest).
        let (limit, sql) = COUNTS_INDEXED
            .iter()
            .copied()
            .find(|(limit, _)| *limit >= bound)
            .unwrap_or(COUNTS_INDEXED[COUNTS_INDEXED.len() - 1]);
        let count = conn.statement(sql)?;
        let n: i64 = conn.client.query_one(&count, &[&query])?.try_get(0)?;
        let n = u64::try_from(n).unwrap_or(0);
        // A count that stopped at its limit says at least that many: at
        // least `bound` (more than any table this counts for has, when
        // the largest limit is short of it).
        Ok(if n >= limit { bound } else { n.min(bound) })
    })?;
    Ok(n > most)
}

/// [`Session::search_candidates`](crate::backend::Session::search_candidates).
/// Which statement reads messages is chosen here, not by the planner (its
/// estimate for a token outside its statistics is a fixed guess): one
/// conversation's messages are each checked; otherwise the matches are read
/// through the GIN index when they are few for the table and the page
/// ([`walks_by_time`]), else by walking the time index.
pub(super) fn candidates(
    conn: &mut PgConn,
    kind: TextKind,
    filter: &SearchFilter<'_>,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    let query = tsquery(filter.index);
    let index = filter.index;
    let (required, fallback) = (index.required(), index.fallback());
    // A walk checks a query without prefixes by array operators.
    let by_tokens = index.prefixes.is_empty();
    let messages = if filter.conversation.is_some() {
        if by_tokens {
            SEARCH_TOKENS_IN_CONVERSATION
        } else {
            SEARCH_MESSAGES_IN_CONVERSATION
        }
    } else if kind == TextKind::Message {
        match (
            walks_by_time(conn, index, &query, limit, filter.admitted)?,
            by_tokens,
        ) {
            (true, true) => SEARCH_TOKENS_BY_TIME,
            (true, false) => SEARCH_MESSAGES_BY_TIME,
            (false, _) => SEARCH_MESSAGES_BY_INDEX,
        }
    } else {
        SEARCH_MESSAGES_BY_INDEX
    };
    let needle = if is_walk(messages) && is_utf8(conn)? {
        needle_of(index)
    } else {
        None
    };
    let conversation = filter.conversation.map(Uuid::from);
    let since = filter.since.and_then(from_micros);
    let until = filter.until.and_then(from_micros);
    let before_time = before.and_then(|(t, _)| from_micros(t));
    let before_id = before.map(|(_, id)| id);
    let archived = filter.archived_param();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let role = filter.role.map(|r| r.as_str());
    let all_branches = filter.branches == Branches::All;
    let (sql, params): (_, Vec<&(dyn ToSql + Sync)>) = match kind {
        TextKind::Message => {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &query,
                &conversation,
                &role,
                &since,
                &until,
                &before_time,
                &before_id,
                &archived,
                &all_branches,
                &limit,
            ];
            if TOKEN_WALKS.contains(&messages) {
                params.extend([
                    &required as &(dyn ToSql + Sync),
                    &index.excluded,
                    &fallback,
                    &needle,
                ]);
            } else if NEEDLE_WALKS.contains(&messages) {
                params.push(&needle);
            }
            (messages, params)
        }
        TextKind::Title => (
            SEARCH_TITLES,
            vec![
                &query,
                &conversation,
                &since,
                &until,
                &before_time,
                &before_id,
                &archived,
                &limit,
            ],
        ),
    };
    let statement = conn.statement(sql)?;
    let rows = conn.client.query(&statement, &params)?;
    rows.iter().map(|row| candidate(row, kind)).collect()
}

fn candidate(row: &Row, kind: TextKind) -> Result<Candidate> {
    let table = match kind {
        TextKind::Message => "messages",
        TextKind::Title => "conversations",
    };
    Ok(Candidate {
        kind,
        created_at: to_micros(time_at(row, 0, table, "created_at")?),
        id: get(row, 1, table, "id")?,
        conversation_id: get::<Uuid>(row, 2, table, "conversation_id")?.into(),
        conversation_title: get(row, 3, "conversations", "title")?,
        role: match kind {
            TextKind::Message => Some(role_at(row, 4)?),
            TextKind::Title => None,
        },
        text: get(row, 5, table, "content")?,
    })
}

/// [`Session::unindexed`](crate::backend::Session::unindexed).
pub(super) fn unindexed(conn: &mut PgConn) -> Result<Option<u64>> {
    let has = conn.statement(HAS_SEARCH_INDEX)?;
    if !conn.client.query_one(&has, &[])?.try_get::<_, bool>(0)? {
        return Ok(None);
    }
    let backlog = conn.statement(SEARCH_BACKLOG)?;
    let n: i64 = conn.client.query_one(&backlog, &[])?.try_get(0)?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// [`Session::index_unindexed`](crate::backend::Session::index_unindexed),
/// inside the caller's write transaction.
pub(super) fn index_unindexed(conn: &mut PgConn, limit: usize) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut indexed = 0;
    for (select, update, table) in [
        (UNINDEXED_MESSAGES, INDEX_MESSAGES, "messages"),
        (UNINDEXED_TITLES, INDEX_TITLES, "conversations"),
    ] {
        let statement = conn.statement(select)?;
        let rows = conn.client.query(&statement, &[&limit])?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut tokens = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(get::<Uuid>(row, 0, table, "id")?);
            tokens.push(index_text(&get::<String>(row, 1, table, "text")?));
        }
        if !ids.is_empty() {
            let statement = conn.statement(update)?;
            conn.client.execute(&statement, &[&ids, &tokens])?;
        }
        indexed += ids.len() as u64;
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests;
