//! Playbooks, landing pages, GDPR, the app, and the fallback for unknown routes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use drift_types::webhook::GdprDeleteRequested;
use drift_types::{ContactId, Data, GdprMessage, GdprRequest, OkResult, WebhookEvent};
use serde_json::{Value, json};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult};

use super::request::{St, param, parse_json, query_pairs};

// ---- playbooks, GDPR, app --------------------------------------------------------------

/// `GET /playbooks/list`: a bare array.
pub async fn playbooks(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Vec<drift_types::Playbook>>> {
    caller.require("playbook_read")?;
    let world = st.world.lock();
    Ok(Json(world.org(caller.org)?.playbooks.clone()))
}

/// `GET /playbooks/clp`.
pub async fn landing_pages(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Data<Vec<drift_types::LandingPage>>>> {
    caller.require("playbook_read")?;
    let world = st.world.lock();
    Ok(Json(Data {
        data: world.org(caller.org)?.landing_pages.clone(),
    }))
}

/// `POST /gdpr/retrieve`: everything held about an email.
pub async fn gdpr_retrieve(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Value>> {
    caller.require("gdpr_read")?;
    let req: GdprRequest = parse_json(&body)?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let contacts: Vec<_> = org
        .contacts_by_email(&req.email)
        .into_iter()
        .cloned()
        .collect();
    let ids: Vec<ContactId> = contacts.iter().map(|c| c.id).collect();
    let conversations: Vec<_> = org
        .conversations
        .values()
        .filter(|r| r.conversation.contact_id.is_some_and(|c| ids.contains(&c)))
        .map(|r| json!({"conversation": r.conversation, "messages": r.messages}))
        .collect();
    Ok(Json(
        json!({"data": {"email": req.email, "contacts": contacts, "conversations": conversations}}),
    ))
}

/// `POST /gdpr/delete`: answers at once; after `gdpr_delete_delay` erases the email's contacts
/// and conversations and sends `gdpr_delete_requested` `{email, requestedAt}`.
pub async fn gdpr_delete(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<GdprMessage>>> {
    caller.require("gdpr_write")?;
    let req: GdprRequest = parse_json(&body)?;
    if !req.email.contains('@') {
        return Err(SimError::invalid(format!(
            "{:?} is not an email",
            req.email
        )));
    }
    st.world.lock().org(caller.org)?;
    // Like Drift, the erasure happens later; then the org's webhook says so.
    let (st, org, email) = (st.clone(), caller.org, req.email.clone());
    tokio::spawn(async move {
        tokio::time::sleep(st.config.gdpr_delete_delay).await;
        if let Ok(o) = st.world.lock().org_mut(org) {
            o.erase_email(&email);
        }
        let event = WebhookEvent::GdprDeleteRequested(GdprDeleteRequested {
            email,
            requested_at: Some(drift_types::EpochMillis(drift_types::now_ms())),
        });
        st.webhooks.send(st.webhooks.envelopes(org, &[event]));
    });
    Ok(Json(Data {
        data: GdprMessage {
            message: "Your delete is processing".into(),
        },
    }))
}

/// `POST /app/uninstall?clientId=&clientSecret=`: revokes the org's tokens for the app.
pub async fn uninstall(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<OkResult>> {
    let pairs = query_pairs(&q);
    let app = &st.config.app;
    if param(&pairs, "clientId") != Some(app.client_id.as_str())
        || param(&pairs, "clientSecret") != Some(app.client_secret.expose())
    {
        return Err(SimError::unauthenticated(
            "clientId/clientSecret do not match the app",
        ));
    }
    st.auth.lock().revoke_org(caller.org, &app.client_id);
    Ok(Json(OkResult::ok()))
}

/// 404 for anything else, in Drift's error shape.
pub async fn fallback() -> SimError {
    SimError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}
