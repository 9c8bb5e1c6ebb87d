//! Every SQL statement of the PostgreSQL backend, as constants: prepared once
//! per connection and cached, never built at run time.

/// Touches the conversation of message $1 ([`TOUCH_CONVERSATION_OF`]).
macro_rules! touch_conversation_of {
    () => {
        "UPDATE conversations \
        SET updated_at = CASE WHEN $2::timestamptz IS NULL THEN updated_at \
                ELSE GREATEST($2, updated_at + interval '1 microsecond') END, \
            message_count = GREATEST(message_count + $3, 0), version = version + 1 \
        WHERE id = (SELECT conversation_id FROM messages WHERE id = $1) \
          AND ($4::bigint IS NULL OR version = $4) RETURNING id"
    };
}

/// Whether message `m`'s token array holds every token of `$11` (or of
/// `$13`, the query's fallback, NULL for none) and none of `$12` (array
/// operators; NULL, not indexed: no), checked only when its text may hold
/// them (`after_needle!`, the needle $14).
macro_rules! holds_tokens {
    () => {
        after_needle!(
            "$14",
            "((m.search_tokens @> $11::text[] OR m.search_tokens @> $13::text[]) \
              AND NOT (m.search_tokens && $12::text[])) IS TRUE"
        )
    };
}

/// `$check` on message `m`, made only when its text may pass it: an ASCII
/// text's tokens are parts of the text in lower case, so one that lacks the
/// needle `$needle` (a token or prefix of the query, NULL for none) cannot.
/// A walk rejects most rows, and finding a needle in a text costs far less
/// than either check (making a `tsvector` of a row's tokens about five
/// times the byte search; `@>` on the token array, with its word pairs,
/// about twice). `CASE` fixes the order, which the planner would choose by
/// cost. `COLLATE "C"` lowers ASCII letters only, whatever the database's
/// locale (a Turkish one lowers `I` to a dotless `ı`); the caller gives no
/// needle unless the database's encoding is UTF-8, where a text of as many
/// characters as bytes is ASCII.
macro_rules! after_needle {
    ($needle:literal, $check:expr) => {
        concat!(
            "CASE WHEN ",
            $needle,
            "::text IS NULL OR strpos(lower(m.content COLLATE \"C\"), ",
            $needle,
            ") > 0 OR octet_length(m.content) <> char_length(m.content) THEN ",
            $check,
            " ELSE false END"
        )
    };
}

/// Whether message `m`'s tokens meet the `tsquery` $1, checked only when
/// its text may hold them (`after_needle!`, the needle $11).
macro_rules! holds_tsquery_after_needle {
    () => {
        after_needle!(
            "$11",
            "(array_to_tsvector(m.search_tokens) @@ $1::text::tsquery) IS TRUE"
        )
    };
}

/// How many messages the index admits ($1, a tsquery), up to `$bound`,
/// written into the statement: a generic plan of `LIMIT $2` takes the
/// limit for a tenth of the rows it expects, and on a table of 100,000
/// messages scanned the table for them rather than read the GIN index.
macro_rules! count_indexed {
    ($bound:literal) => {
        (
            $bound,
            concat!(
                "SELECT COUNT(*) FROM (SELECT FROM messages \
                 WHERE array_to_tsvector(search_tokens) @@ $1::text::tsquery LIMIT ",
                $bound,
                ") AS hits"
            ),
        )
    };
}

/// The counts of a search's matches, each with the bound written into it,
/// smallest first: whether a search reads them all by the index or walks
/// by time.
pub(super) const COUNTS_INDEXED: [(u64, &str); 8] = [
    count_indexed!(2_001),
    count_indexed!(4_001),
    count_indexed!(8_001),
    count_indexed!(16_001),
    count_indexed!(32_001),
    count_indexed!(64_001),
    count_indexed!(128_001),
    count_indexed!(256_001),
];

