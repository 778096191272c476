//! The console's job and conversation actions (admin sessions only; the guard checked the
//! role and the CSRF token). Each writes the admin audit, then sends the operator back to
//! the page they acted from with a notice.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use bridge_store::ops::audit;
use drift_types::{ConversationId, OrgId};
use serde::Deserialize;

use super::records::JobQuery;
use super::{Session, failed};
use crate::AppState;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where to go back to: the jobs page with the filter the form carried.
fn back_to_jobs(q: &JobQuery, notice: &str) -> Response {
    let mut url = String::from("/admin/jobs?");
    for (k, v) in [
        ("state", &q.state),
        ("name", &q.name),
        ("org", &q.org),
        ("since", &q.since),
        ("error", &q.error),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            url.push_str(&format!("{k}={}&", enc(v)));
        }
    }
    url.push_str(&format!("notice={}", enc(notice)));
    Redirect::to(&url).into_response()
}

async fn record(
    st: &AppState,
    s: &Session,
    action: &str,
    target: &str,
    detail: &str,
) -> anyhow::Result<()> {
    let mut conn = st.queue.store().acquire().await?;
    audit::record(
        &mut conn,
        &s.actor(),
        action,
        target,
        detail,
        drift_types::now_ms(),
    )
    .await?;
    Ok(())
}

/// Runs an admin action whose outcome is a notice, writes it to the audit as `action` on
/// `target` (a refusal such as "nothing changed" too), and answers `back(notice)`; a failure
/// is logged and shown as one.
pub(super) async fn audited(
    st: &AppState,
    s: &Session,
    action: &str,
    target: &str,
    run: impl std::future::Future<Output = anyhow::Result<String>>,
    back: impl FnOnce(&str) -> Response,
) -> Response {
    let outcome = async {
        let notice = run.await?;
        record(st, s, action, target, &notice).await?;
        anyhow::Ok(notice)
    };
    match outcome.await {
        Ok(notice) => back(&notice),
        Err(e) => failed(format!("{e:#}")),
    }
}

/// Runs `change` (true when it changed the job), audits it as `action` with the notice
/// `done` or `unchanged`, and goes back to the jobs page the form came from.
async fn on_job(
    st: &AppState,
    s: &Session,
    q: &JobQuery,
    id: i64,
    action: &str,
    change: impl std::future::Future<Output = bridge_queue::Result<bool>>,
    (done, unchanged): (&str, &str),
) -> Response {
    let run = async {
        Ok(if change.await? {
            format!("job {id} {done}")
        } else {
            format!("job {id} {unchanged}; nothing changed")
        })
    };
    audited(st, s, action, &format!("job {id}"), run, |n| {
        back_to_jobs(q, n)
    })
    .await
}

/// `POST /admin/jobs/{id}/retry`.
pub(super) async fn retry(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(q): Form<JobQuery>,
) -> Response {
    let change = st.queue.retry(id, drift_types::now_ms());
    let words = ("queued again", "is not dead or cancelled");
    on_job(&st, &s, &q, id, "job.retry", change, words).await
}

/// `POST /admin/jobs/{id}/cancel`.
pub(super) async fn cancel(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    Form(q): Form<JobQuery>,
) -> Response {
    let change = st.queue.cancel(id, drift_types::now_ms());
    on_job(
        &st,
        &s,
        &q,
        id,
        "job.cancel",
        change,
        ("cancelled", "is not queued"),
    )
    .await
}

/// `POST /admin/jobs/retry`: every dead or cancelled job matching the form's filter.
pub(super) async fn retry_matching(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Form(q): Form<JobQuery>,
) -> Response {
    let f = match q.filter() {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let run = async {
        let n = st.queue.retry_matching(&f, drift_types::now_ms()).await?;
        Ok(format!(
            "{n} dead or cancelled jobs matching the filter queued again"
        ))
    };
    let target = format!("{f:?}");
    audited(&st, &s, "jobs.retry_matching", &target, run, |n| {
        back_to_jobs(&q, n)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct ReplayForm {
    /// Deliver again to this sink only (blank: sync again and deliver where filters say).
    #[serde(default)]
    sink: String,
}

/// `POST /admin/conversations/{org}/{id}/replay`.
pub(super) async fn replay(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((org, id)): Path<(i64, i64)>,
    Form(f): Form<ReplayForm>,
) -> Response {
    let sink = f.sink.trim();
    let sinks: Vec<String> = st.sinks.health().into_iter().map(|(n, _)| n).collect();
    if !sink.is_empty() && !sinks.iter().any(|n| n == sink) {
        return super::bad_input(
            "sink",
            format!("no sink named {sink:?} is configured ({sinks:?})"),
        );
    }
    let job = if sink.is_empty() {
        bridge_core::jobs::replay_job(OrgId(org), ConversationId(id), &sinks)
    } else {
        bridge_core::jobs::replay_job(OrgId(org), ConversationId(id), &[sink.to_owned()])
    };
    let run = async {
        let now = drift_types::now_ms();
        let mut tx = st.queue.store().begin().await?;
        let job_id = st.queue.enqueue(&mut tx, &job, now).await?;
        let to = if sink.is_empty() {
            "every sink".to_owned()
        } else {
            sink.to_owned()
        };
        let notice = format!("replay queued as job {job_id}: sync again and deliver to {to}");
        audit::record(
            &mut tx,
            &s.actor(),
            "conversation.replay",
            &format!("org {org} conversation {id}"),
            &notice,
            now,
        )
        .await?;
        tx.commit().await?;
        st.queue.wake();
        anyhow::Ok(notice)
    };
    match run.await {
        Ok(notice) => Redirect::to(&format!(
            "/admin/conversations/{org}/{id}?notice={}",
            enc(&notice)
        ))
        .into_response(),
        Err(e) => failed(format!("{e:#}")),
    }
}
