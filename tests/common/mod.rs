//! Test support shared by the integration tests: throwaway PostgreSQL databases.
#![allow(dead_code)] // each test crate uses part of it

/// The newest schema version this build has (each dialect's folder under
/// `migrations/` holds one up script per version: `latest_is_the_newest_script`).
pub const LATEST: i64 = 12;

/// Every schema version, oldest first.
pub fn versions() -> Vec<i64> {
    (1..=LATEST).collect()
}

#[cfg(feature = "sqlite")]
pub mod schema;

/// The variable naming a PostgreSQL server the tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "SILMARI_TEST_POSTGRES_URL";
/// The variable holding a shell command that restarts that server (optional).
pub const POSTGRES_RESTART_VAR: &str = "SILMARI_TEST_POSTGRES_RESTART";

/// The server URL, or `None` (after saying so once) when none is configured.
/// In CI (`CI=true`) a missing server fails the test instead.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{POSTGRES_URL_VAR} is not set: CI must run the PostgreSQL tests")
        }
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                // Written past the test harness's capture, so it shows.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTE: PostgreSQL tests were NOT run: {POSTGRES_URL_VAR} is not set. \
                     Run them with: scripts/with-postgres cargo test --all-features\n"
                );
            });
            None
        }
    }
}

#[cfg(feature = "postgres")]
pub mod pg {
    use postgres::{Client, NoTls};

    /// A database of its own on the configured server, dropped afterwards,
    /// so tests can run in parallel.
    pub struct Database {
        server: String,
        name: String,
        /// URL of this database (with the server's credentials).
        pub url: String,
    }

