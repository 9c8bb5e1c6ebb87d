//! Search's planning layer: the one tokenizer, the query language and the
//! match check, shared by every backend and the facade. No store, no
//! connection.

pub(crate) mod matching;
pub(crate) mod query;
#[cfg(any(feature = "postgres", test))] // the walks of PostgreSQL
pub(crate) mod signature;
#[cfg(test)]
mod test_random;
pub(crate) mod tokenize;
