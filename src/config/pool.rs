//! Pool and SQLite settings, and the ranges every numeric setting must fall
//! in (checked by [`StoreConfig::validate`](super::StoreConfig::validate),
//! which both URLs and code go through).

use std::time::Duration;

use crate::error::{Error, Result};

/// `pool_size`: 1 to 100 connections.
const POOL_SIZE: (u64, u64) = (1, 100);
/// `max_overflow`: 0 to 100 connections. With `pool_size` at most 200
/// connections, about 400 open files for an SQLite file (its database and
/// WAL files each): well inside the 1024 open files a desktop process often
/// may have.
const MAX_OVERFLOW: (u64, u64) = (0, 100);
/// `statement_cache_capacity`: 0 to 1000 prepared statements per connection.
const STATEMENT_CACHE_CAPACITY: (u64, u64) = (0, 1000);
/// `snapshots_kept`: 0 to 100 copies of the database file.
const SNAPSHOTS_KEPT: (u64, u64) = (0, 100);
/// `checkpoint` pages: 1 to 1,000,000 (4 GiB of 4 KiB pages).
const CHECKPOINT_PAGES: (u64, u64) = (1, 1_000_000);
/// `mmap_size`: 0 (off) to 2,147,418,112 bytes, the ceiling SQLite is
/// built with on 64-bit Linux, macOS and Windows (just under 2 GiB; SQLite
/// would lower a larger value to it without a word).
const MMAP_SIZE: (u64, u64) = (0, 0x7fff_0000);
/// `cache_size`: 256 KiB to 1 GiB of pages per connection.
const CACHE_SIZE: (u64, u64) = (256 << 10, 1 << 30);
/// The longest timeout or lifetime: one day.
const ONE_DAY: Duration = Duration::from_secs(86_400);
/// `pool_timeout`: 1 ms to one day.
const POOL_TIMEOUT: (Duration, Duration) = (Duration::from_millis(1), ONE_DAY);
/// `pool_recycle`: 1 s to one day (or `None`).
const POOL_RECYCLE: (Duration, Duration) = (Duration::from_secs(1), ONE_DAY);
/// `busy_timeout`: zero to one day (SQLite takes it in `i32` milliseconds).
const BUSY_TIMEOUT: (Duration, Duration) = (Duration::ZERO, ONE_DAY);
/// `slow_statement`: zero (every statement) to one day.
const SLOW_STATEMENT: (Duration, Duration) = (Duration::ZERO, ONE_DAY);

/// Connection pool settings, named and defaulted as in the original plan
/// (SQLAlchemy's `create_engine`).
///
/// Mapped onto r2d2 as `max_size = pool_size + max_overflow`,
/// `min_idle = pool_size`, `connection_timeout = pool_timeout`,
/// `max_lifetime = pool_recycle`. A value outside the range its field names
/// is refused with [`Error::InvalidInput`] naming the field when the store
/// opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections kept open while idle: 1 to 100. Default 10.
    pub pool_size: u32,
    /// Extra connections opened under load: 0 to 100. Default 20.
    pub max_overflow: u32,
    /// How long a call waits for a free connection before
    /// [`Error::Unavailable`]: 1 ms to one day (86 400 s). Default 30 s.
    pub pool_timeout: Duration,
    /// Connections older than this are closed and replaced: 1 s to one day
    /// (86 400 s); `None` keeps them. Default 1800 s.
    pub pool_recycle: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_size: 10,
            max_overflow: 20,
            pool_timeout: Duration::from_secs(30),
            pool_recycle: Some(Duration::from_secs(1800)),
        }
    }
}

impl PoolConfig {
    /// Most connections open at once: `pool_size + max_overflow`.
    pub fn max_size(&self) -> u32 {
        self.pool_size.saturating_add(self.max_overflow)
    }

    /// Refuses a field outside its range.
    pub(super) fn validate(&self) -> Result<()> {
        count("pool_size", self.pool_size.into(), POOL_SIZE)?;
        count("max_overflow", self.max_overflow.into(), MAX_OVERFLOW)?;
        duration("pool_timeout", self.pool_timeout, POOL_TIMEOUT)?;
        if let Some(recycle) = self.pool_recycle {
            duration("pool_recycle", recycle, POOL_RECYCLE)?;
        }
        Ok(())
    }
}

