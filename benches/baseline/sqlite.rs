//! The hand-written SQLite baseline: what an app would write directly with
//! rusqlite for the same work: one connection with the store's pragmas,
//! cached prepared statements, the same schema and SQL shape, every field
//! decoded into the same model types.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, params};
use silmari_store::{
    Attachment, Conversation, ConversationSummary, FileMetadata, Message, Metadata, Role,
};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct Baseline {
    conn: Connection,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn now() -> i64 {
    micros(OffsetDateTime::now_utc())
}

fn time(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).expect("in range")
}

fn uuid(text: &str) -> Uuid {
    Uuid::try_parse(text).expect("a uuid")
}

fn role(text: &str) -> Role {
    match text {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => Role::Tool,
    }
}

/// The columns [`message_at`] reads, in its order.
macro_rules! message_columns {
    () => {
        "id, conversation_id, role, content, created_at, attachments, parent_id, metadata"
    };
}

/// Column `i` as text.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> &'r str {
    r.get_ref(i).expect("col").as_str().expect("text")
}

/// A JSON object stored as text.
fn metadata(text: &str) -> Metadata {
    serde_json::from_str(text).expect("json object")
}

/// A message from `message_columns!()`.
fn message_at(r: &rusqlite::Row<'_>) -> Message {
    let attachments: Vec<Attachment> = serde_json::from_str(text(r, 5)).expect("json");
    Message {
        id: uuid(text(r, 0)).into(),
        conversation_id: uuid(text(r, 1)).into(),
        role: role(text(r, 2)),
        content: r.get(3).expect("content"),
        created_at: time(r.get(4).expect("time")),
        attachments,
        parent_id: r
            .get_ref(6)
            .expect("col")
            .as_str_or_null()
            .expect("text or null")
            .map(|t| uuid(t).into()),
        metadata: metadata(text(r, 7)),
    }
}

impl Baseline {
    /// Runs a statement without parameters or rows (`BEGIN IMMEDIATE`, `COMMIT`).
    fn run(&self, sql: &str) {
        self.conn
            .prepare_cached(sql)
            .expect("prepare")
            .execute([])
            .expect(sql);
    }

    /// Opens an already migrated database file with the store's pragmas.
    pub fn open(path: &Path) -> Self {
        let conn = Connection::open(path).expect("open");
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .expect("pragmas");
        Baseline { conn }
    }

    pub fn create_conversation(&self, title: &str) -> Uuid {
        let id = Uuid::now_v7();
        let t = now();
        self.conn
            .prepare_cached(
                "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            )
            .expect("prepare")
            .execute(params![id.to_string(), title, t])
            .expect("insert");
        id
    }

    pub fn append(&self, conversation: Uuid, content: &str, attachments: &[Attachment]) -> Uuid {
        let id = Uuid::now_v7();
        let t = now();
        let conversation = conversation.to_string();
        let json = serde_json::to_string(attachments).expect("json");
        self.run("BEGIN IMMEDIATE");
        self.conn
            .prepare_cached(
                "UPDATE conversations SET updated_at = MAX(?2, updated_at + 1), \
                 message_count = message_count + 1, version = version + 1 WHERE id = ?1",
            )
            .expect("prepare")
            .execute(params![conversation, t])
            .expect("bump");
        self.conn
            .prepare_cached(
                // After the last message, on the current branch, below
                // the current leaf (the last on-path message).
                "INSERT INTO messages \
                 (position, on_path, parent_id, id, conversation_id, role, content, created_at, attachments) \
                 SELECT COALESCE(MAX(position), 0) + 1, 1, \
                   (SELECT id FROM messages WHERE conversation_id = ?2 AND on_path \
                    ORDER BY position DESC LIMIT 1), \
                   ?1, ?2, 'user', ?3, ?4, ?5 \
                 FROM messages WHERE conversation_id = ?2",
            )
            .expect("prepare")
            .execute(params![id.to_string(), conversation, content, t, json])
            .expect("insert");
        self.run("COMMIT");
        id
    }

    /// W5: many messages in one transaction, one cached statement; each
    /// follows the one before it, the first the current leaf.
    pub fn bulk(&self, conversation: Uuid, contents: &[String]) {
        self.run("BEGIN IMMEDIATE");
        self.bulk_rows(conversation, contents, &[]);
        self.run("COMMIT");
    }

    /// W5 as an app writes it: every conversation's messages, each with
    /// `attachments` (serialized for each message, as they would differ),
    /// in one transaction.
    pub fn import(&self, conversations: &[Uuid], contents: &[String], attachments: &[Attachment]) {
        self.run("BEGIN IMMEDIATE");
        for conversation in conversations {
            self.bulk_rows(*conversation, contents, attachments);
        }
        self.run("COMMIT");
    }

    /// The rows of [`Baseline::bulk`], inside the caller's transaction.
    fn bulk_rows(&self, conversation: Uuid, contents: &[String], attachments: &[Attachment]) {
        let conversation = conversation.to_string();
        let (first, mut parent): (i64, Option<String>) = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(position), 0) + 1, \
                   (SELECT id FROM messages WHERE conversation_id = ?1 AND on_path \
                    ORDER BY position DESC LIMIT 1) \
                 FROM messages WHERE conversation_id = ?1",
            )
            .expect("prepare")
            .query_row([&conversation], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("position");
        let t = now();
        {
            let mut insert = self
                .conn
                .prepare_cached(
                    "INSERT INTO messages \
                     (position, on_path, parent_id, id, conversation_id, role, content, created_at, attachments) \
                     VALUES (?1, 1, ?2, ?3, ?4, 'user', ?5, ?6, ?7)",
                )
                .expect("prepare");
            for (i, content) in contents.iter().enumerate() {
                let id = Uuid::now_v7().to_string();
                let json = if attachments.is_empty() {
                    "[]".to_owned()
                } else {
                    serde_json::to_string(attachments).expect("json")
                };
                insert
                    .execute(params![
                        first + i as i64,
                        parent,
                        id,
                        conversation,
                        content,
                        t,
                        json
                    ])
                    .expect("insert");
                parent = Some(id);
            }
        }
        self.conn
            .prepare_cached(
                "UPDATE conversations SET updated_at = MAX(?2, updated_at + 1), \
                 message_count = message_count + ?3, version = version + 1 WHERE id = ?1",
            )
            .expect("prepare")
            .execute(params![conversation, t, contents.len() as i64])
            .expect("bump");
    }

