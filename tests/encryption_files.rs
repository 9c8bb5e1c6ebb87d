//! Encrypting, re-keying and decrypting database files (the `encryption`
//! feature): the data survives whole, a key that does not fit changes
//! nothing, an open store blocks the change, a connection opened before it
//! cannot write into the replaced file, and a process killed midway leaves
//! the file openable with its old key or its new one, never neither.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use silmari_store::prelude::*;
use silmari_store::{Key, KeyProblem, SearchQuery, StoreConfig};

use common::{Rng, size_from_env, sqlite_url as url};

fn open(path: &Path, key: Option<Key>) -> silmari_store::Result<Store> {
    let mut config: StoreConfig = url(path).parse()?;
    config.sqlite.key = key;
    Store::open_with(config)
}

fn old_key() -> Key {
    Key::passphrase("old passphrase").unwrap()
}

fn new_key() -> Key {
    Key::raw(&[0x42; 32])
}

/// A closed store at `path` (encrypted with `key`) holding `messages`
/// messages in one conversation, a file record, and a search index.
fn make(path: &Path, key: Option<Key>, messages: usize) -> ConversationId {
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
fn assert_whole(path: &Path, key: Option<Key>, c: ConversationId, messages: usize) {
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

fn key_problem(result: silmari_store::Result<()>) -> KeyProblem {
    match result {
        Err(Error::Key { problem, .. }) => problem,
        other => panic!("expected Error::Key, got {other:?}"),
    }
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn encrypt_rekey_and_decrypt_keep_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let c = make(&path, None, 300);

    Store::encrypt(&path, &old_key()).unwrap();
    assert!(matches!(
        open(&path, None).err(),
        Some(Error::Key {
            problem: KeyProblem::Missing,
            ..
        })
    ));
    assert_whole(&path, Some(old_key()), c, 300);

    Store::rekey(&path, &old_key(), &new_key()).unwrap();
    assert!(matches!(
        open(&path, Some(old_key())).err(),
        Some(Error::Key {
            problem: KeyProblem::Wrong,
            ..
        })
    ));
    assert_whole(&path, Some(new_key()), c, 300);

    let plain = dir.path().join("plain-copy.db");
    Store::decrypt(&path, &new_key(), &plain).unwrap();
    assert_whole(&plain, None, c, 300);
    // The encrypted original is still encrypted, and still opens.
    assert_whole(&path, Some(new_key()), c, 300);
    // Nothing is left beside them but their lock files and (closing) logs.
    for name in names(dir.path()) {
        assert!(!name.contains("partial"), "left behind: {name}");
    }
}

#[test]
fn a_key_that_does_not_fit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    let encrypted = dir.path().join("encrypted.db");
    make(&plain, None, 10);
    make(&encrypted, Some(old_key()), 10);
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (plain_bytes, encrypted_bytes) = (read(&plain), read(&encrypted));

    // Encrypting an encrypted file: it needs a key to be read.
    assert_eq!(
        key_problem(Store::encrypt(&encrypted, &new_key())),
        KeyProblem::Missing
    );
    assert_eq!(
        key_problem(Store::rekey(&encrypted, &new_key(), &old_key())),
        KeyProblem::Wrong
    );
    assert_eq!(
        key_problem(Store::rekey(&plain, &old_key(), &new_key())),
        KeyProblem::NotEncrypted
    );
    let to = dir.path().join("never.db");
    assert_eq!(
        key_problem(Store::decrypt(&encrypted, &new_key(), &to)),
        KeyProblem::Wrong
    );
    assert!(!to.exists());
    // A decrypted copy never replaces a file.
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, "mine").unwrap();
    match Store::decrypt(&encrypted, &old_key(), &taken) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
    match Store::encrypt(dir.path().join("missing.db"), &new_key()) {
        Err(Error::Open { reason, .. }) => assert!(reason.contains("no database"), "{reason}"),
        other => panic!("expected Open, got {other:?}"),
    }

    assert!(read(&plain) == plain_bytes, "the plain file changed");
    assert!(
        read(&encrypted) == encrypted_bytes,
        "the encrypted file changed"
    );
    for name in names(dir.path()) {
        assert!(!name.contains("partial"), "left behind: {name}");
    }
}

