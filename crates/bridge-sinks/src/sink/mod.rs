//! The CRM/MAP sinks: the `Sink` contract, the conversation bundle they are fed, field
//! templates and routing filters. The registry of every configured sink is `crate::registry`;
//! the HTTP helpers the CRM clients share are `crate::crm_http`.
//!
//! A sink renders a document from the bundle (hashed, so an unchanged conversation is not
//! sent again), then delivers it *idempotently*: every write is an upsert by a key the CRM
//! record carries (the email, an external-id field, a searchable property), so a retry after
//! a crash between the CRM's 2xx and our commit updates instead of creating.

mod bundle;
mod contract;
mod filter;
pub mod meetings;
mod privacy;
mod signal;
mod template;

pub use bundle::{
    BookedMeeting, ConversationBundle, OPEN, TranscriptFormat, context_shape, event_type, truncate,
};
pub use contract::{
    Cause, CommonSpec, Delivered, KeepSecret, Prior, SecretFuture, SecretStore, Sink, SinkError,
    content_hash, signal_fields,
};
pub use filter::{Condition, Filter, Op};
pub use privacy::{ErasureRequest, OptOut};
pub use signal::{LeadSignal, SIGNAL_EVENTS, SignalDetails, SignalMeeting, signal_shape};
pub use template::{FieldMap, JsonTemplate, Template, TemplateError, as_text};
