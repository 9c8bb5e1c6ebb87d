//! Hostile paths and streams: snapshot restores of things that are not
//! snapshots, backups onto paths that are taken or impossible, imports from
//! readers that fail, lie or never end, exports into writers that fail, and
//! calls on the store inside its own transaction. The path, stream and
//! transaction cases are rows of the table in `values`; the endless line
//! is a test of its own, in a child process whose peak memory is measured.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use silmari_store::TransferOptions;
use silmari_store::prelude::*;

use crate::common;
use crate::values::{Case, Fixture, NO_BACKUP, NO_FILE, all, case, check, except};

const INVALID: &[&str] = &["InvalidInput"];
const IO: &[&str] = &["Io"];

/// The live database, or (for stores without a file) a file in the fixture's directory.
fn live(f: &Fixture) -> PathBuf {
    match f.store.path() {
        Some(path) => path.to_path_buf(),
        None => {
            let path = f.dir.path().join("stand-in.db");
            std::fs::write(&path, b"stand-in").unwrap();
            path
        }
    }
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn restore(f: &Fixture, path: &Path) -> silmari_store::Result<()> {
    f.store.migrations().restore_snapshot(path)
}

/// A header, the store's own records, then `tail` (merged: nothing new).
fn export_then(f: &Fixture, tail: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    f.store.export_jsonl(&mut bytes, |_| {}).unwrap();
    let line = format!(
        r#"{{"kind":"conversation","id":"{}","title":"new","created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"}}"#,
        ConversationId::new()
    );
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(tail);
    bytes
}

/// A reader that yields `good`, then fails.
struct FailingReader {
    good: std::io::Cursor<Vec<u8>>,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.good.read(buf)? {
            0 => Err(std::io::Error::other("the disk went away")),
            n => Ok(n),
        }
    }
}

/// A writer that takes `room` bytes, then fails (or, with `zero`, accepts none).
struct FailingWriter {
    room: usize,
    zero: bool,
    fail_flush: bool,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.room == 0 {
            return if self.zero {
                Ok(0)
            } else {
                Err(std::io::Error::other("no space left"))
            };
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.fail_flush {
            Err(std::io::Error::other("flush failed"))
        } else {
            Ok(())
        }
    }
}

fn merge() -> TransferOptions {
    TransferOptions {
        merge: true,
        ..TransferOptions::default()
    }
}

