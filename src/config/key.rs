//! The key of an encrypted SQLite file (the `encryption` feature).

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The key of an encrypted SQLite database file (SQLCipher), given in code:
/// never in a URL, never shown. `Debug` prints `Key(<redacted>)`, errors
/// and logs never hold it, and its memory is overwritten with zeros when
/// the last copy is dropped.
///
/// Two kinds, which open different files:
/// - [`Key::passphrase`]: SQLCipher 4 derives the key from it with
///   PBKDF2-HMAC-SHA512 (256,000 iterations, the 16-byte random salt stored
///   at the head of the file), about a tenth of a second, once per store
///   opened (its other connections are keyed with the result).
/// - [`Key::raw`]: 32 bytes used as the AES-256 key as they are (no
///   derivation: faster to open; the app must keep the bytes secret and
///   random, e.g. in the OS keychain).
///
/// ```
/// use silmari_store::Key;
/// let key = Key::passphrase("correct horse battery staple")?;
/// assert_eq!(format!("{key:?}"), "Key(<redacted>)");
/// let raw = Key::raw(&[7; 32]);
/// assert_ne!(key, raw);
/// # Ok::<(), silmari_store::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    /// What `sqlite3_key` receives: the passphrase's bytes, or `x'<hex>'`.
    material: Zeroizing<Vec<u8>>,
}

impl Key {
    /// The longest passphrase accepted, in bytes.
    pub const MAX_PASSPHRASE_BYTES: usize = 4096;

    /// A passphrase (UTF-8 text, 1 to [`Key::MAX_PASSPHRASE_BYTES`] bytes).
    /// The `String` given is moved into the key, so its buffer is the one
    /// wiped on drop; copies the caller made elsewhere are the caller's.
    ///
    /// Refused with [`Error::InvalidInput`] on `key`: an empty passphrase
    /// (SQLCipher would leave the file unencrypted), a longer one, and one
    /// of the form `x'…'`, which SQLCipher would read as a raw key in hex
    /// (use [`Key::raw`]).
    pub fn passphrase(passphrase: impl Into<String>) -> Result<Key> {
        let material = Zeroizing::new(passphrase.into().into_bytes());
        if material.is_empty() {
            return Err(Error::invalid(
                "key",
                "the passphrase is empty (SQLCipher would leave the file unencrypted)",
            ));
        }
        if material.len() > Self::MAX_PASSPHRASE_BYTES {
            return Err(Error::invalid(
                "key",
                format!(
                    "the passphrase is longer than {} bytes",
                    Self::MAX_PASSPHRASE_BYTES
                ),
            ));
        }
        if material.starts_with(b"x'") || material.starts_with(b"X'") {
            return Err(Error::invalid(
                "key",
                "a passphrase starting with x' would be read as a raw key in hex; \
                 give raw key bytes with Key::raw",
            ));
        }
        Ok(Key { material })
    }

    /// A raw 256-bit key, used without key derivation.
    pub fn raw(bytes: &[u8; 32]) -> Key {
        Key::hex(&[bytes])
    }

    /// A raw key with the salt of the file it opens (SQLCipher's
    /// `x'<key><salt>'`): what a passphrase derives to, used without
    /// deriving it again.
    pub(crate) fn derived(key: &[u8; 32], salt: &[u8; 16]) -> Key {
        Key::hex(&[key, salt])
    }

    /// `x'…'` around the hex digits of `parts`.
    fn hex(parts: &[&[u8]]) -> Key {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut material = Zeroizing::new(Vec::with_capacity(2 * len + 3));
        material.extend_from_slice(b"x'");
        for byte in parts.iter().flat_map(|p| p.iter()) {
            material.push(HEX[usize::from(byte >> 4)]);
            material.push(HEX[usize::from(byte & 0xf)]);
        }
        material.push(b'\'');
        Key { material }
    }

    /// The passphrase, if this key is one (not raw bytes).
    pub(crate) fn passphrase_bytes(&self) -> Option<&[u8]> {
        (!self.material.starts_with(b"x'")).then_some(&self.material[..])
    }

    /// The bytes handed to SQLCipher (`sqlite3_key`, `ATTACH … KEY`).
    pub(crate) fn material(&self) -> &[u8] {
        &self.material
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Compares in time that depends on the lengths only, not on where the
/// keys first differ.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.material.len() == other.material.len()
            && self
                .material
                .iter()
                .zip(other.material.iter())
                .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

impl Eq for Key {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_key_is_its_hex_form() {
        let mut bytes = [0_u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let key = Key::raw(&bytes);
        let text = std::str::from_utf8(key.material()).unwrap_or_default();
        assert_eq!(text.len(), 67);
        assert!(
            text.starts_with("x'ab00") && text.ends_with("0001'"),
            "{text}"
        );
    }

    #[test]
    fn passphrases_that_would_mislead_sqlcipher_are_refused() {
        for bad in [
            String::new(),
            "x'00'".to_owned(),
            "X'41'".to_owned(),
            "a".repeat(Key::MAX_PASSPHRASE_BYTES + 1),
        ] {
            match Key::passphrase(bad) {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "key"),
                other => panic!("expected InvalidInput on key, got {other:?}"),
            }
        }
        assert!(Key::passphrase("a".repeat(Key::MAX_PASSPHRASE_BYTES)).is_ok());
    }

    #[test]
    fn the_secret_is_never_shown() -> Result<()> {
        let key = Key::passphrase("hunter2-secret")?;
        assert!(!format!("{key:?} {key:#?}").contains("hunter2"));
        let mut error = String::new();
        if let Err(e) = Key::passphrase(format!("x'{}'", "hunter2")) {
            error = format!("{e} {e:?}");
        }
        assert!(!error.is_empty() && !error.contains("hunter2"), "{error}");
        Ok(())
    }
}
