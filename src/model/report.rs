//! What a store reports about itself: its backend, row counts, health.

use serde::{Deserialize, Serialize};

/// Which backend a [`Store`](crate::Store) runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BackendKind {
    /// The pure-Rust in-memory backend.
    Memory,
    /// Embedded SQLite (a file, or in memory).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Memory => "memory",
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        })
    }
}

/// What an app can show about its database: schema, integrity, settings in
/// effect, sizes. Serializable, for a diagnostics page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// Which backend.
    pub backend: BackendKind,
    /// The database's schema version (0 for none, or for the memory backend).
    pub schema_version: i64,
    /// Versions this build would apply.
    pub pending_migrations: Vec<i64>,
    /// SQLite's `PRAGMA integrity_check` lines (`["ok"]` when sound).
    pub integrity_check: Option<Vec<String>>,
    /// Rows `PRAGMA foreign_key_check` reports (SQLite).
    pub foreign_key_violations: Option<u64>,
    /// The SQLite pragmas in effect on a pooled connection.
    pub pragmas: Option<SqlitePragmas>,
    /// Rows per table.
    pub counts: Counts,
    /// Conversations whose stored `message_count` differs from their messages.
    pub message_count_mismatches: u64,
    /// Messages whose place in their conversation's tree is unsound: a
    /// parent that is not an earlier message of the same conversation, or a
    /// current branch that is not one chain from a first message (a message
    /// on it whose parent is not, or two on it with the same parent).
    pub tree_mismatches: u64,
    /// Texts (message contents and titles) the search index does not hold
    /// as it should: not indexed (written outside the store, or an index
    /// build not finished), or index entries without their text (SQLite).
    /// [`Migrations::rebuild_search_index`](crate::Migrations::rebuild_search_index)
    /// (`silmari check --repair`) rebuilds it. A text changed outside the
    /// store keeps its old entry and is not counted here; a rebuild fixes
    /// that too.
    pub search_index_mismatches: u64,
    /// Size on disk in bytes (database file, or `pg_database_size`).
    pub size_bytes: Option<u64>,
    /// The schema the store's tables live in (PostgreSQL).
    pub schema: Option<String>,
    /// Tables of the store that its connections would read from somewhere
    /// other than [`schema`](Self::schema), or not find at all (PostgreSQL,
    /// once migrated): empty when every name resolves where it should.
    pub misplaced_tables: Vec<String>,
}

impl HealthReport {
    /// True when nothing in the report needs attention: schema current,
    /// integrity ok, no foreign key violations, counts and trees consistent,
    /// every table where it should be.
    pub fn is_healthy(&self) -> bool {
        self.pending_migrations.is_empty()
            && self
                .integrity_check
                .as_ref()
                .is_none_or(|lines| lines.len() == 1 && lines[0] == "ok")
            && self.foreign_key_violations.is_none_or(|n| n == 0)
            && self.message_count_mismatches == 0
            && self.tree_mismatches == 0
            && self.search_index_mismatches == 0
            && self.misplaced_tables.is_empty()
    }
}

/// SQLite settings as read back from a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlitePragmas {
    /// `PRAGMA journal_mode` (`wal` expected for files).
    pub journal_mode: String,
    /// `PRAGMA synchronous` (1 = NORMAL).
    pub synchronous: i64,
    /// `PRAGMA foreign_keys` (true expected).
    pub foreign_keys: bool,
    /// How long a connection waits for another's lock, in milliseconds
    /// ([`SqliteOptions::busy_timeout`](crate::SqliteOptions::busy_timeout);
    /// the store waits with a handler of its own, so SQLite's
    /// `PRAGMA busy_timeout` reads 0).
    pub busy_timeout_ms: i64,
}

/// Row counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// File records.
    pub files: u64,
    /// Conversations.
    pub conversations: u64,
    /// Messages.
    pub messages: u64,
}

impl Counts {
    /// True when every count is zero.
    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}
