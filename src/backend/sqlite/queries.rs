//! Every SQL statement of the SQLite backend, as constants: prepared once per
//! connection through the statement cache, never built at run time.
//!
//! A page's size is bound as `LIMIT ?n + 0`, never a bare `LIMIT ?n`: SQLite
//! takes a bare bound LIMIT for a value its plan may depend on and prepares
//! the statement again (parse and plan) on every run after a new binding,
//! which cost a listing about a tenth of its time; an expression is
//! evaluated at run time like any other (`no_statement_is_prepared_again`).

/// The next search rowid of a message: above every message's and above
/// the mark of indexed messages (V7), so that no rowid at or below the
/// mark is given again.
macro_rules! next_message_rowid {
    () => {
        "(SELECT MAX(COALESCE(MAX(search_rowid), 0), \
         (SELECT indexed_upto FROM search_progress WHERE id = 1)) + 1 FROM messages)"
    };
}

/// The next search rowid of a title: above every title's and above the
/// titles' mark, for the same reason.
macro_rules! next_title_rowid {
    () => {
        "(SELECT MAX(COALESCE(MAX(search_rowid), 0), \
         (SELECT titles_indexed_upto FROM search_progress WHERE id = 1)) + 1 FROM conversations)"
    };
}

/// Candidates of a search in messages, newest first: (created_at, id,
/// conversation id, conversation title, role, content). ?2 conversation,
/// ?3 role (NULL: any), ?4 ..?5 time range, before (?6, ?7), ?8 archived
/// (0 no, 1 yes, 2 both), ?9 all branches, ?10 limit.
macro_rules! search_messages {
    ($admitted:literal, $conversation:literal) => {
        concat!(
            "SELECT m.created_at, m.id, m.conversation_id, c.title, m.role, m.content ",
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE ",
            $admitted,
            " AND ",
            $conversation,
            search_filters!(),
            "ORDER BY m.created_at DESC, m.id DESC LIMIT ?10 + 0"
        )
    };
}

/// The filters of a search in messages `m` of conversations `c`, as
/// [`search_messages!`] binds them (?3 to ?9).
macro_rules! search_filters {
    () => {
        " AND (?3 IS NULL OR m.role = ?3) \
         AND m.created_at >= ?4 AND m.created_at < ?5 AND (m.created_at, m.id) < (?6, ?7) \
         AND (?8 = 2 OR c.archived = ?8) AND (?9 OR m.on_path) "
    };
}

