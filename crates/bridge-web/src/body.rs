//! Reading a request body within a size and a time, for the webhook gateway and the widget
//! intake alike.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Declared or found larger than the limit.
    TooLarge,
    /// It did not arrive in time.
    Timeout,
}

/// The body, at most `max` bytes, within `timeout`. A declared length over the limit is
/// refused before a byte is read, so a client announcing 10 GiB holds nothing open; a client
/// that sends its body too slowly holds a connection and a task only until `timeout`.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    tokio::time::timeout(timeout, axum::body::to_bytes(body, max))
        .await
        .map_err(|_| BodyError::Timeout)?
        .map_err(|_| BodyError::TooLarge)
}
