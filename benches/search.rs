//! W10, search: a reproducible corpus of 1,000,000 messages of English-like
//! text (words drawn by a Zipf law from a fixed vocabulary, 20,000
//! conversations of 50 messages), written through the public API with the
//! index kept as it goes; then the top 20 hits with snippets, newest first
//! and by relevance, for a common word, a rare word, a phrase and a
//! prefix, each timed over many calls: median and p95. Also reports the
//! write rate with the index kept and, on SQLite, the index's size against
//! the text it indexes.
//!
//! ```text
//! cargo bench --bench search                                   # SQLite, 1,000,000 messages
//! SILMARI_SEARCH_KINDS=sqlite-mmap cargo bench --bench search  # the same file, 1 GiB of it mapped
//! SILMARI_SEARCH_MESSAGES=100000 cargo bench --bench search    # smaller
//! SILMARI_SEARCH_KINDS="sqlite postgres" scripts/with-postgres cargo bench --features postgres --bench search
//! SILMARI_SEARCH_ONLY="common word relevance" cargo bench --bench search   # rows whose query and order hold this
//! ```
//!
//! The SQLite corpus is kept in `target/silmari-bench/` and reused by the
//! next run (delete it to build it again).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{SearchQuery, SqliteOptions};

/// Common English words first (the most frequent), then made-up words, so
/// that the law of word frequencies has a long tail of rare words.
const COMMON: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "that",
    "was",
    "for",
    "on",
    "with",
    "as",
    "he",
    "she",
    "at",
    "by",
    "this",
    "had",
    "not",
    "but",
    "from",
    "or",
    "have",
    "they",
    "which",
    "you",
    "were",
    "her",
    "all",
    "there",
    "would",
    "their",
    "we",
    "him",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "story",
    "chapter",
    "letter",
    "harbour",
    "storm",
    "character",
    "scene",
    "draft",
    "novel",
    "dialogue",
    "voice",
    "plot",
    "ending",
    "reader",
    "page",
    "sentence",
    "rewrite",
    "editor",
];
const VOCABULARY: usize = 20_000;
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "sa", "tor", "vel", "an", "qui", "mor", "ste", "lin", "dra", "pe",
    "zu", "hal", "bri", "on", "cy", "mar",
];

/// xorshift64*: the same corpus on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `rank`-th word of the vocabulary.
fn word(rank: usize) -> String {
    if let Some(w) = COMMON.get(rank) {
        return (*w).to_owned();
    }
    let mut n = rank;
    let mut w = String::new();
    loop {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    w
}

/// Zipf's law over the vocabulary: rank r with probability ∝ 1/(r+1).
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new() -> Self {
        let mut total = 0.0;
        let cumulative = (0..VOCABULARY)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect::<Vec<_>>();
        let last = total;
        Zipf {
            cumulative: cumulative.into_iter().map(|c| c / last).collect(),
        }
    }

    fn rank(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cumulative
            .partition_point(|c| *c < u)
            .min(VOCABULARY - 1)
    }
}

