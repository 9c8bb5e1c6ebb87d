//! Hostile values in the parameters of the public API that
//! `tests/bad_input.rs` does not cover: batch sizes, page limits, cursors
//! from other lists or out of range, ids of deleted records, migration
//! targets, snapshot and backup paths, and calls on the store inside its
//! own transaction. One table, run on every backend: each case ends in one
//! of the outcomes it allows (a typed error, or a documented success),
//! writes nothing, never panics and never hangs. (Streams: `streams`.)

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use silmari_store::limits::MAX_PAGE_SIZE;
use silmari_store::prelude::*;
use silmari_store::{Archived, ConversationOrder, Cursor, MigrationTarget, TransferOptions};
use tempfile::TempDir;

use crate::common::contents;
use crate::{kind, url};

/// Which kind of store a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    SqliteFile,
    SqliteMemory,
    Postgres,
}

/// What a case may end in, per backend (outcome names: `Ok` or an error variant).
pub struct Expect {
    pub default: &'static [&'static str],
    /// Where the backend cannot do it at all (memory, in-memory SQLite, PostgreSQL).
    pub unsupported_on: &'static [Backend],
}

pub const NO_FILE: &[Backend] = &[Backend::Memory, Backend::SqliteMemory, Backend::Postgres];
pub const NO_SCHEMA: &[Backend] = &[Backend::Memory];
pub const NO_BACKUP: &[Backend] = &[Backend::Memory, Backend::Postgres];

pub const fn all(default: &'static [&'static str]) -> Expect {
    Expect {
        default,
        unsupported_on: &[],
    }
}

pub const fn except(default: &'static [&'static str], on: &'static [Backend]) -> Expect {
    Expect {
        default,
        unsupported_on: on,
    }
}

/// A store holding two conversations of 3 messages and a file, with a
/// conversation and a file deleted, and a directory for paths.
pub struct Fixture {
    pub backend: Backend,
    pub store: Store,
    pub dir: TempDir,
    pub c: ConversationId,
    pub c2: ConversationId,
    pub deleted: ConversationId,
    pub deleted_file: FileId,
    /// The cursor after the first message of `c`.
    pub message_cursor: Cursor,
    /// The cursor after the first file.
    pub file_cursor: Cursor,
}

pub fn fixture(backend: Backend, store: Store, dir: TempDir) -> Fixture {
    let mut ids = Vec::new();
    for title in ["one", "two", "gone"] {
        let c = store
            .conversations()
            .create(NewConversation::titled(title))
            .unwrap();
        let messages = (0..3)
            .map(|i| NewMessage::new(Role::User, format!("{title} {i}")))
            .collect();
        store
            .conversations()
            .append_messages(c.id, messages)
            .unwrap();
        ids.push(c.id);
    }
    store.conversations().delete(ids[2]).unwrap();
    let new_file = |name: &str| NewFile {
        filename: name.into(),
        content_type: "text/plain".into(),
        size: 1,
        ..Default::default()
    };
    store.files().create(new_file("kept.txt")).unwrap();
    store.files().create(new_file("kept-too.txt")).unwrap();
    let gone = store.files().create(new_file("gone.txt")).unwrap();
    store.files().delete(gone.id).unwrap();
    let message_cursor = store
        .conversations()
        .messages(ids[0], PageRequest::first(1))
        .unwrap()
        .next
        .unwrap();
    let file_cursor = store
        .files()
        .list(PageRequest::first(1))
        .unwrap()
        .next
        .unwrap();
    Fixture {
        backend,
        store,
        dir,
        c: ids[0],
        c2: ids[1],
        deleted: ids[2],
        deleted_file: gone.id,
        message_cursor,
        file_cursor,
    }
}

type Run = Box<dyn FnOnce(&Fixture) -> silmari_store::Result<()> + Send>;

/// One row of the table.
pub struct Case {
    pub name: &'static str,
    pub expect: Expect,
    pub run: Run,
}

pub fn case(
    name: &'static str,
    expect: Expect,
    run: impl FnOnce(&Fixture) -> silmari_store::Result<()> + Send + 'static,
) -> Case {
    Case {
        name,
        expect,
        run: Box::new(run),
    }
}

