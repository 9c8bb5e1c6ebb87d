//! Timestamps as every backend keeps them: UTC, microseconds.

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

use crate::limits::MIN_YEAR;

/// The current UTC time truncated to microseconds.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// `t` in UTC, truncated to microseconds: the precision every backend keeps.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    // Out-of-range conversions keep `t`; validation then refuses its year.
    let t = t.checked_to_offset(UtcOffset::UTC).unwrap_or(t);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Microseconds since the Unix epoch (for storage and cursors).
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    // Validated timestamps lie within years 1..=9999, far inside i64
    // microseconds; an instant beyond (the `time/large-dates` feature allows
    // years to ±999,999) saturates rather than wraps.
    let micros = t.unix_timestamp_nanos() / 1_000;
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`to_micros`]; `None` when out of range.
pub(crate) fn from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// `t` as a bound on stored timestamps (a search's `since` or `until`), in
/// microseconds: truncated, and moved into the range a stored timestamp can
/// have (from the first day of [`MIN_YEAR`] to the last microsecond of year
/// 9999), which admits the same stored times and keeps the bound inside
/// every backend's range (PostgreSQL's starts in 4713 BC).
///
/// The range is fixed, not `PrimitiveDateTime::MIN..=MAX`: those reach year
/// ±999,999 when another crate in the build enables `time/large-dates`.
pub(crate) fn bound_micros(t: OffsetDateTime) -> i64 {
    let (lowest, highest) = stored_range_micros();
    to_micros(truncate(t)).clamp(lowest, highest)
}

/// The first and last microsecond a stored timestamp can lie in: year
/// [`MIN_YEAR`] to year 9999 ([`MAX_YEAR`](crate::limits::MAX_YEAR) and the
/// microseconds [`bump`] may add past it).
fn stored_range_micros() -> (i64, i64) {
    let instant = |year, month, day, time: Time| {
        Date::from_calendar_date(year, month, day)
            .map(|day| to_micros(day.with_time(time).assume_utc()))
    };
    let last = Time::from_hms_micro(23, 59, 59, 999_999).unwrap_or(Time::MIDNIGHT);
    let lowest = instant(MIN_YEAR, Month::January, 1, Time::MIDNIGHT).unwrap_or(i64::MIN);
    let highest = instant(9999, Month::December, 31, last).unwrap_or(i64::MAX);
    (lowest, highest)
}

/// A strictly later `updated_at` than `previous`: now, or one microsecond
/// after `previous` when the clock has not moved on (or went back).
pub(crate) fn bump(previous: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    let next = previous
        .checked_add(Duration::microseconds(1))
        .unwrap_or(previous);
    now.max(next)
}

#[cfg(test)]
mod tests {
    use time::PrimitiveDateTime;

    use super::*;

    #[test]
    fn bounds_lie_in_years_one_to_9999_whatever_time_can_hold() {
        let (lowest, highest) = stored_range_micros();
        assert!(lowest < highest);
        let first = from_micros(lowest).expect("the lowest bound is an instant");
        let last = from_micros(highest).expect("the highest bound is an instant");
        assert_eq!(
            (first.year(), first.ordinal(), first.time()),
            (MIN_YEAR, 1, Time::MIDNIGHT)
        );
        assert_eq!(
            (last.year(), last.month(), last.day()),
            (9999, Month::December, 31)
        );
        assert_eq!(last.microsecond(), 999_999);
    }

    #[test]
    fn a_bound_beyond_the_range_is_moved_to_its_edge() {
        let (lowest, highest) = stored_range_micros();
        assert_eq!(bound_micros(OffsetDateTime::UNIX_EPOCH), 0);
        // The extremes `time` can hold in this build (years ±9999 by
        // default, ±999,999 with `large-dates`): neither panics nor wraps.
        let earliest = PrimitiveDateTime::MIN.assume_utc();
        let latest = PrimitiveDateTime::MAX.assume_utc();
        assert_eq!(bound_micros(earliest), lowest);
        assert_eq!(bound_micros(latest), highest);
        assert!(bound_micros(latest) > bound_micros(earliest));
    }

    #[test]
    fn micros_saturate_instead_of_wrapping() {
        assert_eq!(to_micros(OffsetDateTime::UNIX_EPOCH), 0);
        let latest = PrimitiveDateTime::MAX.assume_utc();
        let earliest = PrimitiveDateTime::MIN.assume_utc();
        assert!(to_micros(latest) > 0);
        assert!(to_micros(earliest) < 0);
    }
}
