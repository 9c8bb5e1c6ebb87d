//! Store factories, one per backend, and helpers shared by the cases.

use std::ops::Deref;

use silmari_store::prelude::*;
use silmari_store::{PoolConfig, StoreConfig};
use tempfile::TempDir;

/// A store and whatever must live as long as it (its temporary directory
/// or database). Field order matters: the store closes before its database
/// is dropped.
pub struct TestStore {
    store: Store,
    _dir: Option<TempDir>,
    #[cfg(feature = "postgres")]
    _database: Option<crate::common::pg::Database>,
}

impl TestStore {
    fn new(store: Store, dir: Option<TempDir>) -> Option<Self> {
        Some(TestStore {
            store,
            _dir: dir,
            #[cfg(feature = "postgres")]
            _database: None,
        })
    }
}

impl Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

/// Pool sizes kept small: the CI machine has 2 cores and tests run in parallel.
fn small_pool() -> PoolConfig {
    PoolConfig {
        pool_size: 2,
        max_overflow: 8,
        ..PoolConfig::default()
    }
}

fn open(url: &str) -> Store {
    let mut config: StoreConfig = url.parse().expect("test URL parses");
    config.pool = small_pool();
    Store::open_with(config).expect("test store opens")
}

pub fn memory() -> Option<TestStore> {
    TestStore::new(open("memory://"), None)
}

#[cfg(feature = "sqlite")]
pub fn sqlite_file() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:///{}", dir.path().join("conformance.db").display());
    TestStore::new(open(&url), Some(dir))
}

#[cfg(feature = "sqlite")]
pub fn sqlite_memory() -> Option<TestStore> {
    TestStore::new(open("sqlite://"), None)
}

/// A store on a database of its own; `None` when no server is configured.
#[cfg(feature = "postgres")]
pub fn postgres() -> Option<TestStore> {
    let database = crate::common::pg::Database::create()?;
    Some(TestStore {
        store: open(&database.url),
        _dir: None,
        _database: Some(database),
    })
}

/// Every file record, every conversation with its messages: the whole
/// visible state, for "nothing was written" checks.
pub fn contents(store: &Store) -> (Vec<FileMetadata>, Vec<Conversation>) {
    let files = store
        .files()
        .list(PageRequest::first(1000))
        .expect("list files")
        .items;
    let conversations = store.conversations().list_all().expect("list_all");
    (files, conversations)
}

/// A valid file input.
pub fn new_file(name: &str) -> NewFile {
    NewFile {
        filename: name.to_owned(),
        content_type: "text/plain".to_owned(),
        size: 42,
        ..Default::default()
    }
}

/// An attachment describing a made-up file.
pub fn attachment(name: &str) -> Attachment {
    Attachment {
        file_id: FileId::new(),
        filename: name.to_owned(),
        content_type: "image/png".to_owned(),
        size: 1024,
    }
}

/// Asserts `result` is an [`Error::InvalidInput`] naming `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: silmari_store::Result<T>, field: &str) {
    match result {
        Err(Error::InvalidInput { field: f, reason }) => {
            assert_eq!(f, field, "wrong field (reason: {reason})");
            assert!(!reason.is_empty());
        }
        other => panic!("expected InvalidInput on {field}, got {other:?}"),
    }
}

/// Sets its flag when dropped: a thread that loops until the flag is set
/// stops even when the test's own thread panics (or `thread::scope` would
/// wait for it forever).
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `messages` as one branch stores them: each the child of the one before.
pub fn chained(messages: &[silmari_store::Message]) -> Vec<silmari_store::Message> {
    let mut parent = None;
    messages
        .iter()
        .map(|m| {
            let m = silmari_store::Message {
                parent_id: parent,
                ..m.clone()
            };
            parent = Some(m.id);
            m
        })
        .collect()
}
