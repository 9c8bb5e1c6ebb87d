//! Search indexing of texts written one at a time, in batches (V7): a mark
//! per kind of text (messages, titles) below which every text is in
//! `search_index`, and the batches that move it.
//!
//! A text indexed on its own cost FTS5 a new segment and four records per
//! transaction (about five pages of the log, 40% of an append). A message
//! appended or a conversation created now only takes the next search rowid
//! above both every one of its kind and the mark
//! (`search_progress.indexed_upto`, `titles_indexed_upto`); the write that
//! leaves [`BATCH`] texts or more above the mark indexes them all, in its
//! own transaction, as one segment, and moves the mark past them. Searches
//! read the index and, beside it, the few texts above the mark, which
//! `silmari_admits` checks. Batches of messages are indexed as they are
//! written. An edit of a text already indexed (V8), or a long reply being
//! streamed ([`index_grown`]), waits for its batch too: the text takes a
//! new rowid above the mark, and its old entry, which no text's rowid names
//! any more, is listed in `search_stale` for the next batch to drop.
//!
//! The rule that keeps the index exact: a text has an entry in
//! `search_index` exactly when its search rowid is at or below its kind's
//! mark, and every other entry is listed in `search_stale`. Nothing writes
//! an entry above the mark (an edit of a text not indexed yet leaves it to
//! the batch, which reads the text as it then is), the delete triggers
//! remove entries only at or below it, and no rowid at or below it is
//! given again, so a listed entry never comes to name a text: searches,
//! which join entries to texts by rowid, find nothing through it.

use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::queries::*;
use super::rows::{key, uuid_at};
use super::search_blocks::{Widened, has_blocks, widen_block_of};
use crate::error::Result;
use crate::model::{ConversationId, MessageId};
use crate::search::tokenize::index_text;

/// Texts above the mark at which a write indexes them: at most this many
/// (plus what other stores wrote meanwhile) are read beside the index by a
/// search, and one write in this many pays for the batch.
pub(super) const BATCH: i64 = 128;

/// A text longer than this (in bytes) does not wait: the write that makes
/// it, or an edit or a streamed delta that grows it past this, indexes it
/// with everything waiting. So what a search reads beside the index stays
/// under [`BATCH`] texts of this size (half a MiB), whatever the texts.
pub(super) const LONGEST_WAITING: usize = 4 * 1024;

/// A streamed text longer than [`LONGEST_WAITING`] may wait for its batch
/// (one at a time, and up to this long) instead of being indexed again at
/// every delta, its whole token list each time: what a search reads beside
/// the index grows by at most this while a long reply streams.
pub(super) const LONGEST_STREAM_WAITING: usize = 256 * 1024;

/// At most about this many entries are listed as held by no text: the
/// edit that lists one more indexes what waits and drops them (edits of
/// texts then deleted before their batch list entries without leaving a
/// text to wait).
const MOST_STALE: i64 = BATCH;

/// A kind of text, with its own rowids and mark.
#[derive(Clone, Copy)]
pub(super) enum Texts {
    /// Message contents: entries at their search rowid.
    Messages,
    /// Conversation titles: entries at minus their search rowid.
    Titles,
}

impl Texts {
    fn sign(self) -> i64 {
        match self {
            Texts::Messages => 1,
            Texts::Titles => -1,
        }
    }

    fn statements(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Texts::Messages => (INDEXED_UPTO, SET_INDEXED_UPTO, PENDING_TEXTS),
            Texts::Titles => (TITLES_INDEXED_UPTO, SET_TITLES_INDEXED_UPTO, PENDING_TITLES),
        }
    }

    /// The statement that gives a text of this kind a new rowid above the
    /// mark.
    fn waits_again(self) -> &'static str {
        match self {
            Texts::Messages => MESSAGE_WAITS_AGAIN,
            Texts::Titles => TITLE_WAITS_AGAIN,
        }
    }
}

