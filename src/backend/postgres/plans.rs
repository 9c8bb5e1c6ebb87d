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

/// 5,000 conversations (every tenth archived), one of `long` messages with
/// a branch every hundred messages, and ten messages in each conversation
/// `ten_each` (an SQL condition on `c`) admits.
fn fill(long: u32, ten_each: &str) -> String {
    format!(
        "
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
    FROM generate_series(1, {long}) n;
    INSERT INTO messages (id, conversation_id, position, role, content, created_at, parent_id)
    SELECT gen_random_uuid(), c.id, n, 'user', 'm' || n, now(),
           CASE WHEN n > 1 THEN gen_random_uuid() END
    FROM conversations c, generate_series(1, 10) n WHERE {ten_each};
    UPDATE messages SET parent_id = ('00000000-0000-7000-8000-' || lpad((position - 1)::text, 12, '0'))::uuid
    WHERE position > 1 AND conversation_id = '00000000-0000-7000-8000-000000000001';
    ANALYZE;"
    )
}

#[test]
fn chat_statements_are_served_by_indexes() {
    // Ten messages in every conversation but the long one of 5,000.
    served_by_indexes(&fill(5_000, "c.title <> 'long'"), true);
}

/// A store whose messages are nearly all in one conversation (of 20,000,
/// beside `c7` of ten and 4,999 without messages) plans every statement for
/// any values (as its connections do) on an index too. ANALYZE then counts
/// two conversations in `messages`, and a plan made for any conversation
/// once took half the table for each. (A plan for the long conversation's
/// own values may rightly scan: a branch switch near its start rewrites
/// most of the table.)
#[test]
fn chat_statements_are_served_by_indexes_beside_one_long_conversation() {
    served_by_indexes(&fill(20_000, "c.title = 'c7'"), false);
}