    /// `url` with its database name replaced by `name`.
    pub fn with_database(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url, String::new()),
        };
        let (scheme, rest) = base.split_once("://").expect("server URL has a scheme");
        let host = rest.split('/').next().unwrap_or(rest);
        format!("{scheme}://{host}/{name}{query}")
    }

    impl Database {
        /// A fresh, empty database; `None` when no server is configured.
        pub fn create() -> Option<Database> {
            let server = super::postgres_server()?;
            let name = format!("silmari_t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = Client::connect(&server, NoTls)
                .unwrap_or_else(|e| panic!("cannot reach the PostgreSQL test server: {e}"));
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create the test database");
            let url = with_database(&server, &name);
            Some(Database { server, name, url })
        }

        /// A plain client on this database.
        pub fn client(&self) -> Client {
            Client::connect(&self.url, NoTls).expect("connect to the test database")
        }
    }

    /// A store on `database` with a small pool (4 + 4) and `pool_timeout`.
    pub fn open(database: &Database, pool_timeout: std::time::Duration) -> silmari_store::Store {
        let mut config: silmari_store::StoreConfig = database.url.parse().unwrap();
        config.pool = silmari_store::PoolConfig {
            pool_size: 4,
            max_overflow: 4,
            pool_timeout,
            ..silmari_store::PoolConfig::default()
        };
        silmari_store::Store::open_with(config).unwrap()
    }

    /// Appends one user message.
    pub fn append(
        store: &silmari_store::Store,
        id: silmari_store::ConversationId,
        text: &str,
    ) -> silmari_store::Result<silmari_store::Message> {
        use silmari_store::ConversationRepository;
        store.conversations().append_message(
            id,
            silmari_store::NewMessage::new(silmari_store::Role::User, text),
        )
    }

    impl Drop for Database {
        /// Drops the database. Sessions of other roles (a test's own login
        /// roles) may still be closing, and a role that is not a superuser
        /// cannot end them with FORCE: try again for a few seconds.
        fn drop(&mut self) {
            let Ok(mut admin) = Client::connect(&self.server, NoTls) else {
                return;
            };
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            for _ in 0..50 {
                if admin.batch_execute(&drop).is_ok() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// The whole visible state of a store: every file record, and every
/// conversation with its messages, with versions left out (each store counts
/// its own writes, so a copy's versions differ from its source's).
pub fn contents(
    store: &silmari_store::Store,
) -> (
    Vec<silmari_store::FileMetadata>,
    Vec<silmari_store::Conversation>,
) {
    use silmari_store::{ConversationRepository, FileRepository, PageRequest};
    let mut files = Vec::new();
    let mut request = PageRequest::first(1000);
    loop {
        let page = store.files().list(request.clone()).unwrap();
        files.extend(page.items);
        match page.next {
            Some(cursor) => request = request.after(cursor),
            None => break,
        }
    }
    let mut conversations = store.conversations().list_all().unwrap();
    for c in &mut conversations {
        c.version = 0;
    }
    (files, conversations)
}

/// Writes a line of figures past the test harness's output capture, so that
/// CI's log shows it for passing tests too.
pub fn report(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The URL of the SQLite file at `path`.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite:///{}", path.display())
}

/// A size from the environment variable `var` (a soak setting), else `ci`.
pub fn size_from_env(var: &str, ci: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ci)
}

/// The admin tool (`examples/silmari/`), built once per test binary with
/// the features of the test build.
pub fn admin_tool() -> &'static std::path::PathBuf {
    use std::path::PathBuf;
    use std::process::Command;
    static TOOL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    TOOL.get_or_init(|| {
        let mut features = Vec::new();
        for (on, name) in [
            (cfg!(feature = "sqlite"), "sqlite"),
            (cfg!(feature = "postgres"), "postgres"),
            (cfg!(feature = "postgres-tls"), "postgres-tls"),
            (cfg!(feature = "encryption"), "encryption"),
        ] {
            if on {
                features.push(name);
            }
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args(["build", "--example", "silmari", "--message-format=json"])
            .args(["--no-default-features", "--features", &features.join(",")])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "cargo build --example silmari: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["target"]["name"] == "silmari")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the silmari executable")
    })
}

/// Everything `err` shows, down its source chain: `Display` and `Debug` of
/// each, one per line.
pub fn shown(err: &silmari_store::Error) -> String {
    let mut text = format!("{err}\n{err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    text
}

/// A small deterministic generator (xorshift64*), so failures replay from the seed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `SILMARI_SEED`, else the clock; prints the seed.
    pub fn from_env() -> Self {
        let seed = std::env::var("SILMARI_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        println!("seed {seed} (SILMARI_SEED={seed} replays it)");
        Rng(seed.max(1))
    }

    /// A generator that replays `seed`.
    pub fn seeded(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A duration between zero and `max`.
    pub fn upto(&mut self, max: std::time::Duration) -> std::time::Duration {
        max.mul_f64(self.below(10_001) as f64 / 10_000.0)
    }
}

/// Every log record of this test binary, as text, once [`capture_logs`]
/// installed the logger.
static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOGGED.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Installs a logger that keeps every record (once per test binary), at
/// every level.
pub fn capture_logs() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("one logger per test binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Everything logged so far, a record per line.
pub fn logged() -> String {
    LOGGED.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
}

/// Set in a child test process started by [`peak_kib_of_child`].
pub const CHILD_VAR: &str = "SILMARI_TEST_CHILD";

/// True inside a child started by [`peak_kib_of_child`].
pub fn in_child() -> bool {
    std::env::var_os(CHILD_VAR).is_some()
}

/// What follows `tag` in `line`, a line of a child's standard output,
/// wherever the tag starts: the test harness prints `test NAME ... `
/// without a line break before it runs the test, so the child's first
/// line follows that text on the same line (a parser that wanted the tag
/// at the start lost every child's first line).
pub fn after_tag<'l>(line: &'l str, tag: &str) -> Option<&'l str> {
    line.split_once(tag).map(|(_, rest)| rest)
}

/// Starts this test binary's test `name` as a child with `CHILD_VAR` set to
/// `arg`, its standard output piped (read its lines with [`after_tag`]).
pub fn child(name: &str, arg: &str) -> std::process::Child {
    child_command(name, arg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child")
}

/// Runs `command`; false when it fails (for example without privileges).
pub fn run(command: &[&str]) -> bool {
    std::process::Command::new(command[0])
        .args(&command[1..])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Says a part could not run here; in CI that is a failure.
pub fn cannot_run_here(what: &str) {
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{what} must run in CI (as root)"
    );
    println!("NOTE: {what} not run: needs root (mount, chattr)");
}

/// Runs test `name` of this test binary alone in a child process, with
/// `CHILD_VAR` set to `arg`, to its end: its standard output, once it has
/// exited successfully (else a panic with both its outputs).
pub fn child_stdout(name: &str, arg: &str) -> String {
    successful_stdout(child_command(name, arg).output().expect("run the child"))
}

/// The standard output of a child started with its output piped (as by
/// [`child`]), once it has exited successfully (else a panic with it).
pub fn stdout_of(child: std::process::Child) -> String {
    successful_stdout(child.wait_with_output().expect("wait for the child"))
}

/// The command that runs test `name` of this test binary alone, with
/// `CHILD_VAR` set to `arg`.
pub fn child_command(name: &str, arg: &str) -> std::process::Command {
    let mut command = std::process::Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, arg);
    command
}

/// A finished child's standard output, if it exited successfully (else a
/// panic with both its outputs; its standard error may not have been kept).
fn successful_stdout(out: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs test `name` of this test binary alone in a child process, with
/// `CHILD_VAR` set to `arg`, and returns the peak resident memory (KiB) the
/// child reports with [`report_peak_kib`].
pub fn peak_kib_of_child(name: &str, arg: &str) -> u64 {
    let stdout = child_stdout(name, arg);
    stdout
        .lines()
        .find_map(|l| l.split("PEAK_KIB ").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the child reports its peak memory; it said:\n{stdout}"))
}

/// Prints this process's peak resident memory (Linux `VmHWM`) for the parent.
pub fn report_peak_kib() {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM");
    println!("PEAK_KIB {}", peak.trim().trim_end_matches("kB").trim());
}

/// A conversation of one message in `store` (on the SQLite file at `path`)
/// whose attachment list another program then damaged, and that program's
/// connection.
#[cfg(feature = "sqlite")]
pub fn damaged_attachments(
    store: &silmari_store::Store,
    path: &std::path::Path,
) -> (silmari_store::ConversationId, rusqlite::Connection) {
    use silmari_store::prelude::*;
    let c = store
        .conversations()
        .create(NewConversation::titled("t"))
        .unwrap();
    store
        .conversations()
        .append_message(c.id, NewMessage::new(Role::User, "x"))
        .unwrap();
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute("UPDATE messages SET attachments = '{not json'", [])
        .unwrap();
    (c.id, raw)
}