/// Candidates of a search in messages, newest first: (created_at, id,
/// conversation id, conversation title, role, content), from `$from` (a
/// CTE's name or `messages`) where `$admitted`. $1 tsquery, $2
/// conversation, $3 role, $4 ..$5 time range, before ($6, $7), $8 archived
/// (0 no, 1 yes, 2 both), $9 all branches, $10 limit; NULL: no filter
/// (and, in a walk by `holds_tokens!`, $11 tokens, $12 excluded, $13
/// fallback, $14 the needle; in one by `holds_tsquery_after_needle!`, $11
/// the needle).
macro_rules! search_messages {
    ($with:literal, $from:literal, $($admitted:expr),+) => {
        concat!(
            $with,
            "SELECT m.created_at, m.id, m.conversation_id, c.title, m.role, m.content ",
            "FROM ",
            $from,
            " m JOIN conversations c ON c.id = m.conversation_id WHERE ",
            $($admitted,)+
            " AND ($3::text IS NULL OR m.role = $3) ",
            // Bounds the time index takes in a generic plan too (`$4 IS
            // NULL OR …` is a filter, and a walk resumed after a cursor
            // would scan every row before it again): timestamps are finite.
            "AND m.created_at >= COALESCE($4::timestamptz, '-infinity') ",
            "AND m.created_at < COALESCE($5::timestamptz, 'infinity') ",
            "AND (m.created_at, m.id) < (COALESCE($6::timestamptz, 'infinity'), \
                 COALESCE($7::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff')) ",
            "AND ($8::int = 2 OR c.archived = ($8::int = 1)) AND ($9::bool OR m.on_path) ",
            "ORDER BY m.created_at DESC, m.id DESC LIMIT $10"
        )
    };
}

