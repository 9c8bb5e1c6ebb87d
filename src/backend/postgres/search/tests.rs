//! The PostgreSQL search statements' plans, and the tsquery they take.

use super::super::migrations::migrate;
use super::super::test_database::TestDatabase;
use super::*;
use crate::migrate::POSTGRES;
use crate::model::MigrationTarget;

/// 100,000 messages that all hold `common` and each its own `rareN`
/// (every 33rd also `some`), and a conversation of 10 more.
const FILL: &str = "
    INSERT INTO conversations (id, title, created_at, updated_at, search_tokens)
    VALUES ('00000000-0000-7000-8000-000000000001', 'c', now(), now(), '{c}');
    INSERT INTO messages (id, conversation_id, position, role, content, created_at, search_tokens)
    SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000001', n, 'user',
           'common rare' || n || CASE WHEN n % 33 = 0 THEN ' some' ELSE '' END,
           now() - n * interval '1 second',
           ARRAY['common', 'rare' || n] || CASE WHEN n % 33 = 0 THEN '{some}'::text[] END
    FROM generate_series(1, 100000) n;
    INSERT INTO conversations (id, title, created_at, updated_at, search_tokens)
    VALUES ('00000000-0000-7000-8000-000000000002', 'short', now(), now(), '{short}');
    INSERT INTO messages (id, conversation_id, position, role, content, created_at, search_tokens)
    SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000002', n, 'user',
           'common', now(), ARRAY['common']
    FROM generate_series(1, 10) n;
    ANALYZE;";

/// A database of the latest schema, or `None` without a server.
fn migrated() -> Option<TestDatabase> {
    let mut db = TestDatabase::create()?;
    migrate(&mut db.conn, &POSTGRES, MigrationTarget::Latest).expect("migrate");
    Some(db)
}

