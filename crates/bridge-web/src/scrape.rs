//! `GET /metrics`: what the app counted as it ran, plus what is read at scrape time: the
//! queue by state and by job kind with the oldest waiting job's age, each org's Drift calls,
//! 429s, budget room and last successful sync, failed token refreshes, each sink's health,
//! the build and the process. Names follow the Prometheus conventions (`_total` counters,
//! `_seconds` and `_bytes` units); deploy/ holds the dashboard and alert rules built on them.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bridge_core::metrics::{Sample, labels, process_samples};

use crate::AppState;

/// `GET /metrics`.
pub(crate) async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let mut x = vec![Sample::gauge(
        "driftbridge_build_info",
        "1, labelled with the running version.",
        labels(&[("version", env!("CARGO_PKG_VERSION"))]),
        1.0,
    )];
    match st.queue.counts().await {
        Ok(counts) => {
            for state in ["queued", "running", "done", "dead", "cancelled"] {
                let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
                x.push(Sample::gauge(
                    "driftbridge_jobs",
                    "Jobs by state.",
                    labels(&[("state", state)]),
                    n as f64,
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count jobs for /metrics"),
    }
    let now = drift_types::now_ms();
    match st.queue.depth_by_kind().await {
        Ok(mut kinds) => {
            // Every kind, at 0 while none waits: a dashboard shows a flat line, not a gap.
            for name in bridge_core::jobs::KINDS {
                if !kinds.iter().any(|k| k.name == *name) {
                    kinds.push(bridge_queue::KindDepth {
                        name: (*name).to_owned(),
                        queued: 0,
                        running: 0,
                        dead: 0,
                        oldest_created_at: None,
                    });
                }
            }
            kinds.sort_by(|a, b| a.name.cmp(&b.name));
            for k in &kinds {
                for (state, n) in [("queued", k.queued), ("running", k.running)] {
                    x.push(Sample::gauge(
                        "driftbridge_queue_depth",
                        "Jobs waiting or running, by job kind and state.",
                        labels(&[("kind", &k.name), ("state", state)]),
                        n as f64,
                    ));
                }
            }
            for k in &kinds {
                let age = k.oldest_created_at.map_or(0, |t| (now - t).max(0));
                x.push(Sample::gauge(
                    "driftbridge_queue_oldest_age_seconds",
                    "Age of the oldest queued or running job, by job kind (0 when none waits).",
                    labels(&[("kind", &k.name)]),
                    age as f64 / 1000.0,
                ));
            }
            for k in &kinds {
                x.push(Sample::gauge(
                    "driftbridge_dead_jobs",
                    "Dead letters, by job kind.",
                    labels(&[("kind", &k.name)]),
                    k.dead as f64,
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not count jobs by kind for /metrics"),
    }
    for (status, n) in st.drift.status_counts() {
        let s = if status == 0 {
            "none".to_owned()
        } else {
            status.to_string()
        };
        x.push(Sample::counter(
            "driftbridge_drift_requests_total",
            "Drift API responses by status (none = no response), every org.",
            labels(&[("status", &s)]),
            n as f64,
        ));
    }
    let orgs = st.drift.org_stats();
    for o in &orgs {
        x.push(Sample::counter(
            "driftbridge_drift_rate_limited_total",
            "Drift's 429 answers, by org.",
            labels(&[("org", &o.org.0.to_string())]),
            o.rate_limited as f64,
        ));
    }
    for o in &orgs {
        if let Some(room) = o.budget_room {
            x.push(Sample::gauge(
                "driftbridge_drift_budget_remaining",
                "Drift requests the org's budget allows right now without waiting.",
                labels(&[("org", &o.org.0.to_string())]),
                f64::from(room),
            ));
        }
    }
    match bridge_store::ops::runs::last_ok(st.queue.store()).await {
        Ok(list) => {
            for (org, at) in list {
                x.push(Sample::gauge(
                    "driftbridge_last_sync_success_timestamp_seconds",
                    "When the org's last successful export or sync finished (Unix seconds).",
                    labels(&[("org", &org.to_string())]),
                    at as f64 / 1000.0,
                ));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read sync runs for /metrics"),
    }
    if let Some(t) = &st.tenants {
        // Every org this process calls Drift for, at 0 until a refresh fails: an alert on
        // the rate then sees the first failure.
        let failed = t.refresh_failures();
        let mut list: Vec<(i64, u64)> = orgs.iter().map(|o| (o.org.0, 0)).collect();
        for (org, n) in failed {
            match list.iter_mut().find(|(o, _)| *o == org.0) {
                Some(e) => e.1 = n,
                None => list.push((org.0, n)),
            }
        }
        for (org, n) in list {
            x.push(Sample::counter(
                "driftbridge_token_refresh_failures_total",
                "Refreshes of a tenant's Drift token that failed, by org.",
                labels(&[("org", &org.to_string())]),
                n as f64,
            ));
        }
    }
    for (sink, h) in st.sinks.health() {
        x.push(Sample::gauge(
            "driftbridge_sink_up",
            "1 when the sink's CRM answered its last attempt (or its host resolved at start), \
             0 while it cannot be reached; its deliveries retry meanwhile.",
            labels(&[("sink", &sink)]),
            if h.up { 1.0 } else { 0.0 },
        ));
    }
    x.extend(process_samples());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(&x),
    )
}
