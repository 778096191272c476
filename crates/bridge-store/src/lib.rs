#![doc = include_str!("../README.md")]

pub mod checkpoints;
mod db;
pub mod deliveries;
pub mod events;
mod migrate;
pub mod tables;
pub mod tenants;
pub mod vault;
pub mod warehouse;

pub use db::{Backend, Conn, Store, StoreOptions, Tx, redact_url};
pub use sqlx;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL cannot be used.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// A statement failed.
    #[error("database error while {op}")]
    Sqlx {
        /// What the store was doing.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    /// A stored value could not be read back.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Store result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what the store was doing to a driver error.
pub trait Op<T> {
    /// Names the operation.
    fn op(self, op: &'static str) -> Result<T>;
}

impl<T> Op<T> for std::result::Result<T, sqlx::Error> {
    fn op(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Sqlx { op, source })
    }
}

pub mod testing;
