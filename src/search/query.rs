//! The query language, parsed once for every backend.
//!
//! A query is terms separated by white space; every term not excluded must
//! match, no excluded one may:
//!
//! | term | matches a text that |
//! |---|---|
//! | `word` | has the word (folded as [`tokenize`](super::tokenize) says) |
//! | `"two words"` | has the words one after the other |
//! | `wor*` | has a word starting with `wor` (at least 2 characters) |
//! | `-word`, `-"two words"`, `-wor*` | does not match the term |
//! | `東京` (CJK) | has the characters together, anywhere in a run of CJK text |
//!
//! A term's punctuation separates words like white space does, so `e-mail`
//! is the phrase `"e mail"`; a term with no words (only punctuation or
//! emoji) is ignored. An unclosed quote runs to the end of the query. Every
//! string parses to a query or to [`Error::InvalidInput`] naming `query`.

use std::cell::RefCell;

use super::tokenize::{
    PAIRS_CUT, ascii_tokens, bigrams, cut, each_index_token, is_pair_token, pair_token, words,
};
use crate::error::{Error, Result};
use crate::limits::{MAX_QUERY_BYTES, MAX_QUERY_TERMS};

/// One word of a term, folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryWord {
    pub(crate) text: String,
    pub(crate) cjk: bool,
}

/// One term: a word, a prefix or a phrase, maybe excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) excluded: bool,
    /// One word, or a phrase's words in order.
    pub(crate) words: Vec<QueryWord>,
    /// Whether the last word is a prefix.
    pub(crate) prefix: bool,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedQuery {
    pub(crate) terms: Vec<Term>,
}

/// What a text's index tokens must hold for the text to be worth checking:
/// a condition every matching text meets (the check itself is
/// [`matching`](super::matching)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct IndexQuery {
    /// Tokens that must all be there.
    pub(crate) tokens: Vec<String>,
    /// Words (of `tokens`) that must be there one right after the other: a
    /// phrase's, as [`pair_token`]s.
    pub(crate) pairs: Vec<(String, String)>,
    /// Prefixes that each must start some token.
    pub(crate) prefixes: Vec<String>,
    /// Tokens that must not be there.
    pub(crate) excluded: Vec<String>,
}

impl IndexQuery {
    /// The tokens an index must hold for a text to be admitted (excluded
    /// and prefixes aside): each pair's token, and the tokens no pair
    /// holds (an index holds a pair only with its words); or else the
    /// [`fallback`](Self::fallback).
    pub(crate) fn required(&self) -> Vec<String> {
        let paired = |t: &String| self.pairs.iter().any(|(a, b)| a == t || b == t);
        self.tokens
            .iter()
            .filter(|t| !paired(t))
            .cloned()
            .chain(self.pairs.iter().map(|(a, b)| pair_token(a, b)))
            .collect()
    }

    /// What also admits a text when a query has pairs: every token and
    /// [`PAIRS_CUT`], which a text holds whose pairs did not all fit in its
    /// index. `None` for a query without pairs.
    pub(crate) fn fallback(&self) -> Option<Vec<String>> {
        // The mark first: an array walk rejects a text without it at once.
        (!self.pairs.is_empty()).then(|| {
            let mut all = vec![PAIRS_CUT.to_owned()];
            all.extend(self.tokens.iter().cloned());
            all
        })
    }

    /// Whether `text`'s index tokens meet the condition (what an index
    /// would answer), reading them once, without keeping them.
    pub(crate) fn admits(&self, text: &str) -> bool {
        match ascii_tokens(text) {
            // Most chat text: words as written, compared ignoring case. A
            // token or prefix wanted is then somewhere in the text as
            // written: most texts lack one, and are out at a glance.
            Some(_) if !self.all_wanted_in(text) => false,
            Some(tokens) => {
                let mut check = Admission::new(self);
                let mut last = None;
                for token in tokens {
                    check.see(token);
                    if let Some(first) = last {
                        check.see_after(first, token);
                    }
                    last = Some(token);
                }
                check.admitted()
            }
            None => {
                let mut check = Admission::new(self);
                each_index_token(text, |t| check.see(t));
                check.admitted()
            }
        }
    }

    /// Whether every token and prefix wanted is somewhere in ASCII `text`
    /// (ignoring case): a condition of its tokens holding them, checked
    /// by the standard library's vectorised search rather than by reading
    /// the words. (The query's tokens are folded: an ASCII one is in
    /// lower case, and no other is in ASCII text.) The text is lowered
    /// into this thread's buffer, kept from call to call: a walk checks
    /// thousands of texts.
    fn all_wanted_in(&self, text: &str) -> bool {
        thread_local! {
            static LOWERED: RefCell<String> = const { RefCell::new(String::new()) };
        }
        let check = |lowered: &mut String| {
            lowered.clear();
            lowered.push_str(text);
            lowered.make_ascii_lowercase();
            self.tokens
                .iter()
                .chain(&self.prefixes)
                .all(|t| lowered.contains(t.as_str()))
        };
        LOWERED
            .try_with(|buffer| match buffer.try_borrow_mut() {
                Ok(mut lowered) => {
                    let admitted = check(&mut lowered);
                    // A long text's buffer is not kept.
                    if lowered.capacity() > KEPT_BUFFER_BYTES {
                        *lowered = String::new();
                    }
                    admitted
                }
                Err(_) => check(&mut String::new()),
            })
            .unwrap_or_else(|_| check(&mut String::new()))
    }
}

/// The largest buffer [`IndexQuery::all_wanted_in`] keeps for its thread.
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

