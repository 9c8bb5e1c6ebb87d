//! The tokenizer's unit tests.

use super::*;
use crate::search::test_random::XorShift;

fn texts(text: &str) -> Vec<String> {
    words(text).iter().map(|w| w.text.to_owned()).collect()
}

/// The index tokens of `text`'s words, made one character at a time.
fn tokens_of_words(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    each_token_in(&words_by_character(text), |t| tokens.push(t.to_owned()));
    tokens
}

/// 2,000 texts of ASCII words, punctuation and spaces, the same ones on
/// every run.
fn ascii_texts() -> Vec<String> {
    let pieces: Vec<&str> =
        "Hello|WORLD|it's|e-mail|3.14| |  |,|x|SELECT|*|a_b|Tab\t|new\nline|ABC123def|z|~\u{7f}"
            .split('|')
            .collect();
    let mut random = XorShift::new(0x2545_f491_4f6c_dd1d);
    let mut next = |n: usize| random.below(n);
    (0..2_000)
        .map(|_| (0..next(40)).map(|_| pieces[next(pieces.len())]).collect())
        .collect()
}

#[test]
fn ascii_text_gives_the_tokens_its_words_give() {
    for text in ascii_texts() {
        assert_eq!(index_tokens(&text), tokens_of_words(&text), "{text:?}");
    }
    let long_word = "Ab".repeat(MAX_TOKEN_BYTES);
    assert_eq!(index_tokens(&long_word), tokens_of_words(&long_word));
    let over_budget: String = (0..MAX_INDEX_BYTES).map(|i| format!("w{i} ")).collect();
    assert_eq!(index_tokens(&over_budget), tokens_of_words(&over_budget));
    assert!(index_tokens(&over_budget).len() < MAX_INDEX_BYTES);
}

/// The scan of ASCII text gives the words (folded texts, original
/// ranges, not CJK) the loop over characters gives it.
#[test]
fn ascii_text_gives_the_words_the_character_loop_gives() {
    let all: String = (0..128u8).map(char::from).collect();
    for text in ascii_texts().into_iter().chain([all]) {
        let slow = words_by_character(&text);
        assert!(ascii_words(&text).iter().eq(slow.iter()), "{text:?}");
        assert!(words(&text).iter().eq(slow.iter()), "{text:?}");
    }
}

#[test]
fn folds_case_diacritics_and_compatibility_forms() {
    assert_eq!(texts("Café CRÈME, naïve!"), ["cafe", "creme", "naive"]);
    assert_eq!(texts("ﬁne ＡＢＣ Straße"), ["fine", "abc", "straße"]);
    assert_eq!(texts("İstanbul"), ["istanbul"]);
    assert_eq!(texts("𝐇𝐞𝐥𝐥𝐨 🄰🄱 𝚫𝚯 Ⅻ"), ["hello", "ab", "δθ", "xii"]);
    // Folding is a fixed point: a folded character folds to itself.
    for c in (0..=0x10_ffff)
        .filter_map(char::from_u32)
        .filter(|&c| !is_cjk(c))
    {
        each_folded(c, |d| {
            let mut again = Vec::new();
            each_folded(d, |e| again.push(e));
            assert_eq!(again, [d], "{c:?} folds to {d:?}");
        });
    }
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
    for word in words(text).iter() {
        let original = &text[word.range.clone()];
        assert_eq!(texts(original), [word.text], "{original:?}");
    }
    assert_eq!(&text[words(text).iter().nth(1).unwrap().range], "café");
}

#[test]
fn cjk_runs_are_words_of_their_own() {
    let all = words("東京タワーに行きました。Tokyo 서울에");
    let w: Vec<Word<'_>> = all.iter().collect();
    let t: Vec<&str> = w.iter().map(|w| w.text).collect();
    assert_eq!(t, ["東京タワーに行きました", "tokyo", "서울에"]);
    assert!(w[0].is_cjk() && !w[1].is_cjk() && w[2].is_cjk());
    let text = "東京タワーに行きました。Tokyo 서울에";
    assert_eq!(&text[w[0].char_range(2..5)], "タワー");
}