/// The next free search rowid of a message.
pub(super) fn next_rowid(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached(NEXT_SEARCH_ROWID)?
        .query_row([], |r| r.get(0))?)
}

/// The messages' mark: every message whose search rowid is at most this
/// is indexed. `None` before V7 (every text with a rowid is indexed there).
pub(super) fn indexed_upto(conn: &Connection) -> Result<Option<i64>> {
    let has_progress: bool = conn
        .prepare_cached(HAS_SEARCH_PROGRESS)?
        .query_row([], |r| r.get(0))?;
    if !has_progress {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(INDEXED_UPTO)?
        .query_row([], |r| r.get(0))
        .optional()?)
}

fn mark(conn: &Connection, texts: Texts) -> Result<i64> {
    Ok(conn
        .prepare_cached(texts.statements().0)?
        .query_row([], |r| r.get(0))?)
}

fn set_mark(conn: &Connection, texts: Texts, rowid: i64) -> Result<()> {
    conn.prepare_cached(texts.statements().1)?
        .execute([rowid])?;
    Ok(())
}

/// After a text of `len` bytes was written with search rowid `rowid` above
/// `mark` (both of kind `texts`), in the writer's transaction: when it
/// leaves [`BATCH`] texts or more above the mark, or is longer than
/// [`LONGEST_WAITING`], they are indexed.
pub(super) fn written(
    conn: &Connection,
    texts: Texts,
    (rowid, mark): (i64, i64),
    len: usize,
) -> Result<()> {
    if rowid.saturating_sub(mark) >= BATCH || len > LONGEST_WAITING {
        index_pending(conn, texts, usize::MAX)?;
    }
    Ok(())
}

/// Indexes every message above the mark, in the writer's transaction:
/// before messages are inserted and indexed as they are written (so that
/// the new ones, given rowids above all of them, can move the mark past
/// themselves, [`inserting`]), and when a second long text would wait
/// ([`index_grown`]).
pub(super) fn catch_up(conn: &Connection) -> Result<()> {
    index_pending(conn, Texts::Messages, usize::MAX).map(drop)
}

/// Messages with search rowids up to `last` are about to be inserted and
/// indexed: the mark moves first, so that an insert that fails halfway
/// (in a transaction that commits all the same) leaves no entry above it.
pub(super) fn inserting(conn: &Connection, last: i64) -> Result<()> {
    set_mark(conn, Texts::Messages, last)
}

/// Indexes up to `limit` texts of kind `texts` above the mark, oldest rowid
/// first, and moves the mark past them, and drops the entries no text
/// holds any more; in the caller's write transaction. One text is held at
/// a time (each may be as long as a message may be). Returns how many it
/// indexed.
pub(super) fn index_pending(conn: &Connection, texts: Texts, limit: usize) -> Result<u64> {
    drop_stale(conn)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(texts.statements().2)?;
    let mut rows = statement.query(params![mark(conn, texts)?, limit])?;
    let (mut indexed, mut last, mut widened) = (0, None, Widened::default());
    while let Some(row) = rows.next()? {
        let (rowid, text): (i64, String) = (row.get(0)?, row.get(1)?);
        match texts {
            Texts::Messages => index_message_at(conn, rowid, row.get(2)?, &text, &mut widened)?,
            Texts::Titles => index_at(conn, -rowid, &text)?,
        }
        indexed += 1;
        // The highest, whatever order a damaged index gave: the mark only
        // moves up.
        last = last.max(Some(rowid));
    }
    widened.write(conn)?;
    if let Some(last) = last {
        set_mark(conn, texts, last)?;
    }
    Ok(indexed)
}

/// Message `id`'s content was written: it waits above the mark of indexed
/// messages for its batch, which will read the text as it then is (now,
/// if it is longer than [`LONGEST_WAITING`]); if it was indexed, its old
/// entry is left for that batch to drop ([`wait_again`]).
pub(super) fn index_message(conn: &Connection, id: MessageId, content: &str) -> Result<()> {
    index_written(conn, Texts::Messages, key(id), content)
}

