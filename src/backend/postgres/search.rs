//! Search on PostgreSQL: candidates from the GIN indexes on
//! `array_to_tsvector(search_tokens)`. The `tsquery` is built here from the
//! parsed query's tokens (each quoted; tokens hold only letters and
//! digits), never from the user's text, and bound as a parameter.

use postgres::Row;
use postgres::types::ToSql;
use uuid::Uuid;

use super::PgConn;
use super::rows::{get, role_at, time_at};
use super::search_queries::*;
use super::search_statistics;
use crate::backend::search::{
    AdmittedCount, Candidate, SearchFilter, TextKind, most_through_index,
};
use crate::backend::{Branches, TimeKey};
use crate::error::Result;
use crate::model::{from_micros, to_micros};
use crate::search::query::IndexQuery;
use crate::search::signature::{Signature, query_bits};
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
/// texts that may hold the needle $14 (`holds_tokens!`), and signed, whose
/// signature has the bits $15 and $16.
const TOKEN_WALKS: [&str; 4] = [
    SEARCH_TOKENS_BY_TIME,
    SEARCH_TOKENS_IN_CONVERSATION,
    SEARCH_TOKENS_BY_TIME_SIGNED,
    SEARCH_TOKENS_IN_CONVERSATION_SIGNED,
];

/// The walks that check the `tsquery` $1 only in texts that may hold the
/// needle $11 (`holds_tsquery!`), and signed, whose signature has the bits
/// $12 and $13.
const NEEDLE_WALKS: [&str; 4] = [
    SEARCH_MESSAGES_BY_TIME,
    SEARCH_MESSAGES_IN_CONVERSATION,
    SEARCH_MESSAGES_BY_TIME_SIGNED,
    SEARCH_MESSAGES_IN_CONVERSATION_SIGNED,
];

/// The form of `walk` that tests each message's signature first, for a
/// schema that keeps signatures (V12 on); any other statement as it is.
fn signed(walk: &'static str) -> &'static str {
    match walk {
        SEARCH_TOKENS_BY_TIME => SEARCH_TOKENS_BY_TIME_SIGNED,
        SEARCH_TOKENS_IN_CONVERSATION => SEARCH_TOKENS_IN_CONVERSATION_SIGNED,
        SEARCH_MESSAGES_BY_TIME => SEARCH_MESSAGES_BY_TIME_SIGNED,
        SEARCH_MESSAGES_IN_CONVERSATION => SEARCH_MESSAGES_IN_CONVERSATION_SIGNED,
        other => other,
    }
}

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

/// For a query of one prefix and nothing else, the pattern that finds it
/// at the start of a word of an ASCII text in lower case (its tokens are
/// those words, cut to [`MAX_TOKEN_BYTES`](crate::limits::MAX_TOKEN_BYTES),
/// which the prefix is too): a token of the text starts with the prefix
/// exactly when the pattern is in the text. `None` for other queries, and
/// for a prefix of anything but letters and digits (which no token holds;
/// nor would it be taken for a pattern's syntax).
fn word_start(index: &IndexQuery) -> Option<String> {
    let [prefix] = index.prefixes.as_slice() else {
        return None;
    };
    let alone = index.tokens.is_empty() && index.pairs.is_empty() && index.excluded.is_empty();
    (alone && prefix.chars().all(char::is_alphanumeric)).then(|| format!("(^|[^a-z0-9]){prefix}"))
}

/// What a walk takes beside the filters: the query's terms as arrays, its
/// needle, and the two bits of its longest terms a signed walk tests.
struct WalkTerms<'q> {
    index: &'q IndexQuery,
    required: Vec<String>,
    fallback: Option<Vec<String>>,
    needle: Option<&'q str>,
    bits: [Option<i32>; 2],
    word_start: Option<String>,
}

