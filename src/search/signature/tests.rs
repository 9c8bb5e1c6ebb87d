//! The token signature's unit tests.

use super::*;
use crate::search::query::parse;
use crate::search::test_random::XorShift;
use crate::search::tokenize::{PAIRS_CUT, index_text, index_tokens, pair_token};

/// The hash is stored (as bit positions): FNV-1a's published test vectors.
#[test]
fn the_hash_is_fnv1a() {
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn words_set_their_bit_and_their_head_s() {
    let signature = Signature::of(["time", "of", "chapter"]);
    for word in ["time", "of", "chapter"] {
        assert!(signature.has(word_bit(word)), "{word}");
    }
    for head in ["time", "chap", "chapt", "chapter", "chapters"] {
        assert!(signature.has(head_bit(head).unwrap()), "{head}");
    }
    assert_eq!(head_bit("of"), None, "shorter than a head");
    assert_eq!(head_bit("cha"), None);
    assert!((WORD_BITS..WORD_BITS + HEAD_BITS).contains(&usize::from(head_bit("time").unwrap())));
    assert!(usize::from(word_bit("time")) < WORD_BITS);
    assert_eq!(signature.count_set(), 5, "three words, two heads");
    assert_eq!(signature.as_bytes().len(), SIGNATURE_BYTES);
}

#[test]
fn pairs_and_the_cut_mark_set_nothing() {
    let pair = pair_token("the", "story");
    assert_eq!(Signature::of([pair.as_str(), PAIRS_CUT]).count_set(), 0);
    assert_eq!(Signature::of([]), Signature::of_joined(""));
    let text = "The story, the STORY: 東京タワー";
    assert_eq!(
        Signature::of_list(&index_tokens(text)),
        Signature::of_joined(&index_text(text))
    );
}

#[test]
fn query_bits_are_the_longest_terms_first_without_repeats() {
    let index = parse("of chapt* time of \"time of\" ab*")
        .unwrap()
        .index_query();
    assert_eq!(
        query_bits(&index),
        [head_bit("chapt").unwrap(), word_bit("time"), word_bit("of")]
    );
    let cjk = parse("東京").unwrap().index_query();
    assert_eq!(query_bits(&cjk), [word_bit("東京")]);
}

/// What the walks rely on: a text the index admits for a query has every
/// bit of the query set, whatever its script, case, accents or length.
#[test]
fn a_text_the_index_admits_has_every_bit_of_the_query() {
    const VOCABULARY: [&str; 16] = [
        "time",
        "Time",
        "TIMES",
        "chapter",
        "Chäpter",
        "ｃｈａｐ",
        "of",
        "a1",
        "café",
        "CAFÉ",
        "東京タワー",
        "東京",
        "𝐇𝐄𝐋𝐋𝐎",
        "straße",
        "Ⅻ",
        "z",
    ];
    const GLUE: [&str; 5] = [" ", ", ", "-", "  ", "\n"];
    let long = "Ab".repeat(40);
    let mut random = XorShift::new(0x51_1a_2b_3c);
    let mut next = |n: usize| random.below(n);
    let (mut admitted, mut rejected_by_bits, mut not_admitted) = (0, 0, 0);
    for _ in 0..6_000 {
        let mut text = String::new();
        for _ in 0..next(25) {
            text.push_str(if next(40) == 0 {
                &long
            } else {
                VOCABULARY[next(16)]
            });
            text.push_str(GLUE[next(GLUE.len())]);
        }
        let signature = Signature::of_list(&index_tokens(&text));
        let mut query = Vec::new();
        for _ in 0..1 + next(3) {
            let word = VOCABULARY[next(16)];
            query.push(match next(4) {
                0 => format!("\"{} {}\"", word, VOCABULARY[next(16)]),
                1 => {
                    let end = word
                        .char_indices()
                        .nth(2 + next(4))
                        .map_or(word.len(), |c| c.0);
                    format!("{}*", &word[..end])
                }
                2 if next(2) == 0 => format!("{long}*"),
                _ => word.to_owned(),
            });
        }
        let Ok(parsed) = parse(&query.join(" ")) else {
            continue;
        };
        let index = parsed.index_query();
        let bits = query_bits(&index);
        if index.admits(&text) {
            admitted += 1;
            for bit in &bits {
                assert!(signature.has(*bit), "{query:?} in {text:?}: bit {bit}");
            }
        } else {
            not_admitted += 1;
            rejected_by_bits += usize::from(bits.iter().any(|b| !signature.has(*b)));
        }
    }
    assert!(admitted > 1_000, "{admitted} texts admitted");
    // Most texts without a term are out at the bits (a few have the bit
    // set by another token, or lack only a pair, which sets none).
    assert!(
        rejected_by_bits * 2 > not_admitted,
        "{rejected_by_bits} of {not_admitted} rejected by the bits"
    );
}
