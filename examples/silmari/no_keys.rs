//! Without the `encryption` feature: no key options, stores opened as they are.

use clap::Args;
use silmari_store::{Result, Store};

/// No options: this build cannot open encrypted databases.
#[derive(Args)]
pub struct KeyArgs {}

impl KeyArgs {
    /// Opens the store at `url`.
    pub fn open(&self, url: &str) -> Result<Store> {
        Store::open(url)
    }

    /// A builder for the store at `url`.
    pub fn builder(&self, url: &str) -> Result<silmari_store::StoreBuilder> {
        Ok(Store::builder().url(url))
    }
}
