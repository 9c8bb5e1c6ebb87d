//! Progress of `copy`, `export` and `import`: a bar on a terminal, plain
//! lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use silmari_store::{Progress, TransferReport};

/// A progress bar on a terminal, a plain line every few seconds otherwise.
pub struct Reporter {
    what: &'static str,
    bar: Option<ProgressBar>,
    last: std::cell::Cell<std::time::Instant>,
}

impl Reporter {
    pub fn new(what: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:40}] {pos}/{len} records ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            what,
            bar,
            last: std::cell::Cell::new(std::time::Instant::now()),
        }
    }

    pub fn update(&self, p: Progress) {
        let done = p.done.files + p.done.conversations + p.done.messages;
        let total = p.total.map(|t| t.files + t.conversations + t.messages);
        self.count(done, total);
    }

    /// `done` of `total` records.
    pub fn count(&self, done: u64, total: Option<u64>) {
        match &self.bar {
            Some(bar) => {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            None if self.last.get().elapsed() >= Duration::from_secs(2) => {
                self.last.set(std::time::Instant::now());
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                eprintln!("{}: {done}{of} records", self.what);
            }
            None => {}
        }
    }

    /// Clears the bar and prints `line` (nothing when empty).
    pub fn finish(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !line.is_empty() {
            eprintln!("{line}");
        }
    }

    pub fn done(&self, report: &TransferReport) {
        self.finish("");
        let (w, s) = (report.written, report.skipped);
        let mut err = std::io::stderr();
        let _ = writeln!(
            err,
            "{}: {} files, {} conversations, {} messages written; \
             {} files, {} conversations, {} messages already there",
            self.what, w.files, w.conversations, w.messages, s.files, s.conversations, s.messages
        );
    }
}
