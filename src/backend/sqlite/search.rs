//! Search on SQLite: reading candidates, through `search_index` (FTS5) or a
//! walk of the messages by time (`indexer` keeps the index in step with
//! every write of a message's content or a conversation's title).
//!
//! Index queries are built here from the parsed query's tokens, never from
//! the user's text: each token is quoted, and tokens hold only letters and
//! digits.

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::queries::*;
use super::rows::{Key, key, role_at, uuid_at};
use super::search_blocks::newest_by_rowid;
use crate::backend::search::{
    AdmittedCount, Candidate, SearchFilter, TextKind, most_through_index,
};
use crate::backend::{Branches, TimeKey};
use crate::error::Result;
use crate::search::query::IndexQuery;

/// Terms a prefix is expanded to at most (beyond, FTS5's own prefix query).
const EXPANDED_TERMS: usize = 16;

/// The index's terms that start with `prefix`, when there are 1 to
/// [`EXPANDED_TERMS`] of them. FTS5 answers `"p" *` by merging the whole
/// list of texts of every such term before it returns the first, while an
/// `OR` of the terms is read as needed: a count up to a limit or a rowid
/// range stops early (on a million messages, 9 ms against 1 ms).
fn prefix_terms(conn: &Connection, prefix: &str) -> Result<Option<Vec<String>>> {
    conn.prepare_cached(CREATE_SEARCH_TERMS)?.execute([])?;
    let mut next = conn.prepare_cached(NEXT_SEARCH_TERM)?;
    let mut terms = Vec::new();
    let mut from = prefix.to_owned();
    while let Some(term) = next
        .query_row([&from], |r| Ok(r.get_ref(0)?.as_bytes()?.to_vec()))
        .optional()?
    {
        if !term.starts_with(prefix.as_bytes()) {
            break;
        }
        // A term the tokenizer did not make (a damaged index): FTS5 decides.
        let Ok(term) = String::from_utf8(term) else {
            return Ok(None);
        };
        if terms.len() == EXPANDED_TERMS {
            return Ok(None);
        }
        // The next term after this one: tokens hold no control characters.
        from = format!("{term}\u{1}");
        terms.push(term);
    }
    Ok((!terms.is_empty()).then_some(terms))
}

/// `index` as an FTS5 expression: every token quoted, each prefix as the
/// `OR` of its terms where [`prefix_terms`] lists them.
fn fts_expression(conn: &Connection, index: &IndexQuery) -> Result<String> {
    let mut expanded = Vec::with_capacity(index.prefixes.len());
    for prefix in &index.prefixes {
        expanded.push(prefix_terms(conn, prefix)?);
    }
    Ok(expression(index, &expanded))
}

/// [`fts_expression`] from the prefixes' terms (`None`: FTS5's prefix
/// query).
fn expression(index: &IndexQuery, expanded: &[Option<Vec<String>>]) -> String {
    let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    let prefixes = index
        .prefixes
        .iter()
        .zip(expanded)
        .map(|(p, terms)| match terms {
            Some(terms) => {
                let any: Vec<String> = terms.iter().map(|t| quote(t)).collect();
                format!("({})", any.join(" OR "))
            }
            None => format!("{} *", quote(p)),
        });
    let all = |tokens: Vec<String>| {
        let quoted: Vec<String> = tokens.iter().map(|t| quote(t)).collect();
        quoted.join(" AND ")
    };
    let tokens = match index.fallback() {
        // A text whose pairs did not all fit: by its words.
        Some(fallback) => format!("(({}) OR ({}))", all(index.required()), all(fallback)),
        None => all(index.required()),
    };
    // A query of prefixes alone requires no token.
    let tokens = Some(tokens).filter(|t| !t.is_empty());
    let all: Vec<String> = tokens.into_iter().chain(prefixes).collect();
    let mut expression = format!("({})", all.join(" AND "));
    for t in &index.excluded {
        expression.push_str(" NOT ");
        expression.push_str(&quote(t));
    }
    expression
}

/// How many rows of a walk cost as much as one read through the index (a
/// probe of the admitted set, the row and its conversation, and a place in
/// the sort of them all): about 2.5 on a million messages.
const WALK_ROWS_PER_INDEX_ROW: u32 = 4;

