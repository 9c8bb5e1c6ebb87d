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
//! ```
//! use silmari_store::prelude::*;
//!
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
//! ```
#![warn(missing_docs)]
// The SQL helpers go unused in a memory-only build.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod backend;
pub mod config;
mod error;
pub mod health;
pub mod jsonl;
pub mod limits;
mod migrate;
mod model;
mod repo;
mod store;
pub mod transfer;
mod validate;

pub use backend::BackendKind;
pub use config::{Location, PoolConfig, PostgresUrl, SqliteOptions, StoreConfig};
pub use error::{Entity, Error, Result};
pub use health::HealthReport;
pub use migrate::{
    Direction, MigrationStatus, MigrationTarget, Migrations, PlannedMigration, Snapshot,
};
pub use model::{
    Attachment, Conversation, ConversationId, ConversationOrder, ConversationQuery,
    ConversationSummary, Cursor, FileId, FileMetadata, Message, MessageId, NewConversation,
    NewFile, NewMessage, Page, PageRequest, Role,
};
pub use repo::{ConversationRepository, FileRepository};
pub use store::{Conversations, DEFAULT_URL, Files, Store, StoreBuilder, Transaction};
pub use transfer::copy;

/// Everything an app usually needs, including the repository traits.
pub mod prelude {
    pub use crate::{
        Attachment, Conversation, ConversationId, ConversationQuery, ConversationRepository, Error,
        FileId, FileMetadata, FileRepository, Message, MessageId, NewConversation, NewFile,
        NewMessage, PageRequest, Role, Store,
    };
}

/// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
