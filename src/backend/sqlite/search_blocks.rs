//! Search candidates read through the index newest rowid first (V11).
//!
//! A message takes its search rowid when it is written, above every one
//! before it, so the index's matches in descending rowid order come about
//! newest first; FTS5 gives them in that order as it reads, with no sort.
//! `search_blocks` holds, for each block of [`BLOCK`] rowids, the newest
//! and the oldest `created_at` of the messages ever indexed at a rowid in
//! it: every write that puts a message's entry in the index widens its
//! block ([`Widened`]), as does one that changes the time of a message
//! whose entry stays; a row deleted or moved leaves the range as wide as
//! it was. So a read down the rowids knows, at each row, the newest time
//! any row further down can have, and stops once the page it holds is
//! newer than that: after the newest matches of a common word rather than
//! all of them, and without walking every message by time checking each.
//!
//! Rowids follow time where texts are written as they are made. Where they
//! do not (an import of old conversations after newer ones, edits), the
//! blocks say so and the read goes on further down; one that would read
//! more than [`most_read`] rows gives up, and the search reads the index
//! or walks by time as before (`search::candidates`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use rusqlite::{Connection, params};
use uuid::Uuid;

use super::queries::{
    HAS_SEARCH_BLOCKS, MESSAGES_BY_ROWID, PENDING_MESSAGES, SEARCH_BLOCKS, WIDEN_SEARCH_BLOCK,
    WIDEN_SEARCH_BLOCK_OF,
};
use super::rows::key;
use super::search::{Filters, candidate, encode};
use crate::backend::TimeKey;
use crate::backend::search::{Candidate, SearchFilter, TextKind};
use crate::error::Result;
use crate::model::MessageId;

/// Search rowids per block (`search_rowid >> 10` in V11's SQL).
const BLOCK: i64 = 1 << 10;

/// Blocks that messages indexed by one writer widen: each message's time
/// taken in its block's range as the writer indexes it, and the blocks
/// written once at the end ([`write`](Widened::write)).
#[derive(Debug, Default)]
pub(super) struct Widened(BTreeMap<i64, (i64, i64)>);

impl Widened {
    /// Message entry `rowid` (a message's search rowid), created at
    /// `created_at` (microseconds since 1970), was indexed.
    pub(super) fn add(&mut self, rowid: i64, created_at: i64) {
        let (newest, oldest) = self
            .0
            .entry(rowid >> BLOCK.trailing_zeros())
            .or_insert((created_at, created_at));
        *newest = (*newest).max(created_at);
        *oldest = (*oldest).min(created_at);
    }

    /// Writes the blocks widened (none below V11).
    pub(super) fn write(self, conn: &Connection) -> Result<()> {
        if self.0.is_empty() || !has_blocks(conn)? {
            return Ok(());
        }
        let mut widen = conn.prepare_cached(WIDEN_SEARCH_BLOCK)?;
        for (block, (newest, oldest)) in self.0 {
            widen.execute(params![block, newest, oldest])?;
        }
        Ok(())
    }
}

/// Widens the block of message `id`'s search rowid to take its time, as
/// it is now (after a write that may have changed the time of a message
/// whose entry stays). Nothing below V11.
pub(super) fn widen_block_of(conn: &Connection, id: MessageId) -> Result<()> {
    if has_blocks(conn)? {
        conn.prepare_cached(WIDEN_SEARCH_BLOCK_OF)?
            .execute([key(id)])?;
    }
    Ok(())
}

/// Whether the schema has `search_blocks` (V11 on).
pub(super) fn has_blocks(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(HAS_SEARCH_BLOCKS)?
        .query_row([], |r| r.get(0))?)
}

/// One block of `search_blocks`, with the newest time of every block up to
/// it.
#[derive(Debug, Clone, Copy)]
struct Block {
    block: i64,
    /// The newest `created_at` of this block and every one below it.
    newest_up_to: i64,
    /// The oldest `created_at` of this block.
    oldest: i64,
    /// The newest `created_at` of this block alone.
    newest: i64,
}

/// Every block, by number, or `None` below V11.
fn blocks(conn: &Connection) -> Result<Option<Vec<Block>>> {
    if !has_blocks(conn)? {
        return Ok(None);
    }
    let mut statement = conn.prepare_cached(SEARCH_BLOCKS)?;
    let mut rows = statement.query([])?;
    let mut blocks: Vec<Block> = Vec::new();
    while let Some(row) = rows.next()? {
        let (block, newest, oldest): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let below = blocks.last().map_or(i64::MIN, |b| b.newest_up_to);
        blocks.push(Block {
            block,
            newest_up_to: newest.max(below),
            oldest,
            newest,
        });
    }
    Ok(Some(blocks))
}

