//! W2, W3, W4 and W5 through two revisions of the crate in one process: `old` (a
//! revision checked out by `scripts/compare-revision`) and `new` (this
//! tree), interleaved in short rounds (alternating which goes first) so
//! that a shared machine's noise falls on both alike. Prints each side's
//! median time per call and the median of the per-round ratios new/old.
//!
//! Environment: ROUNDS (default 200), WORKLOADS (default "W3 W4"; also W1,
//! one conversation created, W2, one append, W5, one transaction of 1,000
//! messages, W5A, 20 of them in one transaction, W6, one file created
//! and read, and W2F, W2 on a store whose change feed a thread reads),
//! KINDS (default "memory sqlite", add "postgres" with AB_PG_old and
//! AB_PG_new naming one database each),
//! PROFILE (`old:W3`, `new:W4`, …: run that one side alone for five
//! seconds instead, e.g. under a profiler).

use std::hint::black_box;
use std::time::Instant;

macro_rules! side {
    ($m:ident) => {
        mod $m {
            use $m::prelude::*;

            /// What `benches/workloads.rs` builds: a conversation of 100
            /// messages of 500 bytes with one attachment each, then 10,000
            /// conversations.
            pub struct Side {
                store: Store,
                conversation: ConversationId,
                appended: ConversationId,
                content: String,
                _dir: Option<tempfile::TempDir>,
                /// For W2F: a store of its own, subscribed to (W2F needs a
                /// revision with the change feed on both sides).
                fed: Option<Fed>,
            }

            /// A store whose feed a thread reads until the store is dropped.
            pub struct Fed {
                store: Store,
                appended: ConversationId,
                _reader: std::thread::JoinHandle<()>,
            }

            fn fed() -> Fed {
                let store = Store::open("memory://").expect("open");
                let appended = store.conversations().create(NewConversation::titled("W2F")).expect("create").id;
                let feed = store.subscribe().expect("subscribe");
                let reader = std::thread::spawn(move || while feed.recv().is_some() {});
                Fed { store, appended, _reader: reader }
            }

            fn message(content: &str) -> NewMessage {
                NewMessage::new(Role::Assistant, content.to_owned()).with_attachments(vec![Attachment {
                    file_id: FileId::new(),
                    filename: "chapter-1-notes.md".into(),
                    content_type: "text/markdown".into(),
                    size: 2048,
                }])
            }

            pub fn open(kind: &str) -> Side {
                let (store, dir) = match kind {
                    "memory" => (Store::open("memory://").expect("open"), None),
                    "postgres" => {
                        let url = std::env::var(concat!("AB_PG_", stringify!($m))).expect("AB_PG_*");
                        (Store::open(&url).expect("open"), None)
                    }
                    _ => {
                        let dir = tempfile::tempdir().expect("dir");
                        let url = format!("sqlite:///{}", dir.path().join("ab.db").display());
                        (Store::open(&url).expect("open"), Some(dir))
                    }
                };
                let content = "The storm came in over the harbour at dusk; the letter lay unopened. "
                    .repeat(8)[..500]
                    .to_owned();
                let c = store.conversations().create(NewConversation::titled("W3")).expect("create");
                let messages = (0..100).map(|_| message(&content)).collect();
                store.conversations().append_messages(c.id, messages).expect("append");
                store
                    .transaction(|tx| -> $m::Result<()> {
                        for i in 0..10_000 {
                            tx.conversations().create(NewConversation::titled(format!("conversation {i}")))?;
                        }
                        Ok(())
                    })
                    .expect("conversations");
                let appended = store.conversations().create(NewConversation::titled("W2")).expect("create").id;
                let wanted = std::env::var("WORKLOADS").is_ok_and(|w| w.contains("W2F"));
                let fed = (wanted && kind == "memory").then(fed);
                Side { store, conversation: c.id, appended, content, _dir: dir, fed }
            }

            pub fn w1(s: &Side) -> usize {
                s.store.conversations().create(NewConversation::titled("A new chapter")).expect("create");
                1
            }

            pub fn w6(s: &Side) -> usize {
                let file = s
                    .store
                    .files()
                    .create(NewFile {
                        filename: "chapter-1-notes.md".into(),
                        content_type: "text/markdown".into(),
                        size: 2048,
                        ..Default::default()
                    })
                    .expect("create");
                s.store.files().get(file.id).expect("get").map_or(0, |_| 1)
            }

            pub fn w2(s: &Side) -> usize {
                s.store.conversations().append_message(s.appended, message(&s.content)).expect("append");
                1
            }

            pub fn w2f(s: &Side) -> usize {
                let fed = s.fed.as_ref().expect("W2F runs on memory");
                fed.store.conversations().append_message(fed.appended, message(&s.content)).expect("append");
                1
            }

            /// W5 as an app writes it: 20 conversations of 1,000 messages
            /// (an attachment each) in one transaction, a batch a call.
            pub fn w5a(s: &Side) -> usize {
                s.store
                    .transaction(|tx| -> $m::Result<usize> {
                        let mut n = 0;
                        for _ in 0..20 {
                            let c = tx.conversations().create(NewConversation::titled("W5A"))?;
                            let batch = (0..1000).map(|_| message(&s.content)).collect();
                            n += tx.conversations().append_messages(c.id, batch)?.len();
                        }
                        Ok(n)
                    })
                    .expect("import")
            }

            pub fn w5(s: &Side) -> usize {
                s.store
                    .transaction(|tx| -> $m::Result<usize> {
                        let c = tx.conversations().create(NewConversation::titled("W5"))?;
                        let batch = (0..1000).map(|_| message(&s.content)).collect();
                        Ok(tx.conversations().append_messages(c.id, batch)?.len())
                    })
                    .expect("import")
            }

            pub fn w3(s: &Side) -> usize {
                let c = s.store.conversations().get(s.conversation).expect("get").expect("exists");
                assert_eq!(c.messages.len(), 100);
                c.messages.len()
            }

            pub fn w4(s: &Side) -> usize {
                s.store.conversations().list(ConversationQuery::recent(50)).expect("list").items.len()
            }
        }
    };
}
side!(old);
side!(new);

