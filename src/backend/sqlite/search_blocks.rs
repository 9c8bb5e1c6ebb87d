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
//! it was. So a read down the rowids knows,
//! at each row, the newest time any row further down can have, and stops
//! once the page it holds is newer than that: after the newest matches of
//! a common word rather than all of them, and without walking every
//! message by time checking each.
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
pub(super) const BLOCK: i64 = 1 << 10;

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

fn has_blocks(conn: &Connection) -> Result<bool> {
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

/// The most rows a read takes before it gives up: the page, and two
/// blocks past it (a read stops only below the block of the page's last
/// hit).
fn most_read(limit: usize) -> usize {
    limit.saturating_add(2 * BLOCK as usize)
}

/// The `limit` newest messages before `before` that the index admits
/// (`expression`, an FTS5 expression) and the filters pass, with those
/// above the mark that `silmari_admits` admits, read newest rowid first;
/// `None` when the schema has no blocks, or the read would take more than
/// [`most_read`] rows, or a row lies outside its block's range (a block
/// table that drifted: `check` reports it, and the caller answers).
pub(super) fn newest_by_rowid(
    conn: &Connection,
    expression: &str,
    filter: &SearchFilter<'_>,
    before: Option<TimeKey>,
    limit: usize,
) -> Result<Option<Vec<Candidate>>> {
    let Some(blocks) = blocks(conn)? else {
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
    // listed: a row in a block not listed is read, and is a drift.
    let top = blocks.iter().rposition(|b| b.oldest < filters.until);
    let next = top.map_or(0, |t| t + 1);
    let below = blocks
        .get(next)
        .map_or(i64::MAX, |b| b.block.saturating_mul(BLOCK));
    let most = most_read(limit);
    let bound = i64::try_from(most).unwrap_or(i64::MAX).saturating_add(1);
    let mut statement = conn.prepare_cached(MESSAGES_BY_ROWID)?;
    let mut values = filters.with(&expression, &bound);
    values.push(&below);
    let mut rows = statement.query(values.as_slice())?;
    let (mut read, mut at) = (0, top.unwrap_or(0));
    while let Some(row) = rows.next()? {
        let found = candidate(row, TextKind::Message)?;
        let rowid: i64 = row.get(6)?;
        // The row's block: at or below the last row's (rowids descend).
        let block = rowid >> BLOCK.trailing_zeros();
        while at > 0 && blocks[at].block > block {
            at -= 1;
        }
        let Some(here) = blocks.get(at).filter(|b| b.block == block) else {
            return Ok(None);
        };
        if found.created_at > here.newest || found.created_at < here.oldest {
            return Ok(None);
        }
        page.add(found);
        read += 1;
        if read > most {
            return Ok(None);
        }
        // Every row not read yet has a lower rowid: a time at most this.
        let newest_further = here.newest_up_to;
        if newest_further < filters.since || page.newer_than(newest_further) {
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
mod tests {
    use rusqlite::params;

    use super::super::indexer::index_message_at;
    use super::super::rows::key;
    use super::*;
    use crate::backend::Branches;
    use crate::backend::search::AdmittedCount;
    use crate::model::Archived;
    use crate::search::query::IndexQuery;

    /// A database at the latest version with one conversation.
    fn migrated() -> Result<Connection> {
        let conn = super::super::tests::searchable()?;
        conn.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?1, 't', 0, 0)",
            [key(conversation())],
        )?;
        Ok(conn)
    }

    fn conversation() -> Uuid {
        Uuid::from_u128(1)
    }

    /// Writes a message at search rowid `rowid`, created at `time`, holding
    /// `text`: in the index when `indexed`, else above the mark.
    fn write(conn: &Connection, rowid: i64, time: i64, text: &str, indexed: bool) -> Result<()> {
        conn.execute(
            "INSERT INTO messages (id, conversation_id, position, role, content, created_at, \
             search_rowid) VALUES (?1, ?2, ?3, 'user', ?4, ?5, ?3)",
            params![
                key(Uuid::from_u128(1_000_000 + rowid as u128)),
                key(conversation()),
                rowid,
                text,
                time
            ],
        )?;
        if indexed {
            let mut widened = Widened::default();
            index_message_at(conn, rowid, time, text, &mut widened)?;
            widened.write(conn)?;
            conn.execute(
                "UPDATE search_progress SET indexed_upto = max(indexed_upto, ?1)",
                [rowid],
            )?;
        }
        Ok(())
    }

    /// `newest_by_rowid` for the word `word`, before `before`.
    fn newest(
        conn: &Connection,
        word: &str,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Option<Vec<i64>>> {
        let index = IndexQuery {
            tokens: vec![word.into()],
            ..IndexQuery::default()
        };
        let admitted = AdmittedCount::default();
        let filter = SearchFilter {
            index: &index,
            conversation: None,
            role: None,
            since: None,
            until: None,
            archived: Archived::Include,
            branches: Branches::All,
            admitted: &admitted,
        };
        let expression = format!("\"{word}\"");
        let found = newest_by_rowid(conn, &expression, &filter, before, limit)?;
        Ok(found.map(|found| found.iter().map(|c| c.created_at).collect()))
    }

    /// The `limit` newest times of `times` before `before`.
    fn expected(mut times: Vec<i64>, before: i64, limit: usize) -> Vec<i64> {
        times.retain(|t| *t < before);
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.truncate(limit);
        times
    }

    /// Rowids given in the order of time: a page of the newest is read
    /// from the top and the read stops below it, long before every match
    /// (5,000, more than a read may take); with a cursor, the blocks above
    /// it are not read at all; texts above the mark are on the page too.
    #[test]
    fn rowids_in_time_order_stop_after_the_page() -> Result<()> {
        let conn = migrated()?;
        for i in 1..=5_000 {
            write(&conn, i, i * 10, "common word", true)?;
        }
        for i in 5_001..=5_010 {
            write(&conn, i, i * 10, "common pending", false)?;
        }
        let times: Vec<i64> = (1..=5_010).map(|i| i * 10).collect();
        assert!(most_read(20) < 5_000);
        assert_eq!(
            newest(&conn, "common", None, 20)?,
            Some(expected(times.clone(), i64::MAX, 20))
        );
        // The second page, after the cursor: the blocks above it skipped.
        let cursor = (20_000, Uuid::nil());
        assert_eq!(
            newest(&conn, "common", Some(cursor), 1_000)?,
            Some(expected(times.clone(), 20_000, 1_000))
        );
        // A word only some hold: further down, the same rule.
        assert_eq!(
            newest(&conn, "word", None, 5)?,
            Some(expected((1..=5_000).map(|i| i * 10).collect(), i64::MAX, 5))
        );
        assert_eq!(newest(&conn, "absent", None, 5)?, Some(Vec::new()));
        Ok(())
    }

    /// Rowids against time (old texts written last, as an import of old
    /// conversations writes them): the read goes further down, finds the
    /// newer texts below and still gives the newest page; where that would
    /// take more than a read may, it gives up (`None`), and the caller
    /// reads the index or walks as before.
    #[test]
    fn rowids_against_time_read_further_or_give_up() -> Result<()> {
        let conn = migrated()?;
        // 1,500 recent texts, then 600 old ones above them.
        for i in 1..=1_500 {
            write(&conn, i, 1_000_000 + i, "word", true)?;
        }
        for i in 1_501..=2_100 {
            write(&conn, i, i, "word", true)?;
        }
        let times: Vec<i64> = (1..=1_500)
            .map(|i| 1_000_000 + i)
            .chain(1_501..=2_100)
            .collect();
        assert_eq!(
            newest(&conn, "word", None, 20)?,
            Some(expected(times.clone(), i64::MAX, 20))
        );
        // Every rowid against time: a page of 20 would read all 5,000.
        let conn = migrated()?;
        for i in 1..=5_000 {
            write(&conn, i, -i, "word", true)?;
        }
        assert_eq!(newest(&conn, "word", None, 20)?, None);
        // Within what a read may take, the same rule answers.
        let conn = migrated()?;
        for i in 1..=1_000 {
            write(&conn, i, -i, "word", true)?;
        }
        let times: Vec<i64> = (1..=1_000).map(|i| -i).collect();
        assert_eq!(
            newest(&conn, "word", None, 20)?,
            Some(expected(times, i64::MAX, 20))
        );
        Ok(())
    }

    /// A block table that drifted (a row outside its block's range, or
    /// its block missing, as a damaged or hostile file may hold) is not
    /// trusted: `None`, whichever row shows it.
    #[test]
    fn a_drifted_block_table_is_not_trusted() -> Result<()> {
        for damage in [
            "UPDATE search_blocks SET newest = 0 WHERE block = 2",
            "DELETE FROM search_blocks WHERE block = 1",
            "DELETE FROM search_blocks WHERE block = 4",
            "DELETE FROM search_blocks",
        ] {
            let conn = migrated()?;
            for i in 1..=4_500 {
                write(&conn, i, i, "word", true)?;
            }
            conn.execute_batch(damage)?;
            assert_eq!(newest(&conn, "word", None, 3_000)?, None, "{damage}");
        }
        Ok(())
    }

    /// A writer widens each block it indexes messages in, once per block;
    /// a message whose time changed while its entry stays widens its own.
    #[test]
    fn the_blocks_take_every_message_indexed() -> Result<()> {
        let conn = migrated()?;
        let blocks = |conn: &Connection| -> Result<Vec<(i64, i64, i64)>> {
            Ok(conn
                .prepare(SEARCH_BLOCKS)?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?)
        };
        let mut widened = Widened::default();
        for (rowid, time) in [(5, 50), (7, 40), (2_000, 70), (1_024, 75)] {
            widened.add(rowid, time);
        }
        widened.write(&conn)?;
        assert_eq!(blocks(&conn)?, [(0, 50, 40), (1, 75, 70)]);
        // Within the range: nothing changes; beyond it: widened.
        write(&conn, 6, 45, "inside", true)?;
        write(&conn, 8, 30, "older", true)?;
        assert_eq!(blocks(&conn)?, [(0, 50, 30), (1, 75, 70)]);
        let id = Uuid::from_u128(1_000_000 + 6);
        conn.execute(
            "UPDATE messages SET created_at = 90 WHERE id = ?1",
            [key(id)],
        )?;
        widen_block_of(&conn, id.into())?;
        assert_eq!(blocks(&conn)?, [(0, 90, 30), (1, 75, 70)]);
        // A message without a rowid has no block.
        conn.execute(
            "UPDATE messages SET search_rowid = NULL WHERE id = ?1",
            [key(id)],
        )?;
        conn.execute(
            "UPDATE messages SET created_at = 99 WHERE id = ?1",
            [key(id)],
        )?;
        widen_block_of(&conn, id.into())?;
        assert_eq!(blocks(&conn)?, [(0, 90, 30), (1, 75, 70)]);
        Ok(())
    }
}
