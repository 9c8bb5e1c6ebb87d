//! Search on one fixed corpus (English, accents, German compounds, emoji,
//! Chinese, Japanese, Korean, code, SQL and FTS syntax as plain text,
//! letters styled by Unicode's mathematical and enclosed forms): every
//! query of the table finds exactly the texts it names, newest first in the
//! same order, on every backend; snippets point at the matched words.

use std::collections::{BTreeSet, HashMap};

use silmari_store::prelude::*;
use silmari_store::{Archived, SearchHit, SearchQuery};
use time::{Duration, OffsetDateTime, macros::datetime};

use crate::support::assert_invalid;

/// A message of the corpus: (label, role, text).
type Text = (&'static str, Role, &'static str);

/// Conversations (label, title, archived) and their messages.
const CORPUS: &[(&str, &str, bool, &[Text])] = &[
    (
        "A",
        "Harbour notes",
        false,
        &[
            (
                "en1",
                Role::User,
                "The storm hit the harbour at dawn; the letter never arrived.",
            ),
            (
                "en2",
                Role::Assistant,
                "I wrote a letter to the harbour master about the storm damage.",
            ),
            (
                "en3",
                Role::User,
                "Harbourside cafés reopen after the storm.",
            ),
        ],
    ),
    (
        "B",
        "Café talk",
        false,
        &[
            (
                "acc1",
                Role::User,
                "Un café au lait, s'il vous plaît — et un croissant.",
            ),
            (
                "acc2",
                Role::Assistant,
                "Der Kaffee im Café Zürich war ausgezeichnet.",
            ),
            (
                "acc3",
                Role::User,
                "Ångström units measure wavelengths; naïve résumé façade.",
            ),
        ],
    ),
    (
        "C",
        "Deutsch",
        false,
        &[
            (
                "de1",
                Role::User,
                "Die Donaudampfschifffahrtsgesellschaft fährt auf der Donau.",
            ),
            (
                "de2",
                Role::Assistant,
                "Die Straße ist gesperrt wegen Bauarbeiten.",
            ),
        ],
    ),
    (
        "D",
        "Emoji",
        false,
        &[
            ("emoji1", Role::User, "Great job 🎉🎉 let's ship it 🚀"),
            ("emoji2", Role::Assistant, "🙂🙂🙂"),
        ],
    ),
    (
        "E",
        "中文 日本語 한국어",
        false,
        &[
            ("zh1", Role::User, "我们明天去北京大学参观。"),
            ("zh2", Role::Assistant, "北京的天气很好"),
            ("ja1", Role::User, "東京タワーに行きました"),
            ("ja2", Role::Assistant, "京都は東京より静かです"),
            ("ko1", Role::User, "서울에 갔어요. 서울은 아름다워요"),
            ("ko2", Role::Assistant, "부산 바다가 좋아요"),
        ],
    ),
    (
        "F",
        "Code and syntax",
        false,
        &[
            (
                "code1",
                Role::User,
                "fn main() { println!(\"hello, world\"); } // Rust snippet",
            ),
            (
                "code2",
                Role::Assistant,
                "SELECT * FROM messages WHERE id = 'x'; DROP TABLE users; --",
            ),
            (
                "fts1",
                Role::User,
                "NEAR(storm letter) AND \"quoted\" OR col:term * ^start",
            ),
            ("fts2", Role::Tool, "tsquery: 'fat' & 'rat' | !cat <-> dog"),
        ],
    ),
    (
        "G",
        "Storm chasing plans",
        false,
        &[("g1", Role::User, "Bring a camera")],
    ),
    (
        "H",
        "Old notes",
        true,
        &[("h1", Role::User, "Archived storm notes")],
    ),
    (
        "I",
        "𝐒𝐭𝐲𝐥𝐞𝐝 𝚺𝚷",
        false,
        &[("styled1", Role::User, "𝐁𝐨𝐥𝐝 greetings, 𝚫𝚯 and 🄰🄱🄲")],
    ),
];

