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

/// A file read through a memory map (`SqliteOptions::mmap_size`).
#[cfg(feature = "sqlite")]
pub fn sqlite_mapped() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite:///{}?mmap_size=268435456",
        dir.path().join("mapped.db").display()
    );
    TestStore::new(open(&url), Some(dir))
}

/// An encrypted file, opened with a passphrase (the `encryption` feature).
#[cfg(feature = "encryption")]
pub fn sqlite_encrypted() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:///{}", dir.path().join("encrypted.db").display());
    let mut config: StoreConfig = url.parse().expect("test URL parses");
    config.pool = small_pool();
    config.sqlite.key = Some(silmari_store::Key::passphrase("conformance").expect("a key"));
    TestStore::new(
        Store::open_with(config).expect("test store opens"),
        Some(dir),
    )
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

// Trees: helpers for the branch, delete, update and archive cases.

/// A new empty conversation's id.
pub fn conversation(store: &Store, title: &str) -> ConversationId {
    store
        .conversations()
        .create(NewConversation::titled(title))
        .expect("create")
        .id
}

/// Appends a message below the current leaf; the message as stored.
pub fn say(store: &Store, c: ConversationId, role: Role, text: &str) -> Message {
    store
        .conversations()
        .append_message(c, NewMessage::new(role, text))
        .expect("append")
}

/// A new child of `parent` (`None`: a new first message), made current.
pub fn branch(store: &Store, c: ConversationId, parent: Option<&Message>, text: &str) -> Message {
    store
        .conversations()
        .branch_from(
            c,
            parent.map(|p| p.id),
            NewMessage::new(Role::Assistant, text),
        )
        .expect("branch_from")
}

/// The conversation as stored.
pub fn get(store: &Store, c: ConversationId) -> Conversation {
    store
        .conversations()
        .get(c)
        .expect("get")
        .expect("conversation exists")
}

/// The conversation's tree as stored.
pub fn tree(store: &Store, c: ConversationId) -> silmari_store::ConversationTree {
    store
        .conversations()
        .tree(c)
        .expect("tree")
        .expect("conversation exists")
}

/// The ids of `messages`, in order.
pub fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

/// `message` with another parent.
pub fn under(message: &Message, parent: Option<&Message>) -> Message {
    Message {
        parent_id: parent.map(|p| p.id),
        ..message.clone()
    }
}

/// The conversation's entry in `list`, archived or not.
pub fn listed(store: &Store, c: ConversationId) -> silmari_store::ConversationSummary {
    let mut query = ConversationQuery::recent(1000).include_archived();
    loop {
        let page = store.conversations().list(query.clone()).expect("list");
        if let Some(found) = page.items.into_iter().find(|s| s.id == c) {
            return found;
        }
        query = query.after(page.next.expect("the conversation is listed"));
    }
}

/// Every page of the current branch, `limit` at a time: the messages and
/// how many pages it took. Every page but the last is full.
#[track_caller]
pub fn branch_pages(store: &Store, c: ConversationId, limit: u32) -> (Vec<Message>, usize) {
    let mut request = PageRequest::first(limit);
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = store
            .conversations()
            .messages(c, request.clone())
            .expect("messages");
        pages += 1;
        all.extend(page.items.iter().cloned());
        match page.next {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    limit as usize,
                    "a page before the last is full"
                );
                request = request.after(cursor);
            }
            None => return (all, pages),
        }
    }
}

/// Asserts the conversation's tree holds exactly `messages` (oldest first,
/// each with its parent) with `leaf` current, and that every read agrees:
/// the tree's current path is what `get` and `messages` return, and both
/// message counts count every branch.
#[track_caller]
pub fn assert_tree(store: &Store, c: ConversationId, messages: &[Message], leaf: Option<&Message>) {
    let t = tree(store, c);
    assert_eq!(t.messages, messages, "the tree's messages");
    assert_eq!(t.current_leaf, leaf.map(|m| m.id), "the current leaf");
    let stored = get(store, c);
    let path: Vec<Message> = t.current_path().into_iter().cloned().collect();
    assert_eq!(
        path, stored.messages,
        "current_path() is what get() returns"
    );
    assert_eq!(
        stored.messages.last().map(|m| m.id),
        t.current_leaf,
        "get() ends at the current leaf"
    );
    assert_eq!(
        stored.messages.first().and_then(|m| m.parent_id),
        None,
        "get() starts at a first message"
    );
    let (paged, _) = branch_pages(store, c, 1000);
    assert_eq!(
        paged, stored.messages,
        "messages() walks the current branch"
    );
    assert_eq!(t.conversation.message_count, messages.len() as u64);
    assert_eq!(
        listed(store, c).message_count,
        messages.len() as u64,
        "the listed count counts every branch"
    );
    assert_eq!(t.conversation.version, stored.version);
}

/// The alternatives at message `id` (it and its siblings, oldest first).
pub fn alternatives(store: &Store, id: MessageId) -> Vec<Message> {
    store.conversations().alternatives(id).unwrap()
}
