//! The read pages: events (search, one event with its jobs), jobs (filtered listing),
//! one conversation (rows, transcript, deliveries), syncs, the erasure log and the admin
//! audit. A viewer's pages show emails, names and message text masked.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use bridge_queue::{JobFilter, JobState};
use bridge_store::ops::events::EventFilter;
use bridge_store::ops::{audit as admin_audit, conversation as conv, events as ev, runs};
use minijinja::context;
use serde::Deserialize;

use super::{BadInput, Role, Session, bad_input, failed, mask, page};
use crate::AppState;

/// Rows per listing page.
const PAGE: i64 = 50;

/// `Some(s)` unless blank.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn int(what: &'static str, s: &Option<String>) -> Result<Option<i64>, BadInput> {
    given(s)
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| BadInput::new(what, format!("{v:?} is not a whole number")))
        })
        .transpose()
}

fn since(s: &Option<String>) -> Result<Option<i64>, BadInput> {
    given(s)
        .map(|v| {
            bridge_export::parse_since(v, drift_types::now_ms())
                .map_err(|e| BadInput::new("since", e))
        })
        .transpose()
}

/// The events page's filters, as typed.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub(super) struct EventQuery {
    #[serde(default, rename = "type")]
    event_type: Option<String>,
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

/// `GET /admin/events`.
pub(super) async fn events(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Query<EventQuery>,
) -> Response {
    let f = match (|| {
        Ok::<_, BadInput>(EventFilter {
            event_type: given(&q.event_type).map(str::to_owned),
            org: int("org", &q.org)?,
            conversation: int("conversation", &q.conversation)?,
            since: since(&q.since)?,
            until: None,
            before_id: int("before", &q.before)?,
        })
    })() {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let store = st.queue.store();
    let (rows, types) = match tokio::try_join!(ev::search(store, &f, PAGE), ev::types(store)) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    page(
        &st,
        &s,
        "events.html",
        "events",
        context! { rows, types, q, next },
    )
}

/// `GET /admin/events/{id}`: the payload and the jobs it made.
pub(super) async fn event(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let mut conn = match st.queue.store().acquire().await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let stored = match bridge_store::events::get(&mut conn, id).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return super::message(
                axum::http::StatusCode::NOT_FOUND,
                "No such event",
                &format!("No stored event has id {id}."),
            );
        }
        Err(e) => return failed(e),
    };
    drop(conn);
    let mut jobs = match st
        .queue
        .search(
            &JobFilter {
                event: Some(id),
                ..JobFilter::default()
            },
            PAGE,
        )
        .await
    {
        Ok(j) => j,
        Err(e) => return failed(e),
    };
    if s.role == Role::Viewer {
        for j in &mut jobs {
            j.last_error = j.last_error.as_deref().map(mask::emails_in);
        }
    }
    let payload = if s.role == Role::Viewer {
        mask::json(&stored.payload)
    } else {
        stored.payload.clone()
    };
    let payload = serde_json::to_string_pretty(&payload).unwrap_or_default();
    let conversation = bridge_core::jobs::conversation_of(&stored);
    page(
        &st,
        &s,
        "event.html",
        "events",
        context! { event => context! { id, org_id => stored.org_id, event_type => stored.event_type,
        received_at => stored.received_at }, payload, jobs, conversation },
    )
}

/// The jobs page's filters, as typed.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub(super) struct JobQuery {
    #[serde(default)]
    pub(super) state: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) org: Option<String>,
    #[serde(default)]
    pub(super) since: Option<String>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) before: Option<String>,
    #[serde(default)]
    pub(super) notice: Option<String>,
}

impl JobQuery {
    /// The queue's filter for these fields, or the page that says which one is wrong.
    pub(super) fn filter(&self) -> Result<JobFilter, BadInput> {
        let state = match given(&self.state) {
            None => None,
            Some(v) => Some(JobState::parse(v).ok_or_else(|| {
                BadInput::new(
                    "state",
                    format!("{v:?} is not queued, running, done, dead or cancelled"),
                )
            })?),
        };
        Ok(JobFilter {
            state,
            name: given(&self.name).map(str::to_owned),
            org: int("org", &self.org)?,
            since: since(&self.since)?,
            error: given(&self.error).map(str::to_owned),
            event: None,
            before_id: int("before", &self.before)?,
        })
    }
}

