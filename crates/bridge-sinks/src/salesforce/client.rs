//! Salesforce REST with the refresh-token flow: the session (access token + `instance_url`)
//! is fetched on first use and again once when a call answers 401 `INVALID_SESSION_ID`
//! (Salesforce tokens carry no expiry; crm-apis.md §2.1). Errors are classified per §2.6.

use std::time::Duration;

use drift_types::Secret;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;

use super::config::SalesforceSpec;
use crate::crm_http::{Reply, by_status, exchange, retry_after};
use crate::outbound::OutboundGuard;
use crate::sink::SinkError;

#[derive(Debug, Clone)]
struct Session {
    token: Secret,
    /// `{instance_url}/services/data/vXX.X`.
    base: String,
}

#[derive(Debug)]
pub(super) struct Api {
    http: reqwest::Client,
    guard: OutboundGuard,
    login: String,
    client_id: String,
    client_secret: Secret,
    refresh_token: parking_lot::Mutex<Secret>,
    keep: Option<crate::sink::KeepSecret>,
    version: String,
    session: Mutex<Option<Session>>,
}

/// Salesforce's error array as text: `CODE: message`.
fn sf_message(status: u16, body: &str) -> String {
    let parsed: Option<Vec<Value>> = serde_json::from_str(body).ok();
    let parts: Vec<String> = parsed
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("errorCode")
                    .and_then(Value::as_str)
                    .unwrap_or("ERROR"),
                e.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    if parts.is_empty() {
        format!("Salesforce answered {status}: {body}")
    } else {
        format!("Salesforce answered {status}: {}", parts.join("; "))
    }
}

enum Answer {
    Ok(u16, Value),
    NotFound,
    InvalidSession(String),
}

impl Api {
    pub fn new(
        http: reqwest::Client,
        guard: OutboundGuard,
        login: String,
        spec: &SalesforceSpec,
        keep: Option<crate::sink::KeepSecret>,
    ) -> Self {
        Api {
            http,
            guard,
            login,
            client_id: spec.client_id.clone(),
            client_secret: spec.client_secret.clone(),
            refresh_token: parking_lot::Mutex::new(spec.refresh_token.clone()),
            keep,
            version: spec.api_version.clone(),
            session: Mutex::new(None),
        }
    }

