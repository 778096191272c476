//! Playbooks, landing pages, GDPR and the app itself (drift-api.md §5.5-§5.8).

use drift_types::{Data, GdprMessage, GdprRequest, LandingPage, OkResult, Playbook, TokenInfo};
use reqwest::Method;
use serde_json::{Value, json};

use super::paging::to_json;
use crate::client::{DriftClient, Idempotent, Request};
use crate::error::Result;

impl DriftClient {
    /// `GET /playbooks/list` (a bare array).
    pub async fn playbooks(&self) -> Result<Vec<Playbook>> {
        self.json(Request::get("GET /playbooks/list", "playbooks/list".into()))
            .await
    }

    /// `GET /playbooks/clp`.
    pub async fn landing_pages(&self) -> Result<Vec<LandingPage>> {
        let d: Data<Vec<LandingPage>> = self
            .json(Request::get("GET /playbooks/clp", "playbooks/clp".into()))
            .await?;
        Ok(d.data)
    }

    /// `POST /gdpr/retrieve` (shape undocumented; returned raw).
    pub async fn gdpr_retrieve(&self, email: &str) -> Result<Value> {
        let body = to_json(&GdprRequest {
            email: email.into(),
        })?;
        self.json(Request::send_json(
            Method::POST,
            "POST /gdpr/retrieve",
            "gdpr/retrieve".into(),
            body,
            Idempotent::Yes,
        ))
        .await
    }

    /// `POST /gdpr/delete` (erasing twice is harmless, so it is retried).
    pub async fn gdpr_delete(&self, email: &str) -> Result<GdprMessage> {
        let body = to_json(&GdprRequest {
            email: email.into(),
        })?;
        let d: Data<GdprMessage> = self
            .json(Request::send_json(
                Method::POST,
                "POST /gdpr/delete",
                "gdpr/delete".into(),
                body,
                Idempotent::Yes,
            ))
            .await?;
        Ok(d.data)
    }

    /// `POST /app/token_info` for `access_token`.
    pub async fn token_info(&self, access_token: &drift_types::Secret) -> Result<TokenInfo> {
        let body = json!({ "access_token": access_token.expose() });
        self.json(Request::send_json(
            Method::POST,
            "POST /app/token_info",
            "app/token_info".into(),
            body,
            Idempotent::Yes,
        ))
        .await
    }

    /// `POST /app/uninstall`: revokes this client's token for the app.
    pub async fn uninstall(
        &self,
        client_id: &str,
        client_secret: &drift_types::Secret,
    ) -> Result<OkResult> {
        let mut r = Request::new(Method::POST, "POST /app/uninstall", "app/uninstall".into())
            .query("clientId", client_id)
            .query("clientSecret", client_secret.expose());
        // Revoking twice is harmless, so it may be retried.
        r.idempotent = Idempotent::Yes;
        self.json(r).await
    }
}
