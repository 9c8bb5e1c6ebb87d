//! Timestamps as every backend keeps them: UTC, microseconds.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

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
    // Validated timestamps lie within years 1..=9999, far inside i64 microseconds.
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// The inverse of [`to_micros`]; `None` when out of range.
pub(crate) fn from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
}

/// `t` as a bound on stored timestamps (a search's `since` or `until`), in
/// microseconds: truncated, and moved into the range a stored timestamp can
/// have (from the first day of [`MIN_YEAR`] to the last instant `time`
/// holds), which admits the same stored times and keeps the bound inside
/// every backend's range (PostgreSQL's starts in 4713 BC).
pub(crate) fn bound_micros(t: OffsetDateTime) -> i64 {
    let lowest = Date::from_calendar_date(MIN_YEAR, Month::January, 1)
        .map_or(i64::MIN, |day| to_micros(day.midnight().assume_utc()));
    let highest = to_micros(PrimitiveDateTime::MAX.assume_utc());
    to_micros(truncate(t)).clamp(lowest, highest)
}

/// A strictly later `updated_at` than `previous`: now, or one microsecond
/// after `previous` when the clock has not moved on (or went back).
pub(crate) fn bump(previous: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
    let next = previous
        .checked_add(Duration::microseconds(1))
        .unwrap_or(previous);
    now.max(next)
}
