//! Every SQL statement of the PostgreSQL backend, as constants: prepared once
//! per connection and cached, never built at run time.

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

    INSERT_CONVERSATION =
        "INSERT INTO conversations (id, title, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5)";
    CONVERSATION = "SELECT title, created_at, updated_at, version FROM conversations WHERE id = $1";
    /// A conversation and its messages in one statement (one snapshot, one
    /// round trip): a row per message, or one row of NULL message columns.
    CONVERSATION_WITH_MESSAGES = concat!(
        "SELECT c.title, c.created_at, c.updated_at, c.version, ",
        "m.position, m.id, m.conversation_id, m.role, m.content, m.created_at, m.attachments ",
        "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id ",
        "WHERE c.id = $1 ORDER BY m.position"
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
    /// `update`'s header write, only when the stored version is still $5;
    /// locks the row, so two updates of one conversation serialize.
    UPDATE_CONVERSATION = "UPDATE conversations \
        SET title = $2, updated_at = GREATEST($3, updated_at + interval '1 microsecond'), \
            message_count = $4, version = version + 1 WHERE id = $1 AND version = $5 \
        RETURNING created_at, updated_at, version";
    DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = $1";
    BY_UPDATED_FIRST = list_conversations!("updated_at", "", "$1");
    BY_UPDATED_AFTER = list_conversations!("updated_at", "WHERE (c.updated_at, c.id) < ($1, $2)", "$3");
    BY_CREATED_FIRST = list_conversations!("created_at", "", "$1");
    BY_CREATED_AFTER = list_conversations!("created_at", "WHERE (c.created_at, c.id) < ($1, $2)", "$3");
    ALL_CONVERSATIONS = "SELECT id, title, created_at, updated_at, version, message_count \
        FROM conversations \
        ORDER BY updated_at DESC, id DESC";

    /// Appends at the end: run after [`BUMP_CONVERSATION`] has locked the
    /// conversation, so concurrent appends cannot take the same position.
    APPEND_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ") \
         SELECT COALESCE(MAX(position), 0) + 1, $1, $2, $3, $4, $5, $6 \
         FROM messages WHERE conversation_id = $2"
    );
    /// Appends a batch from arrays ($2.. in order), positions after the last.
    APPEND_MESSAGES = concat!(
        "INSERT INTO messages (", message_columns!(), ") \
         SELECT b.base + m.n, m.id, $1, m.role, m.content, m.created_at, m.attachments \
         FROM (SELECT COALESCE(MAX(position), 0) AS base FROM messages WHERE conversation_id = $1) b, \
         UNNEST($2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[]) \
         WITH ORDINALITY AS m(id, role, content, created_at, attachments, n)"
    );
    INSERT_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    );
    MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages WHERE conversation_id = $1 ORDER BY position"
    );
    MESSAGES_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = $1 AND position > $2 ORDER BY position LIMIT $3"
    );
    ALL_MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages ORDER BY conversation_id, position"
    );
    UPDATE_MESSAGE = "UPDATE messages SET position = $2, role = $3, content = $4, created_at = $5, \
                      attachments = $6 WHERE id = $1";
    COUNTS = "SELECT (SELECT COUNT(*) FROM file_metadata), (SELECT COUNT(*) FROM conversations), \
        (SELECT COUNT(*) FROM messages)";
    DELETE_MESSAGE = "DELETE FROM messages WHERE id = $1";
    /// Deletes one message, saying which conversation it was in.
    REMOVE_MESSAGE = "DELETE FROM messages WHERE id = $1 RETURNING conversation_id";
    MESSAGE_EXISTS = "SELECT 1 FROM messages WHERE id = $1";
    /// Sets content $2 and attachments $3 where given (NULL keeps them).
    EDIT_MESSAGE = concat!(
        "UPDATE messages SET content = COALESCE($2, content), ",
        "attachments = COALESCE($3, attachments) WHERE id = $1 RETURNING ", message_columns!()
    );
    /// Appends $2 ($3 bytes) to the content unless it would exceed $4 bytes.
    GROW_MESSAGE = concat!(
        "UPDATE messages SET content = content || $2 ",
        "WHERE id = $1 AND octet_length(content)::bigint + $3::bigint <= $4::bigint RETURNING ",
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

/// The conversation list statements, by order and page.
pub(super) const LISTS: crate::backend::sql::ListStatements = crate::backend::sql::ListStatements {
    by_updated_first: BY_UPDATED_FIRST,
    by_updated_after: BY_UPDATED_AFTER,
    by_created_first: BY_CREATED_FIRST,
    by_created_after: BY_CREATED_AFTER,
};