#[test]
fn an_open_store_blocks_the_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let c = make(&path, None, 20);
    let store = open(&path, None).unwrap();
    match Store::encrypt(&path, &new_key()) {
        Err(Error::Unavailable { reason, .. }) => assert!(reason.contains("close"), "{reason}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // The open store goes on, on its plain file.
    store
        .conversations()
        .append_message(c, NewMessage::new(Role::User, "still here"))
        .unwrap();
    drop(store);
    // Once it is closed (its pool may take a moment), the change goes through.
    Store::encrypt(&path, &new_key()).unwrap();
    assert_whole(&path, Some(new_key()), c, 21);
}

#[test]
fn a_connection_opened_before_cannot_write_into_the_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moved.db");
    let c = make(&path, None, 5);
    // Opened, never used: it holds no lock, so the change goes through.
    let early = rusqlite::Connection::open(&path).unwrap();
    Store::encrypt(&path, &new_key()).unwrap();
    let wrote = early.execute(
        "INSERT INTO file_metadata (id, filename, content_type, size, created_at) \
         VALUES ('x', 'lost.txt', 'text/plain', 1, 0)",
        [],
    );
    // It fails (SQLite sees the file was replaced), or it wrote to the old
    // file, which no store will read again: either way, not acknowledged
    // into the new one silently.
    assert!(
        wrote.is_err(),
        "a write into the replaced file was accepted: {wrote:?}"
    );
    drop(early);
    assert_whole(&path, Some(new_key()), c, 5);
}

/// What the file of the kill loop is encrypted with.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Holds {
    Plain,
    Old,
    New,
}

impl Holds {
    fn key(self) -> Option<Key> {
        match self {
            Holds::Plain => None,
            Holds::Old => Some(old_key()),
            Holds::New => Some(new_key()),
        }
    }

    /// What the child turns it into next.
    fn next(self) -> Holds {
        match self {
            Holds::Plain | Holds::New => Holds::Old,
            Holds::Old => Holds::New,
        }
    }
}

/// The child of the kill loop: encrypts the file at `path` if it is plain,
/// then re-keys it back and forth, printing what it holds after each change.
fn rekey_child(arg: &str) {
    let (path, holds) = arg.split_once('|').expect("path|holds");
    let mut holds = match holds {
        "Plain" => Holds::Plain,
        "Old" => Holds::Old,
        _ => Holds::New,
    };
    loop {
        let next = holds.next();
        let to = next.key().expect("a key");
        match holds.key() {
            None => Store::encrypt(path, &to).expect("encrypt"),
            Some(from) => Store::rekey(path, &from, &to).expect("rekey"),
        }
        holds = next;
        println!("HOLDS {holds:?}");
    }
}

#[test]
fn encrypting_or_rekeying_killed_midway_leaves_the_old_key_or_the_new_one() {
    const NAME: &str = "encrypting_or_rekeying_killed_midway_leaves_the_old_key_or_the_new_one";
    if common::in_child() {
        if let Ok(arg) = std::env::var(common::CHILD_VAR) {
            rekey_child(&arg);
        }
        return;
    }
    let rounds = size_from_env("SILMARI_REKEY_KILLS", 16);
    let mut rng = Rng::from_env();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let pristine = dir.path().join("pristine.db");
    let messages = 2000;
    let c = make(&pristine, None, messages);
    let mut holds = Holds::Plain;
    let (mut changes, mut partial_seen, mut from_plain) = (0, 0, 0);
    for round in 0..rounds {
        // Every fourth round starts again from a plain file.
        if round % 4 == 0 {
            std::fs::copy(&pristine, &path).unwrap();
            holds = Holds::Plain;
            from_plain += 1;
        }
        let mut child = common::child(NAME, &format!("{}|{holds:?}", path.display()));
        std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        for line in out.lines().filter_map(|l| l.strip_prefix("HOLDS ")) {
            holds = match line {
                "Old" => Holds::Old,
                "New" => Holds::New,
                other => panic!("unexpected {other}"),
            };
            changes += 1;
        }
        if names(dir.path()).iter().any(|n| n.contains("partial")) {
            partial_seen += 1;
        }
        // What was acknowledged opens it, or (killed after the rename,
        // before the line) the next; never neither, and never less data.
        match open(&path, holds.key()) {
            Ok(store) => drop(store),
            Err(Error::Key { .. }) => holds = holds.next(),
            Err(e) => panic!("round {round}: {e}"),
        }
        assert_whole(&path, holds.key(), c, messages);
    }
    println!(
        "{rounds} SIGKILLs while encrypting ({from_plain} from a plain file) or re-keying: \
         {changes} acknowledged changes, {partial_seen} kills left a partial file (removed by \
         the next change); the file opened with its old or new key and held every record each time"
    );
}

