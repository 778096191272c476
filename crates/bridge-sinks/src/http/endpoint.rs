//! The signed, guarded POST to one endpoint, classified for the queue.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::sign::WebhookSecret;
use crate::outbound::{OutboundError, OutboundGuard, refusal};

/// How long one delivery may take (Standard Webhooks suggests 15-30 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a delivery did not succeed, classified for the queue.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The URL is refused by the outbound guard.
    #[error(transparent)]
    Refused(#[from] OutboundError),
    /// Worth another try later.
    #[error("the endpoint answered {} ({message}); will retry", status.map_or("nothing".to_owned(), |s| s.to_string()))]
    Retry {
        /// The HTTP status, if one came.
        status: Option<u16>,
        /// `Retry-After`, when the endpoint asked for a wait.
        retry_after: Option<Duration>,
        /// What happened.
        message: String,
    },
    /// The endpoint is gone (410): stop sending to it.
    #[error("the endpoint answered 410 Gone: disable it")]
    Gone,
    /// The endpoint refused this delivery for good.
    #[error("the endpoint answered {status}: {message}")]
    Permanent {
        /// The HTTP status.
        status: u16,
        /// The start of the endpoint's answer.
        message: String,
    },
}

impl DeliveryError {
    /// The endpoint's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Retry { status, .. } => *status,
            DeliveryError::Gone => Some(410),
            DeliveryError::Permanent { status, .. } => (*status != 0).then_some(*status),
            DeliveryError::Refused(_) => None,
        }
    }
}

/// One configured endpoint.
#[derive(Debug, Clone)]
pub struct HttpEndpoint {
    url: url::Url,
    secret: WebhookSecret,
    client: reqwest::Client,
}

impl HttpEndpoint {
    /// Checks `url` against the guard and builds the endpoint's client.
    pub async fn new(
        url: &str,
        secret: WebhookSecret,
        guard: &OutboundGuard,
    ) -> Result<Self, DeliveryError> {
        let url = guard.check_configured(url).await?;
        let client = guard
            .client(reqwest::Client::builder().timeout(DELIVERY_TIMEOUT), false)
            .map_err(|e| DeliveryError::Permanent {
                status: 0,
                message: format!("HTTP client: {e}"),
            })?;
        Ok(HttpEndpoint {
            url,
            secret,
            client,
        })
    }

    /// POSTs `body` (JSON) signed for `msg_id` at `timestamp` (Unix seconds); answers the
    /// status of a 2xx.
    pub async fn deliver(
        &self,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<u16, DeliveryError> {
        let sig = self.secret.sign(msg_id, timestamp, body);
        let resp = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", sig)
            .body(body.to_vec())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            // A guard refusal at connect time is final; everything else is transient.
            Err(e) => {
                return Err(match refusal(&e) {
                    Some(r) => DeliveryError::Refused(r),
                    None => DeliveryError::Retry {
                        status: None,
                        retry_after: None,
                        message: e.without_url().to_string(),
                    },
                });
            }
        };
        let status = resp.status().as_u16();
        let retry_after = crate::crm_http::retry_after(resp.headers());
        let text = crate::crm_http::body_text(resp, 300).await;
        match status {
            200..=299 => Ok(status),
            410 => Err(DeliveryError::Gone),
            429 | 500..=599 => Err(DeliveryError::Retry {
                status: Some(status),
                retry_after,
                message: text,
            }),
            _ => Err(DeliveryError::Permanent {
                status,
                message: text,
            }),
        }
    }
}