/// Fails the case (as a panic the table reports) unless `ok`.
pub fn check(ok: bool, what: &str) -> silmari_store::Result<()> {
    assert!(ok, "{what}");
    Ok(())
}

/// Runs every case on `fixture`; fails naming every case that ended
/// otherwise than allowed, panicked, hung or wrote something.
pub fn run_table(fixture: Fixture, cases: Vec<Case>) {
    let backend = fixture.backend;
    let fixture = Arc::new(fixture);
    let before = contents(&fixture.store);
    let total = cases.len();
    let mut failures = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for Case { name, expect, run } in cases {
        let allowed: &[&str] = if expect.unsupported_on.contains(&backend) {
            &["Unsupported"]
        } else {
            expect.default
        };
        let (send, receive) = mpsc::channel();
        let shared = Arc::clone(&fixture);
        std::thread::spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&shared)));
            let _ = send.send(result.map(|r| r.map_err(|e| (kind(&e), e.to_string()))));
        });
        let outcome = match receive.recv_timeout(Duration::from_secs(30)) {
            Err(_) => {
                // A hung call holds the store: nothing after it can run.
                failures.push(format!("{name}: hung (no answer in 30 s)"));
                break;
            }
            Ok(Err(_)) => {
                failures.push(format!("{name}: panicked"));
                continue;
            }
            Ok(Ok(Ok(()))) => ("Ok".to_owned(), String::new()),
            Ok(Ok(Err(e))) => e,
        };
        println!("{backend:?} {name}: {} {}", outcome.0, outcome.1);
        *outcomes.entry(outcome.0.clone()).or_default() += 1;
        if !allowed.contains(&outcome.0.as_str()) {
            failures.push(format!(
                "{name}: {} ({}), expected one of {allowed:?}",
                outcome.0, outcome.1
            ));
        }
        if contents(&fixture.store) != before {
            failures.push(format!("{name}: the store changed"));
        }
    }
    println!("{backend:?}: {total} hostile cases, outcomes {outcomes:?}");
    assert!(failures.is_empty(), "{backend:?}:\n{}", failures.join("\n"));
}

fn options(batch_size: u32, merge: bool) -> TransferOptions {
    TransferOptions { merge, batch_size }
}

fn cursor(text: String) -> Cursor {
    text.parse().unwrap()
}