/// [`SEARCH_MISMATCHES`] from V7, less `$stale` from the index's count.
macro_rules! search_mismatches {
    ($stale:literal) => {
        concat!(
            "SELECT (SELECT COUNT(*) FROM messages WHERE search_rowid IS NULL) ",
            "+ (SELECT COUNT(*) FROM conversations WHERE search_rowid IS NULL) ",
            "+ ABS((SELECT COUNT(*) FROM search_index) ",
            "- (SELECT COUNT(*) FROM messages ",
            "WHERE search_rowid <= (SELECT indexed_upto FROM search_progress WHERE id = 1)) ",
            "- (SELECT COUNT(*) FROM conversations ",
            "WHERE search_rowid <= (SELECT titles_indexed_upto FROM search_progress WHERE id = 1))",
            $stale,
            ")"
        )
    };
}

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
        " FROM file_metadata ORDER BY created_at DESC, id DESC LIMIT ?1 + 0"
    );
    FILES_AFTER = concat!(
        "SELECT ", file_columns!(),
        " FROM file_metadata WHERE (created_at, id) < (?1, ?2) \
         ORDER BY created_at DESC, id DESC LIMIT ?3 + 0"
    );
    DELETE_FILE = "DELETE FROM file_metadata WHERE id = ?1";

    INSERT_CONVERSATION =
        "INSERT INTO conversations (id, title, created_at, updated_at, version, archived_at, metadata) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    CONVERSATION = "SELECT title FROM conversations WHERE id = ?1";
    /// A conversation and its current branch in one statement (one
    /// snapshot): a row per message, or one row of NULL message columns.
    /// Only what a message of the branch needs is read: its conversation
    /// is known, and its parent is the message before (see `link_branch`).
    CONVERSATION_WITH_MESSAGES = concat!(
        "SELECT c.title, c.created_at, c.updated_at, c.version, c.archived_at, c.metadata, ",
        "c.message_count, m.id, m.role, m.content, m.created_at, m.attachments, m.metadata ",
        "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id AND m.on_path ",
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
    /// [`TOUCH_CONVERSATION`] on the conversation of message ?1.
    TOUCH_CONVERSATION_OF = "UPDATE conversations \
        SET updated_at = CASE WHEN ?2 IS NULL THEN updated_at ELSE MAX(?2, updated_at + 1) END, \
            message_count = message_count + ?3, version = version + 1 \
        WHERE id = (SELECT conversation_id FROM messages WHERE id = ?1) \
          AND (?4 IS NULL OR version = ?4) RETURNING id";
    /// Title ?2 and metadata ?3 where given; archive mode ?4 (1: set to ?5
    /// unless set, 2: clear).
    SET_FIELDS = concat!(
        "UPDATE conversations SET title = COALESCE(?2, title), metadata = COALESCE(?3, metadata), ",
        "archived_at = CASE ?4 WHEN 1 THEN COALESCE(archived_at, ?5) WHEN 2 THEN NULL ",
        "ELSE archived_at END WHERE id = ?1 RETURNING ", summary_columns!()
    );
    /// `update`'s header write, only when the stored version is still ?5.
    UPDATE_CONVERSATION = concat!(
        "UPDATE conversations SET title = ?2, metadata = ?3, updated_at = MAX(?4, updated_at + 1), ",
        "version = version + 1 WHERE id = ?1 AND version = ?5 RETURNING ", summary_columns!()
    );
    ADJUST_COUNT = "UPDATE conversations SET message_count = message_count + ?2 WHERE id = ?1";
    DELETE_CONVERSATION = "DELETE FROM conversations WHERE id = ?1";
    BY_UPDATED_FIRST = list_conversations!("updated_at", "FALSE", "", "?1 + 0");
    BY_UPDATED_AFTER = list_conversations!("updated_at", "FALSE", " AND (updated_at, id) < (?1, ?2)", "?3 + 0");
    BY_CREATED_FIRST = list_conversations!("created_at", "FALSE", "", "?1 + 0");
    BY_CREATED_AFTER = list_conversations!("created_at", "FALSE", " AND (created_at, id) < (?1, ?2)", "?3 + 0");
    ARCHIVED_BY_UPDATED_FIRST = list_conversations!("updated_at", "TRUE", "", "?1 + 0");
    ARCHIVED_BY_UPDATED_AFTER = list_conversations!("updated_at", "TRUE", " AND (updated_at, id) < (?1, ?2)", "?3 + 0");
    ARCHIVED_BY_CREATED_FIRST = list_conversations!("created_at", "TRUE", "", "?1 + 0");
    ARCHIVED_BY_CREATED_AFTER = list_conversations!("created_at", "TRUE", " AND (created_at, id) < (?1, ?2)", "?3 + 0");

    /// Appends one message below the current leaf, after the last message,
    /// on the current branch, with the next search rowid; returns its
    /// parent, its search rowid and the mark of indexed messages.
    APPEND_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_rowid) ",
        "SELECT COALESCE(MAX(position), 0) + 1, 1, ?1, ?2, ?3, ?4, ?5, ?6, ",
        "(SELECT id FROM messages WHERE conversation_id = ?2 AND on_path ",
        "ORDER BY position DESC LIMIT 1), ?7, ",
        next_message_rowid!(), " ",
        "FROM messages WHERE conversation_id = ?2 ",
        "RETURNING parent_id, search_rowid, (SELECT indexed_upto FROM search_progress WHERE id = 1)"
    );
    CURRENT_LEAF = "SELECT id FROM messages WHERE conversation_id = ?1 AND on_path \
        ORDER BY position DESC LIMIT 1";
    /// Inserts one message with search rowid ?11.
    INSERT_MESSAGE = concat!(
        "INSERT INTO messages (", message_columns!(), ", search_rowid) ",
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    );
    /// The next free search rowid of a message.
    NEXT_SEARCH_ROWID = concat!("SELECT ", next_message_rowid!());
    NEXT_POSITION = "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE conversation_id = ?1";
    /// A page of the current branch.
    BRANCH_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND on_path AND position > ?2 ORDER BY position LIMIT ?3 + 0"
    );
    /// A page of every branch.
    TREE_PAGE = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3 + 0"
    );
    /// The current branch of every conversation.
    ALL_MESSAGES = concat!(
        "SELECT ", message_columns!(), " FROM messages WHERE on_path ORDER BY conversation_id, position"
    );
    UPDATE_MESSAGE = "UPDATE messages SET position = ?2, on_path = ?3, role = ?4, content = ?5, \
        created_at = ?6, attachments = ?7, parent_id = ?8, metadata = ?9 WHERE id = ?1";
    COUNTS = "SELECT (SELECT COUNT(*) FROM file_metadata), (SELECT COUNT(*) FROM conversations), \
        (SELECT COUNT(*) FROM messages)";
    DELETE_MESSAGE = "DELETE FROM messages WHERE id = ?1";
    NODE = concat!("SELECT ", node_columns!(), " FROM messages WHERE id = ?1");
    PATH_TO = path_to!("?1", "NOT up.on_path");
    SUBTREE = subtree!("?1");
    /// Takes messages after position ?2 off the current branch.
    UNMARK_PATH = "UPDATE messages SET on_path = 0 \
        WHERE conversation_id = ?1 AND on_path AND position > ?2";
    MARK_PATH = "UPDATE messages SET on_path = 1 WHERE id = ?1";
    /// The children of ?2 (NULL: the first messages), oldest first.
    CHILDREN = concat!(
        "SELECT ", message_columns!(),
        " FROM messages WHERE conversation_id = ?1 AND parent_id IS ?2 ORDER BY position"
    );
    REPARENT = "UPDATE messages SET parent_id = ?3 WHERE conversation_id = ?1 AND parent_id = ?2";
    /// Sets content ?2, attachments ?3 and metadata ?4 where given (NULL keeps them).
    EDIT_MESSAGE = concat!(
        "UPDATE messages SET content = COALESCE(?2, content), ",
        "attachments = COALESCE(?3, attachments), metadata = COALESCE(?4, metadata) ",
        "WHERE id = ?1 RETURNING ", message_columns!()
    );
    /// Appends ?2 (?3 bytes) to the content unless it would exceed ?4 bytes.
    GROW_MESSAGE = concat!(
        "UPDATE messages SET content = content || ?2 ",
        "WHERE id = ?1 AND length(CAST(content AS BLOB)) + ?3 <= ?4 RETURNING ", message_columns!()
    );
    // Search (V5). A message's text is in `search_index` under its
    // `search_rowid`, a conversation's title under minus its; the rowids
    // are given once and kept (VACUUM keeps them: they are columns).
    /// Message ?1's search rowid (NULL: none yet) and the mark of indexed
    /// messages. A read: an `UPDATE` that sets the rowid to itself writes
    /// its entry of `ix_messages_search_rowid` again.
    MESSAGE_SEARCH_ROWID_OF = "SELECT search_rowid, \
        (SELECT indexed_upto FROM search_progress WHERE id = 1) FROM messages WHERE id = ?1";
    /// Gives message ?1 its search rowid, unless it has one; returns it and
    /// the mark of indexed messages.
    MESSAGE_SEARCH_ROWID = concat!(
        "UPDATE messages SET search_rowid = COALESCE(search_rowid, ", next_message_rowid!(), ") ",
        "WHERE id = ?1 RETURNING search_rowid, (SELECT indexed_upto FROM search_progress WHERE id = 1)"
    );
    /// Whether a message other than the one of search rowid ?2 waits above
    /// the mark ?1 with more than ?3 bytes (the bytes are in each row's
    /// header: no text is read).
    OTHER_LONG_WAITING = "SELECT EXISTS (SELECT 1 FROM messages WHERE search_rowid > ?1 \
        AND search_rowid <> ?2 AND octet_length(content) > ?3)";
    /// Drops entry ?1 from the index.
    UNINDEX_TEXT = "DELETE FROM search_index WHERE rowid = ?1";
    /// Gives message ?1 a new search rowid, above every message's and the
    /// mark (so it waits for its batch); returns it.
    MESSAGE_WAITS_AGAIN = concat!(
        "UPDATE messages SET search_rowid = ", next_message_rowid!(), " WHERE id = ?1 ",
        "RETURNING search_rowid"
    );
    /// The same for conversation ?1's title.
    TITLE_WAITS_AGAIN = concat!(
        "UPDATE conversations SET search_rowid = ", next_title_rowid!(), " WHERE id = ?1 ",
        "RETURNING search_rowid"
    );
    /// Lists entry ?1 as one no text holds any more (V8); returns how many
    /// are listed.
    STALE_ENTRY = "INSERT INTO search_stale (rowid) VALUES (?1) \
        RETURNING (SELECT COUNT(*) FROM search_stale)";
    /// The entries no text holds any more.
    STALE_ENTRIES = "SELECT rowid FROM search_stale";
    /// Empties that list.
    FORGET_STALE_ENTRIES = "DELETE FROM search_stale";
    /// Whether the schema lists entries no text holds (V8 on).
    HAS_SEARCH_STALE = "SELECT EXISTS (SELECT 1 FROM pragma_table_info('search_stale'))";
    /// The same before V7 (no mark).
    MESSAGE_SEARCH_ROWID_V5 = "UPDATE messages SET search_rowid = COALESCE(search_rowid, \
        (SELECT COALESCE(MAX(search_rowid), 0) + 1 FROM messages)) WHERE id = ?1 RETURNING search_rowid";
    /// Whether the schema has the mark of indexed messages (V7 on).
    HAS_SEARCH_PROGRESS = "SELECT EXISTS (SELECT 1 FROM pragma_table_info('search_progress'))";
    /// The mark: messages with a search rowid at most this are indexed.
    INDEXED_UPTO = "SELECT indexed_upto FROM search_progress WHERE id = 1";
    SET_INDEXED_UPTO = "UPDATE search_progress SET indexed_upto = ?1 WHERE id = 1";
    /// Up to ?2 messages above the mark ?1, by search rowid, with their
    /// time.
    PENDING_TEXTS = "SELECT search_rowid, content, created_at FROM messages WHERE search_rowid > ?1 \
        ORDER BY search_rowid LIMIT ?2 + 0";
    /// How many messages are above the mark.
    COUNT_PENDING = "SELECT COUNT(*) FROM messages \
        WHERE search_rowid > (SELECT indexed_upto FROM search_progress WHERE id = 1)";
    /// Conversation ?1's search rowid (NULL: none yet) and the titles' mark.
    TITLE_SEARCH_ROWID_OF = "SELECT search_rowid, \
        (SELECT titles_indexed_upto FROM search_progress WHERE id = 1) FROM conversations WHERE id = ?1";
    /// Gives conversation ?1 its search rowid, above every title's and the
    /// titles' mark, unless it has one; returns it and the mark.
    TITLE_SEARCH_ROWID = concat!(
        "UPDATE conversations SET search_rowid = COALESCE(search_rowid, ", next_title_rowid!(), ") ",
        "WHERE id = ?1 RETURNING search_rowid, (SELECT titles_indexed_upto FROM search_progress WHERE id = 1)"
    );
    /// The same before V7 (no mark).
    TITLE_SEARCH_ROWID_V5 = "UPDATE conversations SET search_rowid = COALESCE(search_rowid, \
        (SELECT COALESCE(MAX(search_rowid), 0) + 1 FROM conversations)) WHERE id = ?1 RETURNING search_rowid";
    /// The titles' mark: titles with a search rowid at most this are indexed.
    TITLES_INDEXED_UPTO = "SELECT titles_indexed_upto FROM search_progress WHERE id = 1";
    SET_TITLES_INDEXED_UPTO = "UPDATE search_progress SET titles_indexed_upto = ?1 WHERE id = 1";
    /// Up to ?2 titles above the mark ?1, by search rowid.
    PENDING_TITLES = "SELECT search_rowid, title FROM conversations WHERE search_rowid > ?1 \
        ORDER BY search_rowid LIMIT ?2 + 0";
    /// Sets the tokens of text ?1 (its entry replaced if it has one).
    INDEX_TEXT = "INSERT OR REPLACE INTO search_index (rowid, tokens) VALUES (?1, ?2)";
    /// Whether the schema has the search index (V5 on).
    HAS_SEARCH_INDEX = "SELECT EXISTS (SELECT 1 FROM pragma_table_info('messages') WHERE name = 'search_rowid')";
    /// Texts not indexed yet: without a rowid, or above the mark.
    SEARCH_BACKLOG = "SELECT (SELECT COUNT(*) FROM messages WHERE search_rowid IS NULL \
        OR search_rowid > (SELECT indexed_upto FROM search_progress WHERE id = 1)) \
        + (SELECT COUNT(*) FROM conversations WHERE search_rowid IS NULL \
        OR search_rowid > (SELECT titles_indexed_upto FROM search_progress WHERE id = 1))";
    /// The same before V7.
    SEARCH_BACKLOG_V5 = "SELECT (SELECT COUNT(*) FROM messages WHERE search_rowid IS NULL) \
        + (SELECT COUNT(*) FROM conversations WHERE search_rowid IS NULL)";
    /// Texts not indexed, and index entries without their text (the
    /// index's count against the texts that have an entry).
    /// From V7, texts above their kind's mark are waiting, not missing:
    /// the index holds those at or below it, and (V8) the entries listed
    /// as held by no text.
    SEARCH_MISMATCHES = search_mismatches!(" - (SELECT COUNT(*) FROM search_stale)");
    /// The same at V7 (every entry is a text's).
    SEARCH_MISMATCHES_V7 = search_mismatches!("");
    /// The same before V7.
    SEARCH_MISMATCHES_V5 = "SELECT (SELECT COUNT(*) FROM messages WHERE search_rowid IS NULL) \
        + (SELECT COUNT(*) FROM conversations WHERE search_rowid IS NULL) \
        + ABS((SELECT COUNT(*) FROM search_index) \
              - (SELECT COUNT(*) FROM messages WHERE search_rowid IS NOT NULL) \
              - (SELECT COUNT(*) FROM conversations WHERE search_rowid IS NOT NULL))";
    /// After [`FORGET_SEARCH_INDEX`], from V7: nothing is indexed.
    FORGET_MARK = "UPDATE search_progress SET indexed_upto = 0, titles_indexed_upto = 0 WHERE id = 1";
    /// Empties the index and takes every text's rowid (a rebuild follows).
    FORGET_SEARCH_INDEX = "INSERT INTO search_index (search_index) VALUES ('delete-all'); \
        UPDATE messages SET search_rowid = NULL WHERE search_rowid IS NOT NULL; \
        UPDATE conversations SET search_rowid = NULL WHERE search_rowid IS NOT NULL;";
    /// Up to ?1 messages not indexed yet.
    UNINDEXED_MESSAGES = "SELECT id, content FROM messages WHERE search_rowid IS NULL LIMIT ?1 + 0";
    /// The ids of up to ?1 messages without a search rowid.
    UNINDEXED_MESSAGE_IDS = "SELECT id FROM messages WHERE search_rowid IS NULL LIMIT ?1 + 0";
    /// The ids of up to ?1 conversations whose title has no search rowid.
    UNINDEXED_TITLE_IDS = "SELECT id FROM conversations WHERE search_rowid IS NULL LIMIT ?1 + 0";
    /// Up to ?1 conversations whose title is not indexed yet.
    UNINDEXED_TITLES = "SELECT id, title FROM conversations WHERE search_rowid IS NULL LIMIT ?1 + 0";
    /// The index's terms, one row per occurrence, in term order: read a
    /// row at a time to list the terms that start with a prefix (its `row`
    /// form counts each term's texts first). A table of this connection's
    /// own, made when first needed.
    CREATE_SEARCH_TERMS = "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_terms \
        USING fts5vocab(main, search_index, instance)";
    /// The first term at or after ?1.
    NEXT_SEARCH_TERM = "SELECT term FROM temp.search_terms WHERE term >= ?1 LIMIT 1";
    /// How many messages the index admits (?1), counted up to ?2.
    COUNT_INDEXED = "SELECT COUNT(*) FROM (SELECT 1 FROM search_index \
        WHERE search_index MATCH ?1 AND rowid > 0 LIMIT ?2 + 0)";
    /// Messages the index admits (?1, an FTS5 expression), driven by the
    /// index: for rare terms.
    /// With the messages above the mark, not in the index yet, that
    /// `silmari_admits` admits (?11, the query as `search::encode` writes
    /// it): one list of rowids, so that the plan stays a lookup of each
    /// (an `OR` of the two made SQLite walk every message by time).
    MESSAGES_BY_INDEX = search_messages!(
        "m.search_rowid IN (SELECT rowid FROM search_index WHERE search_index MATCH ?1 AND rowid > 0 \
         UNION ALL SELECT p.search_rowid FROM messages p \
         WHERE p.search_rowid > (SELECT indexed_upto FROM search_progress WHERE id = 1) \
         AND silmari_admits(?11, p.content))",
        "?2 IS NULL"
    );
    /// Every message that passes the filters and whose text's tokens meet
    /// the query ?1 (as `search::encode` writes it), newest first: for
    /// common tokens, whose matches are many and recent, each text is
    /// checked by the crate's own function as the walk reads it, before
    /// its conversation is joined (FTS5 answers a probe per rowid slowly,
    /// and the full list of a common token's rowids is long).
    MESSAGES_BY_TIME = search_messages!("silmari_admits(?1, m.content)", "?2 IS NULL");
    /// The same in one conversation (?2).
    MESSAGES_IN_CONVERSATION =
        search_messages!("silmari_admits(?1, m.content)", "m.conversation_id = ?2");
    /// Messages the index admits (?1, an FTS5 expression) with a search
    /// rowid from ?12 up to below ?11, newest rowid first, each with its
    /// rowid, at most ?10; the content of those that pass the filters of
    /// `search_messages!` (?2 NULL), NULL for the others, so that the
    /// caller counts every row read. The `CROSS JOIN`s keep the index as
    /// the outer loop, whose rowid order FTS5 gives as it reads (no sort),
    /// and the read stops when its caller does.
    MESSAGES_BY_ROWID = concat!(
        "SELECT m.created_at, m.id, m.conversation_id, c.title, m.role, ",
        "CASE WHEN TRUE", search_filters!(), "THEN m.content END, s.rowid ",
        "FROM search_index s CROSS JOIN messages m CROSS JOIN conversations c ",
        "WHERE search_index MATCH ?1 AND s.rowid > 0 AND s.rowid >= ?12 AND s.rowid < ?11 ",
        "AND m.search_rowid = s.rowid AND c.id = m.conversation_id AND ?2 IS NULL ",
        "ORDER BY s.rowid DESC LIMIT ?10 + 0"
    );
    /// Messages above the mark (not in the index yet) that `silmari_admits`
    /// admits (?1, the query as `search::encode` writes it), newest first:
    /// read beside [`MESSAGES_BY_ROWID`]. A list of rowids, as in
    /// [`MESSAGES_BY_INDEX`], so that the plan reads the few rows above the
    /// mark rather than walk every message by time to find them.
    PENDING_MESSAGES = search_messages!(
        "m.search_rowid IN (SELECT p.search_rowid FROM messages p \
         WHERE p.search_rowid > (SELECT indexed_upto FROM search_progress WHERE id = 1) \
         AND silmari_admits(?1, p.content))",
        "?2 IS NULL"
    );
    /// Every block of search rowids (V11), by number: the newest and the
    /// oldest `created_at` of the messages given a rowid in it.
    SEARCH_BLOCKS = "SELECT block, newest, oldest FROM search_blocks ORDER BY block";
    /// Empties `search_blocks` (V11), for an index rebuilt: the blocks
    /// fill again as the rebuild gives the texts their rowids.
    FORGET_SEARCH_BLOCKS = "DELETE FROM search_blocks";
    /// Widens block ?1 to take a message indexed there with a time from
    /// ?3 to ?2 (written only when it changes the block).
    WIDEN_SEARCH_BLOCK = "INSERT INTO search_blocks (block, newest, oldest) VALUES (?1, ?2, ?3) \
        ON CONFLICT (block) DO UPDATE SET newest = max(newest, excluded.newest), \
        oldest = min(oldest, excluded.oldest) \
        WHERE excluded.newest > newest OR excluded.oldest < oldest";
    /// Widens the block of message ?1's search rowid to take its time.
    WIDEN_SEARCH_BLOCK_OF = "INSERT INTO search_blocks (block, newest, oldest) \
        SELECT search_rowid >> 10, created_at, created_at FROM messages \
        WHERE id = ?1 AND search_rowid IS NOT NULL \
        ON CONFLICT (block) DO UPDATE SET newest = max(newest, excluded.newest), \
        oldest = min(oldest, excluded.oldest) \
        WHERE excluded.newest > newest OR excluded.oldest < oldest";
    /// Whether the schema has `search_blocks` (V11 on).
    HAS_SEARCH_BLOCKS = "SELECT EXISTS (SELECT 1 FROM pragma_table_info('search_blocks'))";
    /// Conversation titles the index admits, and those above the titles'
    /// mark that `silmari_admits` admits (?11), as for messages.
    TITLES = concat!(
        "SELECT c.created_at, c.id, c.id, c.title, NULL, c.title FROM conversations c ",
        "WHERE c.search_rowid IN (SELECT -rowid FROM search_index WHERE search_index MATCH ?1 AND rowid < 0 ",
        "UNION ALL SELECT p.search_rowid FROM conversations p ",
        "WHERE p.search_rowid > (SELECT titles_indexed_upto FROM search_progress WHERE id = 1) ",
        "AND silmari_admits(?11, p.title)) ",
        "AND (?2 IS NULL OR c.id = ?2) AND c.created_at >= ?4 AND c.created_at < ?5 ",
        "AND (c.created_at, c.id) < (?6, ?7) AND (?8 = 2 OR c.archived = ?8) ",
        "ORDER BY c.created_at DESC, c.id DESC LIMIT ?10 + 0"
    );
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
