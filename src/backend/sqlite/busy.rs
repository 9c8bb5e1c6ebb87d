//! How a pooled connection waits for a lock another connection holds:
//! as SQLite does for the first half of the busy timeout, then with an
//! attempt every millisecond, jittered, for the second half.
//!
//! SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50,
//! 50 ms, then 100 ms between attempts, to the end of the timeout. A writer
//! in another process that commits in a tight loop (the admin tool
//! importing, a second app instance) leaves the write lock free only for
//! the instant between two of its transactions, and attempts 100 ms apart
//! mostly miss that instant: a process's `update` waited out its 5 s busy
//! timeout that way beside another that appended (RELIABILITY.md, "stale
//! update"). Here a wait that has lasted half the timeout goes on with an
//! attempt every millisecond, give or take half (two waiters do not keep
//! meeting the same instant), and meets such an instant within
//! milliseconds; a failed attempt costs no I/O (the WAL's write lock lives
//! in the shared-memory file). Shorter waits, as between the threads of
//! one process, are SQLite's (`FIRST_WAITS_MS` says why).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ffi};

/// The waits between attempts in the first half of the busy timeout, in
/// milliseconds: SQLite's own (100 ms after these). Threads of one process
/// writing at once pass the lock around in streaks, and these long sleeps
/// leave both cores to the thread that holds it: polling sooner made four
/// threads appending at once 30% slower, and polling sooner than this
/// after SQLite's first 228 ms tripled the calls that waited that long.
const FIRST_WAITS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// The wait between attempts in the second half of the busy timeout, give
/// or take half of it: a wait that long is likely beside a writer in
/// another process that leaves the lock free only for instants, which
/// attempts 100 ms apart mostly miss.
const LATER_POLL: Duration = Duration::from_millis(1);

/// How many different busy timeouts get a handler of their own; past that
/// (a program opening stores with thousands of different timeouts) a
/// connection keeps SQLite's handler, which honours the timeout as well.
const MOST_PATIENCES: usize = 64;

/// A busy timeout, at an address that stays valid for the life of the
/// process (SQLite keeps a pointer to it with the handler).
struct Patience(Duration);

/// The `Patience` of `timeout`, made once per distinct value.
fn interned(timeout: Duration) -> Option<&'static Patience> {
    static KNOWN: Mutex<Vec<&'static Patience>> = Mutex::new(Vec::new());
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&patience) = known.iter().find(|p| p.0 == timeout) {
        return Some(patience);
    }
    if known.len() >= MOST_PATIENCES {
        return None;
    }
    let patience: &'static Patience = Box::leak(Box::new(Patience(timeout)));
    known.push(patience);
    Some(patience)
}