/// Every chat statement, planned once for any values (and, if `for_values`,
/// for the case's values too), is index-driven on a database filled by
/// `fill`.
fn served_by_indexes(fill: &str, for_values: bool) {
    let Some(mut db) = TestDatabase::create() else {
        return;
    };
    let conn = &mut db.conn;
    migrate(conn, &POSTGRES, MigrationTarget::Latest).expect("migrate");
    conn.client.batch_execute(fill).expect("fill");

    let conversation = Uuid::parse_str("00000000-0000-7000-8000-000000000001").unwrap();
    let message = Uuid::parse_str("00000000-0000-7000-8000-000000002500").unwrap();
    let short: Uuid = conn
        .client
        .query_one("SELECT id FROM conversations WHERE title = 'c7'", &[])
        .expect("a short conversation")
        .get(0);
    let (t, id, limit) = (time::OffsetDateTime::now_utc(), Uuid::max(), 51_i64);
    // A page from the middle; a branch switch near the end (as a
    // regenerate is: everything after most of the conversation).
    let (after, first, last, fork) = (10_i64, i64::MIN, i64::MAX, 4_990_i64);
    // A streamed delta: the conversation touched, the message grown.
    let (added, any_version, delta, len, max) = (0_i64, None::<i64>, "more", 4_i64, 1_i64 << 20);
    let cases: Vec<(&str, &str, Vec<&(dyn ToSql + Sync)>)> = vec![
        ("BY_UPDATED_FIRST", BY_UPDATED_FIRST, vec![&limit]),
        ("BY_UPDATED_AFTER", BY_UPDATED_AFTER, vec![&t, &id, &limit]),
        ("BY_CREATED_FIRST", BY_CREATED_FIRST, vec![&limit]),
        ("BY_CREATED_AFTER", BY_CREATED_AFTER, vec![&t, &id, &limit]),
        (
            "ARCHIVED_BY_UPDATED_FIRST",
            ARCHIVED_BY_UPDATED_FIRST,
            vec![&limit],
        ),
        (
            "ARCHIVED_BY_UPDATED_AFTER",
            ARCHIVED_BY_UPDATED_AFTER,
            vec![&t, &id, &limit],
        ),
        (
            "ARCHIVED_BY_CREATED_FIRST",
            ARCHIVED_BY_CREATED_FIRST,
            vec![&limit],
        ),
        (
            "ARCHIVED_BY_CREATED_AFTER",
            ARCHIVED_BY_CREATED_AFTER,
            vec![&t, &id, &limit],
        ),
        (
            "CONVERSATION_WITH_MESSAGES",
            CONVERSATION_WITH_MESSAGES,
            vec![&short, &first, &last],
        ),
        (
            "BRANCH_PAGE",
            BRANCH_PAGE,
            vec![&conversation, &after, &limit],
        ),
        ("TREE_PAGE", TREE_PAGE, vec![&conversation, &first, &limit]),
        ("CURRENT_LEAF", CURRENT_LEAF, vec![&conversation]),
        ("LEAF_AND_LAST", LEAF_AND_LAST, vec![&conversation]),
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
        (
            "TOUCH_AND_GROW",
            TOUCH_AND_GROW,
            vec![&message, &t, &added, &any_version, &delta, &len, &max],
        ),
    ];
    for (name, sql, params) in cases.iter().filter(|_| for_values) {
        let plan = explain(&mut conn.client, &format!("EXPLAIN {sql}"), params, name);
        assert_index_driven(name, &plan);
    }
    // The store's connections plan each statement once, for any values
    // (`plan_cache_mode=force_generic_plan`): the generic plans must be
    // index-driven too.
    conn.client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .expect("set plan_cache_mode");
    for (name, sql, params) in &cases {
        conn.client
            .batch_execute(&format!("PREPARE generic AS {sql}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // A generic plan does not depend on the values: NULLs will do.
        let nulls = vec!["NULL"; params.len()].join(", ");
        let label = format!("{name} (generic plan)");
        let execute = format!("EXPLAIN EXECUTE generic({nulls})");
        let plan = explain(&mut conn.client, &execute, &[], &label);
        assert_index_driven(&label, &plan);
        conn.client
            .batch_execute("DEALLOCATE generic")
            .expect("deallocate");
    }
}

fn explain(
    client: &mut postgres::Client,
    explain: &str,
    params: &[&(dyn ToSql + Sync)],
    name: &str,
) -> String {
    let plan: Vec<String> = client
        .query(explain, params)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    println!("{name}:\n{plan}\n");
    plan
}

fn assert_index_driven(name: &str, plan: &str) {
    // The conversation's row is locked before the message's: its update
    // (a CTE) runs in a one-time filter ahead of the message's scan.
    if name.starts_with("TOUCH_AND_GROW") {
        let gate = plan.find("One-Time Filter");
        let scan = plan.rfind("Index Scan using messages_pkey on messages");
        assert!(
            plan.contains("CTE touched") && gate.is_some() && gate < scan,
            "{name} may lock the message first:\n{plan}"
        );
    }
    for store_table in ["conversations", "messages"] {
        assert!(
            !plan.contains(&format!("Seq Scan on {store_table}")),
            "{name} scans {store_table}:\n{plan}"
        );
    }
    // The first messages come from the index (`parent_id IS NULL`), but
    // PostgreSQL does not take an IS NULL key as giving their order: it
    // sorts them, as many as there are alternatives at the start.
    // The walks up and down the tree sort the rows the walk found, and a
    // conversation's branch is sorted after the index gave its rows (its
    // row and theirs are one union, ordered by position).
    let sorts_found_rows = (name.starts_with("FIRST_MESSAGES")
        && plan.contains("Index Cond: ((conversation_id = ")
        && plan.contains("(parent_id IS NULL)"))
        || plan.contains("Sort Key: up.\"position\"")
        || plan.contains("Sort Key: down.\"position\"")
        || (name.starts_with("CONVERSATION_WITH_MESSAGES")
            && plan.contains("Sort Key: (NULL::bigint)")
            && plan.contains("Cond: ((conversation_id = "));
    assert!(
        !plan.contains("Sort") || sorts_found_rows,
        "{name} sorts:\n{plan}"
    );
}

/// A store's connection plans a listing once and then reuses the plan,
/// whatever the URL's own `options` say besides.
#[test]
fn store_connections_plan_each_statement_once() {
    let Some(db) = TestDatabase::create() else {
        return;
    };
    let url = db.url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20work_mem%3D8MB");
    let config: crate::config::StoreConfig = url.parse().expect("url");
    let crate::config::Location::Postgres(url) = &config.location else {
        panic!("not a PostgreSQL URL");
    };
    let backend = super::PostgresBackend::open(url, &config.pool, true).expect("open");
    let mut conn = backend.connection().expect("connection");
    let setting = |conn: &mut super::PgConn, name: &str| -> String {
        conn.client
            .query_one(&format!("SHOW {name}"), &[])
            .expect("show")
            .get(0)
    };
    assert_eq!(setting(&mut conn, "plan_cache_mode"), "force_generic_plan");
    assert_eq!(
        setting(&mut conn, "work_mem"),
        "8MB",
        "the URL's options kept"
    );
    let list = conn.statement(BY_UPDATED_FIRST).expect("prepare");
    for limit in [51_i64, 2, 1_000] {
        conn.client.query(&list, &[&limit]).expect("list");
    }
    let row = conn
        .client
        .query_one(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
            &[&BY_UPDATED_FIRST],
        )
        .expect("pg_prepared_statements");
    let (generic, custom): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((generic, custom), (3, 0), "planned for each call's values");
}
