//! The domain model: ids, records, inputs, keyset pages, and the plain data
//! types the backends and the facade share (reports, migration plans).
//!
//! Every type here derives serde's `Serialize` and `Deserialize` where an app
//! may hand it to a front end. Timestamps are UTC [`OffsetDateTime`]s with
//! microsecond precision on every backend and are serialized as RFC 3339
//! strings.
//!
//! [`OffsetDateTime`]: time::OffsetDateTime

mod change;
mod ids;
mod inputs;
mod metadata;
mod migration;
mod page;
mod records;
mod report;
mod search;
mod timestamps;

pub use change::{Change, ChangeEntity, ChangeKind, FeedEvent};
pub(crate) use change::{ChangeBatch, PendingChange};
pub use ids::{ConversationId, FileId, MessageId};
pub use inputs::{ConversationEdit, MessageEdit, NewConversation, NewFile, NewMessage};
pub use metadata::Metadata;
pub use migration::{Direction, MigrationStatus, MigrationTarget, PlannedMigration, Snapshot};
pub(crate) use page::CursorKey;
pub use page::{Archived, ConversationOrder, ConversationQuery, Cursor, Page, PageRequest};
pub use records::{
    Attachment, Conversation, ConversationSummary, ConversationTree, FileMetadata, Message, Role,
};
pub use report::{BackendKind, Counts, HealthReport, SqlitePragmas};
pub use search::{
    HitConversation, HitMessage, IndexProgress, SearchBranches, SearchHit, SearchOrder,
    SearchQuery, Snippet,
};
pub(crate) use timestamps::{bound_micros, bump, from_micros, now, to_micros, truncate};