/// Queries and the labels of what they find (a title hit is its
/// conversation's label), with the defaults: not archived, current branches.
const QUERIES: &[(&str, &[&str])] = &[
    ("storm", &["en1", "en2", "en4", "fts1", "G"]),
    ("STORM", &["en1", "en2", "en4", "fts1", "G"]),
    ("storm -letter", &["G"]),
    ("\"the letter\"", &["en1", "en4"]),
    ("harb*", &["en1", "en2", "A"]),
    ("cafe", &["acc1", "acc2", "B"]),
    ("CAFÉ", &["acc1", "acc2", "B"]),
    ("caf*", &["acc1", "acc2", "B"]),
    ("zurich", &["acc2"]),
    ("angstrom", &["acc3"]),
    ("naive resume facade", &["acc3"]),
    ("donaudampfschifffahrtsgesellschaft", &["de1"]),
    ("donau*", &["de1"]),
    ("straße", &["de2"]),
    ("strasse", &[]),
    ("ship", &["emoji1"]),
    ("\"let's ship\"", &["emoji1"]),
    ("北京", &["zh1", "zh2"]),
    ("北京大学", &["zh1"]),
    ("京", &["zh1", "zh2", "ja1", "ja2"]),
    ("東京", &["ja1", "ja2"]),
    ("東京タワー", &["ja1"]),
    ("タワー", &["ja1"]),
    ("静か", &["ja2"]),
    ("서울", &["ko1"]),
    ("바다", &["ko2"]),
    ("日本語", &["E"]),
    ("\"hello world\"", &["code1"]),
    ("println", &["code1"]),
    ("drop table", &["code2"]),
    ("\"DROP TABLE users\"", &["code2"]),
    ("'x'; DROP TABLE users; --", &["code2"]),
    ("NEAR(storm letter)", &["fts1"]),
    ("col:term", &["fts1"]),
    ("^start", &["fts1"]),
    ("\"quoted\" OR", &["fts1"]),
    ("'fat' & 'rat'", &["fts2"]),
    ("!cat <-> dog", &["fts2"]),
    ("-storm harbour", &["A"]),
    ("letter -\"the letter\"", &["en2", "fts1"]),
    ("camera", &["g1"]),
    ("chasing", &["G"]),
    ("notes", &["A"]),
    ("alternative", &["en4"]),
    ("reopen", &[]),
    ("wavelength*", &["acc3"]),
    ("x", &["code2"]),
    ("rust", &["code1"]),
    ("ausgezeichnet kaffee", &["acc2"]),
    ("\"storm letter\"", &["fts1"]),
    ("bold", &["styled1"]),
    ("𝐁𝐎𝐋𝐃 greetings", &["styled1"]),
    ("δθ abc", &["styled1"]),
    ("styled σπ", &["I"]),
];

/// The corpus written to `store`: label → (hit key, created_at), where a
/// hit key is the message id, or the conversation id for a title.
pub struct Corpus {
    pub labels: HashMap<String, (uuid::Uuid, OffsetDateTime)>,
    pub conversations: HashMap<String, ConversationId>,
}

impl Corpus {
    /// The label of a hit.
    pub fn label(&self, hit: &SearchHit) -> String {
        let key: uuid::Uuid = match &hit.message {
            Some(m) => m.id.into(),
            None => hit.conversation.id.into(),
        };
        self.labels
            .iter()
            .find(|(_, (id, _))| *id == key)
            .map(|(label, _)| label.clone())
            .unwrap_or_else(|| panic!("a hit outside the corpus: {hit:?}"))
    }
}

/// Writes the corpus, one text a minute from 2026-01-01, and a branch in
/// A: `en4` regenerates `en3` (which leaves the current branch).
pub fn write_corpus(store: &Store) -> Corpus {
    let mut at = datetime!(2026-01-01 00:00 UTC);
    let mut tick = || {
        at += Duration::minutes(1);
        at
    };
    let mut labels = HashMap::new();
    let mut conversations = HashMap::new();
    let mut messages = HashMap::new();
    for (label, title, archived, texts) in CORPUS {
        let created_at = tick();
        let c = store
            .conversations()
            .create(NewConversation {
                created_at: Some(created_at),
                ..NewConversation::titled(*title)
            })
            .unwrap();
        labels.insert(label.to_string(), (c.id.into(), created_at));
        conversations.insert(label.to_string(), c.id);
        for (label, role, text) in *texts {
            let created_at = tick();
            let mut new = NewMessage::new(*role, *text);
            new.created_at = Some(created_at);
            let m = store.conversations().append_message(c.id, new).unwrap();
            labels.insert(label.to_string(), (m.id.into(), created_at));
            messages.insert(*label, m);
        }
        if *archived {
            store.conversations().archive(c.id).unwrap();
        }
    }
    let mut new = NewMessage::new(
        Role::Assistant,
        "An alternative storm answer about the letter",
    );
    let created_at = tick();
    new.created_at = Some(created_at);
    let en4 = store
        .conversations()
        .branch_from(conversations["A"], Some(messages["en2"].id), new)
        .unwrap();
    labels.insert("en4".into(), (en4.id.into(), created_at));
    Corpus {
        labels,
        conversations,
    }
}

