//! How a pooled connection waits for a lock another connection holds.
//!
//! SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50,
//! 50 ms, then 100 ms between attempts, to the end of the timeout. That
//! suits threads of one store writing at once: they pass the lock around
//! in streaks, and the waiters' long sleeps leave the cores to the thread
//! that holds it (polling often instead made four threads appending at once
//! 30% slower, their p99 twenty times longer: BENCHMARKS.md). But a writer
//! in another process that commits in a tight loop (the admin tool
//! importing, a second app instance) leaves the lock free only for the
//! instant between two of its transactions, and attempts 100 ms apart
//! mostly miss it: a process's `update` waited out its 5 s busy timeout
//! that way (RELIABILITY.md, "stale update").
//!
//! So the store counts its own connections that hold the write lock
//! ([`Waiting::hold`]). While one does, a waiter waits as SQLite does; while
//! none does, the lock is another process's (or another store's), and the
//! waiter tries again after 50 µs, doubling to every millisecond, each wait
//! jittered so that two waiters do not keep meeting the same instant. A
//! failed attempt costs no I/O (the WAL's write lock lives in the
//! shared-memory file). In the second half of the busy timeout every
//! waiter tries every millisecond, so that a wait that long ends at the
//! first free instant rather than at the timeout.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ffi};

/// SQLite's waits between attempts, in milliseconds (100 ms after these),
/// while one of the store's own connections holds the lock.
const FIRST_WAITS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// The first wait between attempts while the lock is another's; it
/// doubles up to [`LATER_POLL`].
const FIRST_POLL: Duration = Duration::from_micros(50);

/// The longest wait between attempts while the lock is another's, and
/// every waiter's in the second half of the busy timeout; give or take
/// half of it.
const LATER_POLL: Duration = Duration::from_millis(1);

/// A store's busy timeout and how many of its connections hold the write
/// lock: what its connections' busy handler decides by. Shared by every
/// connection of the store, each of which keeps it alive (SQLite holds a
/// pointer to it with the handler).
pub(super) struct Waiting {
    timeout: Duration,
    holders: AtomicUsize,
}

impl Waiting {
    /// For a store whose busy timeout is `timeout` (whole milliseconds).
    pub(super) fn new(timeout: Duration) -> Arc<Waiting> {
        Arc::new(Waiting {
            timeout: whole_millis(timeout),
            holders: AtomicUsize::new(0),
        })
    }

    /// The busy timeout, in whole milliseconds.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Counts a connection of the store as holding the write lock until
    /// the guard is dropped.
    pub(super) fn hold(&self) -> Holding<'_> {
        self.holders.fetch_add(1, Ordering::Relaxed);
        Holding(self)
    }
}