/// Snapshot restores, backups, imports and exports with hostile arguments.
pub fn path_cases() -> Vec<Case> {
    vec![
        case("restore a directory", except(INVALID, NO_FILE), |f| {
            restore(f, f.dir.path())
        }),
        case("restore /dev/zero", except(INVALID, NO_FILE), |f| {
            restore(f, Path::new("/dev/zero"))
        }),
        case("restore the live database", except(INVALID, NO_FILE), |f| {
            restore(f, &live(f))
        }),
        case(
            "restore a symlink to the live database",
            except(INVALID, NO_FILE),
            |f| {
                let link = f.dir.path().join("link.snapshot");
                std::os::unix::fs::symlink(live(f), &link).unwrap();
                restore(f, &link)
            },
        ),
        case(
            "restore a hard link of the live database",
            except(INVALID, NO_FILE),
            |f| {
                let link = f.dir.path().join("hard.snapshot");
                std::fs::hard_link(live(f), &link).unwrap();
                restore(f, &link)
            },
        ),
        case("restore the live -wal", except(INVALID, NO_FILE), |f| {
            restore(f, &companion(&live(f), "-wal"))
        }),
        case(
            "restore the migration lock",
            except(INVALID, NO_FILE),
            |f| restore(f, &companion(&live(f), "-migrate.lock")),
        ),
        case("restore a FIFO", except(INVALID, NO_FILE), |f| {
            let fifo = f.dir.path().join("fifo.snapshot");
            check(crate::run(&["mkfifo", fifo.to_str().unwrap()]), "mkfifo")?;
            restore(f, &fifo)
        }),
        case("restore an empty path", except(IO, NO_FILE), |f| {
            restore(f, Path::new(""))
        }),
        case("backup onto an existing file", except(IO, NO_BACKUP), |f| {
            let taken = f.dir.path().join("taken.db");
            std::fs::write(&taken, b"mine").unwrap();
            let result = f.store.backup_to(&taken);
            check(std::fs::read(&taken).unwrap() == b"mine", "left as it was")?;
            result
        }),
        case("backup onto a directory", except(IO, NO_BACKUP), |f| {
            f.store.backup_to(f.dir.path())
        }),
        case(
            "backup into a missing directory",
            except(IO, NO_BACKUP),
            |f| f.store.backup_to(f.dir.path().join("missing/backup.db")),
        ),
        case(
            "backup onto a dangling symlink",
            except(IO, NO_BACKUP),
            |f| {
                let (link, points_to) = (
                    f.dir.path().join("dangling.db"),
                    f.dir.path().join("nowhere.db"),
                );
                std::os::unix::fs::symlink(&points_to, &link).unwrap();
                let result = f.store.backup_to(&link);
                check(!points_to.exists(), "nothing created through the link")?;
                result
            },
        ),
        case(
            "backup onto the live database",
            except(IO, NO_BACKUP),
            |f| f.store.backup_to(live(f)),
        ),
        case("backup to an empty path", except(INVALID, NO_BACKUP), |f| {
            f.store.backup_to("")
        }),
        case(
            "backup to a path naming no file",
            except(INVALID, NO_BACKUP),
            |f| f.store.backup_to(f.dir.path().join("..")),
        ),
        case(
            "import from a reader failing midway",
            all(&["Import"]),
            |f| {
                let reader = FailingReader {
                    good: std::io::Cursor::new(export_then(f, b"{\"kind\"")),
                };
                f.store
                    .import_jsonl(BufReader::new(reader), merge(), |_| {})
                    .map(drop)
            },
        ),
        case("import with invalid UTF-8 midway", all(&["Import"]), |f| {
            let bytes = export_then(f, b"{\"kind\":\"file\",\"filename\":\"\xff\xfe\"}\n");
            f.store.import_jsonl(&bytes[..], merge(), |_| {}).map(drop)
        }),
        case("import of a NUL byte line", all(&["Import"]), |f| {
            let bytes = export_then(f, b"\0\0\0\n");
            f.store.import_jsonl(&bytes[..], merge(), |_| {}).map(drop)
        }),
        case("export into a writer failing midway", all(IO), |f| {
            let out = FailingWriter {
                room: 300,
                zero: false,
                fail_flush: false,
            };
            f.store.export_jsonl(out, |_| {}).map(drop)
        }),
        case("export into a writer taking nothing", all(IO), |f| {
            let out = FailingWriter {
                room: 0,
                zero: true,
                fail_flush: false,
            };
            f.store.export_jsonl(out, |_| {}).map(drop)
        }),
        case("export into a writer failing to flush", all(IO), |f| {
            let out = FailingWriter {
                room: usize::MAX,
                zero: false,
                fail_flush: true,
            };
            f.store.export_jsonl(out, |_| {}).map(drop)
        }),
    ]
}

/// Runs `call` on the store itself inside one of its transactions (rolled
/// back) and returns what `call` got.
fn inside(
    f: &Fixture,
    call: impl FnOnce(&Store) -> silmari_store::Result<()>,
) -> silmari_store::Result<()> {
    let mut got = None;
    let _ = f.store.transaction(|_tx| -> silmari_store::Result<()> {
        got = Some(call(&f.store));
        Err(Error::InTransaction)
    });
    got.unwrap_or(Ok(()))
}

/// Store calls that bypass the repository handles, made inside a
/// transaction of the same store: the documented answer is InTransaction.
pub fn transaction_cases() -> Vec<Case> {
    const IN_TX: &[&str] = &["InTransaction"];
    vec![
        case("check() inside a transaction", all(IN_TX), |f| {
            inside(f, |s| s.check().map(drop))
        }),
        case("counts() inside a transaction", all(IN_TX), |f| {
            inside(f, |s| s.counts().map(drop))
        }),
        case("migration status inside a transaction", all(IN_TX), |f| {
            inside(f, |s| s.migrations().status().map(drop))
        }),
        case("down(1) inside a transaction", all(IN_TX), |f| {
            inside(f, |s| s.migrations().down(1).map(drop))
        }),
        case("restore inside a transaction", all(IN_TX), |f| {
            let path = live(f);
            inside(f, |s| s.migrations().restore_snapshot(&path))
        }),
        case("backup inside a transaction", all(IN_TX), |f| {
            let path = f.dir.path().join("in-tx.backup");
            let result = inside(f, |s| s.backup_to(&path));
            check(!path.exists(), "no backup written")?;
            result
        }),
        case("export inside a transaction", all(IN_TX), |f| {
            inside(f, |s| s.export_jsonl(std::io::sink(), |_| {}).map(drop))
        }),
        case("copy out inside a transaction", all(IN_TX), |f| {
            let target = Store::open("memory://")?;
            inside(f, |s| {
                s.copy_to(&target, TransferOptions::default(), |_| {})
                    .map(drop)
            })
        }),
    ]
}

