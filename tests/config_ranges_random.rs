//! Nothing reachable from `Store::open` panics, aborts or exhausts the
//! process, whatever the values of the numeric settings, from a URL or from
//! code: random values (huge, negative, fractional, exponents, NaN,
//! infinities, empty, words, the ends of the ranges) each open a store in a
//! child process, which must end cleanly with a store or `InvalidInput`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use silmari_store::prelude::*;
use silmari_store::{Checkpoint, Location, PoolConfig, SqliteOptions, StoreConfig};

/// The URL of a database file in `dir`.
fn file_url(dir: &Path, query: &str) -> String {
    format!("sqlite:///{}?{query}", dir.join("ranges.db").display())
}

/// A configuration of a database file in `dir` with `pool` and `sqlite`.
fn file_config(dir: &Path, pool: PoolConfig, sqlite: SqliteOptions) -> StoreConfig {
    let mut config = StoreConfig::new(Location::SqliteFile(dir.join("code.db")));
    config.pool = pool;
    config.sqlite = sqlite;
    config
}

/// File descriptors a child may hold once its pool is full: 200 connections
/// at most (`pool_size + max_overflow`), each with its database and WAL
/// files, plus what the test harness holds.
const FD_BUDGET: usize = 2 * 200 + 64;
/// Peak resident memory a child may reach (KiB).
const PEAK_KIB_BUDGET: u64 = 1024 * 1024;

/// Open files of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The child: opens the store `spec` describes (URL or settings), makes one
/// call, lets the pool fill, checks the process's resources and prints its
/// outcome. Anything but a store or `InvalidInput` (or, for PostgreSQL
/// without a server, a connection error) panics.
fn child_open(spec: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mode, rest) = spec.split_once(' ').unwrap();
    let opened = match mode {
        "url" => Store::open(&rest.replace("{dir}", &dir.path().display().to_string())),
        "code" | "builder" => {
            let (pool, sqlite) = settings_from_text(rest);
            let url = file_url(dir.path(), "");
            if mode == "code" {
                Store::open_with(file_config(dir.path(), pool, sqlite))
            } else {
                Store::builder().url(url).pool(pool).sqlite(sqlite).open()
            }
        }
        other => panic!("unknown child mode {other}"),
    };
    let outcome = match opened {
        Ok(store) => {
            // The first call uses the pool (its timeout) and a connection.
            match store
                .conversations()
                .create(NewConversation::titled("first call"))
            {
                Ok(_) => {}
                Err(e) if e.is_unavailable() => {}
                Err(e) => panic!("the first call failed: {e}"),
            }
            // Let the pool open its idle connections, then count.
            let mut last = 0;
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(30));
                let now = open_fds();
                if now == last {
                    break;
                }
                last = now;
            }
            let fds = open_fds();
            assert!(fds <= FD_BUDGET, "{fds} open files (budget {FD_BUDGET})");
            drop(store);
            "store".to_owned()
        }
        Err(Error::InvalidInput { field, .. }) => format!("invalid {field}"),
        Err(e @ (Error::Unavailable { .. } | Error::Connect { .. }))
            if rest.starts_with("postgresql://") =>
        {
            format!("no server: {e}")
        }
        Err(e) => panic!("neither a store nor InvalidInput: {e:?}"),
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak <= PEAK_KIB_BUDGET, "peak memory {peak} KiB");
    println!("OUTCOME {outcome}");
}

