//! The hand-written PostgreSQL baseline: the sync `postgres` client with
//! statements prepared once, the same SQL shape, every field decoded into
//! the same model types, and COPY for the bulk load.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Json, Type};
use postgres::{Client, NoTls, Statement};
use silmari_store::{Attachment, Conversation, ConversationSummary, FileMetadata, Message, Role};
use time::OffsetDateTime;
use uuid::Uuid;

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
        let append = prepare(
            "INSERT INTO messages (position, id, conversation_id, role, content, created_at, attachments) \
             SELECT COALESCE(MAX(position), 0) + 1, $1, $2, 'user', $3, $4, $5 \
             FROM messages WHERE conversation_id = $2",
        );
        let conversation = prepare(
            "SELECT title, created_at, updated_at, version FROM conversations WHERE id = $1",
        );
        let messages = prepare(
            "SELECT id, conversation_id, role, content, created_at, attachments FROM messages \
             WHERE conversation_id = $1 ORDER BY position",
        );
        let recent = prepare(
            "SELECT id, title, created_at, updated_at, version, message_count FROM conversations \
             ORDER BY updated_at DESC, id DESC LIMIT $1",
        );
        let insert_file = prepare(
            "INSERT INTO file_metadata (id, filename, content_type, size, created_at) \
             VALUES ($1, $2, 'application/pdf', 4096, $3)",
        );
        let file = prepare(
            "SELECT id, filename, content_type, size, created_at FROM file_metadata WHERE id = $1",
        );
        let position =
            prepare("SELECT COALESCE(MAX(position), 0) FROM messages WHERE conversation_id = $1");
        let count = prepare(
            "UPDATE conversations SET updated_at = GREATEST($2, updated_at + interval '1 microsecond'), \
             message_count = message_count + $3, version = version + 1 WHERE id = $1",
        );
        let edit = prepare(
            "UPDATE messages SET content = $2 WHERE id = $1 \
             RETURNING id, conversation_id, role, content, created_at, attachments",
        );
        let grow = prepare(
            "UPDATE messages SET content = content || $2 WHERE id = $1 \
             RETURNING id, conversation_id, role, content, created_at, attachments",
        );
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
        let r = tx.query_one(statement, &[&message, &text]).expect("edit");
        let Json(attachments): Json<Vec<Attachment>> = r.get(5);
        let message = Message {
            id: r.get::<_, Uuid>(0).into(),
            conversation_id: r.get::<_, Uuid>(1).into(),
            role: role(r.get(2)),
            content: r.get(3),
            created_at: r.get(4),
            attachments,
        };
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

    /// W5: COPY in binary format, positions after the last.
    pub fn bulk(&mut self, conversation: Uuid, contents: &[String]) {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.client.transaction().expect("begin");
        tx.execute(
            &self.count,
            &[&conversation, &now, &(contents.len() as i64)],
        )
        .expect("lock and count");
        let last: i64 = tx
            .query_one(&self.position, &[&conversation])
            .expect("position")
            .get(0);
        let sink = tx
            .copy_in(
                "COPY messages (position, id, conversation_id, role, content, created_at, attachments) \
                 FROM STDIN BINARY",
            )
            .expect("copy");
        let types = [
            Type::INT8,
            Type::UUID,
            Type::UUID,
            Type::TEXT,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::JSONB,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let empty: Vec<Attachment> = Vec::new();
        for (i, content) in contents.iter().enumerate() {
            writer
                .write(&[
                    &(last + 1 + i as i64),
                    &Uuid::now_v7(),
                    &conversation,
                    &"user",
                    content,
                    &now,
                    &Json(&empty),
                ])
                .expect("row");
        }
        writer.finish().expect("finish");
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
            messages: Vec::new(),
        };
        for r in self.client.query(&self.messages, &[&id]).expect("messages") {
            let Json(attachments): Json<Vec<Attachment>> = r.get(5);
            conversation.messages.push(Message {
                id: r.get::<_, Uuid>(0).into(),
                conversation_id: r.get::<_, Uuid>(1).into(),
                role: role(r.get(2)),
                content: r.get(3),
                created_at: r.get(4),
                attachments,
            });
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
                message_count: r.get::<_, i64>(5) as u64,
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