    /// W8 (`grow` false: replaces the text) and W9 (`grow`: appends to it):
    /// one message row and its conversation's row, in one transaction; the
    /// message as stored.
    pub fn edit(&self, message: Uuid, text: &str, grow: bool) -> Message {
        let sql = if grow {
            concat!(
                "UPDATE messages SET content = content || ?2 WHERE id = ?1 RETURNING ",
                message_columns!()
            )
        } else {
            concat!(
                "UPDATE messages SET content = ?2 WHERE id = ?1 RETURNING ",
                message_columns!()
            )
        };
        self.run("BEGIN IMMEDIATE");
        let message = self
            .conn
            .prepare_cached(sql)
            .expect("prepare")
            .query_row(params![message.to_string(), text], |r| Ok(message_at(r)))
            .expect("edit");
        self.conn
            .prepare_cached(
                "UPDATE conversations SET updated_at = MAX(?2, updated_at + 1), \
                 version = version + 1 WHERE id = ?1",
            )
            .expect("prepare")
            .execute(params![message.conversation_id.to_string(), now()])
            .expect("bump");
        self.run("COMMIT");
        message
    }

    pub fn get(&self, id: Uuid) -> Conversation {
        let key = id.to_string();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT title, created_at, updated_at, version, archived_at, metadata \
                 FROM conversations WHERE id = ?1",
            )
            .expect("prepare");
        let mut conversation = stmt
            .query_row([&key], |r| {
                Ok(Conversation {
                    id: id.into(),
                    title: r.get(0)?,
                    created_at: time(r.get(1)?),
                    updated_at: time(r.get(2)?),
                    version: r.get::<_, i64>(3)? as u64,
                    archived_at: r.get::<_, Option<i64>>(4)?.map(time),
                    metadata: metadata(r.get_ref(5)?.as_str()?),
                    messages: Vec::new(),
                })
            })
            .expect("conversation");
        // The current branch: the on-path messages in position order.
        let mut stmt = self
            .conn
            .prepare_cached(concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE conversation_id = ?1 AND on_path ORDER BY position"
            ))
            .expect("prepare");
        let mut rows = stmt.query([&key]).expect("query");
        while let Some(r) = rows.next().expect("row") {
            conversation.messages.push(message_at(r));
        }
        conversation
    }

    pub fn recent(&self, limit: i64) -> Vec<ConversationSummary> {
        let mut stmt = self
            .conn
            .prepare_cached(
                // `archived` leads the list index.
                "SELECT id, title, created_at, updated_at, version, archived_at, metadata, \
                   message_count FROM conversations WHERE archived = 0 \
                 ORDER BY updated_at DESC, id DESC LIMIT ?1",
            )
            .expect("prepare");
        stmt.query_map([limit], |r| {
            Ok(ConversationSummary {
                id: uuid(r.get_ref(0)?.as_str()?).into(),
                title: r.get(1)?,
                created_at: time(r.get(2)?),
                updated_at: time(r.get(3)?),
                version: r.get::<_, i64>(4)? as u64,
                archived_at: r.get::<_, Option<i64>>(5)?.map(time),
                metadata: metadata(r.get_ref(6)?.as_str()?),
                message_count: r.get::<_, i64>(7)? as u64,
            })
        })
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
    }

    pub fn create_and_get_file(&self, filename: &str) -> FileMetadata {
        let id = Uuid::now_v7();
        let key = id.to_string();
        self.conn
            .prepare_cached(
                "INSERT INTO file_metadata (id, filename, content_type, size, created_at) \
                 VALUES (?1, ?2, 'application/pdf', 4096, ?3)",
            )
            .expect("prepare")
            .execute(params![key, filename, now()])
            .expect("insert");
        self.conn
            .prepare_cached("SELECT id, filename, content_type, size, created_at FROM file_metadata WHERE id = ?1")
            .expect("prepare")
            .query_row([&key], |r| {
                Ok(FileMetadata {
                    id: uuid(r.get_ref(0)?.as_str()?).into(),
                    filename: r.get(1)?,
                    content_type: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    created_at: time(r.get(4)?),
                })
            })
            .expect("file")
    }
}