/// Every hit of `query`, following the cursors, `limit` at a time.
pub fn all_hits(store: &Store, query: SearchQuery, limit: u32) -> Vec<SearchHit> {
    let mut query = query.limit(limit);
    let mut hits = Vec::new();
    loop {
        let page = store.search(&query).unwrap();
        assert!(page.items.len() <= limit as usize);
        hits.extend(page.items);
        match page.next {
            Some(next) => query = query.after(next),
            None => return hits,
        }
    }
}

pub fn search_corpus_finds_the_same_on_every_backend(store: &Store) {
    let corpus = write_corpus(store);
    for (text, expected) in QUERIES {
        let hits = all_hits(store, SearchQuery::new(*text).newest_first(), 3);
        let found: Vec<String> = hits.iter().map(|h| corpus.label(h)).collect();
        let mut newest_first: Vec<&str> = expected.to_vec();
        newest_first.sort_by_key(|l| std::cmp::Reverse(corpus.labels[*l].1));
        assert_eq!(found, newest_first, "query {text:?}, newest first");

        let by_relevance = all_hits(store, SearchQuery::new(*text), 2);
        let set: BTreeSet<String> = by_relevance.iter().map(|h| corpus.label(h)).collect();
        assert_eq!(set.len(), by_relevance.len(), "{text:?}: a hit twice");
        assert_eq!(
            set,
            expected.iter().map(|l| l.to_string()).collect(),
            "{text:?}"
        );
        assert!(
            by_relevance.windows(2).all(|w| w[0].score >= w[1].score),
            "{text:?}: best first"
        );
        for hit in &hits {
            let s = &hit.snippet;
            assert!(!s.highlights.is_empty(), "{text:?}: {hit:?}");
            for range in &s.highlights {
                assert!(
                    s.text
                        .get(range.clone())
                        .is_some_and(|h| !h.trim().is_empty())
                );
            }
        }
    }
}

/// Every query of the table, restricted to each conversation, finds
/// exactly the whole search's hits in that conversation, in the same
/// order: a search in one conversation reads it by its own statement on
/// SQLite and PostgreSQL (a walk of its messages, checked by the crate's
/// function or by array operators), for every shape of query.
pub fn search_in_one_conversation_finds_the_whole_search_s_hits_there(store: &Store) {
    let corpus = write_corpus(store);
    for (text, _) in QUERIES {
        let everywhere = all_hits(store, SearchQuery::new(*text).newest_first(), 50);
        for conversation in corpus.conversations.values() {
            let query = SearchQuery::new(*text)
                .newest_first()
                .in_conversation(*conversation);
            let inside: Vec<String> = all_hits(store, query, 50)
                .iter()
                .map(|h| corpus.label(h))
                .collect();
            let expected: Vec<String> = everywhere
                .iter()
                .filter(|h| h.conversation.id == *conversation)
                .map(|h| corpus.label(h))
                .collect();
            assert_eq!(inside, expected, "query {text:?} in one conversation");
        }
    }
}

