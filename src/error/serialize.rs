//! [`Error`] as a stable object for front ends: `{"kind", "message",
//! "field"?}` (serde), so that a Tauri command can return
//! `Result<T, silmari_store::Error>` as it is.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::Error;

impl Error {
    /// What went wrong, as a stable `snake_case` name: the `kind` of the
    /// serialized error, one per variant (`not_found`, `conflict`, `stale`,
    /// `invalid_input`, `schema_too_new`, `migration`, `unavailable`,
    /// `disk_full`, `open`, `connect`, `not_a_database`, `key`,
    /// `corrupt_row`, `in_transaction`, `transaction_aborted`,
    /// `unsupported`, `import`, `io`, `backend`). A name, once given, is never changed or reused.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Stale { .. } => "stale",
            Error::InvalidInput { .. } => "invalid_input",
            Error::SchemaTooNew { .. } => "schema_too_new",
            Error::Migration { .. } => "migration",
            Error::Unavailable { .. } => "unavailable",
            Error::DiskFull { .. } => "disk_full",
            Error::Open { .. } => "open",
            Error::Connect { .. } => "connect",
            Error::NotADatabase { .. } => "not_a_database",
            Error::Key { .. } => "key",
            Error::CorruptRow { .. } => "corrupt_row",
            Error::InTransaction => "in_transaction",
            Error::TransactionAborted { .. } => "transaction_aborted",
            Error::Unsupported { .. } => "unsupported",
            Error::Import { .. } => "import",
            Error::Io { .. } => "io",
            Error::Backend(_) => "backend",
        }
    }

    /// The input field an [`Error::InvalidInput`] is about; `None` for the
    /// other kinds.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// `{"kind": "invalid_input", "message": "invalid title: …", "field":
/// "title"}`: [`kind`](Error::kind), the message as `Display` shows it
/// (passwords masked, no key ever), and `field` only when there is one.
/// Match on `kind` (and `field`) in a front end, never on `message`.
///
/// ```
/// # use silmari_store::prelude::*;
/// # fn main() -> silmari_store::Result<()> {
/// let store = Store::open("memory://")?;
/// let err = store
///     .conversations()
///     .create(NewConversation::titled("a\0b"))
///     .unwrap_err();
/// let json = serde_json::to_value(&err).expect("serializes");
/// assert_eq!(json["kind"], "invalid_input");
/// assert_eq!(json["field"], "title");
/// assert!(json["message"].as_str().unwrap().starts_with("invalid title"));
/// # Ok(()) }
/// ```
impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let field = self.field();
        let mut object = serializer.serialize_struct("Error", 2 + usize::from(field.is_some()))?;
        object.serialize_field("kind", self.kind())?;
        object.serialize_field("message", &self.to_string())?;
        match field {
            Some(field) => object.serialize_field("field", field)?,
            None => object.skip_field("field")?,
        }
        object.end()
    }
}
