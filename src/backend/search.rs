//! What a backend does for search: hand over the texts its index says are
//! worth checking, newest first. The check itself (the same for every
//! backend) is the facade's.

use std::cell::Cell;

use uuid::Uuid;

use super::{Backend, Branches, Finish};
use crate::error::{Error, Result};
use crate::model::{Archived, ConversationId, IndexProgress, Role};
use crate::search::query::IndexQuery;

/// Which texts a search asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchFilter<'a> {
    /// What their index tokens must hold.
    pub(crate) index: &'a IndexQuery,
    pub(crate) conversation: Option<ConversationId>,
    /// Only messages of this role.
    pub(crate) role: Option<Role>,
    /// Created at or after (microseconds since 1970).
    pub(crate) since: Option<i64>,
    /// Created before (microseconds since 1970).
    pub(crate) until: Option<i64>,
    pub(crate) archived: Archived,
    /// Messages of current branches only, or all.
    pub(crate) branches: Branches,
    /// What a backend counted of the messages the index admits, for the
    /// search's later calls.
    pub(crate) admitted: &'a AdmittedCount,
}

/// How many messages a search's index admits, as far as a backend counted
/// them, kept for the search's later calls: they read one snapshot, so the
/// count stays true, and counting again costs (on PostgreSQL a count reads
/// a common token's whole list from the GIN index and a heap row for each
/// match it counts, and a phrase of common words asks for many batches). A
/// count is made again only for a later call that needs to know more than
/// a count that stopped at its bound can say (a larger batch, whose bound
/// is larger: once per batch size at most).
#[derive(Debug, Default)]
pub(crate) struct AdmittedCount(Cell<Option<Counted>>);

/// A count made up to a bound: `n` admitted, or at least `n` when it
/// reached the bound.
#[derive(Debug, Clone, Copy)]
struct Counted {
    n: u64,
    bound: u64,
}

impl AdmittedCount {
    /// The number of messages admitted, or `bound` when there are at least
    /// that many: from what was counted, when it says, else from
    /// `count(bound)` (which must return the same: the number, at most
    /// `bound`), then kept.
    #[allow(dead_code)] // unused in a memory-only build
    pub(crate) fn up_to(&self, bound: u64, count: impl FnOnce(u64) -> Result<u64>) -> Result<u64> {
        match self.0.get() {
            // Exact: the count stopped short of its bound.
            Some(c) if c.n < c.bound => return Ok(c.n.min(bound)),
            // At least `c.n`, which is at least `bound`.
            Some(c) if c.n >= bound => return Ok(bound),
            _ => {}
        }
        let n = count(bound)?.min(bound);
        self.0.set(Some(Counted { n, bound }));
        Ok(n)
    }

    /// Forgets the count (a search read again from a new snapshot).
    pub(crate) fn forget(&self) {
        self.0.set(None);
    }
}

impl SearchFilter<'_> {
    /// Whether a conversation archived or not (`archived`) is searched.
    pub(crate) fn admits_archived(&self, archived: bool) -> bool {
        match self.archived {
            Archived::Hide => !archived,
            Archived::Include => true,
            Archived::Only => archived,
        }
    }

    /// Whether a text created at `micros` is in the time range.
    pub(crate) fn admits_time(&self, micros: i64) -> bool {
        self.since.is_none_or(|s| micros >= s) && self.until.is_none_or(|u| micros < u)
    }

    /// `archived` as the SQL backends bind it: 0 not archived only, 1
    /// archived only, 2 both.
    #[allow(dead_code)] // unused in a memory-only build
    pub(crate) fn archived_param(&self) -> i32 {
        match self.archived {
            Archived::Hide => 0,
            Archived::Only => 1,
            Archived::Include => 2,
        }
    }
}

/// The most messages a search reads through the index (every one it
/// admits, then sorted) rather than walking messages newest first and
/// checking each, for a call that asks for `limit` among `messages`: a
/// walk reads about `limit × messages / admitted` rows, the index
/// `admitted` rows that each cost as much as `walk_rows_per_index_row`
/// rows of a walk; so through the index while `admitted² × that ≤ limit ×
/// messages`, and always up to [`ALWAYS_THROUGH_INDEX`].
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn most_through_index(limit: usize, messages: u64, walk_rows_per_index_row: u32) -> u64 {
    let product = limit as f64 * messages as f64 / f64::from(walk_rows_per_index_row.max(1));
    // `as` saturates: a huge product is a huge bound, never a wrap.
    (product.sqrt() as u64).max(ALWAYS_THROUGH_INDEX)
}

/// Up to this many messages a search reads what the index admits through
/// it, whatever the table and the page: a walk to find so few is no
/// cheaper.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) const ALWAYS_THROUGH_INDEX: u64 = 2_000;

/// What kind of text a candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TextKind {
    /// A message's content.
    Message = 0,
    /// A conversation's title.
    Title = 1,
}

/// A text the index found, with what a hit shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) kind: TextKind,
    /// Its time: the message's `created_at`, or for a title the
    /// conversation's (microseconds since 1970).
    pub(crate) created_at: i64,
    /// The message's id, or for a title the conversation's.
    pub(crate) id: Uuid,
    pub(crate) conversation_id: ConversationId,
    pub(crate) conversation_title: String,
    /// The message's role; `None` for a title.
    pub(crate) role: Option<Role>,
    /// The message's content, or the title.
    pub(crate) text: String,
}