/// Runs test `name` of this binary alone in a child with `spec`, with the
/// open-file limit of a typical desktop (1024); returns its outcome line.
fn run_child(name: &str, spec: &str) -> Result<String, TestCaseError> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(common::CHILD_VAR, spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name on the same line first.
    let outcome = stdout.lines().find_map(|l| l.split("OUTCOME ").nth(1));
    match outcome {
        Some(outcome) if out.status.success() => Ok(outcome.to_owned()),
        _ => Err(TestCaseError::fail(format!(
            "the child did not end cleanly ({}) for {spec}:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}

/// Values a URL parameter may be given: huge, negative, fractional,
/// exponents, NaN, infinities, empty, words, and the ends of the ranges.
fn wild_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (0u64..300).prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|x| x.to_string()),
        1 => (-10.0f64..100_000.0).prop_map(|x| format!("{x}")),
        2 => (-400i32..400).prop_map(|e| format!("1e{e}")),
        2 => prop::sample::select(vec![
            "",
            " ",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "+inf",
            "infinity",
            "-0",
            "0",
            "1",
            "-1",
            "0.001",
            "0.0009",
            "100",
            "101",
            "200",
            "86400",
            "86400.0001",
            "2147483",
            "2147484",
            "4294967295",
            "4294967296",
            "1e12",
            "1e19",
            "1e400",
            "0x10",
            "1_000",
            "ten",
            "%zz",
            "%31%30",
            "1%20",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A value inside the documented range of `key`.
fn in_range_value(key: &'static str) -> BoxedStrategy<String> {
    let seconds = |min_ms: u64| {
        (min_ms..=86_400_000u64)
            .prop_map(|ms| (ms as f64 / 1000.0).to_string())
            .boxed()
    };
    match key {
        "pool_size" => (1u32..=100).prop_map(|n| n.to_string()).boxed(),
        "max_overflow" => (0u32..=100).prop_map(|n| n.to_string()).boxed(),
        "pool_timeout" => seconds(1),
        "pool_recycle" => prop_oneof![Just("-1".to_owned()), seconds(1000)].boxed(),
        "mmap_size" => (0u64..=0x7fff_0000).prop_map(|n| n.to_string()).boxed(),
        "cache_size" => ((256u64 << 10)..=(1 << 30))
            .prop_map(|n| n.to_string())
            .boxed(),
        _ => seconds(0),
    }
}

/// A URL with one to five store parameters in their ranges, then none,
/// one or two of them given wild values instead.
fn random_url() -> impl Strategy<Value = String> {
    let mut bases = vec![
        "sqlite:///{dir}/p.db",
        "sqlite:///{dir}/p.db",
        "sqlite://",
        "sqlite://",
        "memory://",
        "postgresql://u@127.0.0.1:1/db",
    ];
    let mut keys = vec!["pool_size", "max_overflow", "pool_timeout", "pool_recycle"];
    if cfg!(feature = "sqlite") {
        keys.extend(["busy_timeout", "slow_statement", "mmap_size", "cache_size"]);
    } else {
        // Memory is then the only backend that can open, and it refuses
        // SQLite's settings: weigh it, and leave those out, so that cases
        // open a store (else all 64 were refused in about half the runs,
        // failing `Tally::check`).
        bases.extend(["memory://"; 6]);
    }
    let base = prop::sample::select(bases);
    let keys = prop::sample::subsequence(keys.clone(), 1..=keys.len());
    let params = (keys, prop::collection::vec(0usize..6, 0..=2)).prop_flat_map(|(keys, wild)| {
        let n = keys.len();
        keys.into_iter()
            .enumerate()
            .map(|(i, key)| {
                let value = if wild.iter().any(|w| w % n == i) {
                    wild_value().boxed()
                } else {
                    in_range_value(key)
                };
                value.prop_map(move |v| (key, v))
            })
            .collect::<Vec<_>>()
    });
    (base, params).prop_map(|(base, params)| {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('&', "%26").replace('#', "%23")))
            .collect();
        format!("{base}?{}", query.join("&"))
    })
}

/// A duration anywhere from zero to `Duration::MAX`, often near the ranges.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..200_000_000).prop_map(Duration::from_millis),
        (0u64..3_000_000).prop_map(Duration::from_micros),
        Just(Duration::ZERO),
        Just(Duration::MAX),
    ]
}

/// A count anywhere in its type, often near the ranges.
fn any_count() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0u64..1200, Just(u64::MAX), Just(0)]
}

/// The twelve settings as text fields: pool_size, max_overflow,
/// pool_timeout, pool_recycle, busy_timeout, statement_cache_capacity,
/// require_wal, snapshots_kept, slow_statement, checkpoint (`b` background
/// or `i` inline, then the pages), mmap_size, cache_size.
fn in_range_fields() -> impl Strategy<Value = Vec<String>> {
    let ms =
        |min: u64| (min..=86_400_000u64).prop_map(|ms| duration_text(Duration::from_millis(ms)));
    (
        (1u64..=100, 0u64..=100, ms(1)),
        (prop::option::of(ms(1000)), ms(0)),
        (
            0u64..=1000,
            any::<bool>(),
            0u64..=100,
            prop::option::of(ms(0)),
            checkpoint_text(1u32..=1_000_000),
        ),
        (0u64..=0x7fff_0000, (256u64 << 10)..=(1 << 30)),
    )
        .prop_map(
            |(
                (size, overflow, timeout),
                (recycle, busy),
                (cache, wal, kept, slow, checkpoint),
                (mmap, page_cache),
            )| {
                vec![
                    size.to_string(),
                    overflow.to_string(),
                    timeout,
                    recycle.unwrap_or_else(|| "none".to_owned()),
                    busy,
                    cache.to_string(),
                    wal.to_string(),
                    kept.to_string(),
                    slow.unwrap_or_else(|| "none".to_owned()),
                    checkpoint,
                    mmap.to_string(),
                    page_cache.to_string(),
                ]
            },
        )
}

/// A wild value for field `i` of [`in_range_fields`].
fn wild_field(i: usize) -> BoxedStrategy<String> {
    match i {
        0 | 1 => any_count()
            .prop_map(|n| n.min(u64::from(u32::MAX)).to_string())
            .boxed(),
        2 | 4 => any_duration().prop_map(duration_text).boxed(),
        3 | 8 => prop::option::of(any_duration())
            .prop_map(|d| d.map_or("none".to_owned(), duration_text))
            .boxed(),
        6 => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        9 => checkpoint_text(any::<u32>()).boxed(),
        _ => any_count().prop_map(|n| n.to_string()).boxed(),
    }
}