/// Each search statement has the plan it was chosen for, generic or
/// not: by the index, the GIN index; by time, the time index (stopping
/// at the page's end); in a conversation, its messages.
#[test]
fn search_statements_keep_their_plans() {
    let Some(mut db) = migrated() else {
        return;
    };
    let conn = &mut db.conn;
    // Before any statistics: no size, no estimate (every search counts).
    let none = search_statistics::estimate(conn, &IndexQuery::default()).expect("estimate");
    assert_eq!((none.messages, none.admitted), (0, None));
    conn.statistics = None;
    conn.client.batch_execute(FILL).expect("fill");
    // A walk resumed after a cursor starts there in the generic plan a
    // prepared statement comes to (the bound is the index's, not a
    // filter on every row before it).
    conn.client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; PREPARE resumed AS {SEARCH_TOKENS_BY_TIME}"
        ))
        .expect("prepare");
    let resumed: Vec<String> = conn
        .client
        .query(
            "EXPLAIN EXECUTE resumed('''common''', NULL, NULL, NULL, NULL, now(), \
             'ffffffff-ffff-ffff-ffff-ffffffffffff', 0, false, 33, '{common}', '{}', NULL, 'common')",
            &[],
        )
        .expect("explain")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        resumed
            .iter()
            .any(|l| l.contains("Index Cond:") && l.contains("ROW(created_at, id) < ROW(")),
        "{resumed:#?}"
    );
    assert!(
        resumed
            .iter()
            .any(|l| l.contains("Index Scan Backward using ix_messages_created_at")),
        "{resumed:#?}"
    );
    let mut plan = |sql: &'static str, token: &str, mode: &str| -> String {
        conn.client
            .batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .expect("plan_cache_mode");
        let index = IndexQuery {
            tokens: vec![token.to_owned()],
            ..IndexQuery::default()
        };
        let query = tsquery(&index);
        let none: Option<Uuid> = None;
        let one = Uuid::parse_str("00000000-0000-7000-8000-000000000002").ok();
        let in_one = [
            SEARCH_MESSAGES_IN_CONVERSATION,
            SEARCH_TOKENS_IN_CONVERSATION,
            SEARCH_MESSAGES_IN_CONVERSATION_SIGNED,
            SEARCH_TOKENS_IN_CONVERSATION_SIGNED,
        ];
        let conversation = if in_one.contains(&sql) { one } else { none };
        let (role, time): (Option<&str>, Option<time::OffsetDateTime>) = (None, None);
        let (archived, all, limit) = (0_i32, false, 33_i64);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &query,
            &conversation,
            &role,
            &time,
            &time,
            &time,
            &none,
            &archived,
            &all,
            &limit,
        ];
        let terms = WalkTerms::new(&index, true);
        terms.push(sql, &mut params);
        let rows = conn
            .client
            .query(&format!("EXPLAIN {sql}"), &params)
            .expect("explain");
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for mode in ["force_custom_plan", "force_generic_plan"] {
        // By the index only when the index admits few: a rare token.
        let by_index = plan(SEARCH_MESSAGES_BY_INDEX, "rare777", mode);
        assert!(
            by_index.contains("Bitmap Index Scan on ix_messages_search"),
            "{by_index}"
        );
        let walks = [
            (SEARCH_MESSAGES_BY_TIME, SEARCH_MESSAGES_IN_CONVERSATION),
            (SEARCH_TOKENS_BY_TIME, SEARCH_TOKENS_IN_CONVERSATION),
            (
                SEARCH_MESSAGES_BY_TIME_SIGNED,
                SEARCH_MESSAGES_IN_CONVERSATION_SIGNED,
            ),
            (
                SEARCH_TOKENS_BY_TIME_SIGNED,
                SEARCH_TOKENS_IN_CONVERSATION_SIGNED,
            ),
        ];
        for ((by_time_sql, one_sql), token) in walks
            .into_iter()
            .flat_map(|walk| ["rare777", "common"].map(|token| (walk, token)))
        {
            let by_time = plan(by_time_sql, token, mode);
            assert!(
                by_time.contains("Index Scan Backward using ix_messages_created_at"),
                "{by_time}"
            );
            assert!(!by_time.contains("ix_messages_search"), "{by_time}");
            let one = plan(one_sql, token, mode);
            assert!(one.contains("Index Cond: (conversation_id ="), "{one}");
        }
    }
    // Each count reads the GIN index, generic plan or not.
    for (i, (_, sql)) in COUNTS_INDEXED.iter().enumerate() {
        conn.client
            .batch_execute(&format!("PREPARE counted{i} AS {sql}"))
            .expect("prepare");
        for mode in ["force_custom_plan", "force_generic_plan"] {
            let explain =
                format!("SET plan_cache_mode = {mode}; EXPLAIN EXECUTE counted{i}('''rare777''')");
            let plan: Vec<String> = conn
                .client
                .simple_query(&explain)
                .expect("explain")
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect();
            assert!(
                plan.iter()
                    .any(|l| l.contains("Bitmap Index Scan on ix_messages_search")),
                "{mode}: {plan:#?}"
            );
        }
    }
    // A search walks when the index admits many for the table and the
    // page: `rare1*` is 11,112 of 100,010 messages, read through the
    // index for a page of 5,000 (up to 11,181) but walked for 32. The
    // statistics (the FILL's ANALYZE) list `common`: a walk at once,
    // without a count.
    let mut walks = |index: IndexQuery, limit: usize| {
        let admitted = AdmittedCount::default();
        let walks = walks_by_time(conn, &index, &tsquery(&index), limit, &admitted);
        let mut counted = true;
        admitted
            .up_to(1, |_| {
                counted = false;
                Ok(0)
            })
            .expect("kept count");
        (walks.expect("decide"), counted)
    };
    let token = |t: &str| IndexQuery {
        tokens: vec![t.into()],
        ..IndexQuery::default()
    };
    let prefix = |p: &str| IndexQuery {
        prefixes: vec![p.into()],
        ..IndexQuery::default()
    };
    assert_eq!(walks(token("rare777"), 32), (false, true));
    assert_eq!(walks(token("common"), 32), (true, false));
    assert_eq!(walks(token("common"), 5_000), (true, false));
    assert_eq!(walks(prefix("comm"), 32), (true, false));
    assert_eq!(walks(prefix("rare1"), 32), (true, true));
    assert_eq!(walks(prefix("rare1"), 5_000), (false, true));
    // Two tokens are counted, whatever the statistics say of each.
    let both = IndexQuery {
        tokens: vec!["common".into(), "rare777".into()],
        ..IndexQuery::default()
    };
    assert_eq!(walks(both, 32), (false, true));
    let estimate = search_statistics::estimate(conn, &token("common")).expect("estimate");
    assert!(
        (95_000..=105_000).contains(&estimate.messages),
        "{estimate:?}"
    );
    assert!(
        estimate.admitted.is_some_and(|n| n > 90_000),
        "{estimate:?}"
    );
    // Tokens no search could walk for are not kept: `some`, which the
    // statistics list (3 %), is 3,030 messages, fewer than LISTED_FROM ×
    // ALWAYS_THROUGH_INDEX.
    let some = search_statistics::estimate(conn, &token("some")).expect("estimate");
    assert_eq!(some.admitted, None);
    let listed: i64 = conn
        .client
        .query_one(
            "SELECT COUNT(*) FROM pg_stats s, \
             unnest(s.most_common_elems::text::text[]) AS t(token) \
             WHERE s.tablename = 'ix_messages_search' AND t.token = 'some'",
            &[],
        )
        .expect("pg_stats")
        .get(0);
    assert_eq!(listed, 1);
    // A listed token's estimate is taken as it is: one above the bound
    // walks without a count, one at the bound is counted.
    let most = most_through_index(32, 100_010, WALK_ROWS_PER_INDEX_ROW);
    for (estimated, counted) in [(most + 1, false), (most, true)] {
        let share = (estimated as f64 + 0.5) / 100_010.0;
        conn.statistics = Some(search_statistics::claiming(100_010, &[("common", share)]));
        let admitted = AdmittedCount::default();
        let index = token("common");
        walks_by_time(conn, &index, &tsquery(&index), 32, &admitted).expect("decide");
        let mut was_counted = true;
        admitted
            .up_to(1, |_| {
                was_counted = false;
                Ok(0)
            })
            .expect("kept count");
        assert_eq!(was_counted, counted, "estimated {estimated}");
    }
}

