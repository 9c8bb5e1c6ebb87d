//! The query parser's and index condition's unit tests.

use super::*;

/// The ASCII path of `admits` answers as the folding tokenizer's
/// tokens do, on text of every shape: cases, digits, punctuation,
/// repeats, words longer than a token.
#[test]
fn ascii_text_is_admitted_as_its_folded_tokens_say() {
    use crate::search::tokenize::index_tokens;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let pieces = [
        "ab",
        "AB",
        "abc",
        "Abd",
        "b",
        "9",
        "x1",
        " ",
        "-",
        ".",
        "''",
        &"Q".repeat(70),
    ];
    let queries = [
        IndexQuery {
            tokens: vec!["ab".into()],
            ..Default::default()
        },
        IndexQuery {
            tokens: vec!["abc".into(), "9".into()],
            ..Default::default()
        },
        IndexQuery {
            prefixes: vec!["ab".into()],
            excluded: vec!["b".into()],
            ..Default::default()
        },
        IndexQuery {
            tokens: vec!["q".repeat(64)],
            ..Default::default()
        },
        IndexQuery {
            prefixes: vec!["qqq".into(), "x".into()],
            ..Default::default()
        },
        IndexQuery {
            tokens: vec!["ab".into(), "abc".into()],
            pairs: vec![("ab".into(), "abc".into())],
            ..Default::default()
        },
        IndexQuery {
            tokens: vec!["ab".into(), "b".into(), "9".into()],
            pairs: vec![("ab".into(), "ab".into()), ("b".into(), "9".into())],
            ..Default::default()
        },
        IndexQuery {
            tokens: vec!["q".repeat(64), "x1".into()],
            pairs: vec![("q".repeat(64), "x1".into())],
            excluded: vec!["abd".into()],
            ..Default::default()
        },
    ];
    for _ in 0..2_000 {
        let text: String = (0..next(12))
            .map(|_| pieces[next(pieces.len() as u64) as usize])
            .collect();
        assert!(ascii_tokens(&text).is_some());
        let tokens = index_tokens(&text);
        for q in &queries {
            let expected = q.tokens.iter().all(|t| tokens.contains(t))
                && q.pairs
                    .iter()
                    .all(|(a, b)| tokens.contains(&pair_token(a, b)))
                && q.prefixes
                    .iter()
                    .all(|p| tokens.iter().any(|t| t.starts_with(p.as_str())))
                && !q.excluded.iter().any(|t| tokens.contains(t));
            assert_eq!(q.admits(&text), expected, "{text:?} {q:?}");
        }
    }
    assert!(ascii_tokens("café").is_none());
    // Outside ASCII, pairs are read from the index's tokens.
    let phrase = &queries[5];
    assert!(phrase.admits("é AB abc"));
    assert!(!phrase.admits("é abc AB"));
    assert!(!phrase.admits("AB é abc"));
    // A text whose pairs did not all fit is admitted by its words.
    let long: String = (0..25_000).map(|i| format!("σ{i} ")).collect();
    let cut = IndexQuery {
        tokens: vec!["σ24998".into(), "σ24999".into()],
        pairs: vec![("σ24998".into(), "σ24999".into())],
        ..Default::default()
    };
    assert!(!index_tokens(&long).contains(&pair_token("σ24998", "σ24999")));
    assert!(cut.admits(&long));
    let absent = IndexQuery {
        tokens: vec!["σ24998".into(), "nowhere".into()],
        pairs: vec![("σ24998".into(), "nowhere".into())],
        ..Default::default()
    };
    assert!(!absent.admits(&long));
}

fn shape(query: &str) -> Vec<(bool, Vec<String>, bool)> {
    parse(query)
        .expect("parses")
        .terms
        .into_iter()
        .map(|t| {
            (
                t.excluded,
                t.words.into_iter().map(|w| w.text).collect(),
                t.prefix,
            )
        })
        .collect()
}

fn owned(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[test]
fn words_phrases_prefixes_and_exclusions() {
    assert_eq!(
        shape(r#"Storm "the Letter" harb* -rain -"old man" -sea*"#),
        vec![
            (false, owned(&["storm"]), false),
            (false, owned(&["the", "letter"]), false),
            (false, owned(&["harb"]), true),
            (true, owned(&["rain"]), false),
            (true, owned(&["old", "man"]), false),
            (true, owned(&["sea"]), true),
        ]
    );
    assert_eq!(shape("e-mail"), vec![(false, owned(&["e", "mail"]), false)]);
    assert_eq!(
        shape(r#""unclosed phrase"#),
        vec![(false, owned(&["unclosed", "phrase"]), false)]
    );
    assert_eq!(shape("ok 🙂 ..."), vec![(false, owned(&["ok"]), false)]);
}

#[test]
fn refuses_what_cannot_be_searched() {
    for bad in [
        "",
        "   ",
        "🙂",
        "-only",
        "a*",
        "-\"x y\"",
        &"w ".repeat(17),
        &"x".repeat(1025),
    ] {
        match parse(bad) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "query"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn index_query_needs_what_every_match_has() {
    let q = parse("東京 東 tower* the -x -long* -\"a b\"")
        .expect("parses")
        .index_query();
    assert_eq!(q.tokens, owned(&["東京", "the"]));
    assert_eq!(q.prefixes, owned(&["tower"]));
    assert_eq!(q.excluded, owned(&["x"]));
    assert!(q.pairs.is_empty());
    // A phrase's words one after the other, except into a prefix or
    // across a CJK word; the pair stands for its words in an index.
    let q = parse("\"The story of\" \"big 東京 tower\" \"old man\"* of")
        .expect("parses")
        .index_query();
    assert_eq!(
        q.pairs,
        [("the", "story"), ("story", "of")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let pair = |a, b| pair_token(a, b);
    assert_eq!(
        q.required(),
        [
            "big".to_owned(),
            "東京".to_owned(),
            "tower".to_owned(),
            "old".to_owned(),
            pair("the", "story"),
            pair("story", "of"),
        ]
    );
}
