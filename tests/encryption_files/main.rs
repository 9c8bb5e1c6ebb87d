//! Encrypting, re-keying and decrypting database files (the `encryption`
//! feature): the data survives whole, a key that does not fit changes
//! nothing, an open store blocks the change, a connection opened before it
//! cannot write into the replaced file, no plain copy is left behind, and a
//! process killed midway leaves the file openable with its old key or its
//! new one, never neither. The admin tool's commands and key prompt too.

#[path = "../common/mod.rs"]
mod common;

mod admin_tool;
mod changes;
mod kills;

use std::path::Path;

use silmari_store::prelude::*;
use silmari_store::{Key, KeyProblem, SearchQuery, StoreConfig};

use common::sqlite_url as url;

pub fn open(path: &Path, key: Option<Key>) -> silmari_store::Result<Store> {
    let mut config: StoreConfig = url(path).parse()?;
    config.sqlite.key = key;
    Store::open_with(config)
}

pub fn old_key() -> Key {
    Key::passphrase("old passphrase").unwrap()
}

pub fn new_key() -> Key {
    Key::raw(&[0x42; 32])
}

/// A closed store at `path` (encrypted with `key`) holding `messages`
/// messages in one conversation, a file record, and a search index.
pub fn make(path: &Path, key: Option<Key>, messages: usize) -> ConversationId {
    let store = open(path, key).unwrap();
    let c = store
        .conversations()
        .create(NewConversation::titled("lighthouse keeper"))
        .unwrap();
    let batch = (0..messages)
        .map(|i| NewMessage::new(Role::User, format!("entry {i} about the tide")))
        .collect();
    store.conversations().append_messages(c.id, batch).unwrap();
    store
        .files()
        .create(NewFile {
            filename: "chart.pdf".into(),
            content_type: "application/pdf".into(),
            size: 99,
            ..Default::default()
        })
        .unwrap();
    drop(store);
    c.id
}

/// The store at `path` opens with `key` and holds what [`make`] wrote.
pub fn assert_whole(path: &Path, key: Option<Key>, c: ConversationId, messages: usize) {
    let store = open(path, key).unwrap();
    let stored = store.conversations().get(c).unwrap().expect("conversation");
    assert_eq!(stored.messages.len(), messages);
    assert_eq!(store.check().unwrap().counts.files, 1);
    let hits = store.search(&SearchQuery::new("tide").limit(5)).unwrap();
    assert_eq!(
        hits.items.len(),
        5.min(messages),
        "the search index came along"
    );
    assert!(store.check().unwrap().is_healthy());
}

pub fn key_problem(result: silmari_store::Result<()>) -> KeyProblem {
    match result {
        Err(Error::Key { problem, .. }) => problem,
        other => panic!("expected Error::Key, got {other:?}"),
    }
}

/// The names of the files in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file in `dir` whose bytes hold `word` (in any case).
pub fn files_holding(dir: &Path, word: &str) -> Vec<String> {
    let needle = word.to_ascii_lowercase().into_bytes();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap().to_ascii_lowercase();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}