/// A checkpoint setting as text: `b` (background) or `i` (inline), then
/// pages drawn from `pages`.
fn checkpoint_text(pages: impl Strategy<Value = u32>) -> impl Strategy<Value = String> {
    (any::<bool>(), pages)
        .prop_map(|(background, pages)| format!("{}{pages}", if background { 'b' } else { 'i' }))
}

fn duration_text(d: Duration) -> String {
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// Settings in range, then none, one or a few of them replaced by wild
/// values; as the text a child reads back.
fn random_settings() -> impl Strategy<Value = String> {
    (in_range_fields(), prop::collection::vec(0usize..12, 0..=2))
        .prop_flat_map(|(fields, wild)| {
            let replacements: Vec<_> = wild
                .into_iter()
                .map(|i| wild_field(i).prop_map(move |v| (i, v)))
                .collect();
            (Just(fields), replacements)
        })
        .prop_map(|(mut fields, replacements)| {
            for (i, v) in replacements {
                fields[i] = v;
            }
            fields.join(" ")
        })
}

fn settings_from_text(text: &str) -> (PoolConfig, SqliteOptions) {
    let f: Vec<&str> = text.split(' ').collect();
    let d = |s: &str| {
        let (secs, nanos) = s.split_once('.').unwrap();
        Duration::new(secs.parse().unwrap(), nanos.parse().unwrap())
    };
    let pool = PoolConfig {
        pool_size: f[0].parse().unwrap(),
        max_overflow: f[1].parse().unwrap(),
        pool_timeout: d(f[2]),
        pool_recycle: (f[3] != "none").then(|| d(f[3])),
    };
    // `..`: the `encryption` feature adds a field (its key), not set here.
    #[allow(clippy::needless_update)]
    let sqlite = SqliteOptions {
        busy_timeout: d(f[4]),
        statement_cache_capacity: f[5].parse::<u64>().unwrap() as usize,
        require_wal: f[6].parse().unwrap(),
        snapshots_kept: f[7].parse::<u64>().unwrap() as usize,
        slow_statement: (f[8] != "none").then(|| d(f[8])),
        checkpoint: {
            let pages = f[9][1..].parse().unwrap();
            if f[9].starts_with('b') {
                Checkpoint::Background { pages }
            } else {
                Checkpoint::Inline { pages }
            }
        },
        mmap_size: f[10].parse().unwrap(),
        cache_size: f[11].parse().unwrap(),
        ..SqliteOptions::default()
    };
    (pool, sqlite)
}

fn cases() -> u32 {
    std::env::var("SILMARI_RANGE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// How many children opened a store, and how many were refused.
#[derive(Default)]
struct Tally {
    opened: AtomicU32,
    refused: AtomicU32,
}

impl Tally {
    fn count(&self, outcome: &str) {
        let counter = if outcome == "store" {
            &self.opened
        } else {
            &self.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Says what ran, and checks that the in-range side was exercised.
    fn check(&self, expect_stores: bool) {
        let (opened, refused) = (
            self.opened.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        );
        println!("{opened} children opened a store, {refused} were refused or found no server");
        if expect_stores {
            assert!(opened > 0, "no random case opened a store");
        }
    }
}

#[test]
fn random_url_parameters_give_a_store_or_invalid_input_in_a_child() {
    const NAME: &str = "random_url_parameters_give_a_store_or_invalid_input_in_a_child";
    if let Ok(spec) = std::env::var(common::CHILD_VAR) {
        return child_open(&spec);
    }
    let tally = Tally::default();
    proptest!(ProptestConfig::with_cases(cases()), |(url in random_url())| {
        let outcome = run_child(NAME, &format!("url {url}"))?;
        tally.count(&outcome);
        // In range or not, the URL alone decides: the parser agrees with open.
        let parsed = url
            .replace("{dir}", "/tmp")
            .parse::<StoreConfig>()
            .map(drop);
        match parsed {
            Err(Error::InvalidInput { field, .. }) => {
                prop_assert_eq!(outcome, format!("invalid {}", field), "{}", url);
            }
            Err(e) => prop_assert!(false, "{url}: {e}"),
            // A store; no server at that address; or no backend for it in this build.
            Ok(()) => prop_assert!(
                outcome == "store" || outcome.starts_with("no server") || outcome == "invalid url",
                "{url}: {outcome}"
            ),
        }
    });
    tally.check(cases() >= 20);
}

#[test]
fn random_settings_from_code_give_a_store_or_invalid_input_in_a_child() {
    const NAME: &str = "random_settings_from_code_give_a_store_or_invalid_input_in_a_child";
    if let Ok(spec) = std::env::var(common::CHILD_VAR) {
        return child_open(&spec);
    }
    let tally = Tally::default();
    proptest!(ProptestConfig::with_cases(cases()), |(settings in random_settings(), builder in any::<bool>())| {
        let mode = if builder { "builder" } else { "code" };
        tally.count(&run_child(NAME, &format!("{mode} {settings}"))?);
    });
    tally.check(cfg!(feature = "sqlite") && cases() >= 20);
}
