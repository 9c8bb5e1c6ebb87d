//! Encrypting or re-keying killed midway (SIGKILL).

use std::io::Read;
use std::time::Duration;

use silmari_store::Key;
use silmari_store::prelude::*;

use crate::common::{self, Rng, size_from_env};
use crate::{assert_whole, make, names, new_key, old_key, open};

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
    const NAME: &str =
        "kills::encrypting_or_rekeying_killed_midway_leaves_the_old_key_or_the_new_one";
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
        for line in out.lines().filter_map(|l| common::after_tag(l, "HOLDS ")) {
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
        let left = files_and_sizes(dir.path());
        let acknowledged = holds;
        match open(&path, holds.key()) {
            Ok(store) => drop(store),
            Err(Error::Key { .. }) => holds = holds.next(),
            Err(e) => panic!("round {round}: {e}"),
        }
        if let Err(e) = open(&path, holds.key()) {
            panic!(
                "round {round}: acknowledged {acknowledged:?}, then {holds:?} does not open \
                 it either ({e}); the kill left {left:?}; now {:?}, and {:?} opens it",
                files_and_sizes(dir.path()),
                [Holds::Plain, Holds::Old, Holds::New]
                    .into_iter()
                    .find(|h| open(&path, h.key()).is_ok()),
            );
        }
        assert_whole(&path, holds.key(), c, messages);
    }
    println!(
        "{rounds} SIGKILLs while encrypting ({from_plain} from a plain file) or re-keying: \
         {changes} acknowledged changes, {partial_seen} kills left a partial file (removed by \
         the next change); the file opened with its old or new key and held every record each time"
    );
}

/// The files in `dir` with their sizes, for a failure's message.
fn files_and_sizes(dir: &std::path::Path) -> Vec<(String, u64)> {
    names(dir)
        .into_iter()
        .map(|n| {
            let size = std::fs::metadata(dir.join(&n)).map_or(0, |m| m.len());
            (n, size)
        })
        .collect()
}
