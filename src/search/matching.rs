//! Whether a text matches a query, where, and how well: decided here, in
//! Rust, for every backend. A backend's index only narrows the texts worth
//! checking ([`IndexQuery`](super::query::IndexQuery)); this check is what
//! makes a hit, so every backend finds the same hits.

use std::ops::Range;

use super::query::{ParsedQuery, QueryWord, Term};
use super::tokenize::{Word, ascii_word_ranges, words};
use crate::limits::SNIPPET_BYTES;

/// Where a text matched and its relevance score.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Matched {
    /// The matched bytes of the text, in order, not overlapping.
    pub(crate) ranges: Vec<Range<usize>>,
    /// Relevance: higher is better.
    pub(crate) score: f64,
}

// BM25's constants, with a fixed typical length (the score must not depend
// on the rest of the store, so that it is the same on every backend).
const K1: f64 = 1.2;
const B: f64 = 0.75;
const TYPICAL_WORDS: f64 = 60.0;
/// A title hit weighs this much more than a message with the same words.
pub(crate) const TITLE_WEIGHT: f64 = 1.5;

/// Matches `text` against `query`: `None` when it does not match.
pub(crate) fn matches(query: &ParsedQuery, text: &str) -> Option<Matched> {
    if text.is_ascii() {
        // Most chat: its words compared in place, ignoring ASCII case, with
        // neither a lowered copy nor a list of words made of it.
        let doc = ascii_word_ranges(text);
        scored(query, doc.len(), |term| ascii_occurrences(term, text, &doc))
    } else {
        matches_by_words(query, text)
    }
}

/// [`matches`] through the text's folded [`words`], for any text.
fn matches_by_words(query: &ParsedQuery, text: &str) -> Option<Matched> {
    let words = words(text);
    let doc: Vec<Word<'_>> = words.iter().collect();
    scored(query, doc.len(), |term| occurrences(term, &doc))
}

/// The match of a text of `length` words in which each term of `query` is
/// found where `occurrences` says.
fn scored(
    query: &ParsedQuery,
    length: usize,
    mut occurrences: impl FnMut(&Term) -> Vec<Range<usize>>,
) -> Option<Matched> {
    let mut ranges = Vec::new();
    let mut score = 0.0;
    let length = length as f64;
    for term in &query.terms {
        let found = occurrences(term);
        if term.excluded {
            if !found.is_empty() {
                return None;
            }
            continue;
        }
        if found.is_empty() {
            return None;
        }
        let tf = found.len() as f64;
        let weight = term.words.len() as f64;
        score += weight * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / TYPICAL_WORDS));
        ranges.extend(found);
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    Some(Matched {
        ranges: merged,
        score,
    })
}

