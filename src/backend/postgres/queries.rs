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

/// Appends one message below the current leaf (`APPEND_MESSAGE`), with
/// the columns `$column` from `$value` too.
macro_rules! append_message {
    ($column:literal, $value:literal) => {
        concat!(
            "INSERT INTO messages (",
            message_columns!(),
            ", search_tokens",
            $column,
            ") ",
            "SELECT COALESCE(MAX(position), 0) + 1, true, $1, $2, $3, $4, $5, $6, ",
            "(SELECT id FROM messages WHERE conversation_id = $2 AND on_path ",
            "ORDER BY position DESC LIMIT 1), $7, $8",
            $value,
            " ",
            "FROM messages WHERE conversation_id = $2 RETURNING parent_id"
        )
    };
}

/// Inserts a batch from arrays (`APPEND_MESSAGES`), with the column
/// `$column` from `$value`, unnested from `$array` as `$name`.
macro_rules! append_messages {
    ($column:literal, $value:literal, $array:literal, $name:literal) => {
        concat!(
            "INSERT INTO messages (",
            message_columns!(),
            ", search_tokens",
            $column,
            ") \
             SELECT b.base + m.n, m.on_path, m.id, $1, m.role, m.content, m.created_at, \
                    m.attachments, m.parent_id, m.metadata, string_to_array(m.tokens, ' ')",
            $value,
            " FROM (SELECT COALESCE(MAX(position), 0) AS base FROM messages \
                    WHERE conversation_id = $1) b, \
             UNNEST($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], \
                    $7::uuid[], $8::bool[], $9::jsonb[], $10::text[]",
            $array,
            ") WITH ORDINALITY AS m(id, role, content, created_at, attachments, parent_id, \
                                   on_path, metadata, tokens, ",
            $name,
            "n)"
        )
    };
}

/// What a statement that writes messages' signatures with their tokens
/// adds to its `WHERE`: it says so for its transaction, so the trigger of
/// V12 that takes away a signature which new tokens left behind (written
/// by a store that does not sign) leaves this one be. `set_config` never
/// returns anything but the value it set.
macro_rules! signing {
    () => {
        " AND set_config('silmari.signs', 'on', true) = 'on'"
    };
}

/// Writes every column of a message (`UPDATE_MESSAGE`), and `$set`, where
/// `$where` too.
macro_rules! update_message {
    ($set:literal, $where:expr) => {
        concat!(
            "UPDATE messages SET position = $2, on_path = $3, role = $4, content = $5, \
             created_at = $6, attachments = $7, parent_id = $8, metadata = $9, \
             search_tokens = COALESCE($10, search_tokens)",
            $set,
            " WHERE id = $1",
            $where
        )
    };
}

/// Edits a message's fields (`EDIT_MESSAGE`), and `$set`, where `$where`
/// too.
macro_rules! edit_message {
    ($set:literal, $where:expr) => {
        concat!(
            "UPDATE messages SET content = COALESCE($2, content), ",
            "search_tokens = COALESCE($5::text[], search_tokens), ",
            $set,
            "attachments = COALESCE($3, attachments), metadata = COALESCE($4, metadata) ",
            "WHERE id = $1",
            $where,
            " RETURNING ",
            message_columns!()
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
    APPEND_MESSAGE = append_message!("", "");
    /// [`APPEND_MESSAGE`] with the message's token signature $9 (V12 on).
    APPEND_MESSAGE_SIGNED = append_message!(", search_bits", ", $9");
    CURRENT_LEAF = "SELECT id FROM messages WHERE conversation_id = $1 AND on_path \
        ORDER BY position DESC LIMIT 1";
    /// Inserts a batch from arrays ($2.. in order), positions after the last;
    /// each message's search tokens joined by spaces ($10).
    APPEND_MESSAGES = append_messages!("", "", "", "");
    /// [`APPEND_MESSAGES`] with each message's token signature ($11, V12 on).
    APPEND_MESSAGES_SIGNED = append_messages!(", search_bits", ", m.bits", ", $11::bytea[]", "bits, ");
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
    /// [`COPY_MESSAGES`] with each message's token signature (V12 on).
    COPY_MESSAGES_SIGNED = concat!(
        "COPY messages (", message_columns!(), ", search_tokens, search_bits) \
         FROM STDIN (FORMAT binary)"
    );
    INSERT_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_tokens) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    /// [`INSERT_MESSAGE`] with the message's token signature $12 (V12 on).
    INSERT_MESSAGE_SIGNED = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_tokens, search_bits) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
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
    UPDATE_MESSAGE = update_message!("", "");
    /// [`UPDATE_MESSAGE`] with the token signature $11 (NULL with $10, V12 on).
    UPDATE_MESSAGE_SIGNED =
        update_message!(", search_bits = COALESCE($11, search_bits)", signing!());
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
    EDIT_MESSAGE = edit_message!("", "");
    /// [`EDIT_MESSAGE`] with the token signature $6 (NULL with $5, V12 on).
    EDIT_MESSAGE_SIGNED =
        edit_message!("search_bits = COALESCE($6::bytea, search_bits), ", signing!());
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