/// Where a decrypted copy goes in `dir`.
fn copy_in(dir: &Path) -> PathBuf {
    dir.join("decrypted.db")
}

#[test]
fn the_admin_tool_encrypts_rekeys_and_decrypts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tool.db");
    let c = make(&path, None, 12);
    let tool = common::admin_tool();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let first = write("first.key", "first secret passphrase\n");
    let second = write("second.key", "second secret passphrase\n");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(tool)
            .arg("--url")
            .arg(url(&path))
            .args(args)
            .env_remove("SILMARI_KEY")
            .env_remove("SILMARI_NEW_KEY")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains("secret passphrase"),
            "a key was shown: {text}"
        );
        (out.status.success(), text)
    };
    let first_s = first.to_str().unwrap();
    let second_s = second.to_str().unwrap();

    let (ok, text) = run(&["encrypt", "--new-key-file", first_s], &[]);
    assert!(ok, "{text}");
    // Without a key the tool says so; with it, it reads the store.
    let (ok, text) = run(&["list"], &[]);
    assert!(!ok && text.contains("no key was given"), "{text}");
    let (ok, text) = run(&["--key-file", first_s, "list"], &[]);
    assert!(ok && text.contains("lighthouse keeper"), "{text}");
    // Keys from the environment, never from the command line.
    let (ok, text) = run(
        &["rekey"],
        &[
            ("SILMARI_KEY", "first secret passphrase"),
            ("SILMARI_NEW_KEY", "second secret passphrase"),
        ],
    );
    assert!(ok, "{text}");
    let (ok, text) = run(&["--key-file", first_s, "list"], &[]);
    assert!(!ok && text.contains("does not open"), "{text}");
    // No key anywhere and no terminal to ask on: a clear refusal.
    let (ok, text) = run(&["rekey", "--new-key-file", first_s], &[]);
    assert!(!ok && text.contains("key"), "{text}");
    let copy = copy_in(dir.path());
    let (ok, text) = run(
        &[
            "--key-file",
            second_s,
            "decrypt",
            "--to",
            copy.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{text}");
    assert_whole(&copy, None, c, 12);
    assert_whole(
        &path,
        Some(Key::passphrase("second secret passphrase").unwrap()),
        c,
        12,
    );
}

/// On a terminal (here `script`'s pseudo-terminal) the tool asks for the
/// new key twice, without echo, and the typed key encrypts the file.
#[test]
fn the_admin_tool_asks_for_a_key_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompted.db");
    let c = make(&path, None, 3);
    let command = format!(
        "{} --url {} encrypt",
        common::admin_tool().display(),
        url(&path)
    );
    // Typed after the prompt is up (typed earlier, a terminal would echo it
    // before the tool turns echo off).
    let typing = "sleep 2; printf 'typed secret words\\n'; sleep 1; printf 'typed secret words\\n'";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("({typing}) | script -qec \"$0\" /dev/null"))
        .arg(&command)
        .env_remove("SILMARI_KEY")
        .env_remove("SILMARI_NEW_KEY")
        .output()
        .expect("sh and script (util-linux) are there");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("new key:") && shown.contains("again:"),
        "{shown}"
    );
    assert!(
        !shown.contains("typed secret"),
        "the key was echoed: {shown}"
    );
    assert_whole(
        &path,
        Some(Key::passphrase("typed secret words").unwrap()),
        c,
        3,
    );
}

/// The key never shows: not in `Debug` of the options, the configuration
/// or the builder, not in any error, not in any log record (every level,
/// slow-statement logging on), through opening, failing, re-keying and
/// decrypting.
#[test]
fn the_key_is_never_shown() {
    common::capture_logs();
    let secret = "zanzibar-quartz-7";
    let key = || Key::passphrase(secret).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.db");
    let mut config: StoreConfig = url(&path).parse().unwrap();
    config.sqlite.key = Some(key());
    config.sqlite.slow_statement = Some(Duration::ZERO);
    let builder = Store::builder().url(url(&path)).key(key());
    let mut shown = format!("{config:?} {:?} {builder:?}", config.sqlite);
    let store = Store::open_with(config).unwrap();
    fill_one(&store);
    drop(store);
    for result in [
        Store::encrypt(&path, &key()),
        Store::rekey(&path, &new_key(), &key()),
        Store::decrypt(&path, &new_key(), dir.path().join("x.db")),
    ] {
        let e = result.unwrap_err();
        shown.push_str(&common::shown(&e));
    }
    Store::rekey(
        &path,
        &key(),
        &Key::passphrase(format!("{secret}-2")).unwrap(),
    )
    .unwrap();
    Store::decrypt(
        &path,
        &Key::passphrase(format!("{secret}-2")).unwrap(),
        dir.path().join("plain.db"),
    )
    .unwrap();
    shown.push_str(&common::logged());
    assert!(!shown.is_empty());
    assert!(!shown.contains("zanzibar"), "the key was shown: {shown}");
    // The hex form SQLCipher is handed (a derived key) never shows either.
    let hex_key = shown.match_indices("x'").any(|(at, _)| {
        shown[at + 2..]
            .bytes()
            .take_while(u8::is_ascii_hexdigit)
            .count()
            >= 64
    });
    assert!(!hex_key, "a raw key was shown: {shown}");
}