/// `GET /admin/jobs`.
pub(super) async fn jobs(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Query<JobQuery>,
) -> Response {
    let f = match q.filter() {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let rows = match st.queue.search(&f, PAGE).await {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let notice = given(&q.notice).map(str::to_owned);
    page(
        &st,
        &s,
        "jobs.html",
        "jobs",
        context! { rows, q, next, notice },
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct FindConversation {
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// `GET /admin/conversations?org=&id=`: the lookup form's target.
pub(super) async fn find_conversation(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Query<FindConversation>,
) -> Response {
    let (org, id) = match (int("org", &q.org), int("conversation id", &q.id)) {
        (Ok(o), Ok(i)) => (o, i),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let Some(id) = id else {
        return page(
            &st,
            &s,
            "conversation.html",
            "conversations",
            context! { found => false },
        );
    };
    let org = match org {
        Some(o) => o,
        None => match bridge_store::reads::conversation_orgs(st.queue.store(), id).await {
            Ok(orgs) if orgs.len() == 1 => orgs[0],
            Ok(orgs) if orgs.is_empty() => {
                return bad_input(
                    "conversation",
                    format!("conversation {id} is not stored; give its org to replay it"),
                );
            }
            Ok(orgs) => {
                return bad_input(
                    "org",
                    format!("conversation {id} is stored for several orgs ({orgs:?}); pick one"),
                );
            }
            Err(e) => return failed(e),
        },
    };
    Redirect::to(&format!("/admin/conversations/{org}/{id}")).into_response()
}

/// A page's `?notice=` (what the action just taken did).
#[derive(Debug, Deserialize)]
pub(super) struct Notice {
    #[serde(default)]
    pub(super) notice: Option<String>,
}

/// `GET /admin/conversations/{org}/{id}`.
pub(super) async fn conversation(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path((org, id)): Path<(i64, i64)>,
    Query(n): Query<Notice>,
) -> Response {
    let store = st.queue.store();
    let filter = EventFilter {
        conversation: Some(id),
        org: Some(org),
        ..EventFilter::default()
    };
    let got = tokio::try_join!(
        conv::get(store, org, id),
        conv::messages(store, org, id, 500),
        bridge_store::deliveries::for_conversation(store, org, id),
        ev::search(store, &filter, 20),
    );
    let (row, messages, mut deliveries, events) = match got {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let viewer = s.role == Role::Viewer;
    if viewer {
        for d in &mut deliveries {
            d.last_error = d.last_error.as_deref().map(mask::emails_in);
        }
    }
    let row = row.map(|mut r| {
        if viewer {
            r.contact_email = r.contact_email.as_deref().map(mask::email);
            r.contact_name = r.contact_name.as_deref().map(mask::name);
        }
        r
    });
    let messages: Vec<_> = messages
        .into_iter()
        .map(|mut m| {
            if viewer {
                m.body = m.body.as_deref().map(mask::text);
            }
            m
        })
        .collect();
    let notice = given(&n.notice).map(str::to_owned);
    page(
        &st,
        &s,
        "conversation.html",
        "conversations",
        context! { found => true, org, id, row, messages, deliveries, events, notice },
    )
}

/// `GET /admin/syncs`: runs and checkpoints.
pub(super) async fn syncs(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    let store = st.queue.store();
    let (list, checkpoints) =
        match tokio::try_join!(runs::list(store, 100), runs::checkpoints(store)) {
            Ok(x) => x,
            Err(e) => return failed(e),
        };
    let checkpoints: Vec<_> = checkpoints
        .into_iter()
        .map(|(org, stream, at, state)| context! { org, stream, at, state })
        .collect();
    page(
        &st,
        &s,
        "syncs.html",
        "syncs",
        context! { runs => list, checkpoints },
    )
}

/// `GET /admin/privacy`: the erasure log (subjects are keyed digests, never emails).
pub(super) async fn privacy(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    let mut conn = match st.queue.store().acquire().await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    match bridge_store::privacy::erasures(&mut conn, 200).await {
        Ok(list) => page(
            &st,
            &s,
            "privacy.html",
            "privacy",
            context! { erasures => list },
        ),
        Err(e) => failed(e),
    }
}

/// `GET /admin/audit`: what admins did.
pub(super) async fn audit(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    match admin_audit::list(st.queue.store(), 200).await {
        Ok(list) => page(&st, &s, "audit.html", "audit", context! { actions => list }),
        Err(e) => failed(e),
    }
}