/// What [`IndexQuery::admits`] has seen of a text's tokens so far.
struct Admission<'q> {
    query: &'q IndexQuery,
    tokens: Vec<bool>,
    pairs: Vec<bool>,
    /// Whether the text holds [`PAIRS_CUT`].
    pairs_cut: bool,
    prefixes: Vec<bool>,
    excluded: bool,
}

impl<'q> Admission<'q> {
    fn new(query: &'q IndexQuery) -> Self {
        Admission {
            query,
            tokens: vec![false; query.tokens.len()],
            pairs: vec![false; query.pairs.len()],
            pairs_cut: false,
            prefixes: vec![false; query.prefixes.len()],
            excluded: false,
        }
    }

    /// Words `first` and `token` one right after the other in an ASCII
    /// text, as written (the pair token its index holds).
    fn see_after(&mut self, first: &str, token: &str) {
        for (seen, (a, b)) in self.pairs.iter_mut().zip(&self.query.pairs) {
            *seen |= first.eq_ignore_ascii_case(a) && token.eq_ignore_ascii_case(b);
        }
    }

    /// One token of the text: folded, or ASCII as written (the query's
    /// are folded, so comparing ignoring ASCII case is the same).
    fn see(&mut self, token: &str) {
        let starts = |p: &str| {
            token.len() >= p.len() && token.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        };
        for (seen, t) in self.tokens.iter_mut().zip(&self.query.tokens) {
            *seen |= token.eq_ignore_ascii_case(t);
        }
        for (seen, (a, b)) in self.pairs.iter_mut().zip(&self.query.pairs) {
            *seen |= is_pair_token(token, a, b);
        }
        self.pairs_cut |= token == PAIRS_CUT;
        for (seen, p) in self.prefixes.iter_mut().zip(&self.query.prefixes) {
            *seen |= starts(p);
        }
        self.excluded |= self
            .query
            .excluded
            .iter()
            .any(|t| token.eq_ignore_ascii_case(t));
    }

    fn admitted(self) -> bool {
        !self.excluded
            && self.tokens.into_iter().all(|s| s)
            && (self.pairs_cut || self.pairs.into_iter().all(|s| s))
            && self.prefixes.into_iter().all(|s| s)
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid("query", reason.into())
}

/// Parses `text`.
pub(crate) fn parse(text: &str) -> Result<ParsedQuery> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(invalid(format!(
            "is {} bytes long; at most {MAX_QUERY_BYTES} are searched",
            text.len()
        )));
    }
    let mut terms = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let excluded = rest.starts_with('-');
        if excluded {
            rest = &rest[1..];
        }
        let (raw, prefix);
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            raw = &quoted[..end];
            rest = quoted.get(end + 1..).unwrap_or("");
            prefix = rest.starts_with('*');
            rest = rest.trim_start_matches('*');
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let bare = &rest[..end];
            rest = &rest[end..];
            raw = bare.trim_end_matches('*');
            prefix = raw.len() < bare.len();
        }
        let words: Vec<QueryWord> = words(raw)
            .iter()
            .map(|w| QueryWord {
                cjk: w.is_cjk(),
                text: w.text.to_owned(),
            })
            .collect();
        let Some(last) = words.last() else { continue };
        if prefix && !last.cjk && last.text.chars().count() < 2 {
            return Err(invalid(format!(
                "the prefix {:?} is too short: a prefix needs at least 2 characters",
                last.text
            )));
        }
        terms.push(Term {
            excluded,
            words,
            prefix,
        });
        if terms.len() > MAX_QUERY_TERMS {
            return Err(invalid(format!("has more than {MAX_QUERY_TERMS} terms")));
        }
    }
    if !terms.iter().any(|t| !t.excluded) {
        return Err(invalid(
            "has no word to search for (only punctuation, or only excluded terms)",
        ));
    }
    Ok(ParsedQuery { terms })
}

impl ParsedQuery {
    /// The condition on index tokens that every matching text meets.
    pub(crate) fn index_query(&self) -> IndexQuery {
        let mut index = IndexQuery::default();
        for term in &self.terms {
            if term.excluded {
                // Only a lone whole word is decided by its token alone.
                if let [word] = term.words.as_slice()
                    && !word.cjk
                    && !term.prefix
                    && cut(&word.text).len() == word.text.len()
                {
                    push_new(&mut index.excluded, &word.text);
                }
                continue;
            }
            let last = term.words.len() - 1;
            // Words one right after the other, neither CJK nor a prefix.
            for (i, pair) in term.words.windows(2).enumerate() {
                let into_prefix = term.prefix && i + 1 == last;
                if !(pair[0].cjk || pair[1].cjk || into_prefix) {
                    let pair = (cut(&pair[0].text).to_owned(), cut(&pair[1].text).to_owned());
                    if !index.pairs.contains(&pair) {
                        index.pairs.push(pair);
                    }
                }
            }
            for (i, word) in term.words.iter().enumerate() {
                if word.cjk {
                    if word.text.chars().count() == 1 {
                        // A character is the start of a bigram, or a run's last.
                        push_new(&mut index.prefixes, &word.text);
                    }
                    for bigram in bigrams(&word.text) {
                        push_new(&mut index.tokens, bigram);
                    }
                } else if term.prefix && i == last {
                    push_new(&mut index.prefixes, cut(&word.text));
                } else {
                    push_new(&mut index.tokens, cut(&word.text));
                }
            }
        }
        // A token that is there is a prefix that is there.
        let tokens = index.tokens.clone();
        index
            .prefixes
            .retain(|p| !tokens.iter().any(|t| t.starts_with(p.as_str())));
        index
    }
}

fn push_new(list: &mut Vec<String>, token: &str) {
    if !list.iter().any(|t| t == token) {
        list.push(token.to_owned());
    }
}

#[cfg(test)]
mod tests;