/// One of the store's connections holding the write lock ([`Waiting::hold`]).
pub(super) struct Holding<'w>(&'w Waiting);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.holders.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes `conn` wait for a lock as `waiting` says (the module's
/// documentation). The caller keeps `waiting` alive as long as `conn`.
///
/// SQLite then reports a `busy_timeout` of 0 (its own handler is off):
/// the store reads the timeout from its options instead.
#[allow(unsafe_code)]
pub(super) fn install(conn: &Connection, waiting: &Arc<Waiting>) -> rusqlite::Result<()> {
    let arg: *const Waiting = Arc::as_ptr(waiting);
    // SAFETY: the handle is `conn`'s open database, used on this thread
    // while `conn` is borrowed. SQLite calls `poll_again` with `arg` until
    // the connection closes or the handler is replaced; the caller keeps
    // an `Arc` of it alive that long (`Pooled` drops its connection before
    // its `Waiting`). `Waiting` is `Sync` and only read through `arg`
    // (atomics); the callback unwinds nothing.
    let rc = unsafe {
        ffi::sqlite3_busy_handler(conn.handle(), Some(poll_again), arg.cast_mut().cast())
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// `timeout` in whole milliseconds, as the store counts busy timeouts
/// (and as SQLite's own `busy_timeout` would take it).
fn whole_millis(timeout: Duration) -> Duration {
    Duration::from_millis(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

thread_local! {
    /// When the wait this thread is in began (SQLite calls the handler on
    /// the thread that met the lock, counting from 0 for each wait).
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite's busy callback: 1 to try again, 0 to give up (`SQLITE_BUSY`).
/// `count` is how many times it was called before for this wait.
#[allow(unsafe_code)]
unsafe extern "C" fn poll_again(arg: *mut c_void, count: c_int) -> c_int {
    // SAFETY: `arg` is the `Waiting` given in `install`, alive (see there).
    let waiting = unsafe { &*arg.cast::<Waiting>() };
    let own_writer = waiting.holders.load(Ordering::Relaxed) > 0;
    c_int::from(wait_before_retry(
        waiting.timeout,
        count,
        own_writer,
        Instant::now(),
    ))
}

/// Sleeps before the next attempt and says whether to make it: not once
/// `timeout` has passed since the wait began. `own_writer`: one of the
/// store's connections holds the lock. Panics nowhere (it runs inside
/// SQLite, where unwinding would abort the process).
fn wait_before_retry(timeout: Duration, count: c_int, own_writer: bool, now: Instant) -> bool {
    let since = WAITING_SINCE
        .try_with(|since| {
            if count == 0 || since.get().is_none() {
                since.set(Some(now));
            }
            since.get()
        })
        .ok()
        .flatten();
    let waited = match since {
        Some(since) => now.saturating_duration_since(since),
        // A thread being torn down: count the polls as a millisecond each.
        None => LATER_POLL.saturating_mul(u32::try_from(count).unwrap_or(u32::MAX)),
    };
    match next_wait(timeout, count, own_writer, waited) {
        Some(wait) => {
            std::thread::sleep(wait);
            true
        }
        None => false,
    }
}

/// How long to sleep before attempt `count + 1` of a wait that has lasted
/// `waited`; `None` once `timeout` has passed.
fn next_wait(
    timeout: Duration,
    count: c_int,
    own_writer: bool,
    waited: Duration,
) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|left| !left.is_zero())?;
    let to_half = (timeout / 2).checked_sub(waited).filter(|d| !d.is_zero());
    let i = usize::try_from(count).unwrap_or(usize::MAX);
    let wait = match to_half {
        Some(to_half) if own_writer => {
            let ms = FIRST_WAITS_MS[i.min(FIRST_WAITS_MS.len() - 1)];
            Duration::from_millis(ms).min(to_half)
        }
        Some(_) => {
            let doublings = u32::try_from(i.min(5)).unwrap_or(5);
            jittered(
                FIRST_POLL.saturating_mul(1 << doublings).min(LATER_POLL),
                count,
            )
        }
        None => jittered(LATER_POLL, count),
    };
    Some(wait.min(left))
}

/// `poll`, moved into `[poll / 2, poll * 3 / 2)` by a value that differs
/// between threads and attempts (two waiters do not wake in step). Uses
/// no thread-local (it may run while a thread's are torn down).
fn jittered(poll: Duration, count: c_int) -> Duration {
    let on_this_stack = 0_u8;
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // SplitMix64's finaliser over the clock, this thread's stack and the
    // attempt.
    let mut z = u64::from(clock)
        ^ (std::ptr::addr_of!(on_this_stack) as usize as u64).rotate_left(32)
        ^ u64::from(count.unsigned_abs());
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let nanos = u64::try_from(poll.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(nanos / 2 + z % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_gives_up_once_the_timeout_has_passed_and_not_before() {
        for own_writer in [false, true] {
            let timeout = Duration::from_millis(30);
            let start = Instant::now();
            assert!(wait_before_retry(timeout, 0, own_writer, start));
            let mut count = 1;
            while wait_before_retry(timeout, count, own_writer, Instant::now()) {
                count += 1;
                assert!(count < 10_000, "never gave up");
            }
            let waited = start.elapsed();
            assert!(waited >= timeout, "gave up after {waited:?}");
        }
    }

    #[test]
    fn a_zero_timeout_never_waits() {
        assert!(!wait_before_retry(Duration::ZERO, 0, false, Instant::now()));
        assert!(!wait_before_retry(Duration::ZERO, 0, true, Instant::now()));
    }

    #[test]
    fn behind_the_stores_own_writer_sqlites_waits_for_the_first_half() {
        let timeout = Duration::from_secs(5);
        let ms = Duration::from_millis;
        // SQLite's schedule, then 100 ms, while under half the timeout.
        assert_eq!(next_wait(timeout, 0, true, Duration::ZERO), Some(ms(1)));
        assert_eq!(next_wait(timeout, 3, true, ms(8)), Some(ms(10)));
        assert_eq!(next_wait(timeout, 11, true, ms(228)), Some(ms(100)));
        assert_eq!(next_wait(timeout, 40, true, ms(2_000)), Some(ms(100)));
        // Never sleeping past the half...
        assert_eq!(next_wait(timeout, 40, true, ms(2_470)), Some(ms(30)));
        // ...after which every wait is about a millisecond...
        for count in 41..1_000 {
            let wait = next_wait(timeout, count, true, ms(2_500)).unwrap();
            assert!(within_half_of(wait, LATER_POLL), "{wait:?}");
        }
        // ...and none past the end.
        let near_the_end = ms(4_999) + Duration::from_micros(900);
        assert!(
            next_wait(timeout, 2_000, true, near_the_end).unwrap() <= Duration::from_micros(100)
        );
        assert_eq!(next_wait(timeout, 2_000, true, timeout), None);
        assert_eq!(next_wait(timeout, c_int::MAX, true, ms(6_000)), None);
    }

    #[test]
    fn behind_another_writer_50_us_doubling_to_a_millisecond() {
        let timeout = Duration::from_secs(5);
        for (count, poll) in [(0, 50), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1_000)] {
            let wait = next_wait(timeout, count, false, Duration::ZERO).unwrap();
            assert!(
                within_half_of(wait, Duration::from_micros(poll)),
                "{count}: {wait:?}"
            );
        }
        for count in [6, 100, 10_000, c_int::MAX] {
            let wait = next_wait(timeout, count, false, Duration::from_millis(100)).unwrap();
            assert!(within_half_of(wait, LATER_POLL), "{count}: {wait:?}");
        }
        assert_eq!(next_wait(timeout, 5_000, false, timeout), None);
    }

    fn within_half_of(wait: Duration, poll: Duration) -> bool {
        wait >= poll / 2 && wait < poll * 3 / 2
    }

    #[test]
    fn the_jitter_stays_within_half_a_poll_either_way() {
        for count in 0..1_000 {
            assert!(within_half_of(jittered(LATER_POLL, count), LATER_POLL));
        }
    }

    #[test]
    fn holders_are_counted_while_their_guards_live() {
        let waiting = Waiting::new(Duration::from_micros(1_500));
        assert_eq!(waiting.timeout(), Duration::from_millis(1));
        let a = waiting.hold();
        let b = waiting.hold();
        assert_eq!(waiting.holders.load(Ordering::Relaxed), 2);
        drop(a);
        drop(b);
        assert_eq!(waiting.holders.load(Ordering::Relaxed), 0);
    }
}
