#![doc = include_str!("../README.md")]

pub mod auth;
pub mod budget;
mod client;
pub mod clock;
mod endpoints;
mod error;

pub use auth::{OAuthApp, OnRefresh, RefreshingToken, StaticToken, TokenSet, TokenSource};
pub use budget::RateBudget;
pub use client::{ClientConfig, DriftClient, Stats};
pub use endpoints::{ListConversations, USERS_PER_BATCH};
pub use error::{Error, Result};

/// Installs rustls' ring provider as the process default (once; later calls do nothing).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