/// Message `id`'s content grew to `content` (a streamed
/// reply): indexed as an edit is ([`index_message`]), except that a text
/// past [`LONGEST_WAITING`] (and up to [`LONGEST_STREAM_WAITING`]) waits
/// for its batch while no other long text does: taken out of the index and
/// given a new rowid above the mark once, then left to wait as it grows.
pub(super) fn index_grown(conn: &Connection, id: MessageId, content: &str) -> Result<()> {
    let len = content.len();
    if len <= LONGEST_WAITING || len > LONGEST_STREAM_WAITING {
        return index_message(conn, id, content);
    }
    let Some((rowid, mark)) = search_rowid(conn, Texts::Messages, &key(id))? else {
        return Ok(());
    };
    // Asked at every delta: the rowid may have been given just now (a text
    // an index build had not reached), so "above the mark and long" does
    // not tell that it is the one allowed to wait.
    let other: bool = conn
        .prepare_cached(OTHER_LONG_WAITING)?
        .query_row(params![mark, rowid, LONGEST_WAITING as i64], |r| r.get(0))?;
    if other {
        return if rowid <= mark {
            index_at(conn, rowid, content)?;
            widen_block_of(conn, id)
        } else {
            catch_up(conn)
        };
    }
    if rowid <= mark {
        // Once: then it waits as it grows, counting toward the batch as a
        // new text does.
        return wait_again(conn, Texts::Messages, key(id), (rowid, mark), 0);
    }
    written(conn, Texts::Messages, (rowid, mark), 0)
}

/// Indexes conversation `id`'s title (V7): given its search rowid if it
/// has none, it waits above the titles' mark for a batch, as an edited
/// message does ([`index_message`]).
pub(super) fn index_title(conn: &Connection, id: ConversationId, title: &str) -> Result<()> {
    index_written(conn, Texts::Titles, key(id), title)
}

/// `title`, when writing it to conversation `id` changes it (read before
/// the write): a title written unchanged (`update` writes the title with
/// every other change) is not indexed again.
pub(super) fn renamed<'t>(
    conn: &Connection,
    id: ConversationId,
    title: Option<&'t str>,
) -> Result<Option<&'t str>> {
    let Some(title) = title else {
        return Ok(None);
    };
    let stored: Option<String> = conn
        .prepare_cached(CONVERSATION)?
        .query_row([key(id)], |r| r.get(0))
        .optional()?;
    Ok((stored.as_deref() != Some(title)).then_some(title))
}

/// Text `id` of kind `texts` was written: given its search rowid if it has
/// none (one statement, which also reads the mark), and left to its batch
/// ([`written`]); at or below the mark, it first waits again
/// ([`wait_again`]).
fn index_written(conn: &Connection, texts: Texts, id: super::rows::Key, text: &str) -> Result<()> {
    match search_rowid(conn, texts, &id)? {
        Some(rowids @ (rowid, mark)) if rowid <= mark => {
            wait_again(conn, texts, id, rowids, text.len())
        }
        Some(rowids) => written(conn, texts, rowids, text.len()),
        None => Ok(()),
    }
}