/// Mean time per call over `iters` calls, in µs.
fn time(iters: u32, mut f: impl FnMut() -> usize) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let kinds = std::env::var("KINDS").unwrap_or_else(|_| "memory sqlite".into());
    for kind in kinds.split_whitespace() {
        let (o, n) = (old::open(kind), new::open(kind));
        if kind == "postgres" {
            // Plans from statistics on both sides, not from whenever
            // autovacuum gets to them.
            for side in ["old", "new"] {
                let url = std::env::var(format!("AB_PG_{side}")).expect("AB_PG_*");
                let ok = std::process::Command::new("psql").args([url.as_str(), "-qc", "ANALYZE"]).status();
                assert!(ok.is_ok_and(|s| s.success()), "psql ANALYZE failed");
            }
        }
        if let Ok(profile) = std::env::var("PROFILE") {
            // One side's one workload for five seconds, to run under a
            // profiler: PROFILE=new:W3, PROFILE=old:W4, …
            let t = Instant::now();
            let mut calls = 0u32;
            while t.elapsed().as_secs() < 5 {
                black_box(match profile.as_str() {
                    "old:W3" => old::w3(&o),
                    "new:W3" => new::w3(&n),
                    "old:W4" => old::w4(&o),
                    "new:W4" => new::w4(&n),
                    _ => panic!("PROFILE is SIDE:WORKLOAD (old or new, W3 or W4)"),
                });
                calls += 1;
            }
            println!("{profile} {kind}: {:.1} µs per call", t.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
            continue;
        }
        let workloads = std::env::var("WORKLOADS").unwrap_or_else(|_| "W3 W4".into());
        for name in workloads.split_whitespace() {
            let iters = match (name, kind) {
                ("W5" | "W5A", _) => 1,
                ("W1" | "W2" | "W6", "postgres") => 20,
                ("W1" | "W6", _) => 100,
                ("W2" | "W2F", _) => 100,
                ("W3", "memory") => 500,
                ("W4", "memory") => 2000,
                ("W3", "sqlite") => 100,
                ("W4", "sqlite") => 300,
                ("W3", _) => 20,
                _ => 50,
            };
            let (old_w, new_w): (fn(&old::Side) -> usize, fn(&new::Side) -> usize) = match name {
                "W1" => (old::w1, new::w1),
                "W2" => (old::w2, new::w2),
                "W2F" => (old::w2f, new::w2f),
                "W3" => (old::w3, new::w3),
                "W4" => (old::w4, new::w4),
                "W5" => (old::w5, new::w5),
                "W5A" => (old::w5a, new::w5a),
                "W6" => (old::w6, new::w6),
                _ => panic!("WORKLOADS holds W1, W2, W2F, W3, W4, W5, W5A, W6"),
            };
            let run_old = || time(iters, || old_w(&o));
            let run_new = || time(iters, || new_w(&n));
            let (mut olds, mut news, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds + 10 {
                let (a, b) = if round % 2 == 0 {
                    let a = run_old();
                    (a, run_new())
                } else {
                    let b = run_new();
                    (run_old(), b)
                };
                if round >= 10 {
                    // The first rounds warm up caches and plans.
                    olds.push(a);
                    news.push(b);
                    ratios.push(b / a);
                }
            }
            println!(
                "{name} {kind}: old {:.2} µs, new {:.2} µs; new/old per round: median {:.3} (quartiles {:.3}–{:.3}, {rounds} rounds)",
                quantile(&mut olds, 0.5),
                quantile(&mut news, 0.5),
                quantile(&mut ratios, 0.5),
                quantile(&mut ratios, 0.25),
                quantile(&mut ratios, 0.75),
            );
        }
    }
}