/// Makes `conn` wait for a lock for up to `timeout`, polling as described
/// in the module's documentation.
///
/// SQLite then reports a `busy_timeout` of 0 (its own handler is off):
/// the store reads the timeout from its options instead.
#[allow(unsafe_code)]
pub(super) fn wait_fairly(conn: &Connection, timeout: Duration) -> rusqlite::Result<()> {
    let timeout = whole_millis(timeout);
    let Some(patience) = interned(timeout) else {
        return conn.busy_timeout(timeout);
    };
    let arg: *const Patience = patience;
    // SAFETY: the handle is `conn`'s open database, used on this thread
    // while `conn` is borrowed. SQLite calls `poll_again` with `arg`, which
    // points to a `Patience` that is never freed (interned above), only
    // read, and is `Sync`; the callback unwinds nothing (below).
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
/// (and as SQLite's own handler, the fallback above, would take it).
pub(super) fn whole_millis(timeout: Duration) -> Duration {
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
    // SAFETY: `arg` is the `&'static Patience` given in `wait_fairly`.
    let timeout = unsafe { &*arg.cast::<Patience>() }.0;
    c_int::from(wait_before_retry(timeout, count, Instant::now()))
}

/// Sleeps before the next attempt and says whether to make it: not once
/// `timeout` has passed since the wait began. Panics nowhere (it runs
/// inside SQLite, where unwinding would abort the process).
fn wait_before_retry(timeout: Duration, count: c_int, now: Instant) -> bool {
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
    match next_wait(timeout, count, waited) {
        Some(wait) => {
            std::thread::sleep(wait);
            true
        }
        None => false,
    }
}

/// How long to sleep before attempt `count + 1` of a wait that has lasted
/// `waited`; `None` once `timeout` has passed.
fn next_wait(timeout: Duration, count: c_int, waited: Duration) -> Option<Duration> {
    let left = timeout.checked_sub(waited).filter(|left| !left.is_zero())?;
    let wait = match (timeout / 2).checked_sub(waited).filter(|d| !d.is_zero()) {
        Some(to_half) => {
            let i = usize::try_from(count).unwrap_or(usize::MAX);
            let ms = FIRST_WAITS_MS[i.min(FIRST_WAITS_MS.len() - 1)];
            Duration::from_millis(ms).min(to_half)
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
        let timeout = Duration::from_millis(30);
        let start = Instant::now();
        assert!(wait_before_retry(timeout, 0, start));
        let mut count = 1;
        while wait_before_retry(timeout, count, Instant::now()) {
            count += 1;
            assert!(count < 10_000, "never gave up");
        }
        let waited = start.elapsed();
        assert!(waited >= timeout, "gave up after {waited:?}");
    }

    #[test]
    fn a_zero_timeout_never_waits() {
        assert!(!wait_before_retry(Duration::ZERO, 0, Instant::now()));
    }

    #[test]
    fn sqlites_waits_for_the_first_half_then_a_millisecond_give_or_take() {
        let timeout = Duration::from_secs(5);
        let ms = Duration::from_millis;
        // SQLite's schedule, then 100 ms, while under half the timeout.
        assert_eq!(next_wait(timeout, 0, Duration::ZERO), Some(ms(1)));
        assert_eq!(next_wait(timeout, 3, ms(8)), Some(ms(10)));
        assert_eq!(next_wait(timeout, 11, ms(228)), Some(ms(100)));
        assert_eq!(next_wait(timeout, 40, ms(2_000)), Some(ms(100)));
        // Never sleeping past the half...
        assert_eq!(next_wait(timeout, 40, ms(2_470)), Some(ms(30)));
        // ...after which every wait is about a millisecond...
        for count in 41..1_000 {
            let wait = next_wait(timeout, count, ms(2_500)).unwrap();
            assert!(
                wait >= LATER_POLL / 2 && wait < LATER_POLL * 3 / 2,
                "{wait:?}"
            );
        }
        // ...and none past the end.
        assert!(
            next_wait(timeout, 2_000, ms(4_999) + Duration::from_micros(900)).unwrap()
                <= Duration::from_micros(100)
        );
        assert_eq!(next_wait(timeout, 2_000, timeout), None);
        assert_eq!(next_wait(timeout, c_int::MAX, ms(6_000)), None);
    }

    #[test]
    fn the_jitter_stays_within_half_a_poll_either_way() {
        for count in 0..1_000 {
            let j = jittered(LATER_POLL, count);
            assert!(j >= LATER_POLL / 2 && j < LATER_POLL * 3 / 2, "{j:?}");
        }
    }

    #[test]
    fn timeouts_are_interned_up_to_a_bound() {
        let a = interned(Duration::from_millis(4_321)).unwrap();
        let b = interned(Duration::from_millis(4_321)).unwrap();
        assert!(std::ptr::eq(a, b));
        let made = (0..2 * MOST_PATIENCES as u64)
            .filter(|ms| interned(Duration::from_millis(1_000_000 + ms)).is_some())
            .count();
        assert!(made < MOST_PATIENCES, "{made}");
    }
}
