//! The SQLite backend's own tests: its statements are planned once and
//! driven by indexes, and a file without WAL is refused unless allowed.

use super::connect::configure;
use super::queries::{ALL, CREATE_SEARCH_TERMS};
use super::*;

/// A file that cannot get WAL (here: memdb, which has none) is refused,
/// or accepted with the documented fallback.
#[test]
fn no_wal_is_an_error_unless_allowed() -> Result<()> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags("file:/no-wal?vfs=memdb", flags)?;
    let target = Target::File(PathBuf::from("no-wal.db"));
    let mut options = SqliteOptions::default();
    let cipher = Cipher::new(&options);
    match configure(&conn, &options, &target, &cipher) {
        Err(Error::Open { reason, .. }) => assert!(reason.contains("WAL"), "{reason}"),
        other => panic!("expected an Open error naming WAL, got {other:?}"),
    }
    options.require_wal = false;
    configure(&conn, &options, &target, &cipher)
}

/// A new in-memory database at the latest version, with what a search
/// adds to a connection: the function `silmari_admits` and the
/// connection's own table of the index's terms.
pub(super) fn searchable() -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    migrations::migrate(&mut conn, &SQLITE, None, 0, MigrationTarget::Latest)?;
    search::register_admits(&conn)?;
    conn.execute(CREATE_SEARCH_TERMS, [])?;
    Ok(conn)
}

/// No read is parsed and planned again on each run: every statement
/// that reads runs twice with new bindings and is never re-prepared
/// (a bare `LIMIT ?n` was, on every call).
#[test]
fn no_statement_is_prepared_again() -> Result<()> {
    let conn = searchable()?;
    // What a walk's ?1 holds: a query for `silmari_admits`.
    let query = search::encode(&crate::search::query::IndexQuery::default());
    for (name, sql) in ALL {
        if !sql.starts_with("SELECT") && !sql.starts_with("WITH") {
            continue;
        }
        let mut stmt = conn.prepare(sql)?;
        for run in 1..=3_i64 {
            for i in 1..=stmt.parameter_count() {
                let admits = format!("silmari_admits(?{i},");
                if (i == 1 || i == 11) && sql.contains(&admits) {
                    stmt.raw_bind_parameter(i, &query)?;
                } else {
                    stmt.raw_bind_parameter(i, run)?;
                }
            }
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
        }
        let again = stmt.get_status(rusqlite::StatementStatus::RePrepare);
        assert_eq!(again, 0, "{name} was prepared again on {again} runs");
    }
    Ok(())
}

/// Every statement of the backend stays index-driven: no full table scan
/// and no sort outside an index (`EXPLAIN QUERY PLAN`).
#[test]
fn every_statement_uses_an_index() -> Result<()> {
    let conn = searchable()?;
    for (name, sql) in ALL {
        let walk = sql.starts_with("WITH RECURSIVE");
        if !sql.starts_with("SELECT")
            && !sql.starts_with("UPDATE")
            && !sql.starts_with("DELETE")
            && !walk
        {
            continue;
        }
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let details: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        // Emptied whole: SQLite drops the table's pages, with no plan.
        if ["FORGET_STALE_ENTRIES", "FORGET_SEARCH_BLOCKS"].contains(name) {
            assert!(details.is_empty(), "{details:?}");
            continue;
        }
        assert!(!details.is_empty(), "{name}: no plan");
        for detail in &details {
            // A walk up or down the tree reads the rows it found (`SCAN
            // up`) and sorts them; every step into `messages` is indexed.
            let walked = walk
                && (["SCAN up", "SCAN down", "SCAN d"].contains(&detail.as_str())
                    || detail == "USE TEMP B-TREE FOR ORDER BY");
            // A search read by the full-text index sorts what it found
            // (few texts: it is chosen for rare tokens, or one
            // conversation); a prefix's count reads at most 64 tokens.
            let searched = ([
                "MESSAGES_BY_INDEX",
                "MESSAGES_IN_CONVERSATION",
                "TITLES",
                "PENDING_MESSAGES",
            ]
                .contains(name)
                && detail == "USE TEMP B-TREE FOR ORDER BY")
                || (*name == "COUNT_INDEXED" && detail == "SCAN (subquery-1)")
                // The entries no text holds are read or counted whole (a
                // batch at most).
                || detail == "SCAN search_stale"
                // The blocks of rowids are read whole (one row per 1,024
                // messages).
                || (*name == "SEARCH_BLOCKS" && detail == "SCAN search_blocks");
            // Read through the index: a lookup of each rowid it lists.
            // And so are the texts above the mark, and a read by rowid.
            let by_rowid = ["MESSAGES_BY_INDEX", "PENDING_MESSAGES", "MESSAGES_BY_ROWID"];
            if by_rowid.contains(name)
                && (detail.starts_with("SEARCH m ") || detail.starts_with("SCAN m"))
            {
                assert!(
                    detail.contains("ix_messages_search_rowid"),
                    "{name}: {details:?}"
                );
            }
            let full_scan = detail.starts_with("SCAN")
                && !detail.contains("INDEX")
                && detail != "SCAN CONSTANT ROW";
            assert!(
                walked || searched || (!full_scan && !detail.contains("TEMP B-TREE")),
                "{name} is not index-driven: {details:?}"
            );
        }
    }
    Ok(())
}
