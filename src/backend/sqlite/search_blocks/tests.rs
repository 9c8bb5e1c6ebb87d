//! Tests of the read by rowid blocks and of the blocks' upkeep.

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
    newest_of(conn, word, before, limit, (None, None))
}

/// The same, with a range's start and a role.
fn newest_of(
    conn: &Connection,
    word: &str,
    before: Option<TimeKey>,
    limit: usize,
    (since, role): (Option<i64>, Option<crate::model::Role>),
) -> Result<Option<Vec<i64>>> {
    let index = IndexQuery {
        tokens: vec![word.into()],
        ..IndexQuery::default()
    };
    let admitted = AdmittedCount::default();
    let filter = SearchFilter {
        index: &index,
        conversation: None,
        role,
        since,
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
    // From a range's start: the blocks below it are not read (5 hits
    // found, not 5,000 rows read).
    let since = (Some(49_960), None);
    assert_eq!(
        newest_of(&conn, "word", None, 20, since)?,
        Some(expected(
            (4_996..=5_000).map(|i| i * 10).collect(),
            i64::MAX,
            20
        ))
    );
    // Rows the filters refuse count as read: a role none holds gives
    // up rather than read every match.
    let role = (None, Some(crate::model::Role::System));
    assert_eq!(newest_of(&conn, "word", None, 20, role)?, None);
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
