//! The one tokenizer: how a text becomes the words search matches, the same
//! for every backend and for queries.
//!
//! Folding, per character of the text:
//! * Han, Hiragana, Katakana, Hangul and Bopomofo letters (by their Unicode
//!   script extensions) are kept as they are: they are *CJK* characters;
//! * any other character is decomposed by compatibility (NFKD, so `ﬁ` is
//!   `fi` and `Ａ` is `A`) and then lowercased (Unicode's full lowercase
//!   mapping, so `𝐇` is `h`); the combining marks this leaves are dropped,
//!   which folds diacritics (`Café` is `cafe`); letters and digits are
//!   kept.
//!
//! Every other character (punctuation, symbols, emoji, spaces) separates
//! words. A *word* is then a maximal run of kept non-CJK characters, or a
//! maximal run of CJK characters (written without spaces, so a CJK word is
//! a whole run, searched by substring).
//!
//! What the indexes hold ([`index_tokens`]): each non-CJK word, cut to
//! [`MAX_TOKEN_BYTES`]; for each CJK run its character bigrams and its last
//! character (a run of one: that character); then, for each two non-CJK
//! words one right after the other, a *pair* token ([`pair_token`]), which
//! lets an index answer a phrase of common words (`"the story"`) with the
//! texts holding it rather than every text holding both words. At most
//! [`MAX_INDEX_BYTES`] of distinct tokens per text are indexed (words
//! first, then pairs); words past that in a text longer than any chat
//! message are not found, and a text whose pairs did not all fit holds
//! [`PAIRS_CUT`] instead, which a phrase admits by its words alone.

use std::collections::HashSet;
use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_script::{Script, UnicodeScript};

use crate::limits::{MAX_INDEX_BYTES, MAX_TOKEN_BYTES};

/// One word of a text: folded, with where it came from (borrowed from the
/// text's [`Words`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word<'a> {
    /// The folded word.
    pub(crate) text: &'a str,
    /// Its bytes in the original text.
    pub(crate) range: Range<usize>,
    /// For a CJK word: where each of its characters starts in the original
    /// text (CJK characters are kept as they are, one for one); empty for
    /// other words.
    starts: &'a [usize],
}

impl Word<'_> {
    /// Whether this is a run of CJK characters.
    pub(crate) fn is_cjk(&self) -> bool {
        !self.starts.is_empty()
    }

    /// The original bytes of the characters `chars` of a CJK word.
    pub(crate) fn char_range(&self, chars: Range<usize>) -> Range<usize> {
        let start = self
            .starts
            .get(chars.start)
            .copied()
            .unwrap_or(self.range.end);
        let end = self
            .starts
            .get(chars.end)
            .copied()
            .unwrap_or(self.range.end);
        start..end
    }
}

/// The words of a text, in order, their folded texts in one buffer (a
/// text's words cost three allocations, not one or two each).
#[derive(Debug, Default)]
pub(crate) struct Words {
    folded: String,
    starts: Vec<usize>,
    spans: Vec<Span>,
}

/// Where one word is: in the folded buffer, in the text, in `starts`.
#[derive(Debug, Clone)]
struct Span {
    folded: Range<usize>,
    range: Range<usize>,
    starts: Range<usize>,
}

impl Words {
    /// The words, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Word<'_>> {
        self.spans.iter().map(|span| Word {
            text: &self.folded[span.folded.clone()],
            range: span.range.clone(),
            starts: &self.starts[span.starts.clone()],
        })
    }

    /// Continues the open word of kind `cjk` with `c` (from the text's
    /// bytes `at..end`), or opens a new one.
    fn push(&mut self, c: char, at: usize, end: usize, cjk: bool, open: &mut bool) {
        let continues = *open
            && self
                .spans
                .last()
                .is_some_and(|span| span.starts.is_empty() != cjk);
        if !continues {
            let (f, st) = (self.folded.len(), self.starts.len());
            self.spans.push(Span {
                folded: f..f,
                range: at..end,
                starts: st..st,
            });
            *open = true;
        }
        self.folded.push(c);
        if cjk {
            self.starts.push(at);
        }
        if let Some(span) = self.spans.last_mut() {
            span.folded.end = self.folded.len();
            span.range.end = end;
            span.starts.end = self.starts.len();
        }
    }
}

