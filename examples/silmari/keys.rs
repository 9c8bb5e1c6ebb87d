//! Keys of encrypted SQLite files (the `encryption` feature): read from a
//! file, an environment variable or a prompt without echo, never from the
//! command line (where other users and shell histories could see them).

use std::path::{Path, PathBuf};

use clap::Args;
use silmari_store::{Error, Key, Location, Result, Store, StoreConfig};
use zeroize::Zeroizing;

/// The environment variable holding the key of the database.
const KEY_VAR: &str = "SILMARI_KEY";
/// The environment variable holding the new key (`encrypt`, `rekey`).
const NEW_KEY_VAR: &str = "SILMARI_NEW_KEY";

/// Where the key of an encrypted database comes from.
#[derive(Args)]
pub struct KeyArgs {
    /// File holding the key of an encrypted database: a passphrase on its
    /// first line, or `raw:` and 64 hex digits. Else the environment
    /// variable SILMARI_KEY; else, with --ask-key, a prompt.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Ask for the key on the terminal, without echo.
    #[arg(long, global = true)]
    ask_key: bool,
}

/// Where the new key comes from: a file, SILMARI_NEW_KEY, or a prompt.
#[derive(Args)]
pub struct NewKeyArgs {
    /// File holding the new key (as for --key-file). Else the environment
    /// variable SILMARI_NEW_KEY; else a prompt, asked twice.
    #[arg(long)]
    new_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key given, if any (asked for on the terminal with `--ask-key`).
    pub fn key(&self) -> Result<Option<Key>> {
        if let Some(file) = &self.key_file {
            return from_file(file).map(Some);
        }
        if self.ask_key {
            return prompt("key of the database: ", false).map(Some);
        }
        if let Some(text) = from_env(KEY_VAR)? {
            return parse(&text).map(Some);
        }
        Ok(None)
    }

    /// The key, asked for on the terminal if not given otherwise.
    pub fn required(&self) -> Result<Key> {
        match self.key()? {
            Some(key) => Ok(key),
            None => prompt("key of the database: ", false),
        }
    }

    /// Opens the store at `url`, with the key if it is an SQLite file.
    pub fn open(&self, url: &str) -> Result<Store> {
        self.builder(url).and_then(|b| b.open())
    }

    /// A builder for the store at `url`, with the key if it is an SQLite file.
    pub fn builder(&self, url: &str) -> Result<silmari_store::StoreBuilder> {
        let builder = Store::builder().url(url);
        let is_file = matches!(
            url.parse::<StoreConfig>()?.location,
            Location::SqliteFile(_)
        );
        Ok(match self.key()? {
            Some(key) if is_file => builder.key(key),
            _ => builder,
        })
    }
}

impl NewKeyArgs {
    /// The new key: from its file, its variable, or asked for twice.
    pub fn key(&self) -> Result<Key> {
        if let Some(file) = &self.new_key_file {
            return from_file(file);
        }
        if let Some(text) = from_env(NEW_KEY_VAR)? {
            return parse(&text);
        }
        prompt("new key: ", true)
    }
}

/// The path of the SQLite file `url` names.
pub fn file_of(url: &str) -> Result<PathBuf> {
    match url.parse::<StoreConfig>()?.location {
        Location::SqliteFile(path) => Ok(path),
        other => Err(Error::InvalidInput {
            field: "url".to_owned(),
            reason: format!("only SQLite database files are encrypted, not {other}"),
        }),
    }
}

/// The key in the file at `path`: its first line, read up to a bound (a
/// path such as `/dev/zero` given by mistake is not read forever).
fn from_file(path: &Path) -> Result<Key> {
    use std::io::Read;
    let fail = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(2 * Key::MAX_PASSPHRASE_BYTES as u64)
                .read_to_end(&mut bytes)
        })
        .map_err(fail)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::InvalidInput {
        field: "key".to_owned(),
        reason: format!("{} is not UTF-8 text", path.display()),
    })?;
    parse(text.lines().next().unwrap_or(""))
}

fn from_env(var: &str) -> Result<Option<Zeroizing<String>>> {
    match std::env::var(var) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::InvalidInput {
            field: var.to_owned(),
            reason: "is not valid Unicode".to_owned(),
        }),
    }
}

/// A passphrase, or `raw:` and 64 hex digits for a raw 256-bit key.
fn parse(text: &str) -> Result<Key> {
    let Some(hex) = text.strip_prefix("raw:") else {
        return Key::passphrase(text);
    };
    let invalid = || Error::InvalidInput {
        field: "key".to_owned(),
        reason: "a raw key is `raw:` and 64 hex digits".to_owned(),
    };
    let digits = hex.trim().as_bytes();
    if digits.len() != 64 {
        return Err(invalid());
    }
    let mut bytes = Zeroizing::new([0_u8; 32]);
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
    }
    Ok(Key::raw(&bytes))
}

/// Asks on the terminal without echo (twice, if `confirm`); refused when
/// the tool's input is not a terminal (a script is never left waiting).
fn prompt(question: &str, confirm: bool) -> Result<Key> {
    let no_terminal = |e: std::io::Error| Error::InvalidInput {
        field: "key".to_owned(),
        reason: format!(
            "no key given (--key-file, {KEY_VAR} / --new-key-file, {NEW_KEY_VAR}) \
             and no terminal to ask on ({e})"
        ),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(no_terminal(std::io::Error::other(
            "input is not a terminal",
        )));
    }
    let first = Zeroizing::new(rpassword::prompt_password(question).map_err(no_terminal)?);
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ").map_err(no_terminal)?);
        if *again != *first {
            return Err(Error::InvalidInput {
                field: "key".to_owned(),
                reason: "the two entries differ".to_owned(),
            });
        }
    }
    parse(&first)
}