/// [`occurrences`] in an ASCII text whose words are at `doc`: a CJK query
/// word is in no such text, and every other query word, folded, is equal
/// to (or for a prefix starts) a word lowered.
fn ascii_occurrences(term: &Term, text: &str, doc: &[Range<usize>]) -> Vec<Range<usize>> {
    if term.words.iter().any(|w| w.cjk) {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let k = term.words.len();
    let last = k.saturating_sub(1);
    let mut found = Vec::new();
    for window in doc.windows(k.max(1)) {
        let all = term
            .words
            .iter()
            .zip(window)
            .enumerate()
            .all(|(j, (q, d))| {
                let (word, q) = (&bytes[d.clone()], q.text.as_bytes());
                if term.prefix && j == last {
                    word.get(..q.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(q))
                } else {
                    word.eq_ignore_ascii_case(q)
                }
            });
        if all && k > 0 {
            found.push(window[0].start..window[last].end);
        }
    }
    found
}

/// Every place `term` matches in `doc`, as byte ranges of the text.
fn occurrences(term: &Term, doc: &[Word<'_>]) -> Vec<Range<usize>> {
    let words = &term.words;
    if let [word] = words.as_slice()
        && word.cjk
    {
        // A CJK word matches anywhere inside a CJK run.
        return doc
            .iter()
            .filter(|d| d.is_cjk())
            .flat_map(|d| substrings(d, &word.text))
            .collect();
    }
    let k = words.len();
    let mut found = Vec::new();
    for start in 0..doc.len().saturating_sub(k - 1) {
        let window = &doc[start..start + k];
        let mut range = window[0].range.start..window[k - 1].range.end;
        let mut all = true;
        for (j, (q, d)) in words.iter().zip(window).enumerate() {
            let (first, last) = (j == 0, j == k - 1);
            match word_match(q, d, first, last, term.prefix && last) {
                Some(part) => {
                    if first {
                        range.start = part.start;
                    }
                    if last {
                        range.end = part.end;
                    }
                }
                None => {
                    all = false;
                    break;
                }
            }
        }
        if all {
            found.push(range);
        }
    }
    found
}

/// Whether query word `q` matches document word `d` at this place of its
/// term; the bytes of `d` it covers. A CJK word may end a phrase's first
/// run (`first`) and start its last one (`last`), since CJK text has no
/// spaces; inside a phrase, words are equal.
fn word_match(
    q: &QueryWord,
    d: &Word<'_>,
    first: bool,
    last: bool,
    prefix: bool,
) -> Option<Range<usize>> {
    if q.cjk != d.is_cjk() {
        return None;
    }
    if !q.cjk {
        let hit = if prefix {
            d.text.starts_with(&q.text)
        } else {
            d.text == q.text
        };
        return hit.then(|| d.range.clone());
    }
    let (q_chars, d_chars) = (q.text.chars().count(), d.text.chars().count());
    if d.text == q.text {
        return Some(d.range.clone());
    }
    if first && !last && d.text.ends_with(&q.text) {
        return Some(d.char_range(d_chars - q_chars..d_chars));
    }
    if last && !first && d.text.starts_with(&q.text) {
        return Some(d.char_range(0..q_chars));
    }
    None
}

/// Where `needle` occurs in the CJK word `d`, as byte ranges of the text.
fn substrings(d: &Word<'_>, needle: &str) -> Vec<Range<usize>> {
    let chars = needle.chars().count();
    d.text
        .match_indices(needle)
        .map(|(at, _)| {
            let first = d.text[..at].chars().count();
            d.char_range(first..first + chars)
        })
        .collect()
}

/// Of the snippet's bytes,  at most this many before the first match.
const SNIPPET_LEAD: usize = 60;

/// A part of `text` around its first matched range, with the matched ranges
/// inside it (relative to the part): (the part's start in `text`, the
/// part, the ranges).
pub(crate) fn snippet(text: &str, ranges: &[Range<usize>]) -> (usize, String, Vec<Range<usize>>) {
    let first = ranges.first().map_or(0, |r| r.start);
    let mut start = first.saturating_sub(SNIPPET_LEAD);
    // Start after a space when there is one near, and on a character.
    if start > 0
        && let Some(space) = text[floor(text, start)..first].find(char::is_whitespace)
    {
        start = floor(text, start) + space + 1;
    }
    let start = floor(text, start.min(first));
    let mut end = floor(text, (start + SNIPPET_BYTES).min(text.len()));
    if end < text.len()
        && let Some(space) = text[start..end].rfind(char::is_whitespace)
        && space > first.saturating_sub(start)
    {
        end = start + space;
    }
    // The first match is always shown whole.
    if let Some(r) = ranges.first() {
        end = end.max(r.end);
    }
    let highlights = ranges
        .iter()
        .filter(|r| r.start >= start && r.end <= end)
        .map(|r| r.start - start..r.end - start)
        .collect();
    (start, text[start..end].to_owned(), highlights)
}

/// The character boundary at or before `at`.
fn floor(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::*;
    use crate::search::test_random::XorShift;

    fn hit(query: &str, text: &str) -> Option<Vec<String>> {
        let parsed = parse(query).expect("parses");
        matches(&parsed, text).map(|m| {
            m.ranges
                .iter()
                .map(|r| text[r.clone()].to_owned())
                .collect()
        })
    }

    #[test]
    fn words_prefixes_phrases_and_exclusions() {
        let text = "The Storm came; the letter arrived at the harbour.";
        assert_eq!(hit("storm", text).expect("hit"), ["Storm"]);
        assert_eq!(hit("harb*", text).expect("hit"), ["harbour"]);
        assert_eq!(hit("\"THE LETTER\"", text).expect("hit"), ["the letter"]);
        assert_eq!(hit("\"letter the\"", text), None);
        assert_eq!(hit("storm -letter", text), None);
        assert_eq!(hit("storm -\"letter the\"", text).expect("hit"), ["Storm"]);
        assert_eq!(hit("storm rain", text), None);
        assert_eq!(hit("har", text), None);
    }

    #[test]
    fn diacritics_and_cjk() {
        assert_eq!(hit("cafe", "Un café.").expect("hit"), ["café"]);
        assert_eq!(hit("CAFÉ", "cafe").expect("hit"), ["cafe"]);
        assert_eq!(
            hit("東京", "東京タワーに行きました").expect("hit"),
            ["東京"]
        );
        assert_eq!(
            hit("タワー", "東京タワーに行きました").expect("hit"),
            ["タワー"]
        );
        assert_eq!(hit("京", "東京").expect("hit"), ["京"]);
        assert_eq!(hit("서울", "서울에 갔어요").expect("hit"), ["서울"]);
        assert_eq!(
            hit("\"タワー tokyo\"", "東京タワー Tokyo").expect("hit"),
            ["タワー Tokyo"]
        );
        assert_eq!(hit("大阪", "東京タワー"), None);
    }

    #[test]
    fn snippets_keep_the_match_and_its_offsets() {
        let text = format!("{} needle {}", "héllo ".repeat(40), "wörld ".repeat(40));
        let m = matches(&parse("needle").expect("parses"), &text).expect("hit");
        let (start, part, highlights) = snippet(&text, &m.ranges);
        assert!(part.len() <= SNIPPET_BYTES && start > 0);
        assert_eq!(&part[highlights[0].clone()], "needle");
        assert_eq!(&text[start..start + part.len()], part);
    }

    #[test]
    fn an_ascii_text_matches_as_its_folded_words_do() {
        const VOCABULARY: [&str; 12] = [
            "the", "The", "THE", "story", "Story", "stormy", "st0rm", "a1", "x", "tHe", "café",
            "東京",
        ];
        const GLUE: [&str; 6] = [" ", ", ", "-", "'", "  ", "\n"];
        let mut random = XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| random.below(n);
        let (mut compared, mut hits) = (0, 0);
        for _ in 0..4_000 {
            let mut text = String::new();
            for _ in 0..next(30) {
                text.push_str(VOCABULARY[next(10)]);
                text.push_str(GLUE[next(GLUE.len())]);
            }
            let mut query = Vec::new();
            for _ in 0..1 + next(3) {
                let word = |n: usize| VOCABULARY[n].to_owned();
                query.push(match next(5) {
                    0 => format!("\"{} {}\"", word(next(12)), word(next(12))),
                    1 => {
                        let whole = word(next(10));
                        format!("{}*", &whole[..whole.len().min(2 + next(3))])
                    }
                    2 => format!("-{}", word(next(12))),
                    _ => word(next(12)),
                });
            }
            let Ok(parsed) = parse(&query.join(" ")) else {
                continue;
            };
            let fast = matches(&parsed, &text);
            assert_eq!(
                fast,
                matches_by_words(&parsed, &text),
                "{query:?} in {text:?}"
            );
            compared += 1;
            hits += usize::from(fast.is_some());
        }
        assert!(compared > 3_000, "{compared} queries compared");
        assert!(hits > 500, "{hits} of them matched");
    }
}