statements! {
    BEGIN = "BEGIN";
    BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    COMMIT = "COMMIT";
    ROLLBACK = "ROLLBACK";

    INSERT_FILE = concat!(
        "INSERT INTO file_metadata (", file_columns!(), ") VALUES ($1, $2, $3, $4, $5)"
    );
    FILE = concat!("SELECT ", file_columns!(), " FROM file_metadata WHERE id = $1");
    FILES_FIRST = concat!(
        "SELECT ", file_columns!(),
        " FROM file_metadata ORDER BY created_at DESC, id DESC LIMIT $1"
    );
    FILES_AFTER = concat!(
        "SELECT ", file_columns!(),
        " FROM file_metadata WHERE (created_at, id) < ($1, $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    DELETE_FILE = "DELETE FROM file_metadata WHERE id = $1";
    /// The single-statement writes, each also notifying the change feed's
    /// channel (the last two parameters: channel, payload) when it wrote a row.
    INSERT_FILE_NOTIFYING = concat!(
        "WITH w AS (INSERT INTO file_metadata (", file_columns!(), ") VALUES ($1, $2, $3, $4, $5) ",
        "RETURNING 1) SELECT pg_notify($6, $7) FROM w"
    );
    DELETE_FILE_NOTIFYING =
        "WITH w AS (DELETE FROM file_metadata WHERE id = $1 RETURNING 1) SELECT pg_notify($2, $3) FROM w";

    INSERT_CONVERSATION =
        "INSERT INTO conversations (id, title, created_at, updated_at, version, archived_at, metadata, \
         search_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    CONVERSATION = "SELECT title FROM conversations WHERE id = $1";
    /// A conversation and its current branch in one statement (one
    /// snapshot, one round trip): a row per message of the branch in order,
    /// then a row of the conversation's columns (`position` NULL).
    /// The conversation's columns are sent once, not on every message's
    /// row as a join would (its metadata may be a long system prompt, and
    /// every `jsonb` is turned into text to be sent); a message's empty
    /// metadata is sent as NULL for the same reason. Only what a message of
    /// the branch needs is read: its conversation is known, and its parent
    /// is the message before (see `link_branch`).
    ///
    /// The positions are bounded by $2 and $3 (the whole range, from the
    /// caller) for the plan a store's connection makes once for any
    /// conversation: it then takes the range, whose ends it cannot see, to
    /// hold a small share of the rows (PostgreSQL's default for such a
    /// range) and reads the conversation through its index. Without them,
    /// when one long conversation holds most messages, that plan took any
    /// conversation to be most of the table and scanned every message
    /// (`plans::chat_statements_are_served_by_indexes_beside_one_long_conversation`).
    CONVERSATION_WITH_MESSAGES = concat!(
        "SELECT title, created_at, updated_at, version, archived_at, metadata, message_count, ",
        "NULL::uuid, NULL::text, NULL::text, NULL::timestamptz, NULL::jsonb, NULL::jsonb, ",
        "NULL::bigint AS position FROM conversations WHERE id = $1 ",
        "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, ",
        "id, role, content, created_at, attachments, NULLIF(metadata, '{}'), position ",
        "FROM messages WHERE conversation_id = $1 AND on_path AND position BETWEEN $2 AND $3 ",
        "ORDER BY position"
    );
    /// Counts $3 more (or fewer) messages, moves the version forward and
    /// locks the row until commit, if the version is $4 (NULL: any); with a
    /// time $2, also moves `updated_at` strictly forward (NULL leaves it:
    /// imports keep theirs).
    TOUCH_CONVERSATION = "UPDATE conversations \
        SET updated_at = CASE WHEN $2::timestamptz IS NULL THEN updated_at \
                ELSE GREATEST($2, updated_at + interval '1 microsecond') END, \
            message_count = message_count + $3, version = version + 1 \
        WHERE id = $1 AND ($4::bigint IS NULL OR version = $4)";
    /// [`TOUCH_CONVERSATION`] on the conversation of message $1.
    ///
    /// The message is looked up in the statement's snapshot, taken before
    /// the wait for the row lock: when another transaction deleted it
    /// meanwhile, this still touches the row, and the caller, reading the
    /// message after the lock, finds it gone and rolls back. The count is
    /// kept at 0 or more for that moment, so the caller's `NotFound` is
    /// what surfaces, not the CHECK on `message_count`.
    TOUCH_CONVERSATION_OF = touch_conversation_of!();
    /// Title $2 (with its search tokens $6) and metadata $3 where given;
    /// archive mode $4 (1: set to $5 unless set, 2: clear).
    SET_FIELDS = concat!(
        "UPDATE conversations SET title = COALESCE($2::text, title), ",
        "search_tokens = COALESCE($6::text[], search_tokens), ",
        "metadata = COALESCE($3::jsonb, metadata), ",
        "archived_at = CASE $4::int WHEN 1 THEN COALESCE(archived_at, $5::timestamptz) ",
        "WHEN 2 THEN NULL ELSE archived_at END WHERE id = $1 RETURNING ", summary_columns!()
    );
    /// `update`'s header write, only when the stored version is still $5;
    /// locks the row, so two updates of one conversation serialize.
    UPDATE_CONVERSATION = concat!(
        "UPDATE conversations SET title = $2, metadata = $3, search_tokens = $6, ",
        "updated_at = GREATEST($4, updated_at + interval '1 microsecond'), ",
        "version = version + 1 WHERE id = $1 AND version = $5 RETURNING ", summary_columns!()
    );
    ADJUST_COUNT = "UPDATE conversations SET message_count = message_count + $2 WHERE id = $1";
    DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = $1";
    DELETE_CONVERSATION_NOTIFYING =
        "WITH w AS (DELETE FROM conversations WHERE id = $1 RETURNING 1) SELECT pg_notify($2, $3) FROM w";
    INSERT_CONVERSATION_NOTIFYING =
        "WITH w AS (INSERT INTO conversations (id, title, created_at, updated_at, version, archived_at, \
         metadata, search_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING 1) \
         SELECT pg_notify($9, $10) FROM w";
    BY_UPDATED_FIRST = list_conversations!("updated_at", "FALSE", "", "$1");
    BY_UPDATED_AFTER = list_conversations!("updated_at", "FALSE", " AND (updated_at, id) < ($1, $2)", "$3");
    BY_CREATED_FIRST = list_conversations!("created_at", "FALSE", "", "$1");
    BY_CREATED_AFTER = list_conversations!("created_at", "FALSE", " AND (created_at, id) < ($1, $2)", "$3");
    ARCHIVED_BY_UPDATED_FIRST = list_conversations!("updated_at", "TRUE", "", "$1");
    ARCHIVED_BY_UPDATED_AFTER = list_conversations!("updated_at", "TRUE", " AND (updated_at, id) < ($1, $2)", "$3");
    ARCHIVED_BY_CREATED_FIRST = list_conversations!("created_at", "TRUE", "", "$1");
    ARCHIVED_BY_CREATED_AFTER = list_conversations!("created_at", "TRUE", " AND (created_at, id) < ($1, $2)", "$3");

    /// Appends one message below the current leaf, after the last message,
    /// on the current branch; returns its parent. Run after
    /// [`TOUCH_CONVERSATION`] has locked the conversation, so concurrent
    /// appends cannot take the same position or parent.
    APPEND_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_tokens) ",
        "SELECT COALESCE(MAX(position), 0) + 1, true, $1, $2, $3, $4, $5, $6, ",
        "(SELECT id FROM messages WHERE conversation_id = $2 AND on_path ",
        "ORDER BY position DESC LIMIT 1), $7, $8 ",
        "FROM messages WHERE conversation_id = $2 RETURNING parent_id"
    );
    CURRENT_LEAF = "SELECT id FROM messages WHERE conversation_id = $1 AND on_path \
        ORDER BY position DESC LIMIT 1";
    /// Inserts a batch from arrays ($2.. in order), positions after the last;
    /// each message's search tokens joined by spaces ($10).
    APPEND_MESSAGES = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_tokens) \
         SELECT b.base + m.n, m.on_path, m.id, $1, m.role, m.content, m.created_at, \
                m.attachments, m.parent_id, m.metadata, string_to_array(m.tokens, ' ') \
         FROM (SELECT COALESCE(MAX(position), 0) AS base FROM messages WHERE conversation_id = $1) b, \
         UNNEST($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::uuid[], \
                $8::bool[], $9::jsonb[], $10::text[]) \
         WITH ORDINALITY AS m(id, role, content, created_at, attachments, parent_id, on_path, \
                              metadata, tokens, n)"
    );
    /// The current leaf of conversation $1 (NULL for none) and its last
    /// position (0 when it has no messages), in one row.
    LEAF_AND_LAST = "SELECT (SELECT id FROM messages WHERE conversation_id = $1 AND on_path \
        ORDER BY position DESC LIMIT 1), \
        (SELECT COALESCE(MAX(position), 0) FROM messages WHERE conversation_id = $1)";
    /// The last position in conversation $1 (0 when it has no messages).
    LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM messages WHERE conversation_id = $1";
    /// Rows of `message_columns!()` in PostgreSQL's binary COPY format (see
    /// `copy_in`).
    COPY_MESSAGES = concat!(
        "COPY messages (", message_columns!(), ", search_tokens) FROM STDIN (FORMAT binary)"
    );
    INSERT_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_tokens) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    /// A page of the current branch.
    BRANCH_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = $1 AND on_path AND position > $2 ORDER BY position LIMIT $3"
    );
    /// A page of every branch.
    TREE_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = $1 AND position > $2 ORDER BY position LIMIT $3"
    );
    /// The current branch of every conversation.
    ALL_MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages WHERE on_path ORDER BY conversation_id, position"
    );
    UPDATE_MESSAGE = "UPDATE messages SET position = $2, on_path = $3, role = $4, content = $5, \
        created_at = $6, attachments = $7, parent_id = $8, metadata = $9, \
        search_tokens = COALESCE($10, search_tokens) WHERE id = $1";
    COUNTS = "SELECT (SELECT COUNT(*) FROM file_metadata), (SELECT COUNT(*) FROM conversations), \
        (SELECT COUNT(*) FROM messages)";
    DELETE_MESSAGE = "DELETE FROM messages WHERE id = $1";
    NODE = concat!("SELECT ", node_columns!(), " FROM messages WHERE id = $1");
    PATH_TO = path_to!("$1", "NOT up.on_path");
    SUBTREE = subtree!("$1");
    /// Takes messages after position $2 off the current branch.
    UNMARK_PATH = "UPDATE messages SET on_path = false \
        WHERE conversation_id = $1 AND on_path AND position > $2";
    MARK_PATH = "UPDATE messages SET on_path = true WHERE id = ANY($1)";
    /// The children of $2, oldest first.
    CHILDREN = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = $1 AND parent_id = $2 ORDER BY position"
    );
    /// The first messages, oldest first.
    FIRST_MESSAGES = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = $1 AND parent_id IS NULL ORDER BY position"
    );
    REPARENT = "UPDATE messages SET parent_id = $3 WHERE conversation_id = $1 AND parent_id = $2";
    /// Sets content $2 (with its search tokens $5), attachments $3 and
    /// metadata $4 where given (NULL keeps them).
    EDIT_MESSAGE = concat!(
        "UPDATE messages SET content = COALESCE($2, content), ",
        "search_tokens = COALESCE($5::text[], search_tokens), ",
        "attachments = COALESCE($3, attachments), metadata = COALESCE($4, metadata) ",
        "WHERE id = $1 RETURNING ", message_columns!()
    );
    /// Appends $2 ($3 bytes) to the content unless it would exceed $4 bytes.
    /// [`TOUCH_CONVERSATION_OF`] ($1–$4), then appends $5 ($6 bytes) to
    /// message $1's content unless it would exceed $7 bytes, in one
    /// statement: the touch is a CTE that gates the message's scan (a
    /// one-time filter), so the conversation's row is locked before the
    /// message's, as on every path (`chat_statements_are_served_by_indexes`
    /// checks the plan).
    TOUCH_AND_GROW = concat!(
        "WITH touched AS (", touch_conversation_of!(), ") ",
        "UPDATE messages SET content = content || $5 ",
        "WHERE id = $1 AND octet_length(content)::bigint + $6::bigint <= $7::bigint ",
        "AND EXISTS (SELECT 1 FROM touched) RETURNING ",
        message_columns!()
    );

    /// The database's encoding (`UTF8` for UTF-8).
    SERVER_ENCODING = "SELECT current_setting('server_encoding')";
    /// The planner's estimate of the messages (`reltuples`, its last
    /// count by `ANALYZE` or autovacuum, per page times the table's pages
    /// now, as the planner scales it; 0 before the first count), with each
    /// of the search index's most common tokens that more than $1 of them
    /// hold, and the share of messages that hold it (one row with NULLs
    /// when there is none, or no statistics yet).
    SEARCH_STATISTICS = concat!(
        "SELECT n.messages, e.token, e.share FROM (SELECT ",
        "COALESCE((SELECT CASE WHEN c.reltuples >= 0 AND c.relpages > 0 \
              THEN c.reltuples / c.relpages \
                   * (pg_relation_size(c.oid) / current_setting('block_size')::float8) \
              ELSE 0 END::bigint \
            FROM pg_class c WHERE c.oid = to_regclass('messages')), 0)",
        " AS messages) n LEFT JOIN (SELECT t.token, t.share FROM pg_stats s, \
            unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) \
              AS t(token, share) \
            WHERE s.schemaname = current_schema() AND s.tablename = 'ix_messages_search' \
              AND t.token IS NOT NULL) e ON e.share * n.messages > $1::bigint"
    );
    /// Search candidates in messages, read through the GIN index (rare
    /// tokens: every match, then sorted). The matches keep only the
    /// columns the rest reads: with their token arrays and attachments,
    /// keeping 2,881 of them took 9 ms of a 35 ms search.
    SEARCH_MESSAGES_BY_INDEX = search_messages!(
        "WITH hits AS MATERIALIZED (SELECT id, conversation_id, role, content, created_at, \
         on_path FROM messages WHERE array_to_tsvector(search_tokens) @@ $1::text::tsquery) ",
        "hits",
        "($2::uuid IS NULL OR m.conversation_id = $2)"
    );
    /// The same, walking messages by time and checking each (common
    /// tokens: the page fills early) against the `tsquery` $1. `IS TRUE`
    /// keeps the check off the GIN index, so the walk stays on the time
    /// index.
    SEARCH_MESSAGES_BY_TIME = search_messages!(
        "",
        "messages",
        "$2::uuid IS NULL AND ",
        holds_tsquery_after_needle!()
    );
    /// The same in one conversation ($2), checking each of its messages.
    SEARCH_MESSAGES_IN_CONVERSATION = search_messages!(
        "",
        "messages",
        "m.conversation_id = $2 AND ",
        holds_tsquery_after_needle!()
    );
    /// The walk for a query without prefixes ($1 unused): each row's token
    /// array checked by array operators against the tokens $11, the
    /// fallback $13 and the excluded tokens $12, without making a `tsvector`
    /// of it (2–3x faster on a common word), in a text that may hold the
    /// needle $14.
    SEARCH_TOKENS_BY_TIME = search_messages!(
        "",
        "messages",
        "$2::uuid IS NULL AND $1::text IS NOT NULL AND ",
        holds_tokens!()
    );
    /// The same in one conversation ($2).
    SEARCH_TOKENS_IN_CONVERSATION = search_messages!(
        "",
        "messages",
        "m.conversation_id = $2 AND $1::text IS NOT NULL AND ",
        holds_tokens!()
    );
    /// Search candidates in titles, newest first, in the same columns
    /// (role NULL). $1 tsquery, $2 conversation, $3 ..$4 time range, before
    /// ($5, $6), $7 archived, $8 limit.
    SEARCH_TITLES = concat!(
        "SELECT c.created_at, c.id, c.id, c.title, NULL::text, c.title FROM conversations c ",
        "WHERE array_to_tsvector(c.search_tokens) @@ $1::text::tsquery ",
        "AND ($2::uuid IS NULL OR c.id = $2) ",
        "AND ($3::timestamptz IS NULL OR c.created_at >= $3) ",
        "AND ($4::timestamptz IS NULL OR c.created_at < $4) ",
        "AND ($5::timestamptz IS NULL OR (c.created_at, c.id) < ($5, $6::uuid)) ",
        "AND ($7::int = 2 OR c.archived = ($7::int = 1)) ",
        "ORDER BY c.created_at DESC, c.id DESC LIMIT $8"
    );
    /// Whether the schema has the search index (V5 on).
    HAS_SEARCH_INDEX = "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
        WHERE table_schema = current_schema() AND table_name = 'messages' \
        AND column_name = 'search_tokens')";
    /// Texts not indexed yet.
    SEARCH_BACKLOG = "SELECT (SELECT COUNT(*) FROM messages WHERE search_tokens IS NULL) \
        + (SELECT COUNT(*) FROM conversations WHERE search_tokens IS NULL)";
    /// Takes every text's search tokens (a rebuild follows).
    FORGET_SEARCH_INDEX = "UPDATE messages SET search_tokens = NULL WHERE search_tokens IS NOT NULL; \
        UPDATE conversations SET search_tokens = NULL WHERE search_tokens IS NOT NULL;";
    /// Up to $1 messages not indexed yet, locked (others' are skipped).
    UNINDEXED_MESSAGES = "SELECT id, content FROM messages WHERE search_tokens IS NULL \
        LIMIT $1 FOR UPDATE SKIP LOCKED";
    /// Up to $1 conversations whose title is not indexed yet, locked.
    UNINDEXED_TITLES = "SELECT id, title FROM conversations WHERE search_tokens IS NULL \
        LIMIT $1 FOR UPDATE SKIP LOCKED";
    /// Sets the search tokens of messages $1 (each text of $2: tokens joined by spaces).
    INDEX_MESSAGES = "UPDATE messages SET search_tokens = string_to_array(t.tokens, ' ') \
        FROM UNNEST($1::uuid[], $2::text[]) AS t(id, tokens) WHERE messages.id = t.id";
    /// Sets the search tokens of the titles of conversations $1.
    INDEX_TITLES = "UPDATE conversations SET search_tokens = string_to_array(t.tokens, ' ') \
        FROM UNNEST($1::uuid[], $2::text[]) AS t(id, tokens) WHERE conversations.id = t.id";
    /// Sets message $1's search tokens (after its content grew).
    SET_SEARCH_TOKENS = "UPDATE messages SET search_tokens = $2 WHERE id = $1";

    COUNT_MISMATCHES = "SELECT COUNT(*) FROM conversations c WHERE c.message_count <> \
        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)";
    DATABASE_SIZE = "SELECT pg_database_size(current_database())";
    /// Whether the schema $1 exists.
    SCHEMA_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)";
    /// The store's tables that this connection resolves outside schema $1
    /// (or not at all), as `table -> schema` or `table -> missing`.
    MISPLACED_TABLES = "SELECT t.name || ' -> ' || COALESCE(n.nspname, 'missing') \
        FROM unnest(ARRAY['file_metadata', 'conversations', 'messages', \
                          'refinery_schema_history']) AS t(name) \
        LEFT JOIN pg_class c ON c.oid = to_regclass(t.name) \
        LEFT JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname IS DISTINCT FROM $1 \
        ORDER BY t.name";

    /// Serializes migrations across processes (held for the session).
    LOCK_MIGRATIONS = "SELECT pg_advisory_lock(7370616365)";
    UNLOCK_MIGRATIONS = "SELECT pg_advisory_unlock(7370616365)";
    HISTORY_EXISTS = "SELECT to_regclass('refinery_schema_history') IS NOT NULL";
    DELETE_HISTORY = "DELETE FROM refinery_schema_history WHERE version = $1";
    HISTORY = "SELECT version, name, applied_on, checksum FROM refinery_schema_history ORDER BY version";
}

/// The conversation list statements, by order, page and archive flag.
pub(super) const LISTS: crate::backend::sql::ListStatements = crate::backend::sql::ListStatements {
    by_updated_first: BY_UPDATED_FIRST,
    by_updated_after: BY_UPDATED_AFTER,
    by_created_first: BY_CREATED_FIRST,
    by_created_after: BY_CREATED_AFTER,
    archived_by_updated_first: ARCHIVED_BY_UPDATED_FIRST,
    archived_by_updated_after: ARCHIVED_BY_UPDATED_AFTER,
    archived_by_created_first: ARCHIVED_BY_CREATED_FIRST,
    archived_by_created_after: ARCHIVED_BY_CREATED_AFTER,
};
