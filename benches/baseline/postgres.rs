//! The hand-written PostgreSQL baseline: the sync `postgres` client with
//! statements prepared once, the same SQL shape, every field decoded into
//! the same model types, and COPY for the bulk load.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Json, Type};
use postgres::{Client, NoTls, Statement};
use silmari_store::{
    Attachment, Conversation, ConversationSummary, FileMetadata, Message, Metadata, Role,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// What [`Baseline::import`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// The rows issue 12 set, without search tokens, in one copy.
    Plain,
    /// The store's rows, with their search tokens, in one copy.
    WithTokens,
    /// The store's rows, a copy per conversation (as the store's
    /// `append_messages` calls each make one).
    CopyPerConversation,
}

pub struct Baseline {
    client: Client,
    create: Statement,
    bump: Statement,
    append: Statement,
    conversation: Statement,
    messages: Statement,
    recent: Statement,
    insert_file: Statement,
    file: Statement,
    position: Statement,
    count: Statement,
    edit: Statement,
    grow: Statement,
}

fn role(text: &str) -> Role {
    match text {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => Role::Tool,
    }
}

/// The search tokens the store writes with a short ASCII text (the
/// bench's): its runs of letters and digits in lower case, then the pair of
/// each two runs one right after the other (`·first·second`, V10), each
/// once, in order.
fn search_tokens(text: &str) -> Vec<String> {
    let lowered = text.to_ascii_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let pairs = words
        .windows(2)
        .map(|w| format!("\u{b7}{}\u{b7}{}", w[0], w[1]));
    let mut seen = std::collections::HashSet::new();
    words
        .iter()
        .map(|w| (*w).to_owned())
        .chain(pairs)
        .filter(|token| seen.insert(token.clone()))
        .collect()
}

/// The columns [`message_at`] reads, in its order.
macro_rules! message_columns {
    () => {
        "id, conversation_id, role, content, created_at, attachments, parent_id, metadata"
    };
}

/// A message from `message_columns!()`.
fn message_at(r: &postgres::Row) -> Message {
    let Json(attachments): Json<Vec<Attachment>> = r.get(5);
    let Json(metadata): Json<Metadata> = r.get(7);
    Message {
        id: r.get::<_, Uuid>(0).into(),
        conversation_id: r.get::<_, Uuid>(1).into(),
        role: role(r.get(2)),
        content: r.get(3),
        created_at: r.get(4),
        attachments,
        parent_id: r.get::<_, Option<Uuid>>(6).map(Into::into),
        metadata,
    }
}