#[test]
fn index_tokens_are_words_bigrams_and_run_ends() {
    assert_eq!(
        index_tokens("東京タワー tower Tower"),
        [
            "東京",
            "京タ",
            "タワ",
            "ワー",
            "ー",
            "tower",
            "\u{b7}tower\u{b7}tower"
        ]
    );
    assert_eq!(index_tokens("東 x"), ["東", "x"]);
    let long = "a".repeat(200);
    assert_eq!(index_tokens(&long), [cut(&long).to_owned()]);
    assert_eq!(cut(&"é".repeat(40)).len(), 64);
}

#[test]
fn no_cjk_letter_below_the_bound() {
    let scripts = [
        Script::Han,
        Script::Hiragana,
        Script::Katakana,
        Script::Hangul,
        Script::Bopomofo,
    ];
    for c in (0..FIRST_CJK).filter_map(char::from_u32) {
        let ext = c.script_extension();
        let cjk = !ext.is_common()
            && !ext.is_inherited()
            && scripts.iter().any(|s| ext.contains_script(*s));
        assert!(!(cjk && c.is_alphanumeric()), "{c:?} U+{:04X}", c as u32);
    }
    assert!(is_cjk('\u{2C7}'), "the bound is tight");
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

/// Words one right after the other give pair tokens after every word:
/// not across a CJK run, the same pair once, words cut first.
#[test]
fn pair_tokens_follow_the_words() {
    assert_eq!(
        index_tokens("The story, the STORY; then 東京 x"),
        [
            "the",
            "story",
            "then",
            "東京",
            "京",
            "x",
            "\u{b7}the\u{b7}story",
            "\u{b7}story\u{b7}the",
            "\u{b7}story\u{b7}then",
        ]
    );
    assert_eq!(
        index_tokens("Café au lait"),
        [
            "cafe",
            "au",
            "lait",
            "\u{b7}cafe\u{b7}au",
            "\u{b7}au\u{b7}lait"
        ]
    );
    let long = "a".repeat(100);
    assert_eq!(
        index_tokens(&format!("{long} b"))[2],
        pair_token(cut(&long), "b")
    );
    assert!(is_pair_token(&pair_token("the", "story"), "THE", "Story"));
    assert!(!is_pair_token(&pair_token("the", "story"), "th", "estory"));
    assert!(!is_pair_token(&pair_token("thé", "x"), "th", "x"));
    assert!(!is_pair_token("the", "the", ""));
}

/// A text whose words fill the budget has no pair: words come first.
#[test]
fn words_come_before_pairs_in_the_budget() {
    // Words past the budget: no pair, and the mark that pairs are missing.
    let text: String = (0..200_000).map(|i| format!("w{i} ")).collect();
    let tokens = index_tokens(&text);
    let (last, words) = tokens.split_last().unwrap();
    assert_eq!(last, PAIRS_CUT);
    assert!(words.iter().all(|t| !t.starts_with(PAIR_MARK)));
    // Every word, some pairs, the mark; the same on the non-ASCII path.
    for word in [|i| format!("w{i}"), |i| format!("σ{i}")] {
        let text: String = (0..25_000).map(|i| word(i) + " ").collect();
        let tokens = index_tokens(&text);
        assert_eq!(tokens.last().map(String::as_str), Some(PAIRS_CUT));
        assert_eq!(tokens[24_999], word(24_999));
        assert_eq!(tokens[25_000], pair_token(&word(0), &word(1)));
        let last_pair = pair_token(&word(24_998), &word(24_999));
        assert!(!tokens.contains(&last_pair));
        let bytes: usize = tokens.iter().map(|t| t.len() + 4).sum();
        assert!(bytes <= MAX_INDEX_BYTES, "{bytes}");
        assert!(bytes + 2 * word(24_999).len() + 12 > MAX_INDEX_BYTES);
    }
    // All that fits: no mark.
    let short = "one two three";
    assert_eq!(index_tokens(short).len(), 5);
    let long: String = (0..5_000).map(|i| format!("ü{i} w{i} ")).collect();
    assert!(!index_tokens(&long).iter().any(|t| t == PAIRS_CUT));
}