/// Below this code point no letter is CJK (the first is U+02C7, the caron,
/// which Bopomofo uses as a tone mark; `no_cjk_letter_below_the_bound` checks every one): the
/// script tables, most of the tokenizer's time, are skipped for them.
const FIRST_CJK: u32 = 0x2C7;

/// Whether `c` is a CJK letter: kept as it is and searched by substring.
pub(crate) fn is_cjk(c: char) -> bool {
    if (c as u32) < FIRST_CJK || !c.is_alphanumeric() {
        return false;
    }
    let scripts = c.script_extension();
    // Common and Inherited characters (digits, say) "contain" every script.
    if scripts.is_common() || scripts.is_inherited() {
        return false;
    }
    [
        Script::Han,
        Script::Hiragana,
        Script::Katakana,
        Script::Hangul,
        Script::Bopomofo,
    ]
    .into_iter()
    .any(|s| scripts.contains_script(s))
}

/// The words of `text`, in order.
pub(crate) fn words(text: &str) -> Words {
    if text.is_ascii() {
        ascii_words(text)
    } else {
        words_by_character(text)
    }
}

/// [`words`] of an ASCII text (most chat): its runs of ASCII letters and
/// digits, in lower case, which is what the loop of
/// [`words_by_character`] gives ASCII; found by a scan of the bytes
/// ([`ascii_word_ranges`]) and lowered in one copy, without pushing each
/// character.
fn ascii_words(text: &str) -> Words {
    let spans = ascii_word_ranges(text)
        .into_iter()
        .map(|range| Span {
            folded: range.clone(),
            range,
            starts: 0..0,
        })
        .collect();
    Words {
        folded: text.to_ascii_lowercase(),
        starts: Vec::new(),
        spans,
    }
}

/// Where the [`words`] of an ASCII text are: its runs of ASCII letters and
/// digits (each, lowered, a word), as byte ranges.
pub(crate) fn ascii_word_ranges(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    // About one word in six bytes of prose; a guess, not a bound.
    let mut ranges = Vec::with_capacity(bytes.len() / 4 + 1);
    let mut start = None;
    for (at, byte) in bytes.iter().enumerate() {
        match (byte.is_ascii_alphanumeric(), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                ranges.push(from..at);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        ranges.push(from..bytes.len());
    }
    ranges
}

/// The words of an ASCII text as written (fold them by ASCII case): its
/// runs of ASCII letters and digits, in order. The one place that says
/// what a word of ASCII text is, for [`words`], [`each_index_token`] and
/// [`ascii_tokens`].
fn ascii_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
}

/// [`words`] of any text, one character at a time.
fn words_by_character(text: &str) -> Words {
    let mut words = Words {
        folded: String::with_capacity(text.len()),
        ..Words::default()
    };
    // Whether the last word may go on (no separator since).
    let mut open = false;
    for (at, c) in text.char_indices() {
        let end = at + c.len_utf8();
        if c.is_ascii() {
            // Nothing to decompose, no diacritic, no CJK.
            if c.is_ascii_alphanumeric() {
                words.push(c.to_ascii_lowercase(), at, end, false, &mut open);
            } else {
                open = false;
            }
            continue;
        }
        if is_cjk(c) {
            words.push(c, at, end, true, &mut open);
            continue;
        }
        each_folded(c, |d| {
            if is_combining_mark(d) {
                // A dropped diacritic neither adds nor separates.
                if open && let Some(span) = words.spans.last_mut() {
                    span.range.end = end;
                }
            } else if d.is_alphanumeric() && !is_cjk(d) {
                words.push(d, at, end, false, &mut open);
            } else {
                open = false;
            }
        });
    }
    words
}

/// The characters non-CJK `c` folds to: decomposed by compatibility, each
/// part lowercased, and what that gives decomposed again. Lowercasing
/// after the decomposition folds the letters it yields (`𝐇` is `H`, so
/// `h`; `🄰` is `A`, so `a`): lowercasing first left them upper case, and
/// backends that match tokens exactly missed them.
fn each_folded(c: char, mut f: impl FnMut(char)) {
    decompose_compatible(c, |part| {
        for lower in part.to_lowercase() {
            decompose_compatible(lower, &mut f);
        }
    });
}

