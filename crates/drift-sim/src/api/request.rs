//! What every handler uses: the state, body and query parsing, the clock.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use drift_types::EpochMillis;
use serde::de::DeserializeOwned;

use crate::state::{SimError, SimResult, SimState};

pub(super) type St = State<Arc<SimState>>;

/// Parses a JSON body into `T`, answering `validation_error` with serde's reason.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> SimResult<T> {
    serde_json::from_slice(body).map_err(|e| SimError::invalid(format!("invalid JSON body: {e}")))
}

/// All query pairs, keeping repeated keys.
pub fn query_pairs(q: &Option<String>) -> Vec<(String, String)> {
    q.as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) fn int_param<T: std::str::FromStr>(
    pairs: &[(String, String)],
    key: &str,
) -> SimResult<Option<T>> {
    match param(pairs, key) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| SimError::invalid(format!("query parameter {key}={v:?} is not a number"))),
    }
}

pub(super) fn now() -> EpochMillis {
    EpochMillis::now()
}

/// A path parameter parsed like axum's `Path`, but a value that does not parse (a
/// non-numeric id: `/conversations/abc`) is answered in the simulator's JSON error envelope,
/// as every other error, not with axum's plain-text "Invalid URL".
#[derive(Debug)]
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Id<T> {
    type Rejection = SimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SimError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Id(v)),
            Err(e) => Err(SimError::invalid(format!(
                "invalid path {}: {}",
                parts.uri.path(),
                e.body_text()
            ))),
        }
    }
}
