#![doc = include_str!("../README.md")]

pub mod auth;
pub mod budget;
mod client;
pub mod clock;
mod endpoints;
mod error;
mod fetch;
mod tls;

pub use auth::{OAuthApp, OnRefresh, RefreshingToken, StaticToken, TokenSet, TokenSource};
pub use budget::RateBudget;
pub use client::{ClientConfig, DriftClient, Stats};
pub use endpoints::{ListConversations, USERS_PER_BATCH};
pub use error::{Error, Result};
pub use fetch::{FetchError, FetchedConversation, Part, Parts};
pub use tls::install_crypto;
