//! Search's planning layer: the one tokenizer, the query language and the
//! match check, shared by every backend and the facade. No store, no
//! connection.

pub(crate) mod matching;
pub(crate) mod query;
pub(crate) mod tokenize;