pub fn search_snippets_mark_the_matched_words(store: &Store) {
    write_corpus(store);
    let marked = |query: &str| -> Vec<Vec<String>> {
        let page = store
            .search(&SearchQuery::new(query).newest_first())
            .unwrap();
        page.items
            .iter()
            .map(|h| {
                let s = &h.snippet;
                s.highlights
                    .iter()
                    .map(|r| s.text[r.clone()].to_owned())
                    .collect()
            })
            .collect()
    };
    assert_eq!(marked("cafe zurich"), [vec!["Café", "Zürich"]]);
    assert_eq!(
        marked("\"the letter\"").concat(),
        ["the letter", "the letter"]
    );
    assert_eq!(marked("harb* dawn"), [vec!["harbour", "dawn"]]);
    assert_eq!(marked("東京タワー"), [vec!["東京タワー"]]);
    assert_eq!(marked("京 静か"), [vec!["京", "京", "静か"]]);
    assert_eq!(marked("naive"), [vec!["naïve"]]);

    // A long text shows the part around the first match.
    let c = store
        .conversations()
        .create(NewConversation::titled("long"))
        .unwrap();
    let text = format!("{} needle {}", "filler ".repeat(200), "tail ".repeat(200));
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, text.clone()))
        .unwrap();
    let hits = store.search(&SearchQuery::new("needle")).unwrap().items;
    let hit = &hits[0];
    let s = &hit.snippet;
    assert!(s.offset > 0 && s.truncated && s.text.len() <= 220, "{s:?}");
    assert_eq!(&text[s.offset..s.offset + s.text.len()], s.text);
    assert_eq!(&s.text[s.highlights[0].clone()], "needle");
}

pub fn search_filters_narrow_the_same_hits(store: &Store) {
    let corpus = write_corpus(store);
    let labels = |query: SearchQuery| -> Vec<String> {
        let hits = all_hits(store, query.newest_first(), 50);
        let mut l: Vec<String> = hits.iter().map(|h| corpus.label(h)).collect();
        l.sort();
        l
    };
    let q = || SearchQuery::new("storm");
    assert_eq!(labels(q().role(Role::Assistant)), ["en2", "en4"]);
    assert_eq!(
        labels(q().in_conversation(corpus.conversations["A"])),
        ["en1", "en2", "en4"]
    );
    assert_eq!(labels(q().archived(Archived::Only)), ["h1"]);
    assert_eq!(
        labels(q().archived(Archived::Include)),
        ["G", "en1", "en2", "en4", "fts1", "h1"]
    );
    assert_eq!(
        labels(q().all_branches()),
        ["G", "en1", "en2", "en3", "en4", "fts1"]
    );
    assert_eq!(labels(SearchQuery::new("reopen").all_branches()), ["en3"]);
    let (_, en1) = corpus.labels["en1"];
    let (_, en2) = corpus.labels["en2"];
    assert_eq!(labels(q().since(en1).until(en2)), ["en1"]);
    assert_eq!(labels(q().since(en2)), ["G", "en2", "en4", "fts1"]);
    assert!(labels(q().since(en2).until(en2)).is_empty());
    // Bounds beyond any stored time (and PostgreSQL's range) admit all or
    // nothing, in both orders.
    let ancient = datetime!(-5000-01-01 00:00 UTC);
    let last = datetime!(9999-12-31 23:59:59.999_999 UTC);
    let every = labels(q());
    assert_eq!(labels(q().since(ancient).until(last)), every);
    assert!(labels(q().until(ancient)).is_empty());
    assert!(labels(q().since(last)).is_empty());
    let ranked = all_hits(store, q().since(ancient).until(last), 50);
    assert_eq!(ranked.len(), every.len());
    assert!(all_hits(store, q().until(ancient), 50).is_empty());
}

pub fn search_refuses_queries_with_nothing_to_find(store: &Store) {
    write_corpus(store);
    for bad in ["", "   ", "🚀", "*", "-storm", "\"\"", "a*", "- - -"] {
        assert_invalid(store.search(&SearchQuery::new(bad)), "query");
    }
    assert_invalid(store.search(&SearchQuery::new("storm").limit(0)), "limit");
    let page = store
        .search(&SearchQuery::new("storm").limit(1).newest_first())
        .unwrap();
    let next = page.next.expect("more than one hit");
    assert_invalid(
        store.search(&SearchQuery::new("storm").after(next)),
        "cursor",
    );
    let listed = store
        .conversations()
        .list(ConversationQuery::recent(1))
        .unwrap();
    let other = listed.next.expect("more than one conversation");
    assert_invalid(
        store.search(&SearchQuery::new("storm").after(other)),
        "cursor",
    );
}
