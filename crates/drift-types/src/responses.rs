//! Response envelopes and the smaller request/response bodies: `{data}`, both
//! conversation-list generations, message pages, `{result, ok}`, reporting and GDPR.

use serde::{Deserialize, Serialize};

use crate::{Conversation, ConversationId, MessagesData};

/// The usual `{"data": ...}` wrapper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Data<T> {
    /// Payload.
    pub data: T,
}

/// `links` of the current conversation list.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Links {
    /// This page.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub this: Option<String>,
    /// The next page, absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A page of `GET /conversations/list?page_token=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationListPage {
    /// Conversation summaries.
    #[serde(default)]
    pub data: Vec<Conversation>,
    /// Paging links.
    #[serde(default)]
    pub links: Links,
}

/// Cursor pagination of the legacy list and of messages.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Pagination {
    /// More pages exist.
    #[serde(default)]
    pub more: bool,
    /// Cursor to pass as `next` (a number or a string on the wire).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cursor"
    )]
    pub next: Option<String>,
}

fn cursor<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A page of the legacy `GET /conversations/list?next=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyConversationPage {
    /// Conversation summaries.
    #[serde(default)]
    pub data: Vec<Conversation>,
    /// Present only when more pages exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// A page of `GET /conversations/{id}/messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesPage {
    /// Messages.
    pub data: MessagesData,
    /// Present when more pages exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
}

/// `{"result": "OK", "ok": true}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OkResult {
    /// `OK`.
    #[serde(default)]
    pub result: String,
    /// Success.
    #[serde(default)]
    pub ok: bool,
}

impl OkResult {
    /// The success body.
    pub fn ok() -> Self {
        Self {
            result: "OK".into(),
            ok: true,
        }
    }
}

/// A reporting filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportFilter {
    /// Property, e.g. `updatedAt`, `status`.
    pub property: String,
    /// `HAS_PROPERTY`, `BETWEEN`, `IN`, ...
    pub operation: String,
    /// Operands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<serde_json::Value>,
}

/// Body of `POST /reports/conversations`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportRequest {
    /// Filters, all of which must hold.
    #[serde(default)]
    pub filters: Vec<ReportFilter>,
    /// Numeric metrics to return, in order.
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// One row of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Metric values in request order; a missing metric is the string `"NaN"`.
    #[serde(default)]
    pub metrics: Vec<serde_json::Value>,
}

/// Response of `POST /reports/conversations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportResponse {
    /// Number of rows.
    #[serde(default)]
    pub count: u64,
    /// Rows.
    #[serde(default)]
    pub data: Vec<ReportRow>,
}

/// Body of `POST /gdpr/delete` and `POST /gdpr/retrieve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GdprRequest {
    /// The data subject's email.
    pub email: String,
}

/// `data` of the GDPR delete response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GdprMessage {
    /// e.g. "Your delete is processing".
    #[serde(default)]
    pub message: String,
}