/// Settings of the SQLite backend. A value outside the range its field
/// names is refused with [`Error::InvalidInput`] naming the field when the
/// store opens (whatever the backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a connection waits for another's write lock before
    /// [`Error::Unavailable`]: zero (do not wait) to one day (86 400 s),
    /// counted in whole milliseconds. Default 5 s. Behind another of the
    /// store's own connections a waiter tries again as SQLite does (1, 2,
    /// 5 … then 100 ms between attempts: threads of one store pass the lock
    /// around fastest that way); behind another process or store it tries
    /// after 50 µs, doubling to every millisecond, so that it gets the lock
    /// even beside a process that writes in a tight loop (attempts 100 ms
    /// apart mostly missed the instants that process left it free). In the
    /// second half of the timeout every waiter tries every millisecond.
    pub busy_timeout: Duration,
    /// Prepared statements cached per connection: 0 to 1000. Default 64.
    pub statement_cache_capacity: usize,
    /// Refuse to open a database file that cannot use the WAL journal (for
    /// example on some network file systems). Default `true`. With `false`
    /// the store logs a warning and keeps the journal mode SQLite gives it.
    pub require_wal: bool,
    /// How many snapshots of a database file to keep, 0 to 100: before
    /// migrations run on a file that holds data, it is copied beside itself
    /// (`<file>.v<version>-<time>.snapshot`) and older copies beyond this
    /// number are removed. Default 3; 0 takes none.
    pub snapshots_kept: usize,
    /// Statements that run at least this long are logged at `debug` level
    /// (target `silmari_store::slow`), with their SQL text (placeholders,
    /// never the values bound to them) and duration: zero (every statement)
    /// to one day. URL parameter `slow_statement` (seconds). Default `None`:
    /// off, and then nothing is measured at all.
    pub slow_statement: Option<Duration>,
    /// When a database file's write-ahead log is copied back into it (a
    /// checkpoint): by a thread of the store, off the commit path (the
    /// default, [`Checkpoint::Background`] at 1000 pages), or by the commit
    /// that fills it, as SQLite does by itself ([`Checkpoint::Inline`]).
    /// Pages: 1 to 1,000,000.
    pub checkpoint: Checkpoint,
    /// How much of a database file each connection reads through a memory
    /// map rather than by `read` calls (SQLite's `mmap_size`), in bytes: 0
    /// (the default, off) to 2,147,418,112. URL parameter `mmap_size`.
    ///
    /// A read then takes pages straight from the operating system's file
    /// cache, without copying them, which helps reads of more pages than
    /// [`cache_size`](Self::cache_size) holds: on the search corpus of
    /// `BENCHMARKS.md` (1,000,000 messages), with a 2 MiB page cache,
    /// searches by relevance took a fifth to a third less time with 1 GiB
    /// mapped; with the default 16 MiB, which holds what they read, it
    /// gained little. Writes still go through `write` calls, so a
    /// stray pointer cannot change the file, and durability is unchanged.
    /// It is off by default for the reason SQLite's is: an I/O error while
    /// reading a mapped page (a failing disk, a network file system that
    /// goes away, a file cut short by a program that does not use SQLite's
    /// locks) cannot be returned as an error; the operating system stops
    /// the process (`SIGBUS` on Unix). Turn it on for a database on a local
    /// disk. An encrypted file (the `encryption` feature) is never mapped
    /// (SQLCipher decrypts each page it reads, so a map gains nothing), and
    /// in-memory databases ignore it.
    pub mmap_size: u64,
    /// How many bytes of database pages each connection keeps in memory
    /// between reads (SQLite's page cache, `cache_size`): 262,144 (256 KiB)
    /// to 1,073,741,824 (1 GiB). Default 16 MiB, eight times SQLite's own.
    /// URL parameter `cache_size`.
    ///
    /// A connection fills its cache only as it reads, and keeps what it
    /// read for its next statements (until another connection changes the
    /// file): a search by relevance on the corpus of `BENCHMARKS.md` reads
    /// about 10 MiB of pages, and took 15–20% less time with a cache that
    /// holds them than with SQLite's 2 MiB. The price is memory: up to this
    /// much for each connection that reads that much, so the store's
    /// connections together may hold `pool_size + max_overflow` times it
    /// when all are busy at once.
    pub cache_size: u64,
    /// The key of an encrypted database file (the `encryption` feature):
    /// `None` (the default) opens and creates plain files. With a key, a
    /// new file is created encrypted, and every connection is keyed before
    /// any other statement; a file it does not fit is refused with
    /// [`Error::Key`](crate::Error::Key) and left untouched. Not
    /// settable from a URL. An in-memory SQLite database refuses a key.
    #[cfg(feature = "encryption")]
    pub key: Option<super::Key>,
}

/// Who runs an SQLite database file's checkpoints, and when.
///
/// In WAL mode a commit appends pages to `<file>-wal`; a checkpoint copies
/// them back into the database file so that the log can start again from
/// its beginning. Durability is the same either way (`synchronous=NORMAL`):
/// a commit is in the log before it is acknowledged, and a checkpoint
/// syncs the log before it copies anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// A thread of the store, woken by a commit that leaves `pages` pages
    /// or more in the log, copies them back while writers go on (SQLite's
    /// `PASSIVE` checkpoint), so commits do not wait for checkpoints. The
    /// log starts again from its beginning only when a writer begins after
    /// a checkpoint copied all of it, which writers that never pause do not
    /// allow: so the commit that leaves eight times `pages` in the log waits
    /// for one more, short, pass of the thread (taking no lock: readers and
    /// other writers go on), and the log starts again; the log file is cut
    /// back to eight times `pages` when it does. A reader that stays on an
    /// old snapshot keeps it from starting again, as with SQLite's own
    /// checkpoints (so do the pool's new connections, which each read the
    /// schema, while a store just opened fills its pool); a log that
    /// reaches 32 times `pages` all the same is cut short by a `RESTART`
    /// checkpoint, which holds new writers back (up to 100 ms) while it
    /// copies the rest. The thread stops when the last clone of the
    /// [`Store`](crate::Store) is dropped; a database file opened by several
    /// stores or processes has a checkpointer in each, and they never wait
    /// for one another (one that finds another at work leaves it to that
    /// one).
    Background {
        /// Pages in the log (4 KiB each by default) that wake the thread.
        pages: u32,
    },
    /// The commit that leaves `pages` pages or more in the log runs the
    /// checkpoint itself before it returns (SQLite's `wal_autocheckpoint`).
    /// The log file is cut back to eight times `pages` when it starts
    /// again, as in the background mode.
    Inline {
        /// Pages in the log that make a commit checkpoint.
        pages: u32,
    },
}

