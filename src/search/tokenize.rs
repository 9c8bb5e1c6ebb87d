//! The one tokenizer: how a text becomes the words search matches, the same
//! for every backend and for queries.
//!
//! Folding, per character of the text:
//! * Han, Hiragana, Katakana, Hangul and Bopomofo letters (by their Unicode
//!   script extensions) are kept as they are: they are *CJK* characters;
//! * any other character is lowercased (Unicode's full lowercase mapping)
//!   and decomposed by compatibility (NFKD, so `ﬁ` is `fi` and `Ａ` is
//!   `a`); the combining marks this leaves are dropped, which folds
//!   diacritics (`Café` is `cafe`); letters and digits are kept.
//!
//! Every other character (punctuation, symbols, emoji, spaces) separates
//! words. A *word* is then a maximal run of kept non-CJK characters, or a
//! maximal run of CJK characters (written without spaces, so a CJK word is
//! a whole run, searched by substring).
//!
//! What the indexes hold ([`index_tokens`]): each non-CJK word, cut to
//! [`MAX_TOKEN_BYTES`]; for each CJK run its character bigrams and its last
//! character (a run of one: that character). At most [`MAX_INDEX_BYTES`] of
//! distinct tokens per text are indexed (the first ones); words past that in
//! a text longer than any chat message are not found.

use std::collections::HashSet;
use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_script::{Script, UnicodeScript};

use crate::limits::{MAX_INDEX_BYTES, MAX_TOKEN_BYTES};

/// One word of a text: folded, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The folded word.
    pub(crate) text: String,
    /// Its bytes in the original text.
    pub(crate) range: Range<usize>,
    /// For a CJK word: where each of its characters starts in the original
    /// text (CJK characters are kept as they are, one for one); empty for
    /// other words.
    pub(crate) starts: Vec<usize>,
}

impl Word {
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

/// Whether `c` is a CJK letter: kept as it is and searched by substring.
pub(crate) fn is_cjk(c: char) -> bool {
    if !c.is_alphanumeric() {
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
pub(crate) fn words(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    let mut finish = |current: &mut Option<Word>| {
        if let Some(word) = current.take() {
            words.push(word);
        }
    };
    for (at, c) in text.char_indices() {
        let end = at + c.len_utf8();
        if is_cjk(c) {
            match &mut current {
                Some(word) if word.is_cjk() => {
                    word.text.push(c);
                    word.starts.push(at);
                    word.range.end = end;
                }
                _ => {
                    finish(&mut current);
                    current = Some(Word {
                        text: c.to_string(),
                        range: at..end,
                        starts: vec![at],
                    });
                }
            }
            continue;
        }
        for lower in c.to_lowercase() {
            decompose_compatible(lower, |d| {
                if is_combining_mark(d) {
                    // A dropped diacritic neither adds nor separates.
                    if let Some(word) = current.as_mut().filter(|w| !w.is_cjk()) {
                        word.range.end = end;
                    }
                } else if d.is_alphanumeric() && !is_cjk(d) {
                    match &mut current {
                        Some(word) if !word.is_cjk() => {
                            word.text.push(d);
                            word.range.end = end;
                        }
                        _ => {
                            finish(&mut current);
                            current = Some(Word {
                                text: d.to_string(),
                                range: at..end,
                                starts: Vec::new(),
                            });
                        }
                    }
                } else {
                    finish(&mut current);
                }
            });
        }
    }
    finish(&mut current);
    words
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

/// The distinct tokens an index holds for `text`, in order of first
/// appearance, at most [`MAX_INDEX_BYTES`] of them.
pub(crate) fn index_tokens(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut tokens = Vec::new();
    let mut budget = MAX_INDEX_BYTES;
    let mut add = |token: &str| -> bool {
        if seen.contains(token) {
            return true;
        }
        let cost = token.len() + 4;
        if cost > budget {
            return false;
        }
        budget -= cost;
        seen.insert(token.to_owned());
        tokens.push(token.to_owned());
        true
    };
    for word in words(text) {
        let room = if word.is_cjk() {
            let last = word
                .text
                .chars()
                .last()
                .map(String::from)
                .unwrap_or_default();
            bigrams(&word.text).all(&mut add) && add(&last)
        } else {
            add(cut(&word.text))
        };
        if !room {
            break;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn folds_case_diacritics_and_compatibility_forms() {
        assert_eq!(texts("Café CRÈME, naïve!"), ["cafe", "creme", "naive"]);
        assert_eq!(texts("ﬁne ＡＢＣ Straße"), ["fine", "abc", "straße"]);
        assert_eq!(texts("İstanbul"), ["istanbul"]);
    }

    #[test]
    fn punctuation_symbols_and_emoji_separate() {
        assert_eq!(
            texts("can't e-mail 3.14 🙂ok"),
            ["can", "t", "e", "mail", "3", "14", "ok"]
        );
        assert_eq!(
            texts("SELECT * FROM t WHERE a='x'"),
            ["select", "from", "t", "where", "a", "x"]
        );
        assert!(texts(" ,.;🙂 ").is_empty());
    }

    #[test]
    fn ranges_point_at_the_original_bytes() {
        let text = "Un café, s'il vous plaît";
        for word in words(text) {
            let original = &text[word.range.clone()];
            assert_eq!(
                texts(original),
                std::slice::from_ref(&word.text),
                "{original:?}"
            );
        }
        assert_eq!(&text[words(text)[1].range.clone()], "café");
    }

    #[test]
    fn cjk_runs_are_words_of_their_own() {
        let w = words("東京タワーに行きました。Tokyo 서울에");
        let t: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(t, ["東京タワーに行きました", "tokyo", "서울에"]);
        assert!(w[0].is_cjk() && !w[1].is_cjk() && w[2].is_cjk());
        let text = "東京タワーに行きました。Tokyo 서울에";
        assert_eq!(&text[w[0].char_range(2..5)], "タワー");
    }

    #[test]
    fn index_tokens_are_words_bigrams_and_run_ends() {
        assert_eq!(
            index_tokens("東京タワー tower Tower"),
            ["東京", "京タ", "タワ", "ワー", "ー", "tower"]
        );
        assert_eq!(index_tokens("東 x"), ["東", "x"]);
        let long = "a".repeat(200);
        assert_eq!(index_tokens(&long), [cut(&long).to_owned()]);
        assert_eq!(cut(&"é".repeat(40)).len(), 64);
    }

    #[test]
    fn index_tokens_are_bounded() {
        let text: String = (0..200_000).map(|i| format!("w{i} ")).collect();
        let tokens = index_tokens(&text);
        let bytes: usize = tokens.iter().map(|t| t.len() + 4).sum();
        assert!(
            bytes <= MAX_INDEX_BYTES && bytes > MAX_INDEX_BYTES - 100,
            "{bytes}"
        );
    }
}
