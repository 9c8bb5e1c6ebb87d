//! Search on PostgreSQL: candidates from the GIN indexes on
//! `array_to_tsvector(search_tokens)`. The `tsquery` is built here from the
//! parsed query's tokens (each quoted; tokens hold only letters and
//! digits), never from the user's text, and bound as a parameter.

use postgres::Row;
use postgres::types::ToSql;
use uuid::Uuid;

use super::queries::{
    COUNT_INDEXED, HAS_SEARCH_INDEX, INDEX_MESSAGES, INDEX_TITLES, SEARCH_BACKLOG,
    SEARCH_MESSAGES_BY_INDEX, SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION,
    SEARCH_TITLES, SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION, SERVER_ENCODING,
    UNINDEXED_MESSAGES, UNINDEXED_TITLES,
};
use super::rows::{get, role_at, time_at};
use super::{PgConn, search_statistics};
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
/// and fallback tokens ($13, NULL for none) as arrays.
const TOKEN_WALKS: [&str; 2] = [SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION];

/// The walks that check the `tsquery` $1 only in texts that may hold the
/// needle $11 (`holds_tsquery_after_needle!`).
const NEEDLE_WALKS: [&str; 2] = [SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION];

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
/// the statistics say the index admits more than that (a common word), else
/// by counting up to it.
fn walks_by_time(
    conn: &mut PgConn,
    index: &IndexQuery,
    query: &str,
    limit: usize,
    admitted: &AdmittedCount,
) -> Result<bool> {
    let (messages, at_least) = search_statistics::estimate(conn, index)?;
    let most = most_through_index(limit, messages, WALK_ROWS_PER_INDEX_ROW);
    if at_least.is_some_and(|n| n > most) {
        return Ok(true);
    }
    let n = admitted.up_to(most.saturating_add(1), |bound| {
        let count = conn.statement(COUNT_INDEXED)?;
        let bound = i64::try_from(bound).unwrap_or(i64::MAX);
        let n: i64 = conn
            .client
            .query_one(&count, &[&query, &bound])?
            .try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
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
    let needle = if NEEDLE_WALKS.contains(&messages) && is_utf8(conn)? {
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
                params.extend([&required as &(dyn ToSql + Sync), &index.excluded, &fallback]);
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
mod tests {
    use super::super::migrations::migrate;
    use super::super::test_database::TestDatabase;
    use super::*;
    use crate::migrate::POSTGRES;
    use crate::model::MigrationTarget;

    /// 100,000 messages that all hold `common` and each its own `rareN`,
    /// and a conversation of 10 more.
    const FILL: &str = "
        INSERT INTO conversations (id, title, created_at, updated_at, search_tokens)
        VALUES ('00000000-0000-7000-8000-000000000001', 'c', now(), now(), '{c}');
        INSERT INTO messages (id, conversation_id, position, role, content, created_at, search_tokens)
        SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000001', n, 'user',
               'common rare' || n, now() - n * interval '1 second', ARRAY['common', 'rare' || n]
        FROM generate_series(1, 100000) n;
        INSERT INTO conversations (id, title, created_at, updated_at, search_tokens)
        VALUES ('00000000-0000-7000-8000-000000000002', 'short', now(), now(), '{short}');
        INSERT INTO messages (id, conversation_id, position, role, content, created_at, search_tokens)
        SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000002', n, 'user',
               'common', now(), ARRAY['common']
        FROM generate_series(1, 10) n;
        ANALYZE;";

    /// Each search statement has the plan it was chosen for, generic or
    /// not: by the index, the GIN index; by time, the time index (stopping
    /// at the page's end); in a conversation, its messages.
    #[test]
    fn search_statements_keep_their_plans() {
        let Some(mut db) = TestDatabase::create() else {
            return;
        };
        let conn = &mut db.conn;
        migrate(conn, &POSTGRES, MigrationTarget::Latest).expect("migrate");
        conn.client.batch_execute(FILL).expect("fill");
        // A walk resumed after a cursor starts there in the generic plan a
        // prepared statement comes to (the bound is the index's, not a
        // filter on every row before it).
        conn.client
            .batch_execute(&format!(
                "SET plan_cache_mode = force_generic_plan; PREPARE resumed AS {SEARCH_TOKENS_BY_TIME}"
            ))
            .expect("prepare");
        let resumed: Vec<String> = conn
            .client
            .query(
                "EXPLAIN EXECUTE resumed('''common''', NULL, NULL, NULL, NULL, now(), \
                 'ffffffff-ffff-ffff-ffff-ffffffffffff', 0, false, 33, '{common}', '{}', NULL)",
                &[],
            )
            .expect("explain")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            resumed
                .iter()
                .any(|l| l.contains("Index Cond:") && l.contains("ROW(created_at, id) < ROW(")),
            "{resumed:#?}"
        );
        assert!(
            resumed
                .iter()
                .any(|l| l.contains("Index Scan Backward using ix_messages_created_at")),
            "{resumed:#?}"
        );
        let mut plan = |sql: &str, token: &str, mode: &str| -> String {
            conn.client
                .batch_execute(&format!("SET plan_cache_mode = {mode}"))
                .expect("plan_cache_mode");
            let index = IndexQuery {
                tokens: vec![token.to_owned()],
                ..IndexQuery::default()
            };
            let query = tsquery(&index);
            let none: Option<Uuid> = None;
            let one = Uuid::parse_str("00000000-0000-7000-8000-000000000002").ok();
            let in_one = [
                SEARCH_MESSAGES_IN_CONVERSATION,
                SEARCH_TOKENS_IN_CONVERSATION,
            ];
            let conversation = if in_one.contains(&sql) { one } else { none };
            let (role, time): (Option<&str>, Option<time::OffsetDateTime>) = (None, None);
            let (archived, all, limit) = (0_i32, false, 33_i64);
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &query,
                &conversation,
                &role,
                &time,
                &time,
                &time,
                &none,
                &archived,
                &all,
                &limit,
            ];
            let needle = needle_of(&index);
            let (required, fallback) = (index.required(), index.fallback());
            if TOKEN_WALKS.contains(&sql) {
                params.extend([&required as &(dyn ToSql + Sync), &index.excluded, &fallback]);
            } else if NEEDLE_WALKS.contains(&sql) {
                params.push(&needle);
            }
            let rows = conn
                .client
                .query(&format!("EXPLAIN {sql}"), &params)
                .expect("explain");
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for mode in ["force_custom_plan", "force_generic_plan"] {
            // By the index only when the index admits few: a rare token.
            let by_index = plan(SEARCH_MESSAGES_BY_INDEX, "rare777", mode);
            assert!(
                by_index.contains("Bitmap Index Scan on ix_messages_search"),
                "{by_index}"
            );
            let walks = [
                (SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION),
                (SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION),
            ];
            for ((by_time_sql, one_sql), token) in walks
                .into_iter()
                .flat_map(|walk| ["rare777", "common"].map(|token| (walk, token)))
            {
                let by_time = plan(by_time_sql, token, mode);
                assert!(
                    by_time.contains("Index Scan Backward using ix_messages_created_at"),
                    "{by_time}"
                );
                assert!(!by_time.contains("ix_messages_search"), "{by_time}");
                let one = plan(one_sql, token, mode);
                assert!(one.contains("Index Cond: (conversation_id ="), "{one}");
            }
        }
        // A search walks when the index admits many for the table and the
        // page: `rare1*` is 11,111 of 100,010 messages, read through the
        // index for a page of 5,000 (up to 11,181) but walked for 32. The
        // statistics (the FILL's ANALYZE) list `common`: a walk at once,
        // without a count.
        let mut walks = |index: IndexQuery, limit: usize| {
            let admitted = AdmittedCount::default();
            let walks = walks_by_time(conn, &index, &tsquery(&index), limit, &admitted);
            let mut counted = true;
            admitted
                .up_to(1, |_| {
                    counted = false;
                    Ok(0)
                })
                .expect("kept count");
            (walks.expect("decide"), counted)
        };
        let token = |t: &str| IndexQuery {
            tokens: vec![t.into()],
            ..IndexQuery::default()
        };
        let prefix = |p: &str| IndexQuery {
            prefixes: vec![p.into()],
            ..IndexQuery::default()
        };
        assert_eq!(walks(token("rare777"), 32), (false, true));
        assert_eq!(walks(token("common"), 32), (true, false));
        assert_eq!(walks(token("common"), 5_000), (true, false));
        assert_eq!(walks(prefix("comm"), 32), (true, false));
        assert_eq!(walks(prefix("rare1"), 32), (true, true));
        assert_eq!(walks(prefix("rare1"), 5_000), (false, true));
        // Two tokens are counted, whatever the statistics say of each.
        let both = IndexQuery {
            tokens: vec!["common".into(), "rare777".into()],
            ..IndexQuery::default()
        };
        assert_eq!(walks(both, 32), (false, true));
        let (messages, common) =
            search_statistics::estimate(conn, &token("common")).expect("estimate");
        assert!((95_000..=105_000).contains(&messages), "{messages}");
        assert!(common.is_some_and(|n| n > 90_000), "{common:?}");
    }

    #[test]
    fn tsqueries_quote_every_token() {
        let index = IndexQuery {
            tokens: vec!["it's".into(), "a\\b".into(), "x".into(), "y".into()],
            pairs: vec![("x".into(), "y".into())],
            prefixes: vec!["pre".into()],
            excluded: vec!["no".into()],
        };
        assert_eq!(
            tsquery(&index),
            "(('it''s' & 'a\\\\b' & '\u{b7}x\u{b7}y') | \
             ('\u{b7}' & 'it''s' & 'a\\\\b' & 'x' & 'y')) & 'pre':* & !'no'"
        );
    }
}