    async fn refresh(&self) -> Result<Session, SinkError> {
        let refresh = self.refresh_token.lock().clone();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        let req = self
            .http
            .post(format!("{}/services/oauth2/token", self.login))
            .form(&form);
        let Reply { status, text, .. } = exchange(req, "Salesforce token endpoint", 4000).await?;
        if status != 200 {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let msg = format!(
                "Salesforce refused the refresh token ({status} {}: {})",
                v.get("error").and_then(Value::as_str).unwrap_or("error"),
                v.get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
            return Err(by_status(status, msg));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| SinkError::retry(format!("Salesforce token answer unreadable: {e}")))?;
        let (Some(token), Some(instance)) = (
            v.get("access_token").and_then(Value::as_str),
            v.get("instance_url").and_then(Value::as_str),
        ) else {
            return Err(SinkError::retry(
                "Salesforce token answer lacks access_token or instance_url",
            ));
        };
        // With refresh-token rotation each refresh answers a new one and spends the old: it
        // is kept (in the vault) before it is used, or a restart would hold a spent token.
        if let Some(new) = v.get("refresh_token").and_then(Value::as_str)
            && new != refresh.expose()
        {
            let new = Secret::new(new);
            if let Some(keep) = &self.keep {
                keep.save("refresh_token", new.clone()).await.map_err(|e| {
                    SinkError::retry("the rotated refresh token could not be kept").with_source(e)
                })?;
            }
            *self.refresh_token.lock() = new;
        }
        // The instance URL comes from the network: it passes the guard like configured URLs.
        let instance = crate::crm_http::checked(&self.guard, instance).await?;
        Ok(Session {
            token: Secret::new(token),
            base: format!("{instance}/services/data/{}", self.version),
        })
    }

    async fn session(&self, stale: Option<&Session>) -> Result<Session, SinkError> {
        let mut s = self.session.lock().await;
        if let Some(cur) = s.as_ref()
            && stale.is_none_or(|old| old.token.expose() != cur.token.expose())
        {
            return Ok(cur.clone());
        }
        let fresh = self.refresh().await?;
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    async fn once(
        &self,
        s: &Session,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, SinkError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/{path}", s.base))
            .bearer_auth(s.token.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let Reply {
            status,
            headers,
            text,
        } = exchange(req, "Salesforce", 64_000).await?;
        if (200..300).contains(&status) {
            let v = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| {
                    SinkError::retry(format!("Salesforce answered unreadable JSON: {e}"))
                })?
            };
            return Ok(Answer::Ok(status, v));
        }
        let message = sf_message(status, &text);
        match status {
            401 if text.contains("INVALID_SESSION_ID") => Ok(Answer::InvalidSession(message)),
            404 => Ok(Answer::NotFound),
            403 if text.contains("REQUEST_LIMIT_EXCEEDED") => {
                Err(SinkError::throttled(Duration::from_secs(60), message)
                    .with_status(status)
                    .with_code("REQUEST_LIMIT_EXCEEDED"))
            }
            500..=599 => {
                Err(SinkError::retry_after(retry_after(&headers), message).with_status(status))
            }
            _ => Err(SinkError::rejected(message).with_status(status)),
        }
    }

    /// One call; an invalid session is refreshed once and the call retried.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<(u16, Value)>, SinkError> {
        let s = self.session(None).await?;
        let answer = match self.once(&s, &method, path, body).await? {
            Answer::InvalidSession(_) => {
                let fresh = self.session(Some(&s)).await?;
                self.once(&fresh, &method, path, body).await?
            }
            a => a,
        };
        match answer {
            Answer::Ok(status, v) => Ok(Some((status, v))),
            Answer::NotFound => Ok(None),
            Answer::InvalidSession(m) => Err(SinkError::rejected(format!(
                "{m} (again right after a refresh)"
            ))),
        }
    }

    /// The first record's Id for a SOQL query.
    pub async fn query_id(&self, soql: &str) -> Result<Option<String>, SinkError> {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        let r = self
            .call(Method::GET, &format!("query?q={q}"), None)
            .await?;
        Ok(r.and_then(|(_, v)| {
            v.get("records")?
                .get(0)?
                .get("Id")?
                .as_str()
                .map(str::to_owned)
        }))
    }

    /// PATCH by record id.
    pub async fn update(&self, object: &str, id: &str, body: &Value) -> Result<(), SinkError> {
        match self
            .call(
                Method::PATCH,
                &format!("sobjects/{object}/{id}"),
                Some(body),
            )
            .await?
        {
            Some(_) => Ok(()),
            None => Err(SinkError::retry(format!(
                "{object} {id} vanished between query and update"
            ))),
        }
    }

    /// DELETE by record id; a record already gone (404) is not an error.
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), SinkError> {
        self.call(Method::DELETE, &format!("sobjects/{object}/{id}"), None)
            .await?;
        Ok(())
    }

    /// Upsert by external id; (id, created).
    pub async fn upsert(
        &self,
        object: &str,
        field: &str,
        value: &str,
        body: &Value,
    ) -> Result<(String, bool), SinkError> {
        let v: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
        let path = format!("sobjects/{object}/{field}/{v}");
        let (status, answer) = self
            .call(Method::PATCH, &path, Some(body))
            .await?
            .ok_or_else(|| {
                SinkError::rejected(format!(
                    "{object}.{field} is not an external-id field (404)"
                ))
            })?;
        let created = status == 201 || answer.get("created").and_then(Value::as_bool) == Some(true);
        if let Some(id) = answer.get("id").and_then(Value::as_str) {
            return Ok((id.to_owned(), created));
        }
        // Older API versions answer 204 on update: look the id up.
        let q = format!(
            "SELECT Id FROM {object} WHERE {field} = '{}' LIMIT 1",
            soql(value)
        );
        let id = self
            .query_id(&q)
            .await?
            .ok_or_else(|| SinkError::retry(format!("upserted {object} not found by {field}")))?;
        Ok((id, created))
    }
}

/// Escapes a SOQL string literal.
pub(super) fn soql(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}
