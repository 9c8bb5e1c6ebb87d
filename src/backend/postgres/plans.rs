//! The statements a chat screen runs all the time are served by indexes on
//! PostgreSQL too: `EXPLAIN` on a database big enough (and analyzed) for
//! the planner to choose, with no sequential scan of a store table and no
//! sort outside an index. (SQLite's statements are all checked in
//! `backend::sqlite::tests`.)

use postgres::types::ToSql;
use uuid::Uuid;

use super::migrations::migrate;
use super::queries::*;
use super::test_database::TestDatabase;
use crate::migrate::POSTGRES;
use crate::model::MigrationTarget;

/// 5,000 conversations (every tenth archived) and one of 5,000 messages with
/// a branch every hundred messages.
const FILL: &str = "
    INSERT INTO conversations (id, title, created_at, updated_at, archived_at)
    SELECT gen_random_uuid(), 'c' || n, now() - n * interval '1 second',
           now() - n * interval '1 second',
           CASE WHEN n % 10 = 0 THEN now() END
    FROM generate_series(1, 5000) n;
    INSERT INTO conversations (id, title, created_at, updated_at)
    VALUES ('00000000-0000-7000-8000-000000000001', 'long', now(), now());
    INSERT INTO messages (id, conversation_id, position, role, content, created_at, on_path)
    SELECT ('00000000-0000-7000-8000-' || lpad(n::text, 12, '0'))::uuid,
           '00000000-0000-7000-8000-000000000001', n, 'user', 'm' || n, now(), n % 100 <> 0
    FROM generate_series(1, 5000) n;
    UPDATE messages SET parent_id = ('00000000-0000-7000-8000-' || lpad((position - 1)::text, 12, '0'))::uuid
    WHERE position > 1;
    ANALYZE;";

#[test]
fn chat_statements_are_served_by_indexes() {
    let Some(mut db) = TestDatabase::create() else {
        return;
    };
    let conn = &mut db.conn;
    migrate(conn, &POSTGRES, MigrationTarget::Latest).expect("migrate");
    conn.client.batch_execute(FILL).expect("fill");

    let conversation = Uuid::parse_str("00000000-0000-7000-8000-000000000001").unwrap();
    let message = Uuid::parse_str("00000000-0000-7000-8000-000000002500").unwrap();
    let (t, id, limit) = (time::OffsetDateTime::now_utc(), Uuid::max(), 51_i64);
    // A page from the middle; a branch switch near the end (as a
    // regenerate is: everything after most of the conversation).
    let (after, first, fork) = (10_i64, i64::MIN, 4_990_i64);
    let (no, yes) = (false, true);
    let cases: Vec<(&str, &str, Vec<&(dyn ToSql + Sync)>)> = vec![
        ("BY_UPDATED_FIRST", BY_UPDATED_FIRST, vec![&no, &limit]),
        (
            "BY_UPDATED_FIRST archived",
            BY_UPDATED_FIRST,
            vec![&yes, &limit],
        ),
        (
            "BY_UPDATED_AFTER",
            BY_UPDATED_AFTER,
            vec![&no, &t, &id, &limit],
        ),
        ("BY_CREATED_FIRST", BY_CREATED_FIRST, vec![&no, &limit]),
        (
            "BY_CREATED_AFTER",
            BY_CREATED_AFTER,
            vec![&no, &t, &id, &limit],
        ),
        (
            "BRANCH_PAGE",
            BRANCH_PAGE,
            vec![&conversation, &after, &limit],
        ),
        ("TREE_PAGE", TREE_PAGE, vec![&conversation, &first, &limit]),
        ("CURRENT_LEAF", CURRENT_LEAF, vec![&conversation]),
        ("CHILDREN", CHILDREN, vec![&conversation, &message]),
        ("FIRST_MESSAGES", FIRST_MESSAGES, vec![&conversation]),
        ("NODE", NODE, vec![&message]),
        ("PATH_TO", PATH_TO, vec![&message]),
        ("SUBTREE", SUBTREE, vec![&message]),
        ("UNMARK_PATH", UNMARK_PATH, vec![&conversation, &fork]),
        (
            "REPARENT",
            REPARENT,
            vec![&conversation, &message, &message],
        ),
    ];
    for (name, sql, params) in cases {
        let plan: Vec<String> = conn
            .client
            .query(&format!("EXPLAIN {sql}"), &params)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        for store_table in ["conversations", "messages"] {
            assert!(
                !plan.contains(&format!("Seq Scan on {store_table}")),
                "{name} scans {store_table}:\n{plan}"
            );
        }
        // The first messages come from the index (`parent_id IS NULL`), but
        // PostgreSQL does not take an IS NULL key as giving their order: it
        // sorts them, as many as there are alternatives at the start.
        // The walks up and down the tree sort the rows the walk found.
        let sorts_found_rows = (name == "FIRST_MESSAGES"
            && plan.contains("Index Cond: ((conversation_id = ")
            && plan.contains("(parent_id IS NULL)"))
            || plan.contains("Sort Key: up.\"position\"")
            || plan.contains("Sort Key: down.\"position\"");
        assert!(
            !plan.contains("Sort") || sorts_found_rows,
            "{name} sorts:\n{plan}"
        );
        println!("{name}:\n{plan}\n");
    }
}
