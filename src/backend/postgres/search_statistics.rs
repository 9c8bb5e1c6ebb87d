//! What the planner's statistics say of the messages a search would read:
//! how many messages there are, and how often the index's most common
//! tokens occur. A search uses them to choose between reading what the
//! index admits and walking messages by time without counting the matches
//! of a common word first (a count reads a heap row for each match: tens
//! of milliseconds for a word tens of thousands of messages hold).
//!
//! Read once per connection and again after [`STATISTICS_MAX_AGE`]: they
//! change only when `ANALYZE` (or autovacuum) runs, and a choice made on
//! slightly stale figures only costs time, never a hit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::PgConn;
use super::queries::SEARCH_STATISTICS;
use crate::error::Result;
use crate::search::query::IndexQuery;

/// How long a connection keeps the statistics it read.
const STATISTICS_MAX_AGE: Duration = Duration::from_secs(60);

/// The statistics a connection last read.
#[derive(Debug)]
pub(super) struct SearchStatistics {
    /// The planner's estimate of the messages.
    messages: u64,
    /// The index's most common tokens, each with the share of messages
    /// that hold it (from `ANALYZE`'s sample).
    common: HashMap<String, f64>,
    read_at: Instant,
}

impl SearchStatistics {
    /// How many messages at least the index admits for `index`, as far as
    /// the statistics can tell: for a condition of one token, or of one
    /// prefix, that they list (the prefix's most common token); `None`
    /// for anything else (two tokens may never meet, and a token they do
    /// not list may be anything up to their rarest).
    pub(super) fn at_least(&self, index: &IndexQuery) -> Option<u64> {
        if !index.excluded.is_empty() || index.fallback().is_some() {
            return None;
        }
        let share = match (index.required().as_slice(), index.prefixes.as_slice()) {
            ([token], []) => self.common.get(token.as_str()).copied(),
            ([], [prefix]) => self
                .common
                .iter()
                .filter(|(token, _)| token.starts_with(prefix.as_str()))
                .map(|(_, share)| *share)
                .reduce(f64::max),
            _ => None,
        }?;
        // `as` saturates: a share out of range gives a bound, never a wrap.
        Some((share.clamp(0.0, 1.0) * self.messages as f64) as u64)
    }
}

/// The planner's estimate of the messages, and how many at least the
/// index admits for `index` ([`SearchStatistics::at_least`]), from the
/// connection's statistics, read again when missing or old.
pub(super) fn estimate(conn: &mut PgConn, index: &IndexQuery) -> Result<(u64, Option<u64>)> {
    let statistics = match conn.statistics.take() {
        Some(kept) if kept.read_at.elapsed() < STATISTICS_MAX_AGE => kept,
        _ => read(conn)?,
    };
    let estimate = (statistics.messages, statistics.at_least(index));
    conn.statistics = Some(statistics);
    Ok(estimate)
}

fn read(conn: &mut PgConn) -> Result<SearchStatistics> {
    let statement = conn.statement(SEARCH_STATISTICS)?;
    let rows = conn.client.query(&statement, &[])?;
    let mut messages = 0;
    let mut common = HashMap::with_capacity(rows.len());
    for row in &rows {
        messages = u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0);
        if let (Some(token), Some(share)) = (
            row.try_get::<_, Option<String>>(1)?,
            row.try_get::<_, Option<f32>>(2)?,
        ) {
            common.insert(token, f64::from(share));
        }
    }
    Ok(SearchStatistics {
        messages,
        common,
        read_at: Instant::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statistics() -> SearchStatistics {
        SearchStatistics {
            messages: 1_000,
            common: [
                ("time", 0.5),
                ("chapter", 0.25),
                ("chapel", 0.125),
                ("odd", 7.0),
            ]
            .into_iter()
            .map(|(t, s)| (t.to_owned(), s))
            .collect(),
            read_at: Instant::now(),
        }
    }

    #[test]
    fn only_a_single_listed_token_or_prefix_has_a_lower_bound() {
        let s = statistics();
        let query = |tokens: &[&str], prefixes: &[&str]| IndexQuery {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            prefixes: prefixes.iter().map(|t| t.to_string()).collect(),
            ..IndexQuery::default()
        };
        assert_eq!(s.at_least(&query(&["time"], &[])), Some(500));
        // A prefix: its most common token (two may share a message).
        assert_eq!(s.at_least(&query(&[], &["chap"])), Some(250));
        // A share out of range is a bound, not more messages than exist.
        assert_eq!(s.at_least(&query(&["odd"], &[])), Some(1_000));
        // Not listed: anything up to the rarest listed.
        assert_eq!(s.at_least(&query(&["rare"], &[])), None);
        assert_eq!(s.at_least(&query(&[], &["zz"])), None);
        // Two conditions may never meet.
        assert_eq!(s.at_least(&query(&["time", "chapter"], &[])), None);
        assert_eq!(s.at_least(&query(&["time"], &["chap"])), None);
        // An excluded token may take any of them away.
        let mut excluding = query(&["time"], &[]);
        excluding.excluded = vec!["chapter".into()];
        assert_eq!(s.at_least(&excluding), None);
        // A phrase: its pair, or else its words (the fallback).
        let mut phrase = query(&["time", "chapter"], &[]);
        phrase.pairs = vec![("time".into(), "chapter".into())];
        assert_eq!(s.at_least(&phrase), None);
    }
}