impl<'q> WalkTerms<'q> {
    /// The terms of `index`; `needle` false leaves the needle out (a
    /// database whose encoding is not UTF-8).
    fn new(index: &'q IndexQuery, needle: bool) -> Self {
        let mut bits = query_bits(index).into_iter().map(i32::from);
        WalkTerms {
            index,
            required: index.required(),
            fallback: index.fallback(),
            needle: needle.then(|| needle_of(index)).flatten(),
            bits: [bits.next(), bits.next()],
            word_start: needle.then(|| word_start(index)).flatten(),
        }
    }

    /// Adds the parameters walk `sql` takes after the filters' ($10).
    fn push<'a>(&'a self, sql: &'static str, params: &mut Vec<&'a (dyn ToSql + Sync)>) {
        if TOKEN_WALKS.contains(&sql) {
            params.extend([
                &self.required as &(dyn ToSql + Sync),
                &self.index.excluded,
                &self.fallback,
                &self.needle,
            ]);
        } else if NEEDLE_WALKS.contains(&sql) {
            params.push(&self.needle);
        } else {
            return;
        }
        if signs_walk(sql) {
            params.extend([&self.bits[0] as &(dyn ToSql + Sync), &self.bits[1]]);
            if NEEDLE_WALKS.contains(&sql) {
                params.push(&self.word_start);
            }
        }
    }
}

/// Whether `sql` is one of the signed walks: a walk that is its own
/// signed form.
fn signs_walk(sql: &'static str) -> bool {
    is_walk(sql) && signed(sql) == sql
}

/// Whether the schema keeps messages' token signatures (V12 on), asked
/// once per connection and schema epoch. A store that has not seen the
/// column writes none, and a message without one is found the slow way
/// and signed by the next index build.
pub(super) fn signs(conn: &mut PgConn) -> Result<bool> {
    if let Some(signs) = conn.signs {
        return Ok(signs);
    }
    let statement = conn.statement(HAS_SEARCH_BITS)?;
    let signs: bool = conn.client.query_one(&statement, &[])?.try_get(0)?;
    conn.signs = Some(signs);
    Ok(signs)
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
    let walking = is_walk(messages);
    let terms = WalkTerms::new(index, walking && is_utf8(conn)?);
    let messages = if walking && signs(conn)? {
        signed(messages)
    } else {
        messages
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
            terms.push(messages, &mut params);
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
    backlog(conn).map(Some)
}

/// The texts not indexed (or, V12 on, messages not signed) yet, on a
/// schema with the search index.
pub(super) fn backlog(conn: &mut PgConn) -> Result<u64> {
    let sql = if signs(conn)? {
        SEARCH_BACKLOG_SIGNED
    } else {
        SEARCH_BACKLOG
    };
    let backlog = conn.statement(sql)?;
    let n: i64 = conn.client.query_one(&backlog, &[])?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// [`Session::index_unindexed`](crate::backend::Session::index_unindexed),
/// inside the caller's write transaction: messages (tokens and, V12 on,
/// signatures), then titles.
pub(super) fn index_unindexed(conn: &mut PgConn, limit: usize) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let signs = signs(conn)?;
    let messages = if signs {
        (UNINDEXED_MESSAGES_SIGNED, INDEX_MESSAGES_SIGNED, "messages")
    } else {
        (UNINDEXED_MESSAGES, INDEX_MESSAGES, "messages")
    };
    let mut indexed = 0;
    for (select, update, table) in [messages, (UNINDEXED_TITLES, INDEX_TITLES, "conversations")] {
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
            if update == INDEX_MESSAGES_SIGNED {
                let signatures: Vec<Signature> =
                    tokens.iter().map(|t| Signature::of_joined(t)).collect();
                let bits: Vec<&[u8]> = signatures.iter().map(Signature::as_bytes).collect();
                conn.client.execute(&statement, &[&ids, &tokens, &bits])?;
            } else {
                conn.client.execute(&statement, &[&ids, &tokens])?;
            }
        }
        indexed += ids.len() as u64;
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests;