/// The most rows a read takes before it gives up, those the filters
/// refuse included: the page, and two blocks past it (a read stops only
/// below the block of the page's last hit).
fn most_read(limit: usize) -> usize {
    limit.saturating_add(2 * BLOCK as usize)
}

/// The `limit` newest messages before `before` that the index admits
/// (`expression`, an FTS5 expression) and the filters pass, with those
/// above the mark that `silmari_admits` admits, read newest rowid first;
/// `None` when the schema has no blocks (or none is listed), or the read
/// would take more than [`most_read`] rows, or a row lies outside its
/// block's range (a block table that drifted: `check` reports it, and the
/// caller answers).
pub(super) fn newest_by_rowid(
    conn: &Connection,
    expression: &str,
    filter: &SearchFilter<'_>,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<Option<Vec<Candidate>>> {
    // No table (below V11), or none of its rows: nothing to trust.
    let Some(blocks) = blocks(conn)?.filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    if limit == 0 {
        return Ok(Some(Vec::new()));
    }
    let filters = Filters::new(filter, before);
    let mut page = Page::new(limit);
    // The texts above the mark, not in the index yet: the highest rowids.
    let query = encode(filter.index);
    let all = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut pending = conn.prepare_cached(PENDING_MESSAGES)?;
    let mut rows = pending.query(filters.with(&query, &all).as_slice())?;
    while let Some(row) = rows.next()? {
        page.add(candidate(row, TextKind::Message)?);
    }
    // Down from the highest block that may hold a row before the cursor
    // and the range's end (those above hold none), below the next block
    // listed: a row in a block not listed is read, and is a drift. Down to
    // the lowest block that may hold one from the range's start.
    let top = blocks.iter().rposition(|b| b.oldest < filters.until);
    let next = top.map_or(0, |t| t + 1);
    let below = blocks
        .get(next)
        .map_or(i64::MAX, |b| b.block.saturating_mul(BLOCK));
    let from = blocks
        .iter()
        .find(|b| b.newest_up_to >= filters.since)
        .map_or(below, |b| b.block.saturating_mul(BLOCK));
    let most = most_read(limit);
    let bound = i64::try_from(most).unwrap_or(i64::MAX).saturating_add(1);
    let mut statement = conn.prepare_cached(MESSAGES_BY_ROWID)?;
    let mut values = filters.with(&expression, &bound);
    values.extend([&below as &dyn rusqlite::ToSql, &from]);
    let mut rows = statement.query(values.as_slice())?;
    let (mut read, mut at) = (0, top.unwrap_or(0));
    while let Some(row) = rows.next()? {
        let (created_at, rowid): (i64, i64) = (row.get(0)?, row.get(6)?);
        // The row's block: at or below the last row's (rowids descend).
        let block = rowid >> BLOCK.trailing_zeros();
        while at > 0 && blocks[at].block > block {
            at -= 1;
        }
        let Some(here) = blocks.get(at).filter(|b| b.block == block) else {
            return Ok(None);
        };
        if created_at > here.newest || created_at < here.oldest {
            return Ok(None);
        }
        // Every row read counts, whether the filters pass it (its text)
        // or not (none).
        read += 1;
        if read > most {
            return Ok(None);
        }
        if row.get_ref(5)? != rusqlite::types::ValueRef::Null {
            page.add(candidate(row, TextKind::Message)?);
        }
        // Every row not read yet has a lower rowid: a time at most this.
        if page.newer_than(here.newest_up_to) {
            break;
        }
    }
    Ok(Some(page.into_sorted()))
}

/// The candidates read, and the times of the `limit` newest.
struct Page {
    found: Vec<Candidate>,
    newest: BinaryHeap<Reverse<(i64, Uuid)>>,
    limit: usize,
}

impl Page {
    fn new(limit: usize) -> Page {
        Page {
            found: Vec::new(),
            newest: BinaryHeap::with_capacity(limit.min(4_096) + 1),
            limit,
        }
    }

    fn add(&mut self, found: Candidate) {
        self.newest.push(Reverse((found.created_at, found.id)));
        if self.newest.len() > self.limit {
            self.newest.pop();
        }
        self.found.push(found);
    }

    /// Whether the page is full and its oldest is newer than `time`.
    fn newer_than(&self, time: i64) -> bool {
        self.newest.len() >= self.limit
            && self
                .newest
                .peek()
                .is_some_and(|Reverse((oldest, _))| *oldest > time)
    }

    /// The `limit` newest, newest first.
    fn into_sorted(mut self) -> Vec<Candidate> {
        self.found
            .sort_unstable_by_key(|c| Reverse((c.created_at, c.id)));
        self.found.truncate(self.limit);
        self.found
    }
}

#[cfg(test)]
mod tests;
