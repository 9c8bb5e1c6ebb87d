//! What the planner's statistics say of the messages a search would read:
//! how many messages there are, and how often the index's most common
//! tokens occur. A search uses them to choose between reading what the
//! index admits and walking messages by time without counting the matches
//! of a common word first (a count reads a heap row for each match: tens
//! of milliseconds for a word tens of thousands of messages hold).
//!
//! They are estimates: `ANALYZE`'s sample, as of its last run (autovacuum's
//! or anyone's), scaled to the table's size now. Read once per connection
//! and again after [`STATISTICS_MAX_AGE`]. A common token's share in the
//! sample is close to the truth (on the W10 corpus `time` at 4.83 % where
//! it is 4.90 %, `chapter` at 2.97 % where it is 3.06 %); a search trusts
//! the estimate as it is, since near the point where walking and reading
//! the index cost the same either choice costs about what a count would
//! (a count of `chapt*`'s matches up to 16,001 took 90–130 ms, the walk
//! it chose 93 ms). A choice made on wrong figures only costs time, never
//! a hit (both ways give the same candidates). `pg_stats` shows an index's
//! statistics to the roles that may read its table; a role that may not
//! sees none, and every search counts, as before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::PgConn;
use super::search_queries::SEARCH_STATISTICS;
use crate::backend::search::ALWAYS_THROUGH_INDEX;
use crate::error::Result;
use crate::search::query::IndexQuery;

/// How long a connection keeps the statistics it read.
const STATISTICS_MAX_AGE: Duration = Duration::from_secs(60);

/// The statistics keep the tokens that more than this many times
/// [`ALWAYS_THROUGH_INDEX`] messages hold: fewer, and no search of a
/// table that size walks for them.
const LISTED_FROM: u64 = 2;

/// What a search learns from the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Estimate {
    /// The planner's estimate of the messages.
    pub(super) messages: u64,
    /// How many messages the index admits for the query, when the
    /// statistics can tell ([`SearchStatistics::admitted`]).
    pub(super) admitted: Option<u64>,
}

/// The statistics a connection last read.
#[derive(Debug)]
pub(super) struct SearchStatistics {
    /// The planner's estimate of the messages.
    messages: u64,
    /// The index's most common tokens, each with the share of messages
    /// that hold it (from `ANALYZE`'s sample); those too rare for any
    /// search to walk for are left out.
    common: HashMap<String, f64>,
    /// When they were read, for [`STATISTICS_MAX_AGE`].
    read_at: Instant,
}

impl SearchStatistics {
    /// How many messages the index admits for `index`, as the statistics
    /// estimate it: for a condition of one token, or of one prefix, that
    /// they list (at least the prefix's most common token); `None` for
    /// anything else (two tokens may never meet, and a token they do not
    /// list may be anything up to their rarest).
    pub(super) fn admitted(&self, index: &IndexQuery) -> Option<u64> {
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

/// Statistics as given, for tests: a stale or wrong copy must change no
/// hit.
#[cfg(test)]
pub(super) fn claiming(messages: u64, common: &[(&str, f64)]) -> SearchStatistics {
    SearchStatistics {
        messages,
        common: common.iter().map(|(t, s)| ((*t).to_owned(), *s)).collect(),
        read_at: Instant::now(),
    }
}

/// What the connection's statistics say of `index`, read again when
/// missing or old.
pub(super) fn estimate(conn: &mut PgConn, index: &IndexQuery) -> Result<Estimate> {
    let statistics = match conn.statistics.take() {
        Some(kept) if kept.read_at.elapsed() < STATISTICS_MAX_AGE => kept,
        _ => read(conn)?,
    };
    let estimate = Estimate {
        messages: statistics.messages,
        admitted: statistics.admitted(index),
    };
    conn.statistics = Some(statistics);
    Ok(estimate)
}

/// Reads the statistics: the table's size, and the tokens common enough
/// that a search could walk for them without a count (a share of more
/// than [`LISTED_FROM`] × [`ALWAYS_THROUGH_INDEX`] messages), so that the
/// largest list `ANALYZE` keeps (100,000 tokens) is not held for nothing.
fn read(conn: &mut PgConn) -> Result<SearchStatistics> {
    let statement = conn.statement(SEARCH_STATISTICS)?;
    let fewest =
        i64::try_from(LISTED_FROM.saturating_mul(ALWAYS_THROUGH_INDEX)).unwrap_or(i64::MAX);
    let rows = conn.client.query(&statement, &[&fewest])?;
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
    fn only_a_single_listed_token_or_prefix_has_an_estimate() {
        let s = statistics();
        let query = |tokens: &[&str], prefixes: &[&str]| IndexQuery {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            prefixes: prefixes.iter().map(|t| t.to_string()).collect(),
            ..IndexQuery::default()
        };
        assert_eq!(s.admitted(&query(&["time"], &[])), Some(500));
        // A prefix: its most common token (two may share a message).
        assert_eq!(s.admitted(&query(&[], &["chap"])), Some(250));
        // A share out of range is a bound, not more messages than exist.
        assert_eq!(s.admitted(&query(&["odd"], &[])), Some(1_000));
        // Not listed: anything up to the rarest listed.
        assert_eq!(s.admitted(&query(&["rare"], &[])), None);
        assert_eq!(s.admitted(&query(&[], &["zz"])), None);
        // Two conditions may never meet.
        assert_eq!(s.admitted(&query(&["time", "chapter"], &[])), None);
        assert_eq!(s.admitted(&query(&["time"], &["chap"])), None);
        // An excluded token may take any of them away.
        let mut excluding = query(&["time"], &[]);
        excluding.excluded = vec!["chapter".into()];
        assert_eq!(s.admitted(&excluding), None);
        // A phrase: its pair, or else its words (the fallback).
        let mut phrase = query(&["time", "chapter"], &[]);
        phrase.pairs = vec![("time".into(), "chapter".into())];
        assert_eq!(s.admitted(&phrase), None);
    }
}
