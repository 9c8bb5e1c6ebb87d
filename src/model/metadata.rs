//! App-defined metadata: a JSON object on every conversation and message.

/// An app-defined JSON object kept with a conversation or a message: the
/// model that wrote a reply, token counts, a system prompt, a pinned flag,
/// anything the app wants back with the record. Empty by default.
///
/// At most [`MAX_METADATA_BYTES`](crate::limits::MAX_METADATA_BYTES) as
/// compact JSON and [`MAX_METADATA_DEPTH`](crate::limits::MAX_METADATA_DEPTH)
/// levels of nesting; no NUL character (`\u0000`) in any key or string,
/// since PostgreSQL cannot store one. Anything else is refused with
/// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `metadata`.
///
/// # What is kept
///
/// What is read back equals what was written, as a value
/// ([`PartialEq`] on `serde_json` values), on every backend: the keys and
/// their values, every string exactly, every integer in `i64`/`u64` range
/// exactly, every other number as the same `f64` (a float stays a float, an
/// integer an integer, though `jsonb` would turn `1e16` into an integer:
/// such floats are written to it as `10000000000000000.0`). What is not kept is how
/// it was written: key order (PostgreSQL's `jsonb` sorts keys, and this type
/// compares maps without regard to order) and the spelling of numbers
/// (`1e2` and `100.0` are the same `f64`; `-0.0` comes back as `0.0`, which
/// compares equal).
pub type Metadata = serde_json::Map<String, serde_json::Value>;