/// Whether to read the messages the index admits through it rather than
/// walk every message newest first checking each ([`most_through_index`]).
fn through_index(
    conn: &Connection,
    expression: &str,
    limit: usize,
    admitted: &AdmittedCount,
) -> Result<bool> {
    let pending: i64 = conn
        .prepare_cached(COUNT_PENDING)?
        .query_row([], |r| r.get(0))?;
    let total: i64 = conn
        .prepare_cached(NEXT_SEARCH_ROWID)?
        .query_row([], |r| r.get(0))?;
    let threshold = most_through_index(
        limit,
        u64::try_from(total).unwrap_or(0),
        WALK_ROWS_PER_INDEX_ROW,
    );
    let bound = threshold.saturating_add(1);
    let count = admitted.up_to(bound, |bound| {
        let n: i64 = conn.prepare_cached(COUNT_INDEXED)?.query_row(
            params![expression, i64::try_from(bound).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    })?;
    let pending = u64::try_from(pending).unwrap_or(0);
    Ok(count.saturating_add(pending) <= threshold)
}

/// [`Session::search_candidates`](crate::backend::Session::search_candidates).
pub(super) fn candidates(
    conn: &Connection,
    kind: TextKind,
    filter: &SearchFilter<'_>,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<Vec<Candidate>> {
    // Through FTS5 (?1 its expression), or a walk of the messages by time
    // (?1 the query for `silmari_admits`, which needs no expression: a
    // prefix's terms are not looked up for it).
    let (sql, query) = match kind {
        TextKind::Title => (TITLES, fts_expression(conn, filter.index)?),
        TextKind::Message if filter.conversation.is_some() => {
            (MESSAGES_IN_CONVERSATION, encode(filter.index))
        }
        TextKind::Message => {
            let expression = fts_expression(conn, filter.index)?;
            if let Some(found) = newest_by_rowid(conn, &expression, filter, before, limit)? {
                return Ok(found);
            }
            if through_index(conn, &expression, limit, filter.admitted)? {
                (MESSAGES_BY_INDEX, expression)
            } else {
                (MESSAGES_BY_TIME, encode(filter.index))
            }
        }
    };
    let filters = Filters::new(filter, before);
    let mut statement = conn.prepare_cached(sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The index's statements also check the texts above the mark (?11).
    let admits = (sql == MESSAGES_BY_INDEX || sql == TITLES).then(|| encode(filter.index));
    let mut values = filters.with(&query, &limit);
    if let Some(admits) = &admits {
        values.push(admits);
    }
    let rows = statement.query(values.as_slice())?;
    super::rows::collect(rows, |row| candidate(row, kind))
}

/// A search's filters as its statements bind them (?2 to ?9 of
/// `search_messages!`).
pub(super) struct Filters {
    conversation: Option<Key>,
    role: Option<&'static str>,
    /// Created at or after (microseconds since 1970).
    pub(super) since: i64,
    /// Created before: the range's end, or the cursor's time + 1, whichever
    /// is first. `(created_at, id) < (t, id)` implies `created_at < t + 1`:
    /// a bound the index range uses (SQLite's does not use the row value's).
    pub(super) until: i64,
    before_time: i64,
    before_id: Key,
    archived: i32,
    all_branches: bool,
}

impl Filters {
    pub(super) fn new(filter: &SearchFilter<'_>, before: Option<TimeKey>) -> Filters {
        let (before_time, before_id) = before.unwrap_or((i64::MAX, Uuid::max()));
        Filters {
            conversation: filter.conversation.map(key),
            role: filter.role.map(|r| r.as_str()),
            since: filter.since.unwrap_or(i64::MIN),
            until: filter
                .until
                .unwrap_or(i64::MAX)
                .min(before_time.saturating_add(1)),
            before_time,
            before_id: key(before_id),
            archived: filter.archived_param(),
            all_branches: filter.branches == Branches::All,
        }
    }

    /// The values of ?1 to ?10: `query`, the filters, `limit`.
    pub(super) fn with<'a>(
        &'a self,
        query: &'a dyn rusqlite::ToSql,
        limit: &'a i64,
    ) -> Vec<&'a dyn rusqlite::ToSql> {
        vec![
            query,
            &self.conversation,
            &self.role,
            &self.since,
            &self.until,
            &self.before_time,
            &self.before_id,
            &self.archived,
            &self.all_branches,
            limit,
        ]
    }
}

/// The SQL function `silmari_admits(query, text)`: whether `text`'s index
/// tokens meet `query` (an [`IndexQuery`] as [`encode`] writes it, decoded
/// once per statement). Only statements may call it, not the schema.
pub(super) fn register_admits(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "silmari_admits",
        2,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_DIRECTONLY,
        |ctx| {
            let query = ctx.get_or_create_aux(0, |value| -> std::result::Result<_, BoxError> {
                Ok(decode(value.as_str()?)?)
            })?;
            match ctx.get_raw(1) {
                ValueRef::Text(text) => {
                    let text = std::str::from_utf8(text)
                        .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
                    Ok(query.admits(text))
                }
                _ => Ok(false),
            }
        },
    )
}

