//! The generic HTTP sink's transport: a signed POST to a user-configured endpoint.
//!
//! The endpoint URL passes the outbound guard when it is configured and at every connect;
//! redirects are not followed (Standard Webhooks: a 3xx is a failed delivery). Each delivery
//! carries `webhook-id` (stable across retries, the receiver's idempotency key),
//! `webhook-timestamp` and `webhook-signature` (see [`sign`]). The answer is classified for
//! the queue: 2xx delivered; 429, 5xx, timeouts and resets retried (honouring `Retry-After`);
//! 410 gone (disable the endpoint); any other status permanent.
//! [`HttpSink`] builds the document from the conversation bundle by a template.

mod endpoint;
pub mod sign;
mod sink;

pub use endpoint::{DELIVERY_TIMEOUT, DeliveryError, HttpEndpoint};
pub use sink::{HttpSink, HttpSpec, default_template};