impl Baseline {
    /// Connects to an already migrated database.
    pub fn open(url: &str) -> Self {
        let mut client = Client::connect(url, NoTls).expect("connect");
        let mut prepare = |sql: &str| client.prepare(sql).expect("prepare");
        let create = prepare(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ($1, $2, $3, $3)",
        );
        let bump = prepare(
            "UPDATE conversations SET updated_at = GREATEST($2, updated_at + interval '1 microsecond'), \
             message_count = message_count + $3, version = version + 1 WHERE id = $1",
        );
        // After the last message, on the current branch, below the current
        // leaf (the last on-path message); run after `bump` locked the
        // conversation's row.
        let append = prepare(
            "INSERT INTO messages \
             (position, on_path, parent_id, id, conversation_id, role, content, created_at, attachments) \
             SELECT COALESCE(MAX(position), 0) + 1, true, \
               (SELECT id FROM messages WHERE conversation_id = $2 AND on_path \
                ORDER BY position DESC LIMIT 1), \
               $1, $2, 'user', $3, $4, $5 \
             FROM messages WHERE conversation_id = $2",
        );
        let conversation = prepare(
            "SELECT title, created_at, updated_at, version, archived_at, metadata \
             FROM conversations WHERE id = $1",
        );
        // The current branch: the on-path messages in position order.
        let messages = prepare(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE conversation_id = $1 AND on_path ORDER BY position"
        ));
        // `archived` leads the list index.
        let recent = prepare(
            "SELECT id, title, created_at, updated_at, version, archived_at, metadata, \
               message_count FROM conversations WHERE archived = false \
             ORDER BY updated_at DESC, id DESC LIMIT $1",
        );
        let insert_file = prepare(
            "INSERT INTO file_metadata (id, filename, content_type, size, created_at) \
             VALUES ($1, $2, 'application/pdf', 4096, $3)",
        );
        let file = prepare(
            "SELECT id, filename, content_type, size, created_at FROM file_metadata WHERE id = $1",
        );
        let position = prepare(
            "SELECT COALESCE(MAX(position), 0), \
               (SELECT id FROM messages WHERE conversation_id = $1 AND on_path \
                ORDER BY position DESC LIMIT 1) \
             FROM messages WHERE conversation_id = $1",
        );
        let count = prepare(
            "UPDATE conversations SET updated_at = GREATEST($2, updated_at + interval '1 microsecond'), \
             message_count = message_count + $3, version = version + 1 WHERE id = $1",
        );
        let edit = prepare(concat!(
            "UPDATE messages SET content = $2 WHERE id = $1 RETURNING ",
            message_columns!()
        ));
        let grow = prepare(concat!(
            "UPDATE messages SET content = content || $2 WHERE id = $1 RETURNING ",
            message_columns!()
        ));
        Baseline {
            client,
            create,
            bump,
            append,
            conversation,
            messages,
            recent,
            insert_file,
            file,
            position,
            count,
            edit,
            grow,
        }
    }

    /// W8 (`grow` false: replaces the text) and W9 (`grow`: appends to it):
    /// one message row and its conversation's row, in one transaction; the
    /// message as stored.
    pub fn edit(&mut self, message: Uuid, text: &str, grow: bool) -> Message {
        let now = OffsetDateTime::now_utc();
        let statement = if grow { &self.grow } else { &self.edit };
        let mut tx = self.client.transaction().expect("begin");
        let message = message_at(&tx.query_one(statement, &[&message, &text]).expect("edit"));
        tx.execute(
            &self.count,
            &[message.conversation_id.as_uuid(), &now, &0i64],
        )
        .expect("bump");
        tx.commit().expect("commit");
        message
    }

    pub fn create_conversation(&mut self, title: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.client
            .execute(&self.create, &[&id, &title, &OffsetDateTime::now_utc()])
            .expect("insert");
        id
    }

    pub fn append(
        &mut self,
        conversation: Uuid,
        content: &str,
        attachments: &[Attachment],
    ) -> Uuid {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let mut tx = self.client.transaction().expect("begin");
        tx.execute(&self.bump, &[&conversation, &now, &1i64])
            .expect("bump");
        tx.execute(
            &self.append,
            &[&id, &conversation, &content, &now, &Json(attachments)],
        )
        .expect("insert");
        tx.commit().expect("commit");
        id
    }

    /// Whether the tokens this baseline would write with `content` are
    /// the ones the store wrote with a message of that text.
    pub fn writes_the_stores_tokens(&mut self, content: &str) -> bool {
        let row = self
            .client
            .query_one(
                "SELECT search_tokens FROM messages WHERE content = $1 LIMIT 1",
                &[&content],
            )
            .expect("a message the store wrote");
        row.get::<_, Vec<String>>(0) == search_tokens(content)
    }

    /// W5: COPY in binary format, positions after the last, each message
    /// following the one before it, the first the current leaf.
    pub fn bulk(&mut self, conversation: Uuid, contents: &[String]) {
        self.import(&[conversation], contents, &[], Rows::Plain);
    }

    /// W5 as an app writes it: in one transaction, each conversation
    /// counted (which locks it) and its last message read, then every
    /// conversation's messages, each with `attachments`, in one binary COPY
    /// (or one per conversation), each with its search tokens or not, as
    /// `rows` says.
    pub fn import(
        &mut self,
        conversations: &[Uuid],
        contents: &[String],
        attachments: &[Attachment],
        rows: Rows,
    ) {
        let with_tokens = rows != Rows::Plain;
        let now = OffsetDateTime::now_utc();
        let mut tx = self.client.transaction().expect("begin");
        let mut starts = Vec::with_capacity(conversations.len());
        for conversation in conversations {
            tx.execute(&self.count, &[conversation, &now, &(contents.len() as i64)])
                .expect("lock and count");
            let row = tx
                .query_one(&self.position, &[conversation])
                .expect("position");
            starts.push((row.get::<_, i64>(0), row.get::<_, Option<Uuid>>(1)));
        }
        let starts: Vec<_> = conversations.iter().zip(starts).collect();
        let copies = match rows {
            Rows::CopyPerConversation => starts.chunks(1).collect::<Vec<_>>(),
            Rows::Plain | Rows::WithTokens => vec![&starts[..]],
        };
        for copy in copies {
            let sink = tx
                .copy_in(
                    "COPY messages \
                 (position, on_path, parent_id, id, conversation_id, role, content, created_at, \
                 attachments, search_tokens) FROM STDIN BINARY",
                )
                .expect("copy");
            let types = [
                Type::INT8,
                Type::BOOL,
                Type::UUID,
                Type::UUID,
                Type::UUID,
                Type::TEXT,
                Type::TEXT,
                Type::TIMESTAMPTZ,
                Type::JSONB,
                Type::TEXT_ARRAY,
            ];
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for &(conversation, (last, mut parent)) in copy {
                for (i, content) in contents.iter().enumerate() {
                    let id = Uuid::now_v7();
                    let tokens = with_tokens.then(|| search_tokens(content));
                    writer
                        .write(&[
                            &(last + 1 + i as i64),
                            &true,
                            &parent,
                            &id,
                            conversation,
                            &"user",
                            content,
                            &now,
                            &Json(attachments),
                            &tokens,
                        ])
                        .expect("row");
                    parent = Some(id);
                }
            }
            writer.finish().expect("finish");
        }
        tx.commit().expect("commit");
    }

    pub fn get(&mut self, id: Uuid) -> Conversation {
        let row = self
            .client
            .query_one(&self.conversation, &[&id])
            .expect("conversation");
        let mut conversation = Conversation {
            id: id.into(),
            title: row.get(0),
            created_at: row.get(1),
            updated_at: row.get(2),
            version: row.get::<_, i64>(3) as u64,
            archived_at: row.get(4),
            metadata: row.get::<_, Json<Metadata>>(5).0,
            messages: Vec::new(),
        };
        for r in self.client.query(&self.messages, &[&id]).expect("messages") {
            conversation.messages.push(message_at(&r));
        }
        conversation
    }

    pub fn recent(&mut self, limit: i64) -> Vec<ConversationSummary> {
        self.client
            .query(&self.recent, &[&limit])
            .expect("recent")
            .iter()
            .map(|r| ConversationSummary {
                id: r.get::<_, Uuid>(0).into(),
                title: r.get(1),
                created_at: r.get(2),
                updated_at: r.get(3),
                version: r.get::<_, i64>(4) as u64,
                archived_at: r.get(5),
                metadata: r.get::<_, Json<Metadata>>(6).0,
                message_count: r.get::<_, i64>(7) as u64,
            })
            .collect()
    }

    pub fn create_and_get_file(&mut self, filename: &str) -> FileMetadata {
        let id = Uuid::now_v7();
        self.client
            .execute(
                &self.insert_file,
                &[&id, &filename, &OffsetDateTime::now_utc()],
            )
            .expect("insert");
        let r = self.client.query_one(&self.file, &[&id]).expect("file");
        FileMetadata {
            id: r.get::<_, Uuid>(0).into(),
            filename: r.get(1),
            content_type: r.get(2),
            size: r.get::<_, i64>(3) as u64,
            created_at: r.get(4),
        }
    }
}