impl Candidate {
    /// Its place in the newest-first order: (created_at, id, kind), descending.
    pub(crate) fn key(&self) -> (i64, Uuid, TextKind) {
        (self.created_at, self.id, self.kind)
    }
}

/// Texts per transaction of an index build: bounded memory (at most this
/// many messages and titles held at once), short write locks.
pub(crate) const INDEX_BATCH: usize = 500;

/// [`Backend::build_search_index`] on any backend.
pub(crate) fn build_index<B: Backend + ?Sized>(
    backend: &B,
    progress: &mut dyn FnMut(IndexProgress),
) -> Result<IndexProgress> {
    let mut total = None;
    backend.read(&mut |session| {
        total = session.unindexed()?;
        Ok(Finish::Commit)
    })?;
    let mut done = IndexProgress {
        indexed: 0,
        total: total.unwrap_or(0),
    };
    if done.total == 0 {
        return Ok(done);
    }
    // A build takes about `total / INDEX_BATCH` batches (more when writers
    // add texts meanwhile); one that goes on far longer indexes the same
    // texts again and again, as a damaged index can make it (a row that
    // its index still lists as unindexed): refused rather than endless.
    let most_batches = done.total / INDEX_BATCH as u64 * 2 + 10;
    for _ in 0..most_batches {
        let mut indexed = 0;
        backend.write(&mut |session| {
            indexed = session.index_unindexed(INDEX_BATCH)?;
            Ok(Finish::Commit)
        })?;
        if indexed == 0 {
            return Ok(done);
        }
        done.indexed += indexed;
        done.total = done.total.max(done.indexed);
        progress(done);
        // A batch short of a full one found nothing more to index when it
        // ran. Texts written since are the writers' to index (on SQLite a
        // batch at a time, read beside the index until then): a build that
        // followed them would go on as long as another store writes.
        if indexed < INDEX_BATCH as u64 {
            return Ok(done);
        }
    }
    Err(Error::Migration {
        message: format!(
            "building the search index did not finish after {most_batches} batches of {INDEX_BATCH} \
             texts ({} indexed, {} to index when it began): the database may be damaged \
             (check it, then rebuild the index)",
            done.indexed, done.total
        ),
        source: None,
    })
}

/// A progress report that logs (info) at each tenth of an index build, for
/// builds no caller watches (on open, or after a migration).
pub(crate) fn log_progress() -> impl FnMut(IndexProgress) {
    let mut logged = 0;
    move |p| {
        let tenth = (p.indexed * 10).checked_div(p.total).unwrap_or(10);
        if tenth > logged || (p.indexed == p.total && logged < 10) {
            logged = tenth.max(1);
            log::info!("search index: {} of {} texts indexed", p.indexed, p.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AdmittedCount, most_through_index};

    #[test]
    fn the_index_reads_more_the_larger_the_table_and_the_page() {
        // At least 2,000, whatever the table.
        assert_eq!(most_through_index(20, 0, 4), 2_000);
        assert_eq!(most_through_index(32, 100_000, 4), 2_000);
        // √(limit × messages / cost).
        assert_eq!(most_through_index(1_000, 1_000_000, 4), 15_811);
        assert_eq!(most_through_index(1_000, 1_000_000, 1), 31_622);
        assert_eq!(most_through_index(32, 1_000_000, 0), 5_656);
        // Bounded at the extremes, never wrapped.
        assert!(most_through_index(usize::MAX, u64::MAX, 1) > 1 << 60);
    }

    /// `up_to` with a count of `admitted` texts, recording each count made.
    fn up_to(kept: &AdmittedCount, bound: u64, admitted: u64, made: &mut Vec<u64>) -> u64 {
        kept.up_to(bound, |bound| {
            made.push(bound);
            Ok(admitted.min(bound))
        })
        .unwrap()
    }

    #[test]
    fn a_count_is_made_again_only_when_the_kept_one_cannot_say() {
        let mut made = Vec::new();
        // Exact (short of its bound): answers every later bound.
        let kept = AdmittedCount::default();
        assert_eq!(up_to(&kept, 100, 40, &mut made), 40);
        assert_eq!(up_to(&kept, 30, 40, &mut made), 30);
        assert_eq!(up_to(&kept, 1_000, 40, &mut made), 40);
        assert_eq!(made, [100]);
        // At its bound: at least that many, which answers smaller bounds;
        // a larger one counts again.
        made.clear();
        let kept = AdmittedCount::default();
        assert_eq!(up_to(&kept, 100, 5_000, &mut made), 100);
        assert_eq!(up_to(&kept, 100, 5_000, &mut made), 100);
        assert_eq!(up_to(&kept, 50, 5_000, &mut made), 50);
        assert_eq!(up_to(&kept, 1_000, 5_000, &mut made), 1_000);
        assert_eq!(up_to(&kept, 10_000, 5_000, &mut made), 5_000);
        assert_eq!(up_to(&kept, 20_000, 5_000, &mut made), 5_000);
        assert_eq!(made, [100, 1_000, 10_000]);
        // Forgotten: counted again.
        kept.forget();
        assert_eq!(up_to(&kept, 100, 5_000, &mut made), 100);
        assert_eq!(made, [100, 1_000, 10_000, 100]);
        // A failed count keeps nothing.
        let kept = AdmittedCount::default();
        assert!(
            kept.up_to(10, |_| Err(crate::error::Error::Backend("down".into())))
                .is_err()
        );
        assert_eq!(up_to(&kept, 10, 3, &mut made), 3);
    }
}