/// `word` cut to at most [`MAX_TOKEN_BYTES`], on a character boundary.
pub(crate) fn cut(word: &str) -> &str {
    if word.len() <= MAX_TOKEN_BYTES {
        return word;
    }
    let mut end = MAX_TOKEN_BYTES;
    while !word.is_char_boundary(end) {
        end -= 1;
    }
    &word[..end]
}

/// The character bigrams of a CJK run (none for a run of one character).
pub(crate) fn bigrams(run: &str) -> impl Iterator<Item = &str> {
    let starts: Vec<usize> = run.char_indices().map(|(i, _)| i).collect();
    let ends: Vec<usize> = starts.iter().skip(2).copied().chain([run.len()]).collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(move |&(start, end)| run[start..end].chars().count() == 2)
        .map(move |(start, end)| &run[start..end])
}

/// The tokens a word gives an index: a CJK run's bigrams and last
/// character, or the word cut to [`MAX_TOKEN_BYTES`].
fn word_tokens<'a>(word: &Word<'a>) -> impl Iterator<Item = &'a str> + use<'a> {
    let (run, plain) = if word.is_cjk() {
        (word.text, None)
    } else {
        ("", Some(cut(word.text)))
    };
    let last = run.char_indices().last().map(|(i, _)| &run[i..]);
    bigrams(run).chain(last).chain(plain)
}

/// What starts a pair token and separates its two words: a character no
/// token of a word holds (they hold letters and digits only) and that
/// SQLite's `ascii` tokenizer keeps inside a token (it is not ASCII). A
/// pair token never starts like a word, so a prefix query's terms are
/// words only.
pub(crate) const PAIR_MARK: char = '\u{b7}';

/// The schema version from which every index entry holds its text's pair
/// tokens (migration V10 indexed every text again). Below it, a phrase is
/// asked of an index by its words.
pub(crate) const PAIRS_SINCE_VERSION: i64 = 10;

/// The index token of words `first` and `second` (tokens, so cut) one
/// right after the other: `·first·second`.
pub(crate) fn pair_token(first: &str, second: &str) -> String {
    let mut token = String::with_capacity(first.len() + second.len() + 2 * PAIR_MARK.len_utf8());
    push_pair(&mut token, first, second);
    token
}

fn push_pair(buffer: &mut String, first: &str, second: &str) {
    buffer.push(PAIR_MARK);
    buffer.push_str(first);
    buffer.push(PAIR_MARK);
    buffer.push_str(second);
}

/// The token an index holds for a text whose pairs did not all fit in
/// [`MAX_INDEX_BYTES`] (a text of tens of thousands of words): the mark
/// alone, which no word or pair token is. A phrase admits such a text by
/// its words (see [`IndexQuery`](super::query::IndexQuery)).
pub(crate) const PAIRS_CUT: &str = "\u{b7}";

/// Whether `token` is the [`pair_token`] of `first` and `second` (ASCII
/// compared ignoring case, as the index's ASCII tokens are).
pub(crate) fn is_pair_token(token: &str, first: &str, second: &str) -> bool {
    let Some(rest) = token.strip_prefix(PAIR_MARK) else {
        return false;
    };
    match (rest.get(..first.len()), rest.get(first.len()..)) {
        (Some(head), Some(tail)) => {
            head.eq_ignore_ascii_case(first)
                && tail
                    .strip_prefix(PAIR_MARK)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(second))
        }
        _ => false,
    }
}

/// Calls `each` with the distinct tokens an index holds for `text`, words
/// in order of first appearance and then pairs, at most
/// [`MAX_INDEX_BYTES`] of them; then [`PAIRS_CUT`] if a pair did not fit.
pub(crate) fn each_index_token(text: &str, each: impl FnMut(&str)) {
    if text.is_ascii() {
        // Most chat text: its words are its runs of ASCII letters and
        // digits, in lower case (what `words` gives ASCII), found without
        // building the words one character at a time.
        let lowered = text.to_ascii_lowercase();
        let pairs = pairs(ascii_runs(&lowered).map(|w| Some(cut(w))));
        words_then_pairs(ascii_runs(&lowered).map(cut), &pairs, each);
    } else {
        each_token_of_words(text, each);
    }
}

/// [`each_index_token`] through [`words`], for any text.
fn each_token_of_words(text: &str, each: impl FnMut(&str)) {
    each_token_in(&words(text), each);
}