/// Batch sizes, page limits, cursors, deleted ids, migration targets.
pub fn parameter_cases() -> Vec<Case> {
    const INVALID: &[&str] = &["InvalidInput"];
    const OK: &[&str] = &["Ok"];
    let uuid = "0123456789abcdef0123456789abcdef";
    let mut cases = vec![
        case("copy, batch 0", all(INVALID), |f| {
            let target = Store::open("memory://")?;
            let result = f.store.copy_to(&target, options(0, false), |_| {});
            check(target.counts()?.is_empty(), "the target stays empty")?;
            result.map(drop)
        }),
        case("copy, batch u32::MAX", all(INVALID), |f| {
            let target = Store::open("memory://")?;
            f.store
                .copy_to(&target, options(u32::MAX, true), |_| {})
                .map(drop)
        }),
        case("copy into itself", all(INVALID), |f| {
            f.store
                .copy_to(&f.store, options(10, false), |_| {})
                .map(drop)
        }),
        case("copy into itself, merging", all(OK), |f| {
            let report = f.store.copy_to(&f.store, options(1, true), |_| {})?;
            check(
                report.written.is_empty(),
                "a merge into itself writes nothing",
            )
        }),
        case("import, batch 0", all(INVALID), |f| {
            let mut export = Vec::new();
            f.store.export_jsonl(&mut export, |_| {})?;
            let target = Store::open("memory://")?;
            let result = target.import_jsonl(&export[..], options(0, false), |_| {});
            check(target.counts()?.is_empty(), "the target stays empty")?;
            result.map(drop)
        }),
        case("import, batch above the page limit", all(INVALID), |f| {
            let mut export = Vec::new();
            f.store.export_jsonl(&mut export, |_| {})?;
            let batch = MAX_PAGE_SIZE + 1;
            f.store
                .import_jsonl(&export[..], options(batch, true), |_| {})
                .map(drop)
        }),
        case("import of its own export, merging", all(OK), |f| {
            let mut export = Vec::new();
            f.store.export_jsonl(&mut export, |_| {})?;
            let report = f
                .store
                .import_jsonl(&export[..], options(7, true), |_| {})?;
            check(report.written.is_empty(), "everything skipped")
        }),
        case("files page of u32::MAX", all(INVALID), |f| {
            f.store.files().list(PageRequest::first(u32::MAX)).map(drop)
        }),
        case("messages page of 0", all(INVALID), |f| {
            f.store
                .conversations()
                .messages(f.c, PageRequest::first(0))
                .map(drop)
        }),
        case("messages after a file cursor", all(INVALID), |f| {
            let page = PageRequest::first(5).after(f.file_cursor.clone());
            f.store.conversations().messages(f.c, page).map(drop)
        }),
        case("conversations after a message cursor", all(INVALID), |f| {
            let query = ConversationQuery::recent(5).after(f.message_cursor.clone());
            f.store.conversations().list(query).map(drop)
        }),
        case("files after a message cursor", all(INVALID), |f| {
            let page = PageRequest::first(5).after(f.message_cursor.clone());
            f.store.files().list(page).map(drop)
        }),
        // Same kind of list, another conversation: positions, documented as fitting.
        case(
            "messages of one conversation after another's cursor",
            all(OK),
            |f| {
                let page = PageRequest::first(5).after(f.message_cursor.clone());
                let page = f.store.conversations().messages(f.c2, page)?;
                check(page.items.len() == 2, "the messages after position 1")
            },
        ),
        case("messages after position i64::MAX", all(OK), |f| {
            let page = PageRequest::first(5).after(cursor(format!("m.{}", i64::MAX)));
            let page = f.store.conversations().messages(f.c, page)?;
            check(
                page.items.is_empty() && page.next.is_none(),
                "nothing after the end",
            )
        }),
        case("messages after position i64::MIN", all(OK), |f| {
            let page = PageRequest::first(5).after(cursor(format!("m.{}", i64::MIN)));
            let page = f.store.conversations().messages(f.c, page)?;
            check(page.items.len() == 3, "every message")
        }),
        // Deleted records.
        case("get a deleted conversation", all(OK), |f| {
            check(f.store.conversations().get(f.deleted)?.is_none(), "None")
        }),
        case("delete a deleted conversation", all(OK), |f| {
            check(!f.store.conversations().delete(f.deleted)?, "false")
        }),
        case(
            "append to a deleted conversation",
            all(&["NotFound"]),
            |f| {
                let message = NewMessage::new(Role::User, "late");
                f.store
                    .conversations()
                    .append_message(f.deleted, message)
                    .map(drop)
            },
        ),
        case(
            "append a batch to a deleted conversation",
            all(&["NotFound"]),
            |f| {
                let batch = vec![NewMessage::new(Role::User, "late"); 2];
                f.store
                    .conversations()
                    .append_messages(f.deleted, batch)
                    .map(drop)
            },
        ),
        // Documented: an empty list does nothing.
        case("append nothing to a deleted conversation", all(OK), |f| {
            let stored = f
                .store
                .conversations()
                .append_messages(f.deleted, Vec::new())?;
            check(stored.is_empty(), "nothing")
        }),
        case(
            "messages of a deleted conversation",
            all(&["NotFound"]),
            |f| {
                f.store
                    .conversations()
                    .messages(f.deleted, PageRequest::first(5))
                    .map(drop)
            },
        ),
        case("get a deleted file", all(OK), |f| {
            check(f.store.files().get(f.deleted_file)?.is_none(), "None")
        }),
        case("delete a deleted file", all(OK), |f| {
            check(!f.store.files().delete(f.deleted_file)?, "false")
        }),
        // Migration targets.
        case("down(usize::MAX)", all(INVALID), |f| {
            f.store.migrations().down(usize::MAX).map(drop)
        }),
        case("down(0)", except(OK, NO_SCHEMA), |f| {
            check(f.store.migrations().down(0)?.is_empty(), "no step")
        }),
        case("up_to(i64::MIN)", all(INVALID), |f| {
            f.store.migrations().up_to(i64::MIN).map(drop)
        }),
        case("up_to(i64::MAX)", except(INVALID, NO_SCHEMA), |f| {
            f.store.migrations().up_to(i64::MAX).map(drop)
        }),
        case("down_to(-1)", except(INVALID, NO_SCHEMA), |f| {
            f.store.migrations().down_to(-1).map(drop)
        }),
        case("down_to(i64::MIN)", except(INVALID, NO_SCHEMA), |f| {
            f.store.migrations().down_to(i64::MIN).map(drop)
        }),
        case("down_to(i64::MAX)", all(INVALID), |f| {
            f.store.migrations().down_to(i64::MAX).map(drop)
        }),
        case("plan to version -7", except(INVALID, NO_SCHEMA), |f| {
            f.store
                .migrations()
                .plan(MigrationTarget::Version(-7))
                .map(drop)
        }),
        case(
            "migrate to a version after the latest",
            except(INVALID, NO_SCHEMA),
            |f| {
                f.store
                    .migrations()
                    .migrate(MigrationTarget::Version(crate::common::LATEST + 1))
                    .map(drop)
            },
        ),
    ];
    // Keyset cursors at the ends of the range of stored timestamps (years 1
    // to 9999), and beyond what a stored timestamp can be: every backend
    // answers alike (PostgreSQL used to refuse what the others took).
    let ends = [
        (i64::MIN, INVALID),
        (-62_135_596_800_000_001, INVALID),
        (-62_135_596_800_000_000, OK),
        (253_402_300_799_999_999, OK),
        (253_402_300_800_000_000, INVALID),
        (i64::MAX, INVALID),
    ];
    for (prefix, order) in [
        ("f", None),
        ("u", Some(ConversationOrder::UpdatedAt)),
        ("c", Some(ConversationOrder::CreatedAt)),
    ] {
        for (micros, expected) in ends {
            let text = format!("{prefix}.{micros}.{uuid}");
            let name: &'static str = format!("{prefix} cursor at {micros} µs").leak();
            cases.push(case(name, all(expected), move |f| {
                let after: Cursor = text.parse()?;
                match order {
                    None => f
                        .store
                        .files()
                        .list(PageRequest::first(5).after(after))
                        .map(drop),
                    Some(order) => {
                        let query = ConversationQuery {
                            order,
                            page: PageRequest::first(5).after(after),
                            archived: Archived::Include,
                        };
                        f.store.conversations().list(query).map(drop)
                    }
                }
            }));
        }
    }
    cases
}

