//! The Analytics page: the report's charts (reply-time distribution, volume and handoff rate
//! by day, the playbook funnel) and its table, for an org and a period, drawn by the same code
//! and template as `driftbridge report --format html` (docs/ANALYTICS.md).

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bridge_core::analytics::{By, Tally};
use minijinja::context;
use serde::Deserialize;

use super::{BadInput, Session, failed, page};
use crate::AppState;

/// The page's form, as typed.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub(super) struct AnalyticsQuery {
    #[serde(default)]
    org: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    by: Option<String>,
}

/// `GET /admin/analytics?org=&since=365d&by=playbook` (since: a year by default).
pub(super) async fn show(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Query<AnalyticsQuery>,
) -> Response {
    let now = drift_types::now_ms();
    let since_text = q
        .since
        .clone()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "365d".into());
    let since = match bridge_export::parse_since(&since_text, now) {
        Ok(t) => t,
        Err(e) => return BadInput::new("since", e).into_response(),
    };
    let by_text =
        q.by.clone()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "playbook".into());
    let Some(by) = By::parse(&by_text) else {
        return BadInput::new(
            "by",
            format!("{by_text:?} is not day, week, agent, playbook or inbox"),
        )
        .into_response();
    };
    let store = st.queue.store();
    let orgs = match bridge_store::analytics::orgs(store).await {
        Ok(o) => o,
        Err(e) => return failed(e),
    };
    let org = match q.org.as_deref().map(str::trim).filter(|o| !o.is_empty()) {
        Some(o) => match o.parse::<i64>() {
            Ok(o) => Some(o),
            Err(_) => {
                return BadInput::new("org", format!("{o:?} is not a whole number"))
                    .into_response();
            }
        },
        None => orgs.first().copied(),
    };
    let Some(org) = org else {
        return page(
            &st,
            &s,
            "analytics.html",
            "analytics",
            context! { empty => true, orgs, since => since_text, by => by_text },
        );
    };
    // Tallied as the facts are read: a long window of a large org holds counts, not rows.
    let (mut groups, mut facts) = (Tally::new(by), crate::report::ChartFacts::default());
    let read = bridge_store::analytics::each_fact(store, org, since, now + 1, |f| {
        groups.add(&f);
        facts.add(&f);
    });
    if let Err(e) = read.await {
        return failed(e);
    }
    let conversations = facts.conversations();
    let groups = groups.groups();
    let c = crate::report::charts(facts, &groups);
    page(
        &st,
        &s,
        "analytics.html",
        "analytics",
        context! {
            empty => false, orgs, org, since => since_text, by => by_text,
            conversations,
            from => drift_types::EpochMillis(since).to_iso8601(),
            ..minijinja::Value::from_serialize(&c)
        },
    )
}
