//! The contract every CRM/MAP sink meets: render a document from the bundle, deliver it
//! idempotently given what earlier deliveries recorded, and classify failures for the queue.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use drift_types::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bundle::{ConversationBundle, TranscriptFormat};
use super::filter::Filter;

/// A boxed future of a secret store; its error keeps the store's own (the vault's) error.
pub type SecretFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Cause>> + Send + 'a>>;

/// Where sink secrets left out of the configuration come from, and where rotated ones are
/// kept: driftbridge's token vault.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret `field` of sink `sink`.
    fn load<'a>(&'a self, sink: &'a str, field: &'a str) -> SecretFuture<'a, Option<Secret>>;
    /// Stores a new value of it.
    fn save<'a>(&'a self, sink: &'a str, field: &'a str, value: Secret) -> SecretFuture<'a, ()>;
}

/// A sink's handle to keep its own rotated secrets.
#[derive(Debug, Clone)]
pub struct KeepSecret {
    store: Arc<dyn SecretStore>,
    sink: String,
}

impl KeepSecret {
    /// Keeps secrets of sink `sink` in `store`.
    pub fn new(store: Arc<dyn SecretStore>, sink: &str) -> Self {
        KeepSecret {
            store,
            sink: sink.to_owned(),
        }
    }

    /// Stores `value` as this sink's `field`.
    pub async fn save(&self, field: &str, value: Secret) -> Result<(), Cause> {
        self.store.save(&self.sink, field, value).await
    }
}

/// What an earlier delivery of this (org, conversation, sink) recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prior {
    /// External ids by role (`contact`, `note`, `lead`, `task`, ...).
    pub external: BTreeMap<String, String>,
    /// When an earlier attempt started writing and never recorded its result: the CRM may
    /// hold records that this store does not know of, so the sink looks before creating.
    pub pending_since: Option<i64>,
}

/// What a delivery wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivered {
    /// External ids by role.
    pub external: BTreeMap<String, String>,
    /// Records created.
    pub created: u32,
    /// Records updated.
    pub updated: u32,
}

/// The cause below a sink error (an HTTP client's transport error, a decoder's error).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a delivery did not complete, classified for the queue. Every variant keeps the
/// CRM's HTTP status and its own error code where it gave them, so the metrics and the
/// operator see what the CRM said, and the cause below it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The CRM asked us to slow down: wait `after`, without counting a failed attempt.
    #[error("throttled: {message} (waiting {after:?})")]
    Throttled {
        /// How long to wait.
        after: Duration,
        /// The CRM's HTTP status.
        status: Option<u16>,
        /// The CRM's own error code (`REQUEST_LIMIT_EXCEEDED`, Marketo's `606`, ...).
        code: Option<String>,
        /// The CRM's words.
        message: String,
    },
    /// A transient failure: try again (after `after` when the sink knows how long).
    #[error("{message}")]
    Retry {
        /// A wait the CRM or the sink asks for.
        after: Option<Duration>,
        /// The CRM's HTTP status, when it answered.
        status: Option<u16>,
        /// The CRM's own error code.
        code: Option<String>,
        /// The CRM's words.
        message: String,
        /// What failed below (no answer at all, an unreadable one).
        #[source]
        source: Option<Cause>,
    },
    /// The CRM refused the write for good (bad mapping, missing field, bad credentials).
    #[error("{message}")]
    Rejected {
        /// The CRM's HTTP status, when it answered.
        status: Option<u16>,
        /// The CRM's own error code.
        code: Option<String>,
        /// The CRM's words.
        message: String,
        /// What failed below.
        #[source]
        source: Option<Cause>,
    },
}

impl SinkError {
    /// A transient failure without a known wait.
    pub fn retry(message: impl Into<String>) -> Self {
        SinkError::retry_after(None, message)
    }