/// The index tokens of a text's `words`.
fn each_token_in(words: &Words, each: impl FnMut(&str)) {
    let pairs = pairs(words.iter().map(|w| (!w.is_cjk()).then(|| cut(w.text))));
    words_then_pairs(words.iter().flat_map(|w| word_tokens(&w)), &pairs, each);
}

/// Calls `each` with the distinct word tokens, then the distinct pairs,
/// while they fit in the budget; then [`PAIRS_CUT`] if one did not.
fn words_then_pairs<'t>(
    words: impl Iterator<Item = &'t str>,
    pairs: &'t Pairs,
    mut each: impl FnMut(&str),
) {
    let mut budget = Budget::new();
    if !(budget.take(words, &mut each) && budget.take(pairs.iter(), &mut each)) {
        each(PAIRS_CUT);
    }
}

/// The pair tokens of words one right after the other (`None`: a CJK
/// word, which pairs with neither neighbour), in one buffer.
fn pairs<'w>(words: impl Iterator<Item = Option<&'w str>>) -> Pairs {
    let mut pairs = Pairs::default();
    let mut last: Option<&str> = None;
    for word in words {
        if let (Some(first), Some(second)) = (last, word) {
            let start = pairs.buffer.len();
            push_pair(&mut pairs.buffer, first, second);
            pairs.ends.push(start..pairs.buffer.len());
        }
        last = word;
    }
    pairs
}

/// Pair tokens, kept in one buffer.
#[derive(Default)]
struct Pairs {
    buffer: String,
    ends: Vec<Range<usize>>,
}

impl Pairs {
    fn iter(&self) -> impl Iterator<Item = &str> {
        self.ends.iter().map(|r| &self.buffer[r.clone()])
    }
}

/// The distinct tokens given so far and the bytes left for more: each
/// token costs its length and 4 bytes, out of [`MAX_INDEX_BYTES`] less
/// what [`PAIRS_CUT`] would cost.
struct Budget<'t> {
    seen: HashSet<&'t str, foldhash::fast::RandomState>,
    left: usize,
}

impl<'t> Budget<'t> {
    fn new() -> Self {
        Budget {
            seen: HashSet::with_capacity_and_hasher(64, Default::default()),
            left: MAX_INDEX_BYTES - CUT_COST,
        }
    }

    /// Calls `each` with the `tokens` not seen before while they fit;
    /// false once one did not (the budget is spent).
    fn take(&mut self, tokens: impl Iterator<Item = &'t str>, each: &mut impl FnMut(&str)) -> bool {
        for token in tokens {
            if !self.seen.insert(token) {
                continue;
            }
            let cost = token.len() + 4;
            if cost > self.left {
                return false;
            }
            self.left -= cost;
            each(token);
        }
        true
    }
}

/// What [`PAIRS_CUT`] costs of the budget.
const CUT_COST: usize = PAIRS_CUT.len() + 4;

/// The distinct tokens an index holds for `text`, in order of first
/// appearance, at most [`MAX_INDEX_BYTES`] of them.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // PostgreSQL's arrays, and tests
pub(crate) fn index_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    each_index_token(text, |t| tokens.push(t.to_owned()));
    tokens
}

/// The word tokens of a text of ASCII letters, digits and punctuation
/// only, as written (fold them by ASCII case), with repeats: the words
/// [`each_index_token`] gives, without building them (its pairs are those
/// of the words one right after the other). `None` for other text, and for
/// text long enough that its tokens could exceed [`MAX_INDEX_BYTES`]: a
/// text of `n` bytes has at most `(n + 1) / 2` words, each costing its
/// length and 4 bytes, and one pair fewer, each costing its words' lengths
/// and 8 (its marks and 4): `9n - 2` in all, which must fit beside
/// [`PAIRS_CUT`]'s cost.
pub(crate) fn ascii_tokens(text: &str) -> Option<impl Iterator<Item = &str>> {
    if !text.is_ascii() || text.len() > (MAX_INDEX_BYTES - CUT_COST) / 9 {
        return None;
    }
    Some(ascii_runs(text).map(cut))
}

/// [`index_tokens`] joined by spaces.
#[allow(dead_code)] // unused in a memory-only build
pub(crate) fn index_text(text: &str) -> String {
    let mut joined = String::with_capacity(text.len());
    each_index_token(text, |t| {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(t);
    });
    joined
}

#[cfg(test)]
mod tests;
