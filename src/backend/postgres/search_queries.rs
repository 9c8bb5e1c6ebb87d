//! The PostgreSQL backend's search statements, as constants like every
//! other ([`queries`](super::queries)): the reads through the GIN index
//! and the walks by time, the search statistics, and the batches that
//! index texts.

/// Whether message `m`'s token array holds every token of `$11` (or of
/// `$13`, the query's fallback, NULL for none) and none of `$12` (array
/// operators; NULL, not indexed: no), checked only when the message may
/// hold them: its text may hold the needle $14 (`may_hold_needle!`) and,
/// `signed`, its signature has the bits $15 and $16 (`may_have_bits!`).
macro_rules! holds_tokens {
    ($($signed:ident)?) => {
        only_if!(
            [$(may_have_bits!($signed, "$15", "$16"),)? may_hold_needle!("$14")],
            "((m.search_tokens @> $11::text[] OR m.search_tokens @> $13::text[]) \
              AND NOT (m.search_tokens && $12::text[])) IS TRUE"
        )
    };
}

/// Whether message `m`'s tokens meet the `tsquery` $1, checked only when
/// its text may hold the needle $11 (and, signed, its signature has the
/// bits $12 and $13: `holds_tsquery_signed!`).
macro_rules! holds_tsquery {
    () => {
        only_if!([may_hold_needle!("$11")], tokens_meet_tsquery!())
    };
}

/// [`holds_tsquery!`] for a schema with signatures: checked only when the
/// signature has the bits $12 and $13 too, and for a query of one prefix
/// alone, the tokens of an indexed ASCII text are checked by the pattern
/// $14 (the prefix at the start of a run of letters and digits of the text
/// in lower case, which is what starts a token of it) rather than by making
/// a `tsvector` of them (a fifth of the time, on `chapt*`'s 1,000 newest).
/// Only a text of at most 50,000 bytes: every word of it is a token
/// (`tokenize::ascii_tokens`), where a longer one's may not all fit.
macro_rules! holds_tsquery_signed {
    () => {
        only_if!(
            [
                may_have_bits!(signed, "$12", "$13"),
                may_hold_needle!("$11")
            ],
            concat!(
                "CASE WHEN $14::text IS NOT NULL AND m.search_tokens IS NOT NULL \
                   AND octet_length(m.content) <= 50000 \
                   AND octet_length(m.content) = char_length(m.content) \
                 THEN lower(m.content COLLATE \"C\") ~ $14 ELSE ",
                tokens_meet_tsquery!(),
                " END"
            )
        )
    };
}

/// Whether message `m`'s tokens meet the `tsquery` $1 (NULL, not indexed:
/// no).
macro_rules! tokens_meet_tsquery {
    () => {
        "(array_to_tsvector(m.search_tokens) @@ $1::text::tsquery) IS TRUE"
    };
}

/// `$check`, made only when every one of `$may` holds, in order. A walk
/// rejects most rows, and each `$may` costs far less than the check
/// (making a `tsvector` of a row's tokens about five times a search of its
/// text for a needle; `@>` on the token array, with its word pairs, about
/// twice; a bit test a tenth of the needle). `CASE` fixes the order, which
/// the planner would choose by cost, and `AND` stops at the first false.
macro_rules! only_if {
    ([$($may:expr),+], $check:expr) => {
        concat!("CASE WHEN ", $($may, " AND ",)+ "TRUE THEN ", $check, " ELSE false END")
    };
}

/// Whether message `m`'s token signature (V12,
/// [`signature`](crate::search::signature)) has the bits at positions `$a`
/// and `$b` (NULL: no bit to test): a text whose bit for a term is clear
/// does not hold it. A message without a signature (indexed before V12 and
/// not signed yet, or written by a store that has not seen the column) is
/// not judged by it. `get_byte` cannot fail: the column's CHECK keeps
/// every signature 96 bytes, and positions are below 768.
macro_rules! may_have_bits {
    (signed, $a:literal, $b:literal) => {
        concat!(
            "(m.search_bits IS NULL OR (",
            has_bit!($a),
            " AND ",
            has_bit!($b),
            "))"
        )
    };
}

/// Whether `m.search_bits` has the bit at position `$p` (or `$p` is NULL).
macro_rules! has_bit {
    ($p:literal) => {
        concat!(
            "(",
            $p,
            "::int IS NULL OR (get_byte(m.search_bits, ",
            $p,
            "::int >> 3) \
             & (1 << (",
            $p,
            "::int & 7))) <> 0)"
        )
    };
}