impl Checkpoint {
    /// The pages that set a checkpoint off.
    pub fn pages(self) -> u32 {
        match self {
            Checkpoint::Background { pages } | Checkpoint::Inline { pages } => pages,
        }
    }
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint::Background { pages: 1000 }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            statement_cache_capacity: 64,
            require_wal: true,
            snapshots_kept: 3,
            slow_statement: None,
            checkpoint: Checkpoint::default(),
            mmap_size: 0,
            cache_size: 16 << 20,
            #[cfg(feature = "encryption")]
            key: None,
        }
    }
}

impl SqliteOptions {
    /// Refuses a field outside its range.
    pub(super) fn validate(&self) -> Result<()> {
        duration("busy_timeout", self.busy_timeout, BUSY_TIMEOUT)?;
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        count(
            "statement_cache_capacity",
            wide(self.statement_cache_capacity),
            STATEMENT_CACHE_CAPACITY,
        )?;
        count("snapshots_kept", wide(self.snapshots_kept), SNAPSHOTS_KEPT)?;
        if let Some(threshold) = self.slow_statement {
            duration("slow_statement", threshold, SLOW_STATEMENT)?;
        }
        count(
            "checkpoint",
            u64::from(self.checkpoint.pages()),
            CHECKPOINT_PAGES,
        )?;
        count("mmap_size", self.mmap_size, MMAP_SIZE)?;
        count("cache_size", self.cache_size, CACHE_SIZE)
    }
}

fn count(field: &str, value: u64, (min, max): (u64, u64)) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(count_error(field, (min, max)))
    }
}

fn count_error(field: &str, (min, max): (u64, u64)) -> Error {
    Error::invalid(field, format!("must be a whole number from {min} to {max}"))
}

fn duration(field: &str, value: Duration, range: (Duration, Duration)) -> Result<()> {
    if (range.0..=range.1).contains(&value) {
        Ok(())
    } else {
        Err(seconds_error(field, range))
    }
}

fn seconds_error(field: &str, (min, max): (Duration, Duration)) -> Error {
    Error::invalid(
        field,
        format!(
            "must be a number of seconds from {} to {} (one day)",
            min.as_secs_f64(),
            max.as_secs_f64()
        ),
    )
}

/// The range of the URL parameter `key` given in seconds.
fn seconds_range(key: &str) -> (Duration, Duration) {
    match key {
        "pool_timeout" => POOL_TIMEOUT,
        "pool_recycle" => POOL_RECYCLE,
        "slow_statement" => SLOW_STATEMENT,
        _ => BUSY_TIMEOUT,
    }
}

/// The range of the URL parameter `key` given as a whole number.
fn count_range(key: &str) -> (u64, u64) {
    match key {
        "pool_size" => POOL_SIZE,
        "max_overflow" => MAX_OVERFLOW,
        "cache_size" => CACHE_SIZE,
        _ => MMAP_SIZE,
    }
}

/// A URL parameter's whole number (`pool_size`, `max_overflow`, and in
/// bytes `mmap_size`, `cache_size`) within the range of `key`. The value
/// itself is never echoed: a mangled URL may have put a secret there.
pub(super) fn parse_whole(key: &str, value: &str) -> Result<u64> {
    let range = count_range(key);
    let n: u64 = value.trim().parse().map_err(|_| count_error(key, range))?;
    count(key, n, range)?;
    Ok(n)
}

/// [`parse_whole`] for a count of connections (`pool_size`,
/// `max_overflow`).
pub(super) fn parse_count(key: &str, value: &str) -> Result<u32> {
    let n = parse_whole(key, value)?;
    u32::try_from(n).map_err(|_| count_error(key, count_range(key)))
}

/// A URL parameter in seconds (`pool_timeout`, `pool_recycle`,
/// `busy_timeout`): a finite decimal number within the range of `key`.
pub(super) fn parse_seconds(key: &str, value: &str) -> Result<Duration> {
    let range = seconds_range(key);
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| seconds_error(key, range))?;
    if !seconds.is_finite() || seconds < 0.0 || seconds > range.1.as_secs_f64() {
        return Err(seconds_error(key, range));
    }
    let d = Duration::try_from_secs_f64(seconds).map_err(|_| seconds_error(key, range))?;
    duration(key, d, range)?;
    Ok(d)
}
