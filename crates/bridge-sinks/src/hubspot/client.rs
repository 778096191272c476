//! HubSpot's REST calls and their error classification (crm-apis.md §1.6-1.7).

use std::time::Duration;

use drift_types::Secret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::crm_http::{Reply, exchange, retry_after};
use crate::sink::{Prior, SinkError};

/// The HubSpot objects API.
#[derive(Debug)]
pub(super) struct Api {
    pub http: reqwest::Client,
    /// `{base}/crm/v3/objects`.
    pub objects: String,
    pub token: Secret,
}

/// HubSpot's error text: `category: message (error messages)`.
fn hubspot_message(status: u16, body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return format!("HubSpot answered {status}: {body}");
    };
    let mut msg = format!(
        "HubSpot answered {status} {}: {}",
        v.get("category").and_then(Value::as_str).unwrap_or("error"),
        v.get("message").and_then(Value::as_str).unwrap_or(body)
    );
    if let Some(errs) = v.get("errors").and_then(Value::as_array) {
        for e in errs {
            if let Some(m) = e.get("message").and_then(Value::as_str) {
                msg.push_str("; ");
                msg.push_str(m);
            }
        }
    }
    msg
}

impl Api {
    /// Sends a request; `Ok(None)` is a 404.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, SinkError> {
        let mut req = self
            .http
            .request(method, format!("{}/{path}", self.objects))
            .bearer_auth(self.token.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let Reply {
            status,
            headers,
            text,
        } = exchange(req, "HubSpot", usize::MAX).await?;
        if (200..300).contains(&status) {
            if text.trim().is_empty() {
                return Ok(Some(json!({})));
            }
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| SinkError::retry(format!("HubSpot answered unreadable JSON: {e}")));
        }
        let text: String = text.chars().take(2000).collect();
        let message = hubspot_message(status, &text);
        Err(match status {
            404 => return Ok(None),
            429 => {
                let interval = headers
                    .get("x-hubspot-ratelimit-interval-milliseconds")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_millis);
                SinkError::throttled(
                    retry_after(&headers)
                        .or(interval)
                        .unwrap_or(Duration::from_secs(10)),
                    message,
                )
            }
            423 => SinkError::retry_after(Some(Duration::from_secs(2)), message),
            477 | 500..=599 => SinkError::retry_after(retry_after(&headers), message),
            _ => SinkError::rejected(message),
        }
        .with_status(status))
    }

    /// The id of the `object` an earlier delivery wrote: the one recorded under `role`, else,
    /// after an attempt that never recorded its result, the one HubSpot's search finds with
    /// `property` = `key`. While the search index may still lag a create of that attempt
    /// (`lag` from when it began), a retry after the rest of the lag instead of an answer.
    pub async fn written_before(
        &self,
        object: &str,
        role: &str,
        (property, key): (&str, &str),
        prior: &Prior,
        lag: Duration,
    ) -> Result<Option<String>, SinkError> {
        if let Some(id) = prior.external.get(role) {
            return Ok(Some(id.clone()));
        }
        let Some(since) = prior.pending_since else {
            return Ok(None);
        };
        let found = self.find(object, property, key).await?;
        let waited = Duration::from_millis((drift_types::now_ms() - since).max(0) as u64);
        if found.is_none() && waited < lag {
            return Err(SinkError::retry_after(
                Some(lag - waited),
                format!(
                    "an earlier attempt may have created the {object} record; waiting for \
                     HubSpot's search index before creating"
                ),
            ));
        }
        Ok(found)
    }

    /// The id of the `object` whose `property` equals `key`, if HubSpot's search finds one.
    pub async fn find(
        &self,
        object: &str,
        property: &str,
        key: &str,
    ) -> Result<Option<String>, SinkError> {
        let q = json!({"filterGroups": [{"filters": [{"propertyName": property, "operator": "EQ", "value": key}]}],
                       "properties": [property], "limit": 1});
        let r = self
            .send(Method::POST, &format!("{object}/search"), Some(&q))
            .await?;
        Ok(r.and_then(|r| r.get("results")?.get(0).and_then(id_of)))
    }
}

/// The `id` of a HubSpot object, whether it came as a string or a number.
pub(super) fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