/// `index` as the text `silmari_admits` reads: its four lists as JSON.
pub(super) fn encode(index: &IndexQuery) -> String {
    let lists = (
        &index.tokens,
        &index.pairs,
        &index.prefixes,
        &index.excluded,
    );
    serde_json::to_string(&lists).unwrap_or_default()
}

type Lists = (Vec<String>, Vec<(String, String)>, Vec<String>, Vec<String>);
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn decode(text: &str) -> std::result::Result<IndexQuery, serde_json::Error> {
    let (tokens, pairs, prefixes, excluded): Lists = serde_json::from_str(text)?;
    Ok(IndexQuery {
        tokens,
        pairs,
        prefixes,
        excluded,
    })
}

pub(super) fn candidate(row: &rusqlite::Row<'_>, kind: TextKind) -> Result<Candidate> {
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
    use super::super::indexer::{self, Texts, index_at, index_message};
    use super::*;

    /// A connection to a new in-memory database at the latest version.
    fn migrated() -> Result<Connection> {
        let mut conn = Connection::open_in_memory()?;
        crate::backend::sqlite::migrations::migrate(
            &mut conn,
            &crate::migrate::SQLITE,
            None,
            0,
            crate::model::MigrationTarget::Latest,
        )?;
        Ok(conn)
    }

    /// How many index entries `expression` matches.
    fn matches(conn: &Connection, expression: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM search_index WHERE search_index MATCH ?1",
            [expression],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn fts_expressions_quote_every_token() {
        let index = IndexQuery {
            tokens: vec!["say \"x\"".into(), "b".into()],
            pairs: Vec::new(),
            prefixes: vec!["pre".into()],
            excluded: vec!["no".into(), "nor".into()],
        };
        assert_eq!(
            expression(&index, &[None]),
            r#"("say ""x""" AND "b" AND "pre" *) NOT "no" NOT "nor""#
        );
        assert_eq!(
            expression(&index, &[Some(vec!["pre".into(), "prefix".into()])]),
            r#"("say ""x""" AND "b" AND ("pre" OR "prefix")) NOT "no" NOT "nor""#
        );
        // A phrase's words are asked for as their pair, or as themselves
        // in a text whose pairs did not all fit.
        let phrase = IndexQuery {
            tokens: vec!["the".into(), "story".into(), "b".into()],
            pairs: vec![("the".into(), "story".into())],
            ..IndexQuery::default()
        };
        assert_eq!(
            expression(&phrase, &[]),
            "(((\"b\" AND \"\u{b7}the\u{b7}story\") OR \
             (\"\u{b7}\" AND \"the\" AND \"story\" AND \"b\")))"
        );
    }

    /// `silmari_admits` answers as `IndexQuery::admits` in a statement;
    /// the schema (a view, a trigger of a hostile file) cannot call it, and
    /// a query it cannot read is an error, not a panic.
    #[test]
    fn the_admits_function_answers_statements_only() -> Result<()> {
        let conn = migrated()?;
        register_admits(&conn)?;
        let query = encode(&IndexQuery {
            tokens: vec!["cafe".into()],
            excluded: vec!["tea".into()],
            ..IndexQuery::default()
        });
        let admits = |text: &str| -> rusqlite::Result<bool> {
            conn.query_row("SELECT silmari_admits(?1, ?2)", [&query, text], |r| {
                r.get(0)
            })
        };
        assert!(admits("Un CAFÉ noir")?);
        assert!(!admits("café or tea")?);
        assert!(!admits("coffee")?);
        conn.execute_batch(
            "CREATE VIEW admitted AS SELECT silmari_admits('[[],[],[]]', 'x') AS a",
        )?;
        let from_view = conn.query_row("SELECT a FROM admitted", [], |r| r.get::<_, bool>(0));
        assert!(from_view.is_err(), "{from_view:?}");
        let unreadable = conn.query_row("SELECT silmari_admits('not json', 'x')", [], |r| {
            r.get::<_, bool>(0)
        });
        assert!(unreadable.is_err(), "{unreadable:?}");
        Ok(())
    }

    /// A prefix is read as the `OR` of the index's terms that start with
    /// it, which admits the same texts as FTS5's prefix query; more terms
    /// than [`EXPANDED_TERMS`] (or none) leave it to FTS5.
    #[test]
    fn a_prefix_expands_to_its_terms_admitting_the_same_texts() -> Result<()> {
        let conn = migrated()?;
        for i in 0..40i64 {
            // pre0 … pre39, and "prefix" beside every third; "pr" alone once.
            let text = match i % 3 {
                0 => format!("pre{i} prefix"),
                _ => format!("pre{i} other"),
            };
            index_at(&conn, i + 1, &text)?;
        }
        index_at(&conn, 41, "pr")?;
        let count = |expression: &str| matches(&conn, expression);
        let terms = prefix_terms(&conn, "pre1")?.expect("few terms");
        assert_eq!(terms.len(), 11, "pre1 and pre10 to pre19: {terms:?}");
        assert!(terms.iter().all(|t| t.starts_with("pre1")));
        for prefix in ["pre1", "pref", "pre3"] {
            let index = IndexQuery {
                prefixes: vec![prefix.into()],
                ..IndexQuery::default()
            };
            let expanded = fts_expression(&conn, &index)?;
            assert!(!expanded.contains('*'), "{expanded}");
            assert_eq!(count(&expanded), count(&expression(&index, &[None])));
        }
        assert_eq!(prefix_terms(&conn, "pre")?, None, "41 terms: FTS5's query");
        assert_eq!(prefix_terms(&conn, "zz")?, None, "no term");
        assert_eq!(prefix_terms(&conn, "pr")?, None, "42 terms");
        Ok(())
    }

    /// The index holds what the tokenizer made, and narrows: a token finds
    /// only the texts that hold it, and follows an edit and a delete. Texts
    /// given their rowid wait above the mark until a batch indexes them.
    #[test]
    fn the_index_holds_each_text_s_tokens() -> Result<()> {
        let conn = migrated()?;
        conn.execute_batch(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES \
             ('00000000-0000-7000-8000-000000000001', 't', 0, 0); \
             INSERT INTO messages (id, conversation_id, position, role, content, created_at) VALUES \
             ('00000000-0000-7000-8000-00000000000a', '00000000-0000-7000-8000-000000000001', 1, 'user', 'Café au lait', 0), \
             ('00000000-0000-7000-8000-00000000000b', '00000000-0000-7000-8000-000000000001', 2, 'user', '東京 cafe', 0);",
        )?;
        let a = uuid::Uuid::parse_str("00000000-0000-7000-8000-00000000000a").unwrap();
        let b = uuid::Uuid::parse_str("00000000-0000-7000-8000-00000000000b").unwrap();
        index_message(&conn, a.into(), "Café au lait")?;
        index_message(&conn, b.into(), "東京 cafe")?;
        assert_eq!(matches(&conn, r#""cafe""#), 0, "above the mark");
        assert_eq!(indexer::index_pending(&conn, Texts::Messages, 10)?, 2);
        assert_eq!(indexer::indexed_upto(&conn)?, Some(2));
        let count = |expression: &str| matches(&conn, expression);
        assert_eq!(count(r#""cafe""#), 2);
        assert_eq!(count(r#""lait""#), 1);
        assert_eq!(count(r#""東京""#), 1);
        assert_eq!(count(r#""京""#), 1);
        conn.execute(
            "UPDATE messages SET content = 'thé' WHERE id = ?1",
            [key(a)],
        )?;
        // The edit waits for its batch; its old entry stays until then.
        index_message(&conn, a.into(), "thé")?;
        assert_eq!((count(r#""cafe""#), count(r#""the""#)), (2, 0));
        assert_eq!(indexer::index_pending(&conn, Texts::Messages, 10)?, 1);
        assert_eq!(count(r#""cafe""#), 1);
        assert_eq!(count(r#""the""#), 1);
        conn.execute("DELETE FROM messages WHERE id = ?1", [key(b)])?;
        assert_eq!(count(r#""cafe""#), 0);
        assert_eq!(count(r#""the""#), 1);
        Ok(())
    }
}
