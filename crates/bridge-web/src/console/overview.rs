//! The overview: throughput, the queue by job kind, dead letters, deliveries per sink, each
//! org's Drift budget and 429s and its last successful sync, and four charts (events and
//! finished jobs over the last hour and the last day), drawn on the server.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use bridge_store::ops::{runs, series};
use minijinja::context;
use serde::Serialize;

use super::{Session, failed, page};
use crate::AppState;
use crate::charts::{Bar, bars};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

#[derive(Debug, Serialize)]
struct Chart {
    id: &'static str,
    title: &'static str,
    total: i64,
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    first: String,
    last: String,
}

fn chart(
    id: &'static str,
    title: &'static str,
    s: &series::Series,
    label: fn(i64) -> String,
) -> Chart {
    let values: Vec<(String, u64)> = s
        .buckets
        .iter()
        .enumerate()
        .map(|(i, v)| (label(s.start + i as i64 * s.width), (*v).max(0) as u64))
        .collect();
    let width = 480;
    Chart {
        id,
        title,
        total: s.total(),
        width,
        height: 200,
        first: values.first().map(|v| v.0.clone()).unwrap_or_default(),
        last: values.last().map(|v| v.0.clone()).unwrap_or_default(),
        bars: bars(&values, width),
    }
}

fn hh_mm(ms: i64) -> String {
    let (_, _, _, h, m, ..) = drift_types::EpochMillis(ms).civil();
    format!("{h:02}:{m:02}")
}

#[derive(Debug, Serialize)]
struct SinkRow {
    name: String,
    up: bool,
    states: Vec<(String, i64)>,
    /// People its lead signals (and calendar pages' meetings) wrote.
    signaled: i64,
    /// Of those, people whose last write began and has not recorded its ids yet.
    unrecorded: i64,
}

#[derive(Debug, Serialize)]
struct OrgRow {
    org: i64,
    requests: u64,
    rate_limited: u64,
    budget_room: Option<u32>,
    last_sync: Option<i64>,
}

/// The overview's values.
async fn build(st: &AppState, s: &Session) -> anyhow::Result<Response> {
    let store = st.queue.store();
    let now = drift_types::now_ms();
    let ev_hour = series::events(store, now, MINUTE, 60).await?;
    let ev_day = series::events(store, now, HOUR, 24).await?;
    let done_hour = series::jobs_finished(store, "done", now, MINUTE, 60).await?;
    let done_day = series::jobs_finished(store, "done", now, HOUR, 24).await?;
    let last5: i64 = ev_hour.buckets.iter().rev().take(5).sum();
    let kinds = st.queue.depth_by_kind().await?;
    let dead: i64 = kinds.iter().map(|k| k.dead).sum();
    let queued: i64 = kinds.iter().map(|k| k.queued + k.running).sum();
    let kinds: Vec<_> = kinds
        .into_iter()
        .map(|k| {
            let age = k.oldest_created_at.map(|t| super::ago(now - t));
            context! { name => k.name, queued => k.queued, running => k.running, dead => k.dead, oldest => age }
        })
        .collect();
    let counts = bridge_store::deliveries::counts(store).await?;
    let signals = bridge_store::signals::counts(store).await?;
    let sinks: Vec<SinkRow> = st
        .sinks
        .health()
        .into_iter()
        .map(|(name, h)| {
            let (signaled, unrecorded) = signals
                .iter()
                .find(|(sink, ..)| *sink == name)
                .map_or((0, 0), |(_, people, pending)| (*people, *pending));
            SinkRow {
                states: counts
                    .iter()
                    .filter(|(sink, ..)| *sink == name)
                    .map(|(_, state, n)| (state.clone(), *n))
                    .collect(),
                signaled,
                unrecorded,
                name,
                up: h.up,
            }
        })
        .collect();
    let last_ok = runs::last_ok(store).await?;
    let mut orgs: Vec<OrgRow> = st
        .drift
        .org_stats()
        .into_iter()
        .map(|o| OrgRow {
            org: o.org.0,
            requests: o.requests,
            rate_limited: o.rate_limited,
            budget_room: o.budget_room,
            last_sync: last_ok.iter().find(|(org, _)| *org == o.org.0).map(|x| x.1),
        })
        .collect();
    for (org, at) in &last_ok {
        if !orgs.iter().any(|o| o.org == *org) {
            orgs.push(OrgRow {
                org: *org,
                requests: 0,
                rate_limited: 0,
                budget_room: None,
                last_sync: Some(*at),
            });
        }
    }
    let charts = vec![
        chart(
            "events-hour",
            "Events per minute, last hour",
            &ev_hour,
            hh_mm,
        ),
        chart(
            "jobs-hour",
            "Jobs done per minute, last hour",
            &done_hour,
            hh_mm,
        ),
        chart("events-day", "Events per hour, last day", &ev_day, hh_mm),
        chart("jobs-day", "Jobs done per hour, last day", &done_day, hh_mm),
    ];
    Ok(page(
        st,
        s,
        "overview.html",
        "overview",
        context! {
            events_per_second => format!("{:.2}", last5 as f64 / 300.0),
            events_hour => ev_hour.total(),
            queued, dead, kinds, sinks, orgs, charts,
        },
    ))
}

/// `GET /admin`.
pub(super) async fn show(State(st): State<AppState>, Extension(s): Extension<Session>) -> Response {
    build(&st, &s).await.unwrap_or_else(failed)
}