/// A message: 1 to 4 sentences of 6 to 20 words.
fn message(rng: &mut Rng, zipf: &Zipf) -> String {
    let mut text = String::new();
    for _ in 0..1 + rng.next() % 4 {
        let words = 6 + rng.next() % 15;
        for i in 0..words {
            let w = word(zipf.rank(rng));
            if i == 0 {
                let mut chars = w.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(&w);
            }
        }
        text.push_str(". ");
    }
    text.pop();
    text
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes the corpus: `total` messages in conversations of 50, twenty
/// conversations per transaction. Returns (messages per second, text bytes).
fn build(store: &Store, total: usize) -> (f64, u64) {
    let (mut rng, zipf) = (Rng(0x5EED_0F5E_A2C4), Zipf::new());
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut written = 0;
    while written < total {
        store
            .transaction(|tx| -> silmari_store::Result<()> {
                for _ in 0..20 {
                    if written >= total {
                        break;
                    }
                    let title = message(&mut rng, &zipf);
                    let title: String = title.chars().take(60).collect();
                    bytes += title.len() as u64;
                    let c = tx.conversations().create(NewConversation::titled(title))?;
                    let batch: Vec<NewMessage> = (0..50.min(total - written))
                        .map(|i| {
                            let role = if i % 2 == 0 {
                                Role::User
                            } else {
                                Role::Assistant
                            };
                            let text = message(&mut rng, &zipf);
                            bytes += text.len() as u64;
                            NewMessage::new(role, text)
                        })
                        .collect();
                    written += batch.len();
                    tx.conversations().append_messages(c.id, batch)?;
                }
                Ok(())
            })
            .expect("corpus");
        if written % 100_000 == 0 {
            eprintln!("  {written} messages written");
        }
    }
    (total as f64 / started.elapsed().as_secs_f64(), bytes)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The searches of W10, each timed `calls` times.
fn searches(kind: &str, store: &Store, calls: usize) {
    let cases = [
        ("common word", "time".to_owned()),
        ("rare word", word(15_000)),
        ("phrase", "\"the story\"".to_owned()),
        ("prefix", "chapt*".to_owned()),
        ("two words", format!("storm {}", word(3_000))),
    ];
    // Only the rows whose "query order" holds this text, when set (to
    // profile one row): `SILMARI_SEARCH_ONLY="common word relevance"`.
    let only = std::env::var("SILMARI_SEARCH_ONLY").unwrap_or_default();
    println!("| backend | query | order | hits | calls | median | p95 |");
    println!("|---|---|---|---|---|---|---|");
    for (name, text) in &cases {
        for newest in [true, false] {
            let order = if newest { "newest first" } else { "relevance" };
            if !format!("{name} {order}").contains(&only) {
                continue;
            }
            let query = SearchQuery::new(text.as_str()).limit(20);
            let query = if newest { query.newest_first() } else { query };
            let mut times = Vec::with_capacity(calls);
            let mut hits = 0;
            let started = Instant::now();
            // At most `calls` calls, and no more than ten seconds' worth.
            while times.len() < calls && (times.len() < 5 || started.elapsed().as_secs() < 10) {
                let t = Instant::now();
                let page = store.search(&query).expect("search");
                times.push(t.elapsed());
                hits = page.items.len();
            }
            times.sort();
            println!(
                "| {kind} | {name} `{text}` | {order} | {hits} | {} | {:.2} ms | {:.2} ms |",
                times.len(),
                quantile(&times, 0.5).as_secs_f64() * 1e3,
                quantile(&times, 0.95).as_secs_f64() * 1e3,
            );
        }
    }
}

/// The SQLite corpus file, built once and kept; its connections map
/// `mmap_size` bytes of it.
fn sqlite_store(total: usize, mmap_size: u64) -> Store {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/silmari-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("search-{total}.db"));
    let exists = path.exists();
    // A kept corpus that migrates needs no copy of itself (700 MB).
    let store = Store::builder()
        .url(format!("sqlite:///{}", path.display()))
        .sqlite(SqliteOptions {
            snapshots_kept: 0,
            mmap_size,
            ..SqliteOptions::default()
        })
        .open()
        .expect("open");
    if !exists || store.counts().expect("counts").messages < total as u64 {
        eprintln!(
            "building the SQLite corpus of {total} messages at {}",
            path.display()
        );
        let (rate, bytes) = build(&store, total);
        println!("SQLite: corpus written at {rate:.0} messages/s with the index kept");
        report_size(&path, bytes);
    }
    store
}

/// The SQLite index's size beside the text it indexes.
fn report_size(path: &std::path::Path, text_bytes: u64) {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    let sum = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("size") };
    let fts = sum("SELECT COALESCE(SUM(length(block)), 0) FROM search_index_data")
        + sum("SELECT COALESCE(SUM(length(sz)), 0) + 8 * COUNT(*) FROM search_index_docsize")
        + sum("SELECT 24 * COUNT(*) FROM search_index_idx");
    // The rowid column and its index: 9 bytes a row at most, in each.
    let keys = 18 * sum("SELECT COUNT(*) FROM messages");
    println!(
        "SQLite index: {:.1} MiB of FTS5 data and {:.1} MiB of rowid keys for {:.1} MiB of text: {:.2}x",
        fts as f64 / 1048576.0,
        keys as f64 / 1048576.0,
        text_bytes as f64 / 1048576.0,
        (fts + keys) as f64 / text_bytes as f64
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported.
    let total = env_usize("SILMARI_SEARCH_MESSAGES", 1_000_000);
    let calls = env_usize("SILMARI_SEARCH_CALLS", 40);
    let kinds =
        std::env::var("SILMARI_SEARCH_KINDS").unwrap_or_else(|_| "sqlite sqlite-mmap".into());
    for kind in kinds.split_whitespace() {
        match kind {
            "sqlite" => searches("SQLite", &sqlite_store(total, 0), calls),
            "sqlite-mmap" => searches("SQLite, mmap 1 GiB", &sqlite_store(total, 1 << 30), calls),
            "postgres" => {
                let url = std::env::var("SILMARI_TEST_POSTGRES_URL")
                    .expect("postgres needs SILMARI_TEST_POSTGRES_URL (scripts/with-postgres)");
                let store = Store::open(&url).expect("open");
                if store.counts().expect("counts").messages < total as u64 {
                    let (rate, _) = build(&store, total);
                    println!(
                        "PostgreSQL: corpus written at {rate:.0} messages/s with the index kept"
                    );
                    analyze(&url);
                }
                searches("PostgreSQL", &store, calls);
            }
            other => panic!("SILMARI_SEARCH_KINDS: unknown {other}"),
        }
    }
}

/// Statistics for the planner, as a server's autovacuum would gather.
#[cfg(feature = "postgres")]
fn analyze(url: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    client.batch_execute("ANALYZE").expect("analyze");
}

#[cfg(not(feature = "postgres"))]
fn analyze(_: &str) {
    panic!("build with --features postgres")
}