/// Text `id` of kind `texts`, indexed at `rowid` (at or below `mark`), now
/// holds `len` bytes it was not indexed with: it takes a new rowid above
/// the mark and waits there as a new text does ([`written`]), and its old
/// entry is listed for the next batch to drop. So an edit writes no index:
/// FTS5's delete marker and new segment for one edit cost more than the
/// edit itself (BENCHMARKS.md, "Edits wait for their batch"); the batch
/// writes its texts as one segment and its deletes in one transaction.
///
/// Before V8 (the schema moved down under this store), which has no such
/// list, the old entry is dropped at once.
fn wait_again(
    conn: &Connection,
    texts: Texts,
    id: super::rows::Key,
    (rowid, mark): (i64, i64),
    len: usize,
) -> Result<()> {
    let entry = texts.sign() * rowid;
    let stale: i64 = if has_stale_list(conn)? {
        conn.prepare_cached(STALE_ENTRY)?
            .query_row([entry], |r| r.get(0))?
    } else {
        conn.prepare_cached(UNINDEX_TEXT)?.execute([entry])?;
        0
    };
    let rowid: i64 = conn
        .prepare_cached(texts.waits_again())?
        .query_row([&id], |r| r.get(0))?;
    if stale >= MOST_STALE {
        return index_pending(conn, texts, usize::MAX).map(drop);
    }
    written(conn, texts, (rowid, mark), len)
}

/// Whether the schema lists entries held by no text (V8 on).
fn has_stale_list(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached(HAS_SEARCH_STALE)?
        .query_row([], |r| r.get(0))?)
}

/// Drops the entries listed as held by no text, and the list (V8).
fn drop_stale(conn: &Connection) -> Result<()> {
    if !has_stale_list(conn)? {
        return Ok(());
    }
    let stale: Vec<i64> =
        super::rows::collect(conn.prepare_cached(STALE_ENTRIES)?.query([])?, |row| {
            Ok(row.get(0)?)
        })?;
    if stale.is_empty() {
        return Ok(());
    }
    let mut unindex = conn.prepare_cached(UNINDEX_TEXT)?;
    for rowid in stale {
        unindex.execute([rowid])?;
    }
    conn.prepare_cached(FORGET_STALE_ENTRIES)?.execute([])?;
    Ok(())
}

/// [`Session::forget_search_index`](crate::backend::Session::forget_search_index):
/// empties the index and takes every text's rowid, the marks (V7), the
/// list of entries no text holds (V8) and the blocks of rowids (V11); a
/// rebuild follows.
pub(super) fn forget(conn: &Connection) -> Result<()> {
    if unindexed(conn)?.is_none() {
        return Ok(());
    }
    conn.execute_batch(FORGET_SEARCH_INDEX)?;
    if indexed_upto(conn)?.is_some() {
        conn.execute_batch(FORGET_MARK)?;
    }
    if has_stale_list(conn)? {
        conn.prepare_cached(FORGET_STALE_ENTRIES)?.execute([])?;
    }
    if has_blocks(conn)? {
        conn.prepare_cached(FORGET_SEARCH_BLOCKS)?.execute([])?;
    }
    Ok(())
}

/// Text `id`'s search rowid (given now if it has none) and its kind's
/// mark; `None` when there is no such text. Read first: most texts have
/// their rowid, and giving it again would write the rowid's index (a page
/// of the log at every edit and every streamed delta).
fn search_rowid(
    conn: &Connection,
    texts: Texts,
    id: &super::rows::Key,
) -> Result<Option<(i64, i64)>> {
    let (read_sql, give_sql) = match texts {
        Texts::Messages => (MESSAGE_SEARCH_ROWID_OF, MESSAGE_SEARCH_ROWID),
        Texts::Titles => (TITLE_SEARCH_ROWID_OF, TITLE_SEARCH_ROWID),
    };
    let found: Option<(Option<i64>, i64)> = conn
        .prepare_cached(read_sql)?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match found {
        None => Ok(None),
        Some((Some(rowid), mark)) => Ok(Some((rowid, mark))),
        Some((None, _)) => Ok(conn
            .prepare_cached(give_sql)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?),
    }
}

/// Before V7: gives text `id` its rowid by `rowid_sql` (unless it has one)
/// and its entry at `sign` times that rowid.
fn index(
    conn: &Connection,
    rowid_sql: &str,
    id: super::rows::Key,
    sign: i64,
    text: &str,
) -> Result<()> {
    let rowid: Option<i64> = conn
        .prepare_cached(rowid_sql)?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match rowid {
        Some(rowid) => index_at(conn, sign * rowid, text),
        None => Ok(()),
    }
}

