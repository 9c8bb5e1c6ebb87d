//! A text's *token signature*: a bit set of its index tokens, which lets a
//! backend that walks texts one by one (PostgreSQL's walks by time) reject
//! most of those without a term in one bit test, before it reads the text
//! or its token list.
//!
//! It holds [`WORD_BITS`] bits for the text's word tokens (CJK tokens
//! included, pairs and [`PAIRS_CUT`](super::tokenize::PAIRS_CUT) not) and
//! [`HEAD_BITS`] for the first [`HEAD_BYTES`] bytes of each word token at
//! least that long. Each token sets one bit ([`word_bit`], [`head_bit`]):
//! a text whose bit for a term is clear cannot hold the term, and a text
//! whose bit is set may (another token may have set it). So a test of the
//! bits admits every text that holds the term, whatever its script: the
//! signature is of the folded tokens the index holds, and a query's terms
//! are folded the same way.
//!
//! The positions are stored in databases: [`fnv1a`] and the layout must
//! never change without a migration that writes every signature again.

use super::query::IndexQuery;

/// Bits for whole word tokens: positions `0..WORD_BITS`.
pub(crate) const WORD_BITS: usize = 512;

/// Bits for the heads of word tokens: positions `WORD_BITS..WORD_BITS + HEAD_BITS`.
pub(crate) const HEAD_BITS: usize = 256;

/// How many bytes of a token make its head; a prefix shorter than this has
/// no bit to test.
pub(crate) const HEAD_BYTES: usize = 4;

/// The bytes of a signature.
pub(crate) const SIGNATURE_BYTES: usize = (WORD_BITS + HEAD_BITS) / 8;

/// A text's token signature, as stored.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Signature([u8; SIGNATURE_BYTES]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({} bits set)", self.count_set())
    }
}

impl Signature {
    /// The signature of a text's index tokens (as
    /// [`each_index_token`](super::tokenize::each_index_token) gives them).
    pub(crate) fn of<'t>(tokens: impl IntoIterator<Item = &'t str>) -> Self {
        let mut bits = [0u8; SIGNATURE_BYTES];
        let mut set = |position: u16| bits[usize::from(position / 8)] |= 1 << (position % 8);
        for token in tokens {
            if is_pair_or_cut(token) {
                continue;
            }
            set(word_bit(token));
            if let Some(head) = head_bit(token) {
                set(head);
            }
        }
        Signature(bits)
    }

    /// The signature of a list of index tokens.
    pub(crate) fn of_list(tokens: &[String]) -> Self {
        Self::of(tokens.iter().map(String::as_str))
    }

    /// The signature of tokens joined by single spaces (as
    /// [`index_text`](super::tokenize::index_text) joins them).
    pub(crate) fn of_joined(tokens: &str) -> Self {
        Self::of(tokens.split(' ').filter(|t| !t.is_empty()))
    }

    /// The stored bytes: bit `p` is bit `p % 8` of byte `p / 8`.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether bit `position` is set.
    #[cfg(test)]
    pub(crate) fn has(&self, position: u16) -> bool {
        self.0
            .get(usize::from(position / 8))
            .is_some_and(|byte| byte & (1 << (position % 8)) != 0)
    }

    fn count_set(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }
}

/// Whether `token` is a pair token or the cut mark (both start with the
/// pair mark), which the signature leaves out: a query asks for words.
fn is_pair_or_cut(token: &str) -> bool {
    token.starts_with(super::tokenize::PAIR_MARK)
}

/// The bit a word token sets.
pub(crate) fn word_bit(token: &str) -> u16 {
    (fnv1a(token.as_bytes()) % WORD_BITS as u64) as u16
}

/// The bit every word token starting with `prefix` sets, when `prefix` is
/// at least [`HEAD_BYTES`] long (a token's own head, for a token).
pub(crate) fn head_bit(prefix: &str) -> Option<u16> {
    let head = prefix.as_bytes().get(..HEAD_BYTES)?;
    Some((WORD_BITS as u64 + fnv1a(head) % HEAD_BITS as u64) as u16)
}

/// The bits a text's signature has set whenever the text is admitted by
/// `index` (every token it requires, the head of every prefix long enough
/// to have one), longest term first: the rarest, as a rule, so the most
/// selective to test first.
pub(crate) fn query_bits(index: &IndexQuery) -> Vec<u16> {
    let mut terms: Vec<(usize, Option<u16>)> = index
        .tokens
        .iter()
        .map(|t| (t.len(), Some(word_bit(t))))
        .chain(index.prefixes.iter().map(|p| (p.len(), head_bit(p))))
        .collect();
    terms.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    let mut bits: Vec<u16> = Vec::with_capacity(terms.len());
    for bit in terms.into_iter().filter_map(|(_, bit)| bit) {
        if !bits.contains(&bit) {
            bits.push(bit);
        }
    }
    bits
}

/// 64-bit FNV-1a: small, fast on short keys, and fixed by its definition
/// (the positions it gives are stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests;
