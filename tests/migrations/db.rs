//! A database of either dialect for the migration tests: SQLite (plain or
//! encrypted) or PostgreSQL, with raw access for inspection and tampering.

use std::path::PathBuf;

use silmari_store::Store;
use tempfile::TempDir;

#[cfg(feature = "postgres")]
use crate::common;
use crate::common::schema::{Schema, sqlite_schema_of};

/// A database of either dialect, with raw access for inspection and tampering.
pub enum Db {
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
        /// The passphrase of an encrypted file (the `encryption` feature).
        key: Option<&'static str>,
    },
    #[cfg(feature = "postgres")]
    Postgres(common::pg::Database),
}

impl Db {
    /// The file of an SQLite database.
    pub fn sqlite_path(&self) -> &PathBuf {
        match self {
            Db::Sqlite { path, .. } => path,
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => panic!("not an SQLite database"),
        }
    }

    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Db::Sqlite {
            _dir: dir,
            path,
            key: None,
        }
    }

    /// An encrypted SQLite file.
    #[cfg(feature = "encryption")]
    pub fn sqlite_encrypted() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        Db::Sqlite {
            _dir: dir,
            path,
            key: Some("migration passphrase"),
        }
    }

    /// A raw connection to an SQLite database, keyed if it is encrypted.
    pub fn raw(&self) -> rusqlite::Connection {
        let (path, key) = match self {
            Db::Sqlite { path, key, .. } => (path, key),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => panic!("not an SQLite database"),
        };
        let conn = rusqlite::Connection::open(path).unwrap();
        if let Some(key) = key {
            conn.execute_batch(&format!("PRAGMA key = '{key}'"))
                .unwrap();
        }
        conn
    }

    #[cfg(feature = "postgres")]
    pub fn postgres() -> Option<Db> {
        common::pg::Database::create().map(Db::Postgres)
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite { path, .. } => format!("sqlite:///{}", path.display()),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.url.clone(),
        }
    }

    pub fn open(&self) -> silmari_store::Result<Store> {
        self.builder().open()
    }

    /// A builder for this database, with its key if it has one.
    pub fn builder(&self) -> silmari_store::StoreBuilder {
        let builder = Store::builder().url(self.url());
        #[cfg(feature = "encryption")]
        if let Db::Sqlite { key: Some(key), .. } = self {
            return builder.key(silmari_store::Key::passphrase(*key).unwrap());
        }
        builder
    }

    pub fn schema(&self) -> Schema {
        match self {
            Db::Sqlite { .. } => sqlite_schema_of(&self.raw()),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => common::schema::postgres_schema(&db.url),
        }
    }

    pub fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite { .. } => self.raw().execute_batch(sql).unwrap(),
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db.client().batch_execute(sql).unwrap(),
        }
    }

    /// The rows of `sql`, every column read as text (cast in the query).
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match self {
            Db::Sqlite { .. } => {
                let conn = self.raw();
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                .collect(),
        }
    }

    /// A timestamp literal of this dialect, `micros` after 1970.
    pub fn timestamp(&self, micros: i64) -> String {
        match self {
            Db::Sqlite { .. } => micros.to_string(),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                format!("(TIMESTAMPTZ 'epoch' + {micros} * INTERVAL '1 microsecond')")
            }
        }
    }

    pub fn history(&self) -> Vec<(i64, String)> {
        let sql = "SELECT version, name, checksum FROM refinery_schema_history ORDER BY version";
        match self {
            Db::Sqlite { .. } => {
                let conn = self.raw();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(db) => db
                .client()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| (i64::from(r.get::<_, i32>(0)), r.get::<_, String>(2)))
                .collect(),
        }
    }
}