/// Sets message entry `rowid` to `text`'s tokens, and takes its time
/// (`created_at`) in the block of rowids `widened` will write.
pub(super) fn index_message_at(
    conn: &Connection,
    rowid: i64,
    created_at: i64,
    text: &str,
    widened: &mut Widened,
) -> Result<()> {
    index_at(conn, rowid, text)?;
    widened.add(rowid, created_at);
    Ok(())
}

/// Sets the index entry `rowid` to `text`'s tokens (a message's entry: see
/// [`index_message_at`], which also widens its block).
pub(super) fn index_at(conn: &Connection, rowid: i64, text: &str) -> Result<()> {
    let tokens = index_text(text);
    conn.prepare_cached(INDEX_TEXT)?
        .execute(params![rowid, tokens])?;
    Ok(())
}

/// [`Session::unindexed`](crate::backend::Session::unindexed): texts
/// without a search rowid, and (V7) texts above their kind's mark.
pub(super) fn unindexed(conn: &Connection) -> Result<Option<u64>> {
    let has_index: bool = conn
        .prepare_cached(HAS_SEARCH_INDEX)?
        .query_row([], |r| r.get(0))?;
    if !has_index {
        return Ok(None);
    }
    let backlog = match indexed_upto(conn)? {
        Some(_) => SEARCH_BACKLOG,
        None => SEARCH_BACKLOG_V5,
    };
    let n: i64 = conn.prepare_cached(backlog)?.query_row([], |r| r.get(0))?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// [`Session::index_unindexed`](crate::backend::Session::index_unindexed):
/// from V7, up to `limit` texts of each kind without a search rowid get one
/// above their kind's mark, and up to `limit` of each kind above the mark
/// are indexed (one text held at a time); before V7, up to `limit` texts
/// without a rowid get one and their entry.
pub(super) fn index_unindexed(conn: &Connection, limit: usize) -> Result<u64> {
    let sql_limit = i64::try_from(limit).unwrap_or(i64::MAX);
    if indexed_upto(conn)?.is_none() {
        return index_unindexed_v5(conn, sql_limit);
    }
    for (unindexed, assign, table) in [
        (UNINDEXED_MESSAGE_IDS, MESSAGE_SEARCH_ROWID, "messages"),
        (UNINDEXED_TITLE_IDS, TITLE_SEARCH_ROWID, "conversations"),
    ] {
        let ids: Vec<Uuid> =
            super::rows::collect(conn.prepare_cached(unindexed)?.query([sql_limit])?, |row| {
                uuid_at(row, 0, table, "id")
            })?;
        let mut assign = conn.prepare_cached(assign)?;
        for id in ids {
            assign.query_row([key(id)], |_| Ok(())).optional()?;
        }
    }
    Ok(index_pending(conn, Texts::Messages, limit)? + index_pending(conn, Texts::Titles, limit)?)
}

/// [`index_unindexed`] on a database before V7 (migrated down while this
/// store was open): texts get their rowid and their entry together.
fn index_unindexed_v5(conn: &Connection, limit: i64) -> Result<u64> {
    let mut indexed = 0;
    for (unindexed, assign, table, sign) in [
        (UNINDEXED_MESSAGES, MESSAGE_SEARCH_ROWID_V5, "messages", 1),
        (UNINDEXED_TITLES, TITLE_SEARCH_ROWID_V5, "conversations", -1),
    ] {
        let texts: Vec<(Uuid, String)> =
            super::rows::collect(conn.prepare_cached(unindexed)?.query([limit])?, |row| {
                Ok((uuid_at(row, 0, table, "id")?, row.get(1)?))
            })?;
        for (id, text) in &texts {
            index(conn, assign, key(*id), sign, text)?;
        }
        indexed += texts.len() as u64;
    }
    Ok(indexed)
}