    /// A permanent refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        SinkError::Rejected {
            status: None,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// A throttle: wait `after`.
    pub fn throttled(after: Duration, message: impl Into<String>) -> Self {
        SinkError::Throttled {
            after,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    /// A transient failure after which the CRM asked for (or the sink knows) a wait.
    pub fn retry_after(after: Option<Duration>, message: impl Into<String>) -> Self {
        SinkError::Retry {
            after,
            status: None,
            code: None,
            message: message.into(),
            source: None,
        }
    }

    /// Records the CRM's HTTP status (`None`: it did not answer).
    pub fn with_status(mut self, s: impl Into<Option<u16>>) -> Self {
        let s = s.into();
        match &mut self {
            SinkError::Throttled { status, .. }
            | SinkError::Retry { status, .. }
            | SinkError::Rejected { status, .. } => *status = s,
        }
        self
    }

    /// Records the CRM's own error code.
    pub fn with_code(mut self, c: impl Into<String>) -> Self {
        match &mut self {
            SinkError::Throttled { code, .. }
            | SinkError::Retry { code, .. }
            | SinkError::Rejected { code, .. } => *code = Some(c.into()),
        }
        self
    }

    /// Keeps the error below.
    pub fn with_source(mut self, e: impl Into<Cause>) -> Self {
        match &mut self {
            SinkError::Retry { source, .. } | SinkError::Rejected { source, .. } => {
                *source = Some(e.into())
            }
            SinkError::Throttled { .. } => {}
        }
        self
    }

    /// The CRM's HTTP status, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            SinkError::Throttled { status, .. }
            | SinkError::Retry { status, .. }
            | SinkError::Rejected { status, .. } => *status,
        }
    }

    /// The CRM's own error code.
    pub fn code(&self) -> Option<&str> {
        match self {
            SinkError::Throttled { code, .. }
            | SinkError::Retry { code, .. }
            | SinkError::Rejected { code, .. } => code.as_deref(),
        }
    }
}

/// One destination kind.
pub trait Sink: Send + Sync {
    /// The document this sink writes for the bundle (what is hashed).
    fn render(&self, bundle: &ConversationBundle) -> Value;

    /// Writes `doc` idempotently, given what earlier deliveries recorded.
    fn deliver(
        &self,
        bundle: &ConversationBundle,
        doc: &Value,
        prior: &Prior,
    ) -> impl Future<Output = Result<Delivered, SinkError>> + Send;

    /// Deletes (or, for an endpoint, announces the erasure of) what our deliveries wrote
    /// about an erased person; answers how many records it deleted or told of. A record
    /// already gone counts as deleted.
    fn erase(
        &self,
        request: &super::ErasureRequest,
    ) -> impl Future<Output = Result<u32, SinkError>> + Send;

    /// Sets the opt-out on the records this CRM holds for the email (creating none); answers
    /// how many records it updated or told of.
    fn opt_out(&self, o: &super::OptOut) -> impl Future<Output = Result<u32, SinkError>> + Send;

    /// The document a lead signal writes (hashed like a conversation's).
    fn render_signal(&self, s: &super::LeadSignal) -> Value;

    /// Writes a lead signal: an upsert of the contact or lead by email (creating it), with the
    /// meeting a calendar page booked, given what earlier signals about the person recorded;
    /// or a signed event for an endpoint.
    fn signal(
        &self,
        s: &super::LeadSignal,
        doc: &Value,
        prior: &Prior,
    ) -> impl Future<Output = Result<Delivered, SinkError>> + Send;
}

/// Settings every sink has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct CommonSpec {
    /// Orgs this sink serves (empty = every org).
    pub orgs: Vec<i64>,
    /// Which conversations it receives.
    pub filter: Filter,
    /// Transcript format (each sink has its default).
    pub transcript: Option<TranscriptFormat>,
    /// CRM field -> template; overrides the sink's defaults, `""` removes one.
    pub fields: BTreeMap<String, String>,
    /// CRM field -> template written by lead signals on top of `fields` (e.g. a lead status,
    /// `{{signal.goal_name}}`); templates read the signal context (docs/SINKS.md).
    pub signal_fields: BTreeMap<String, String>,
}

impl CommonSpec {
    /// The parsed `signal_fields`.
    pub fn signal_map(&self) -> Result<super::FieldMap, super::TemplateError> {
        super::FieldMap::build(&[], &self.signal_fields)
    }
}

/// A lead signal's fields: the sink's field map and its `signal_fields`, rendered with the
/// signal's context (conversation paths render empty and are left out).
pub fn signal_fields(
    fields: &super::FieldMap,
    extra: &super::FieldMap,
    s: &super::LeadSignal,
) -> serde_json::Map<String, Value> {
    let ctx = s.context();
    let mut out = fields.render(&ctx);
    out.extend(extra.render(&ctx));
    out
}

/// Hex SHA-256 of a document's JSON.
pub fn content_hash(doc: &Value) -> String {
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