#[test]
fn tsqueries_quote_every_token() {
    let index = IndexQuery {
        tokens: vec!["it's".into(), "a\\b".into(), "x".into(), "y".into()],
        pairs: vec![("x".into(), "y".into())],
        prefixes: vec!["pre".into()],
        excluded: vec!["no".into()],
    };
    assert_eq!(
        tsquery(&index),
        "(('it''s' & 'a\\\\b' & '\u{b7}x\u{b7}y') | \
         ('\u{b7}' & 'it''s' & 'a\\\\b' & 'x' & 'y')) & 'pre':* & !'no'"
    );
}

/// Statistics that lie (stale after deletes, a bad sample) choose a walk
/// where a count would have read the index, or the other way: the same
/// candidates, only slower. A rare token claimed common, a common one
/// claimed rare, and a table claimed far larger, give what the true
/// statistics give.
#[test]
fn wrong_statistics_change_no_candidate() {
    let Some(mut db) = migrated() else {
        return;
    };
    let conn = &mut db.conn;
    conn.client.batch_execute(FILL).expect("fill");
    let read = |conn: &mut PgConn, token: &str, limit: usize| {
        let index = IndexQuery {
            tokens: vec![token.into()],
            ..IndexQuery::default()
        };
        let admitted = AdmittedCount::default();
        let filter = SearchFilter {
            index: &index,
            conversation: None,
            role: None,
            since: None,
            until: None,
            archived: crate::model::Archived::Hide,
            branches: Branches::Current,
            admitted: &admitted,
        };
        candidates(conn, TextKind::Message, &filter, None, limit).expect("candidates")
    };
    for (token, limit) in [
        ("rare777", 32),
        ("common", 32),
        ("common", 1_000),
        ("some", 1_000),
    ] {
        conn.statistics = None;
        let truth = read(conn, token, limit);
        assert!(!truth.is_empty(), "{token}");
        // Every token claimed held by every message, then by none.
        for share in [1.0, 0.0] {
            let lies = [("rare777", share), ("common", share), ("some", share)];
            conn.statistics = Some(search_statistics::claiming(100_010, &lies));
            assert_eq!(read(conn, token, limit), truth, "{token} at {share}");
        }
        // A table claimed a thousand times larger: `common` (100,010)
        // read through the index for a page of 1,000, where it walks.
        conn.statistics = Some(search_statistics::claiming(100_010_000, &[]));
        assert_eq!(read(conn, token, limit), truth, "{token} in a huge table");
    }
}

/// A lone prefix is checked in an ASCII text by a pattern; anything else
/// by the `tsquery`.
#[test]
fn only_a_lone_prefix_has_a_word_start_pattern() {
    let index = |q: &str| {
        crate::search::query::parse(q)
            .expect("parses")
            .index_query()
    };
    assert_eq!(
        word_start(&index("Chapt*")).as_deref(),
        Some("(^|[^a-z0-9])chapt")
    );
    assert_eq!(
        word_start(&index("Über*")).as_deref(),
        Some("(^|[^a-z0-9])uber")
    );
    for other in [
        "chapt* story",
        "chapt* -story",
        "\"the chapt*\"",
        "chapter",
        "ch* ab*",
    ] {
        assert_eq!(word_start(&index(other)), None, "{other}");
    }
    // The pattern is used on texts of at most 50,000 bytes, whose every
    // word is a token.
    let words = "ab ".repeat(16_666) + "cd";
    assert_eq!(words.len(), 50_000);
    assert!(crate::search::tokenize::ascii_tokens(&words).is_some());
    // Not letters and digits alone: never a pattern.
    let odd = IndexQuery {
        prefixes: vec!["a.b".into()],
        ..IndexQuery::default()
    };
    assert_eq!(word_start(&odd), None);
}
