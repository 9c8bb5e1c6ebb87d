//! The latency tail on SQLite: every call of W1, W2, W6 and W7 timed, for
//! the store with its default background checkpoints, the store with
//! SQLite's own (inline) checkpoints, and the hand-written baseline (which
//! keeps SQLite's default checkpointing). Prints p50, p99, p99.9, the mean
//! and the peak size of the `-wal` file (sampled every millisecond).
//!
//! ```text
//! cargo bench --bench tail                          # W2 for 10 s, the others 5 s
//! SILMARI_TAIL_SECONDS=2 cargo bench --bench tail   # shorter
//! SILMARI_TAIL_WORKLOADS=W2 cargo bench --bench tail # only W2
//! ```

#[allow(dead_code)] // the baseline's other workloads are the main bench's
#[path = "baseline/sqlite.rs"]
mod baseline_sqlite;
#[path = "workloads/data.rs"]
mod data;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use silmari_store::prelude::*;
use silmari_store::{Checkpoint, SqliteOptions, StoreConfig};
use tempfile::TempDir;

use data::{attachment, content, file_create_get};

/// Who runs the workload.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Background,
    Inline,
    Baseline,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Background => "store, background checkpoints",
            Side::Inline => "store, inline checkpoints",
            Side::Baseline => "hand-written baseline",
        }
    }
}

/// A fresh migrated database file; the store on it unless `side` is the
/// baseline (which opens its own connections).
fn database(side: Side) -> (TempDir, PathBuf, Option<Store>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tail.db");
    let checkpoint = match side {
        Side::Inline => Checkpoint::Inline { pages: 1000 },
        _ => Checkpoint::default(),
    };
    let mut config: StoreConfig = format!("sqlite:///{}", path.display())
        .parse()
        .expect("url");
    config.sqlite = SqliteOptions {
        checkpoint,
        ..SqliteOptions::default()
    };
    let store = Store::open_with(config).expect("open");
    if side == Side::Baseline {
        drop(store);
        return (dir, path, None);
    }
    (dir, path, Some(store))
}

/// Samples the size of `<path>-wal` every millisecond until stopped.
struct WalWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl WalWatch {
    fn start(path: &Path) -> Self {
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = std::thread::spawn({
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(meta) = std::fs::metadata(&wal) {
                        peak.fetch_max(meta.len(), Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        WalWatch { stop, peak, thread }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("watcher");
        self.peak.load(Ordering::Relaxed)
    }
}

/// Runs `op` on `threads` threads for `seconds`, timing every call.
fn run<'a>(
    threads: usize,
    seconds: f64,
    op: impl Fn(usize) -> Box<dyn FnMut() + 'a> + Sync,
) -> Vec<Duration> {
    let barrier = Barrier::new(threads);
    let until = Duration::from_secs_f64(seconds);
    let mut all = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    let mut call = op(t);
                    let mut times = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let started = Instant::now();
                    while started.elapsed() < until {
                        let t0 = Instant::now();
                        call();
                        times.push(t0.elapsed());
                    }
                    times
                })
            })
            .collect();
        for h in handles {
            all.extend(h.join().expect("thread"));
        }
    });
    all
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn report(workload: &str, side: Side, mut times: Vec<Duration>, wal_peak: u64) {
    times.sort();
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    let (p50, p99, p999) = (
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        quantile(&times, 0.999),
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {workload} | {} | {} | {:.1} | {:.1} ({:.1}x) | {:.1} ({:.1}x) | {:.1} | {:.1} |",
        side.name(),
        times.len(),
        us(p50),
        us(p99),
        us(p99) / us(p50),
        us(p999),
        us(p999) / us(p50),
        us(mean),
        wal_peak as f64 / (1024.0 * 1024.0),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read.
    let seconds: f64 = std::env::var("SILMARI_TAIL_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let text = content();
    println!("| workload | who | calls | p50 µs | p99 µs | p99.9 µs | mean µs | WAL peak MiB |");
    println!("|---|---|---|---|---|---|---|---|");
    let sides = [Side::Background, Side::Inline, Side::Baseline];
    let chosen = std::env::var("SILMARI_TAIL_WORKLOADS").unwrap_or_default();
    for workload in ["W1", "W2", "W6", "W7"] {
        if !chosen.is_empty() && !chosen.split(',').any(|w| w.trim() == workload) {
            continue;
        }
        let (threads, secs) = match workload {
            "W2" => (1, seconds * 2.0),
            "W7" => (4, seconds),
            _ => (1, seconds),
        };
        for side in sides {
            let (_dir, path, store) = database(side);
            let watch = WalWatch::start(&path);
            let times = run(threads, secs, |_| -> Box<dyn FnMut() + '_> {
                match (&store, workload) {
                    (Some(store), "W1") => Box::new(move || {
                        store
                            .conversations()
                            .create(NewConversation::titled("W1"))
                            .expect("create");
                    }),
                    (Some(store), "W2" | "W7") => {
                        let c = store
                            .conversations()
                            .create(NewConversation::titled(workload))
                            .expect("create")
                            .id;
                        let text = &text;
                        Box::new(move || {
                            let message = NewMessage::new(Role::User, text.clone())
                                .with_attachments(vec![attachment()]);
                            store
                                .conversations()
                                .append_message(c, message)
                                .expect("append");
                        })
                    }
                    (Some(store), _) => Box::new(move || {
                        file_create_get(store);
                    }),
                    (None, _) => {
                        let base = baseline_sqlite::Baseline::open(&path);
                        let c = base.create_conversation(workload);
                        let attachments = vec![attachment()];
                        let text = &text;
                        Box::new(move || match workload {
                            "W1" => {
                                base.create_conversation("W1");
                            }
                            "W6" => {
                                base.create_and_get_file("chapter-1.pdf");
                            }
                            _ => {
                                base.append(c, text, &attachments);
                            }
                        })
                    }
                }
            });
            report(workload, side, times, watch.peak());
        }
    }
}