/// A reader of `len` bytes of `x` and no newline.
struct EndlessLine {
    left: u64,
}

impl Read for EndlessLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        buf[..n].fill(b'x');
        self.left -= n as u64;
        Ok(n)
    }
}

/// The child: imports a header and then a line of `SILMARI_ADV_LINE_MB`
/// MiB (default 1024) without a newline; prints what happened and its peak memory.
fn endless_line_child() {
    println!();
    let megabytes = crate::size_from_env("SILMARI_ADV_LINE_MB", 1024) as u64;
    let header = std::io::Cursor::new(
        b"{\"kind\":\"header\",\"format\":\"silmari-store\",\"version\":1}\n".to_vec(),
    );
    let input = BufReader::new(header.chain(EndlessLine {
        left: megabytes << 20,
    }));
    let store = Store::open("memory://").expect("open");
    let started = std::time::Instant::now();
    let result = store.import_jsonl(input, TransferOptions::default(), |_| {});
    println!("TOOK {:?}", started.elapsed());
    match result {
        Ok(_) => println!("OUTCOME Ok"),
        Err(e) => println!("OUTCOME {} {e}", crate::kind(&e)),
    }
    println!("WRITTEN {}", !store.counts().expect("counts").is_empty());
    common::report_peak_kib();
}

#[test]
fn an_import_line_without_end_is_refused_in_bounded_memory() {
    const NAME: &str = "streams::an_import_line_without_end_is_refused_in_bounded_memory";
    if crate::child_arg().is_some() {
        return endless_line_child();
    }
    let out = crate::finish(crate::spawn(NAME, "line"));
    let word = |tag: &str| crate::tagged(&out, tag).pop().unwrap_or_default().join(" ");
    let peak_kib: u64 = word("PEAK_KIB").parse().unwrap();
    let megabytes = crate::size_from_env("SILMARI_ADV_LINE_MB", 1024);
    println!(
        "a {megabytes} MiB line without a newline: {}; took {}; peak memory {} MiB; written: {}",
        word("OUTCOME"),
        word("TOOK"),
        peak_kib / 1024,
        word("WRITTEN")
    );
    assert!(word("OUTCOME").starts_with("Import"), "{out}");
    assert_eq!(word("WRITTEN"), "false");
    assert!(peak_kib < 256 * 1024, "peak {peak_kib} KiB");
}

/// The bound is no tighter than the records the store accepts: a message
/// of the longest content, every byte a control character (escaped to six
/// bytes), with the most attachments of the longest names, exports to one
/// line that imports again.
#[test]
fn the_longest_record_still_imports() {
    use silmari_store::limits::{
        MAX_ATTACHMENTS, MAX_CONTENT_BYTES, MAX_FILENAME_BYTES, MAX_IMPORT_LINE_BYTES,
    };
    let source = Store::open("memory://").unwrap();
    let c = source
        .conversations()
        .create(NewConversation::titled("\u{1}".repeat(100)))
        .unwrap();
    let attachment = Attachment {
        file_id: FileId::new(),
        filename: "\u{1}".repeat(MAX_FILENAME_BYTES),
        content_type: "application/vnd.silmari".into(),
        size: u64::MAX >> 1,
    };
    let message = NewMessage::new(Role::User, "\u{1}".repeat(MAX_CONTENT_BYTES))
        .with_attachments(vec![attachment; MAX_ATTACHMENTS]);
    source
        .conversations()
        .append_message(c.id, message)
        .unwrap();
    let mut export = Vec::new();
    source.export_jsonl(&mut export, |_| {}).unwrap();
    let longest = export
        .split(|b| *b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap();
    println!(
        "the longest record is a line of {longest} bytes ({} MiB; the bound is {} MiB)",
        longest >> 20,
        MAX_IMPORT_LINE_BYTES >> 20
    );
    assert!(longest <= MAX_IMPORT_LINE_BYTES);
    let target = Store::open("memory://").unwrap();
    target
        .import_jsonl(&export[..], TransferOptions::default(), |_| {})
        .unwrap();
    assert_eq!(common::contents(&target), common::contents(&source));
}