/// Whether message `m`'s text may hold the needle `$needle` (a token or
/// prefix of the query, NULL for none): an ASCII text's tokens are parts of
/// the text in lower case, so one that lacks the needle cannot hold it.
/// `COLLATE "C"` lowers ASCII letters only, whatever the database's locale
/// (a Turkish one lowers `I` to a dotless `ı`); the caller gives no needle
/// unless the database's encoding is UTF-8, where a text of as many
/// characters as bytes is ASCII.
macro_rules! may_hold_needle {
    ($needle:literal) => {
        concat!(
            "(",
            $needle,
            "::text IS NULL OR strpos(lower(m.content COLLATE \"C\"), ",
            $needle,
            ") > 0 OR octet_length(m.content) <> char_length(m.content))"
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
/// fallback, $14 the needle, signed $15 and $16 the bits; in one by
/// `holds_tsquery!`, $11 the needle, signed $12 and $13 the bits and $14
/// the pattern of a lone prefix).
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
        holds_tsquery!()
    );
    /// The same in one conversation ($2), checking each of its messages.
    SEARCH_MESSAGES_IN_CONVERSATION = search_messages!(
        "",
        "messages",
        "m.conversation_id = $2 AND ",
        holds_tsquery!()
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
    /// [`SEARCH_MESSAGES_BY_TIME`] testing each message's signature
    /// for the bits $12 and $13 first, and an ASCII text by the pattern
    /// $14 for a query of one prefix (V12 on).
    SEARCH_MESSAGES_BY_TIME_SIGNED = search_messages!(
        "",
        "messages",
        "$2::uuid IS NULL AND ",
        holds_tsquery_signed!()
    );
    /// [`SEARCH_MESSAGES_IN_CONVERSATION`], the same way.
    SEARCH_MESSAGES_IN_CONVERSATION_SIGNED = search_messages!(
        "",
        "messages",
        "m.conversation_id = $2 AND ",
        holds_tsquery_signed!()
    );
    /// [`SEARCH_TOKENS_BY_TIME`] testing each message's signature for the
    /// bits $15 and $16 first (V12 on).
    SEARCH_TOKENS_BY_TIME_SIGNED = search_messages!(
        "",
        "messages",
        "$2::uuid IS NULL AND $1::text IS NOT NULL AND ",
        holds_tokens!(signed)
    );
    /// [`SEARCH_TOKENS_IN_CONVERSATION`], the same way.
    SEARCH_TOKENS_IN_CONVERSATION_SIGNED = search_messages!(
        "",
        "messages",
        "m.conversation_id = $2 AND $1::text IS NOT NULL AND ",
        holds_tokens!(signed)
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
    /// Whether the schema keeps messages' token signatures (V12 on).
    HAS_SEARCH_BITS = "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
        WHERE table_schema = current_schema() AND table_name = 'messages' \
        AND column_name = 'search_bits')";
    /// Texts not indexed yet.
    SEARCH_BACKLOG = "SELECT (SELECT COUNT(*) FROM messages WHERE search_tokens IS NULL) \
        + (SELECT COUNT(*) FROM conversations WHERE search_tokens IS NULL)";
    /// Texts not indexed or (messages) not signed yet (V12 on).
    SEARCH_BACKLOG_SIGNED = "SELECT (SELECT COUNT(*) FROM messages \
            WHERE search_tokens IS NULL OR search_bits IS NULL) \
        + (SELECT COUNT(*) FROM conversations WHERE search_tokens IS NULL)";
    /// Takes every text's search tokens (a rebuild follows, which signs
    /// the messages again).
    FORGET_SEARCH_INDEX = "UPDATE messages SET search_tokens = NULL WHERE search_tokens IS NOT NULL; \
        UPDATE conversations SET search_tokens = NULL WHERE search_tokens IS NOT NULL;";
    /// Up to $1 messages not indexed yet, locked (others' are skipped).
    UNINDEXED_MESSAGES = "SELECT id, content FROM messages WHERE search_tokens IS NULL \
        LIMIT $1 FOR UPDATE SKIP LOCKED";
    /// Up to $1 messages not indexed or not signed yet, locked (V12 on; the
    /// condition is `ix_messages_unindexed`'s).
    UNINDEXED_MESSAGES_SIGNED = "SELECT id, content FROM messages \
        WHERE search_tokens IS NULL OR search_bits IS NULL LIMIT $1 FOR UPDATE SKIP LOCKED";
    /// Up to $1 conversations whose title is not indexed yet, locked.
    UNINDEXED_TITLES = "SELECT id, title FROM conversations WHERE search_tokens IS NULL \
        LIMIT $1 FOR UPDATE SKIP LOCKED";
    /// Sets the search tokens of messages $1 (each text of $2: tokens joined by spaces).
    INDEX_MESSAGES = "UPDATE messages SET search_tokens = string_to_array(t.tokens, ' ') \
        FROM UNNEST($1::uuid[], $2::text[]) AS t(id, tokens) WHERE messages.id = t.id";
    /// [`INDEX_MESSAGES`] with each message's signature ($3, V12 on).
    INDEX_MESSAGES_SIGNED = concat!(
        "UPDATE messages \
         SET search_tokens = string_to_array(t.tokens, ' '), search_bits = t.bits \
         FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) AS t(id, tokens, bits) \
         WHERE messages.id = t.id",
        signing!()
    );
    /// Sets the search tokens of the titles of conversations $1.
    INDEX_TITLES = "UPDATE conversations SET search_tokens = string_to_array(t.tokens, ' ') \
        FROM UNNEST($1::uuid[], $2::text[]) AS t(id, tokens) WHERE conversations.id = t.id";
    /// Sets message $1's search tokens (after its content grew).
    SET_SEARCH_TOKENS = "UPDATE messages SET search_tokens = $2 WHERE id = $1";
    /// [`SET_SEARCH_TOKENS`] with the signature $3 (V12 on).
    SET_SEARCH_TOKENS_SIGNED = concat!(
        "UPDATE messages SET search_tokens = $2, search_bits = $3 WHERE id = $1",
        signing!()
    );
}
