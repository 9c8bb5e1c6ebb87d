//! # silmari-store
//!
//! The storage layer of Silmari Writer: conversations, their messages (with
//! attachment lists) and uploaded-file metadata, behind one synchronous
//! [`Store`] facade over pluggable backends:
//!
//! * `memory://`: pure Rust, for tests;
//! * SQLite (the default, feature `sqlite`): an embedded file such as
//!   `sqlite:///./dev.db`, or `sqlite://` in memory;
//! * PostgreSQL (feature `postgres`).
//!
//! Every backend validates the same inputs the same way (the facade does it
//! once), keeps timestamps to the microsecond, returns messages in append
//! order and runs [`Store::transaction`] all-or-nothing.
//!
//! What a chat screen needs is in [`ConversationRepository`]: messages
//! edited, streamed ([`append_to_message`](ConversationRepository::append_to_message))
//! and deleted one at a time; branches ([`branch_from`](ConversationRepository::branch_from),
//! [`alternatives`](ConversationRepository::alternatives),
//! [`switch_branch`](ConversationRepository::switch_branch),
//! [`tree`](ConversationRepository::tree)); archive; app [`Metadata`] on
//! conversations and messages; and a version on every conversation that
//! keeps a stale copy from overwriting what was acknowledged since.
//!
//! ```
//! use silmari_store::prelude::*;
//!
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> silmari_store::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let url = format!("sqlite:///{}", dir.path().join("writer.db").display());
//! let store = Store::open(&url)?; // creates the file and applies migrations
//!
//! let file = store.files().create(NewFile {
//!     filename: "notes.pdf".into(),
//!     content_type: "application/pdf".into(),
//!     size: 12_345,
//!     ..Default::default()
//! })?;
//! let conversation = store.conversations().create(NewConversation::titled("Chapter one"))?;
//! store.conversations().append_message(
//!     conversation.id,
//!     NewMessage::new(Role::User, "Summarise the attached notes")
//!         .with_attachments(vec![Attachment::from_file(&file)]),
//! )?;
//!
//! let recent = store.conversations().list(ConversationQuery::recent(50))?;
//! assert_eq!(recent.items[0].message_count, 1);
//!
//! // All or nothing:
//! store.transaction(|tx| -> silmari_store::Result<()> {
//!     let c = tx.conversations().create(NewConversation::titled("Chapter two"))?;
//!     tx.conversations().append_message(c.id, NewMessage::new(Role::Assistant, "Ready."))?;
//!     Ok(())
//! })?;
//! assert_eq!(store.conversations().list_all()?.len(), 2);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))]
//! # fn main() {}
//! ```
//!
//! ## Features
//!
//! | feature | default | brings |
//! |---|---|---|
//! | `sqlite` | yes | the embedded SQLite backend: bundled SQLite (no system library), an r2d2 pool, snapshots before migrations, online backups |
//! | `postgres` | no | the PostgreSQL backend: the synchronous `postgres` client over an r2d2 pool |
//! | `postgres-tls` | no | TLS to PostgreSQL (`sslmode=require`, `sslrootcert=`): rustls with ring, no OpenSSL; implies `postgres` |
//! | `encryption` | no | encrypted SQLite files: SQLite built as SQLCipher with a vendored OpenSSL, [`SqliteOptions::key`](SqliteOptions), `Store::encrypt`, `rekey`, `decrypt`; implies `sqlite` |
//!
//! The in-memory backend (`memory://`) is always there. A URL of a backend
//! this build lacks is refused with [`Error::InvalidInput`] naming `url`.
//!
//! ## Layers
//!
//! Modules import only from their own layer or the layers below it; the
//! test `tests/layers.rs` reads this table and every `crate::` path in
//! `src/` and fails on an import that points upward.
//!
//! | layer | modules | holds |
//! |---|---|---|
//! | L0 | `error`, `limits`, `model`, `config` | plain data: errors, limits, records, inputs, pages, reports, migration plans, change events, URLs and settings |
//! | L1 | `migrate`, `search` | the migration planner (embedded scripts, dialects, history checks) and search's planning (the tokenizer, the query language, the match check); no store, no connection |
//! | L2 | `backend` | the `Backend`/`Session` seam (with the change feed's transports) and the memory, SQLite and PostgreSQL backends |
//! | L3 | `validate`, `repo`, `store` | input rules, the sealed repository traits, the `Store` facade and its handles, the write path that records and delivers changes |
//! | L4 | `transfer`, `jsonl`, `health`, `migrations`, `backup`, `searching`, `feed`, `encryption` | capabilities, each adding its own `impl Store` block |
#![warn(missing_docs)]
// `unsafe` only where SQLite or OpenSSL is called through its C API (each
// block allowed where it stands, with its SAFETY note): keying an SQLCipher
// connection and deriving its key, and the busy handler (`backend::sqlite::busy`).
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The SQL helpers go unused in a memory-only build.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// L0: plain data.
mod config;
mod error;
pub mod limits;
mod model;
// L1: the migration planner; search's tokenizer, query language and match check.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
mod search;
// L2: the backends.
mod backend;
// L3: the facade.
mod repo;
mod store;
mod validate;
// L4: capabilities.
mod backup;
#[cfg(feature = "encryption")]
mod encryption;
mod feed;
mod health;
mod jsonl;
mod migrations;
mod searching;
mod transfer;

#[cfg(feature = "encryption")]
pub use config::Key;
pub use config::{Checkpoint, Location, PoolConfig, PostgresUrl, SqliteOptions, StoreConfig};
pub use error::{Entity, Error, KeyProblem, Result};
pub use migrations::Migrations;
pub use model::{
    Archived, Attachment, BackendKind, Change, ChangeEntity, ChangeKind, Conversation,
    ConversationEdit, ConversationId, ConversationOrder, ConversationQuery, ConversationSummary,
    ConversationTree, Counts, Cursor, Direction, FeedEvent, FileId, FileMetadata, HealthReport,
    HitConversation, HitMessage, IndexProgress, Message, MessageEdit, MessageId, Metadata,
    MigrationStatus, MigrationTarget, NewConversation, NewFile, NewMessage, Page, PageRequest,
    PlannedMigration, Role, SearchBranches, SearchHit, SearchOrder, SearchQuery, Snapshot, Snippet,
    SqlitePragmas,
};
pub use repo::{ConversationRepository, FileRepository};
pub use store::{
    Conversations, DEFAULT_CAPACITY, DEFAULT_URL, Files, Store, StoreBuilder, Subscription,
    Transaction,
};
pub use transfer::{Progress, TransferOptions, TransferReport, copy};

/// Everything an app usually needs, for a glob import: the same items as at
/// the crate root (no second name for anything), including the repository
/// traits whose methods the handles offer.
pub mod prelude {
    pub use crate::{
        Attachment, Conversation, ConversationEdit, ConversationId, ConversationQuery,
        ConversationRepository, Error, FeedEvent, FileId, FileMetadata, FileRepository, Message,
        MessageEdit, MessageId, Metadata, NewConversation, NewFile, NewMessage, PageRequest, Role,
        Store,
    };
}

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