fn fill_one(store: &Store) {
    store
        .conversations()
        .create(NewConversation::titled("quiet"))
        .unwrap();
}

/// Through a symbolic link, the file it points to is encrypted (replacing
/// the link would leave the plain file where it was) and the link still
/// leads to it.
#[cfg(unix)]
#[test]
fn a_symbolic_link_encrypts_the_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let link = dir.path().join("link.db");
    let c = make(&real, None, 4);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    Store::encrypt(&link, &new_key()).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(matches!(
        open(&real, None).err(),
        Some(Error::Key {
            problem: KeyProblem::Missing,
            ..
        })
    ));
    assert_whole(&link, Some(new_key()), c, 4);
}

/// Every file in `dir` whose bytes hold `word` (in any case).
fn files_holding(dir: &Path, word: &str) -> Vec<String> {
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

/// Encrypting leaves no plain copy behind: the snapshots taken before
/// migrations are encrypted with the file (first), and neither a journal
/// nor a partial file holds the old pages; re-keying re-keys the snapshots,
/// which still restore.
#[test]
fn encrypting_leaves_no_plain_copy_and_snapshots_follow_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drafts.db");
    let c = make(&path, None, 30);
    let store = open(&path, None).unwrap();
    store.migrations().down_to(1).unwrap();
    store.migrations().up().unwrap();
    let snapshots = store.migrations().snapshots().unwrap();
    assert_eq!(snapshots.len(), 2);
    drop(store);
    // The control: the plain file and both snapshots hold the text.
    assert_eq!(files_holding(dir.path(), "lighthouse").len(), 3);

    Store::encrypt(&path, &old_key()).unwrap();
    assert_eq!(
        files_holding(dir.path(), "lighthouse"),
        Vec::<String>::new()
    );
    for name in names(dir.path()) {
        assert!(
            !name.ends_with("-journal") && !name.contains("partial"),
            "{name}"
        );
    }
    Store::rekey(&path, &old_key(), &new_key()).unwrap();
    for snapshot in &snapshots {
        assert!(matches!(
            open(&snapshot.path, Some(old_key())).err(),
            Some(Error::Key { .. })
        ));
    }
    let store = open(&path, Some(new_key())).unwrap();
    store.conversations().delete(c).unwrap();
    let latest = snapshots
        .iter()
        .find(|s| s.version == common::LATEST)
        .unwrap();
    store.migrations().restore_snapshot(&latest.path).unwrap();
    assert_eq!(
        store
            .conversations()
            .get(c)
            .unwrap()
            .unwrap()
            .messages
            .len(),
        30
    );
}

/// The file keeps its permissions through a change; a plain copy is
/// readable by its owner only; a file with other names (hard links, which
/// would keep the old contents) is refused.
#[cfg(unix)]
#[test]
fn permissions_are_kept_and_hard_links_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let c = make(&path, None, 3);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Store::encrypt(&path, &new_key()).unwrap();
    assert_eq!(mode(&path), 0o640);
    let copy = dir.path().join("plain.db");
    Store::decrypt(&path, &new_key(), &copy).unwrap();
    assert_eq!(mode(&copy), 0o600);

    let other = dir.path().join("other-name.db");
    std::fs::hard_link(&path, &other).unwrap();
    let before = std::fs::read(&path).unwrap();
    match Store::rekey(&path, &new_key(), &old_key()) {
        Err(Error::Open { reason, .. }) => assert!(reason.contains("hard links"), "{reason}"),
        other => panic!("expected Open naming hard links, got {other:?}"),
    }
    assert!(std::fs::read(&path).unwrap() == before, "the file changed");
    std::fs::remove_file(&other).unwrap();
    Store::rekey(&path, &new_key(), &old_key()).unwrap();
    assert_whole(&path, Some(old_key()), c, 3);
}
