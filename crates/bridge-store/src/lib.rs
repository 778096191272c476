#![doc = include_str!("../README.md")]

pub mod analytics;
mod backend;
pub mod checkpoints;
mod db;
pub mod deliveries;
mod error;
pub mod events;
pub mod filter;
mod idlist;
pub mod meetings;
mod migrate;
pub mod ops;
pub mod outcomes;
pub mod privacy;
pub mod reads;
pub mod retention;
pub mod signals;
pub mod tables;
pub mod tenants;
pub mod vault;
pub mod warehouse;
pub mod widget;

pub use backend::{Backend, Conn, Tx};
pub use db::{Store, StoreOptions, redact_url, sqlite_file};
pub use error::{Error, Op, Result};
pub use sqlx;

#[cfg(feature = "testing")]
pub mod testing;
