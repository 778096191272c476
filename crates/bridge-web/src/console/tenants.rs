//! Tenants: status and why, scopes, install, last token use; revoke behind a confirmation
//! page that asks for the org id typed again, and restore.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use drift_types::OrgId;
use minijinja::context;
use serde::Deserialize;

use super::actions::audited;
use super::records::Notice;
use super::{Session, failed, message, page};
use crate::AppState;

/// `GET /admin/tenants`.
pub(super) async fn list(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    axum::extract::Query(n): axum::extract::Query<Notice>,
) -> Response {
    let mut list = match &st.tenants {
        Some(t) => match t.list().await {
            Ok(l) => l,
            Err(e) => return failed(format!("{e:#}")),
        },
        None => Vec::new(),
    };
    if s.role == super::Role::Viewer {
        for t in &mut list {
            t.installed_by = t.installed_by.as_deref().map(super::mask::emails_in);
        }
    }
    page(
        &st,
        &s,
        "tenants.html",
        "tenants",
        context! { tenants => list, notice => n.notice },
    )
}

/// `GET /admin/tenants/{org}/revoke`: the confirmation.
pub(super) async fn confirm_revoke(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(org): Path<i64>,
) -> Response {
    page(
        &st,
        &s,
        "revoke.html",
        "tenants",
        context! { org, error => "" },
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    confirm: String,
}

fn no_tenants() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No tenants",
        "This server keeps no tenants.",
    )
}

fn back(notice: &str) -> Response {
    let enc: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("/admin/tenants?notice={enc}")).into_response()
}

/// `POST /admin/tenants/{org}/revoke`: needs the org id typed in `confirm`.
pub(super) async fn revoke(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(org): Path<i64>,
    Form(f): Form<RevokeForm>,
) -> Response {
    if f.confirm.trim() != org.to_string() {
        return page(
            &st,
            &s,
            "revoke.html",
            "tenants",
            context! { org, error => format!("Type {org} to confirm; nothing changed.") },
        );
    }
    let Some(t) = &st.tenants else {
        return no_tenants();
    };
    let run = async {
        match t.get(OrgId(org)).await? {
            None => {
                return anyhow::Ok(format!(
                    "org {org} has not installed the app; nothing changed"
                ));
            }
            Some(x) if x.status == "revoked" => {
                return Ok(format!("org {org} is already disconnected"));
            }
            Some(_) => {}
        }
        let reason = format!("an operator's console revoke ({})", s.actor());
        let r = t.revoke(OrgId(org), st.drift.base_url(), &reason).await?;
        st.drift.forget_client(OrgId(org));
        let notice = format!(
            "org {org} disconnected: Drift uninstall {}, {} secrets deleted, {} queued jobs cancelled",
            if r.uninstalled {
                "done"
            } else {
                "not possible"
            },
            r.secrets_deleted,
            r.jobs_cancelled
        );
        Ok(notice)
    };
    audited(&st, &s, "tenant.revoke", &format!("org {org}"), run, back).await
}

/// `POST /admin/tenants/{org}/restore`.
pub(super) async fn restore(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(org): Path<i64>,
) -> Response {
    let Some(t) = &st.tenants else {
        return no_tenants();
    };
    let run = async {
        match t.get(OrgId(org)).await? {
            None => {
                return anyhow::Ok(format!(
                    "org {org} has neither installed the app nor been disconnected"
                ));
            }
            Some(x) if x.status == "active" => {
                return Ok(format!("org {org} is active; nothing to restore"));
            }
            Some(_) => {}
        }
        if let Err(e) = st.drift.configured_serves(OrgId(org)).await {
            return Ok(format!(
                "org {org} stays disconnected: no token is left for it ({e:#}); a re-install of the app (/oauth/install) reconnects it"
            ));
        }
        let r = bridge_core::reconnect::restore(t, &st.queue, OrgId(org)).await?;
        let notice = format!(
            "org {org} is active again: {} cancelled jobs and the jobs of {} events that arrived while it was disconnected are queued",
            r.jobs_requeued, r.events_replayed
        );
        Ok(notice)
    };
    audited(&st, &s, "tenant.restore", &format!("org {org}"), run, back).await
}