fn sqlite_file() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir.path().join("values.db"))).unwrap();
    fixture(Backend::SqliteFile, store, dir)
}

/// Runs the parameter cases and the path cases (`streams`) on one backend.
fn table(fixture: Fixture) {
    let mut cases = parameter_cases();
    cases.extend(crate::streams::path_cases());
    cases.extend(crate::streams::transaction_cases());
    run_table(fixture, cases);
}

#[test]
fn hostile_values_on_memory() {
    let store = Store::open("memory://").unwrap();
    table(fixture(
        Backend::Memory,
        store,
        tempfile::tempdir().unwrap(),
    ));
}

#[test]
fn hostile_values_on_sqlite_file() {
    table(sqlite_file());
}

#[test]
fn hostile_values_on_sqlite_memory() {
    let store = Store::open("sqlite://").unwrap();
    table(fixture(
        Backend::SqliteMemory,
        store,
        tempfile::tempdir().unwrap(),
    ));
}

#[cfg(feature = "postgres")]
#[test]
fn hostile_values_on_postgres() {
    let Some(database) = crate::common::pg::Database::create() else {
        return;
    };
    let store = Store::open(&database.url).unwrap();
    table(fixture(
        Backend::Postgres,
        store,
        tempfile::tempdir().unwrap(),
    ));
    drop(database);
}
