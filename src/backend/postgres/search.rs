//! Search on PostgreSQL: candidates from the GIN indexes on
//! `array_to_tsvector(search_tokens)`. The `tsquery` is built here from the
//! parsed query's tokens (each quoted; tokens hold only letters and
//! digits), never from the user's text, and bound as a parameter.

use postgres::Row;
use postgres::types::ToSql;
use uuid::Uuid;

use super::PgConn;
use super::queries::{SEARCH_MESSAGES, SEARCH_TITLES, USE_CUSTOM_PLANS};
use super::rows::{get, role_at, time_at};
use crate::backend::Branches;
use crate::backend::search::{Before, Candidate, SearchFilter, TextKind};
use crate::error::Result;
use crate::model::{from_micros, to_micros};
use crate::search::query::IndexQuery;

/// `index` as a `tsquery`: every token quoted, prefixes marked `:*`.
pub(crate) fn tsquery(index: &IndexQuery) -> String {
    let quote = |t: &str| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
    let mut parts: Vec<String> = index.tokens.iter().map(|t| quote(t)).collect();
    parts.extend(index.prefixes.iter().map(|p| format!("{}:*", quote(p))));
    parts.extend(index.excluded.iter().map(|t| format!("!{}", quote(t))));
    parts.join(" & ")
}

/// [`Session::search_candidates`](crate::backend::Session::search_candidates).
/// Runs inside the search's snapshot transaction, where it plans each call
/// for its own tokens (a rare token reads the GIN index, a common one walks
/// the time index), not once for all.
pub(super) fn candidates(
    conn: &mut PgConn,
    in_transaction: bool,
    kind: TextKind,
    filter: &SearchFilter<'_>,
    before: Option<Before>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    if in_transaction {
        let custom = conn.statement(USE_CUSTOM_PLANS)?;
        conn.client.execute(&custom, &[])?;
    }
    let query = tsquery(filter.index);
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
        TextKind::Message => (
            SEARCH_MESSAGES,
            vec![
                &query, &conversation, &role, &since, &until, &before_time, &before_id,
                &archived, &all_branches, &limit,
            ],
        ),
        TextKind::Title => (
            SEARCH_TITLES,
            vec![
                &query, &conversation, &since, &until, &before_time, &before_id, &archived,
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
