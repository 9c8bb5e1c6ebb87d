//! `SqliteOptions::mmap_size`: a file read through a memory map gives what
//! it gives without one, and a map outlives the file shrinking and growing
//! under it (another store's deletes and `VACUUM`), without a fault.
#![cfg(feature = "sqlite")]

mod common;

use std::path::Path;

use rusqlite::Connection;
use silmari_store::prelude::*;
use silmari_store::{Page, SearchHit, SearchQuery, SqliteOptions, StoreConfig};

use common::sqlite_url as url;

const MAPPED: u64 = 64 << 20;

fn open(path: &Path, mmap_size: u64) -> Store {
    let mut config: StoreConfig = url(path).parse().unwrap();
    config.sqlite = SqliteOptions {
        mmap_size,
        ..SqliteOptions::default()
    };
    Store::open_with(config).unwrap()
}

/// Whether this process maps `path` (Linux: `/proc/self/maps`).
#[cfg(target_os = "linux")]
fn is_mapped(path: &Path) -> bool {
    let path = path.canonicalize().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .any(|line| line.ends_with(&*path.to_string_lossy()))
}

/// `conversations` of `messages` each, every text with the word `needle`.
fn fill(store: &Store, conversations: usize, messages: usize) -> Vec<ConversationId> {
    (0..conversations)
        .map(|c| {
            let id = store
                .conversations()
                .create(NewConversation::titled(format!("conversation {c}")))
                .unwrap()
                .id;
            let batch: Vec<NewMessage> = (0..messages)
                .map(|m| NewMessage::new(Role::User, format!("needle {c} {m} {}", "x".repeat(400))))
                .collect();
            store.conversations().append_messages(id, batch).unwrap();
            id
        })
        .collect()
}

/// Every hit of `needle`, newest first, as (message id, conversation id).
fn hits(store: &Store) -> Vec<(MessageId, ConversationId)> {
    let mut query = SearchQuery::new("needle").newest_first();
    query.page.limit = 500;
    let mut out = Vec::new();
    loop {
        let page: Page<SearchHit> = store.search(&query).unwrap();
        out.extend(
            page.items
                .iter()
                .filter_map(|h| h.message.as_ref().map(|m| (m.id, h.conversation.id))),
        );
        match page.next {
            Some(next) => query.page.after = Some(next),
            None => return out,
        }
    }
}

#[test]
fn a_mapped_file_reads_as_an_unmapped_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapped.db");
    let writer = open(&path, 0);
    let ids = fill(&writer, 20, 100);
    let plain = hits(&writer);
    assert_eq!(plain.len(), 2_000);
    let mapped = open(&path, MAPPED);
    assert_eq!(hits(&mapped), plain);
    for id in &ids {
        assert_eq!(
            mapped.conversations().get(*id).unwrap(),
            writer.conversations().get(*id).unwrap()
        );
    }
    #[cfg(target_os = "linux")]
    assert!(
        is_mapped(&path),
        "a store with mmap_size reads through a map"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_is_mapped_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let store = open(&path, 0);
    fill(&store, 2, 100);
    assert_eq!(hits(&store).len(), 200);
    assert!(!is_mapped(&path), "mmap_size 0 maps nothing");
}

/// Another store deletes most of the file's rows and `VACUUM`s it, so that
/// the file is cut to a fraction of what the first store mapped; the first
/// then reads and writes on, and sees the other's changes.
#[test]
fn a_map_outlives_the_file_shrinking_and_growing_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinks.db");
    let mapped = open(&path, MAPPED);
    let ids = fill(&mapped, 40, 100);
    assert_eq!(hits(&mapped).len(), 4_000);
    let full = std::fs::metadata(&path).unwrap().len();

    let other = open(&path, 0);
    for id in &ids[1..] {
        assert!(other.conversations().delete(*id).unwrap());
    }
    drop(other);
    let raw = Connection::open(&path).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    raw.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(raw);
    let cut = std::fs::metadata(&path).unwrap().len();
    assert!(cut * 4 < full, "the file shrank from {full} to {cut} bytes");

    let left = hits(&mapped);
    assert_eq!(left.len(), 100);
    assert!(left.iter().all(|(_, c)| *c == ids[0]));
    assert!(mapped.conversations().get(ids[1]).unwrap().is_none());
    let more = fill(&mapped, 40, 100);
    assert_eq!(hits(&mapped).len(), 4_100);
    assert_eq!(
        mapped
            .conversations()
            .get(more[39])
            .unwrap()
            .unwrap()
            .messages
            .len(),
        100
    );
}

/// Only SQLite takes the setting from a URL (its ranges:
/// `config_ranges.rs`).
#[test]
fn a_memory_url_refuses_mmap_size() {
    match "memory://?mmap_size=1".parse::<StoreConfig>() {
        Err(Error::InvalidInput { field, reason }) => {
            assert_eq!(field, "mmap_size");
            assert!(reason.contains("only SQLite"), "{reason}");
        }
        other => panic!("memory:// took mmap_size: {other:?}"),
    }
}

/// The store maps no encrypted file (SQLCipher decrypts each page it
/// reads, so a map gains nothing, and once the file grows it reads through
/// one all the same): after checkpoints have grown the file, nothing of it
/// is mapped, and a file cut short by a program that ignores SQLite's locks
/// gives an error, where a mapped page would stop the process (`SIGBUS`).
#[cfg(all(feature = "encryption", target_os = "linux"))]
#[test]
fn an_encrypted_file_is_never_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encrypted.db");
    let mut config: StoreConfig = url(&path).parse().unwrap();
    config.sqlite.mmap_size = MAPPED;
    config.sqlite.checkpoint = silmari_store::Checkpoint::Inline { pages: 1 };
    // A page cache far smaller than the file, so that the search after the
    // cut reads the file (one that holds every page answers from memory).
    config.sqlite.cache_size = 256 << 10;
    config.sqlite.key = Some(silmari_store::Key::passphrase("correct horse").unwrap());
    let store = Store::open_with(config).unwrap();
    fill(&store, 40, 100);
    assert_eq!(hits(&store).len(), 4_000);
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1 << 20,
        "checkpointed"
    );
    assert!(!is_mapped(&path), "an encrypted file is not mapped");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"needle"),
        "the file is encrypted"
    );

    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(8192)
        .unwrap();
    // Every hit, page after page: more than the page cache and the log
    // hold (the newest 500 alone were once answered from them: CI-78).
    let mut query = SearchQuery::new("needle").newest_first().limit(500);
    let mut read = 0;
    let after = loop {
        match store.search(&query) {
            Err(e) => break Err(e),
            Ok(page) => {
                read += page.items.len();
                match page.next {
                    Some(cursor) => query = query.after(cursor),
                    None => break Ok(read),
                }
            }
        }
    };
    assert!(after.is_err(), "a file cut short: {after:?} hits read");
}
