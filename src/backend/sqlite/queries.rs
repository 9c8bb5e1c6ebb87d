//! Every SQL statement of the SQLite backend, as constants: prepared once per
//! connection through the statement cache, never built at run time.

statements! {
    BEGIN_IMMEDIATE = "BEGIN IMMEDIATE";
    BEGIN_DEFERRED = "BEGIN DEFERRED";
    COMMIT = "COMMIT";
    ROLLBACK = "ROLLBACK";

    INSERT_FILE = concat!(
        "INSERT INTO file_metadata (", file_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5)"
    );
    FILE = concat!("SELECT ", file_columns!(), " FROM file_metadata WHERE id = ?1");
    FILES_FIRST = concat!(
        "SELECT ", file_columns!(),
        " FROM file_metadata ORDER BY created_at DESC, id DESC LIMIT ?1"
    );
    FILES_AFTER = concat!(
        "SELECT ", file_columns!(),
        " FROM file_metadata WHERE (created_at, id) < (?1, ?2) \
         ORDER BY created_at DESC, id DESC LIMIT ?3"
    );
    DELETE_FILE = "DELETE FROM file_metadata WHERE id = ?1";

    INSERT_CONVERSATION =
        "INSERT INTO conversations (id, title, created_at, updated_at, version) \
         VALUES (?1, ?2, ?3, ?4, ?5)";
    CONVERSATION = "SELECT title, created_at, updated_at, version FROM conversations WHERE id = ?1";
    /// A conversation and its messages in one statement (one snapshot): a
    /// row per message, or one row of NULL message columns.
    CONVERSATION_WITH_MESSAGES = concat!(
        "SELECT c.title, c.created_at, c.updated_at, c.version, ",
        "m.position, m.id, m.conversation_id, m.role, m.content, m.created_at, m.attachments ",
        "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id ",
        "WHERE c.id = ?1 ORDER BY m.position"
    );
    /// Counts ?3 more (or fewer) messages and moves the version forward,
    /// if the version is ?4 (NULL: any); with a time ?2, also moves
    /// `updated_at` strictly forward to `max(?2, updated_at + 1µs)` (NULL
    /// leaves it: imports keep theirs).
    TOUCH_CONVERSATION = "UPDATE conversations \
        SET updated_at = CASE WHEN ?2 IS NULL THEN updated_at ELSE MAX(?2, updated_at + 1) END, \
            message_count = message_count + ?3, version = version + 1 \
        WHERE id = ?1 AND (?4 IS NULL OR version = ?4)";
    /// `update`'s header write, only when the stored version is still ?5.
    UPDATE_CONVERSATION = "UPDATE conversations \
        SET title = ?2, updated_at = MAX(?3, updated_at + 1), message_count = ?4, \
            version = version + 1 WHERE id = ?1 AND version = ?5 \
        RETURNING created_at, updated_at, version";
    DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = ?1";
    BY_UPDATED_FIRST = list_conversations!("updated_at", "", "?1");
    BY_UPDATED_AFTER = list_conversations!("updated_at", "WHERE (c.updated_at, c.id) < (?1, ?2)", "?3");
    BY_CREATED_FIRST = list_conversations!("created_at", "", "?1");
    BY_CREATED_AFTER = list_conversations!("created_at", "WHERE (c.created_at, c.id) < (?1, ?2)", "?3");
    ALL_CONVERSATIONS = "SELECT id, title, created_at, updated_at, version, message_count \
        FROM conversations \
        ORDER BY updated_at DESC, id DESC";

    /// Appends one message after the conversation's last.
    APPEND_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ") ",
        "SELECT COALESCE(MAX(position), 0) + 1, ?1, ?2, ?3, ?4, ?5, ?6 ",
        "FROM messages WHERE conversation_id = ?2"
    );
    INSERT_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    );
    NEXT_POSITION = "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE conversation_id = ?1";
    MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages WHERE conversation_id = ?1 ORDER BY position"
    );
    MESSAGES_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3"
    );
    ALL_MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages ORDER BY conversation_id, position"
    );
    UPDATE_MESSAGE = "UPDATE messages SET position = ?2, role = ?3, content = ?4, created_at = ?5, \
                      attachments = ?6 WHERE id = ?1";
    COUNTS = "SELECT (SELECT COUNT(*) FROM file_metadata), (SELECT COUNT(*) FROM conversations), \
        (SELECT COUNT(*) FROM messages)";
    DELETE_MESSAGE = "DELETE FROM messages WHERE id = ?1";
    /// Deletes one message, saying which conversation it was in.
    REMOVE_MESSAGE = "DELETE FROM messages WHERE id = ?1 RETURNING conversation_id";
    MESSAGE_EXISTS = "SELECT 1 FROM messages WHERE id = ?1";
    /// Sets content ?2 and attachments ?3 where given (NULL keeps them).
    EDIT_MESSAGE = concat!(
        "UPDATE messages SET content = COALESCE(?2, content), ",
        "attachments = COALESCE(?3, attachments) WHERE id = ?1 RETURNING ", message_columns!()
    );
    /// Appends ?2 (?3 bytes) to the content unless it would exceed ?4 bytes.
    GROW_MESSAGE = concat!(
        "UPDATE messages SET content = content || ?2 ",
        "WHERE id = ?1 AND length(CAST(content AS BLOB)) + ?3 <= ?4 RETURNING ", message_columns!()
    );
}

/// The conversation list statements, by order and page.
pub(super) const LISTS: crate::backend::sql::ListStatements = crate::backend::sql::ListStatements {
    by_updated_first: BY_UPDATED_FIRST,
    by_updated_after: BY_UPDATED_AFTER,
    by_created_first: BY_CREATED_FIRST,
    by_created_after: BY_CREATED_AFTER,
};
