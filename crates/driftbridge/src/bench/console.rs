//! `driftbridge bench console`: every console page (and `/metrics`) on a store holding a
//! million webhook events and a hundred thousand jobs, beside the same pages on an empty
//! store in the same run. Each page is fetched through `serve` over HTTP with a signed
//! admin session, one request at a time.

use std::time::Instant;

use anyhow::{Result, bail};
use bridge_queue::{NewJob, Queue, QueueConfig};
use bridge_store::Store;
use bridge_store::events::{self, NewEvent};
use clap::Args;
use serde::Serialize;

use super::support::{bench_config, pct};

/// Arguments.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Webhook events in the full store.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u32,
    /// Jobs in the full store.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u32,
    /// Requests per page.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One page's latencies in ms.
#[derive(Debug, Clone, Serialize)]
pub struct PageTime {
    /// The page.
    pub path: String,
    /// Median on the empty store.
    pub empty_p50_ms: f64,
    /// Median on the full store.
    pub full_p50_ms: f64,
    /// Slowest on the full store.
    pub full_max_ms: f64,
}

const ORG: i64 = 1;
const DAY_MS: i64 = 86_400_000;
const TYPES: &[&str] = &[
    "new_message",
    "conversation_push",
    "contact_updated",
    "new_conversation",
    "playbook_goal_met",
];

/// Fills `store` with `n_events` events over the last 30 days (a third in the last day) and
/// `n_jobs` jobs (90% done, 5% dead, 4% queued, 1% cancelled); answers a conversation id and
/// an event id that exist.
async fn fill(store: &Store, n_events: u32, n_jobs: u32) -> Result<(i64, i64)> {
    let now = drift_types::now_ms();
    let batch = 5_000_u32;
    let batches = n_events.div_ceil(batch).max(1);
    let mut first_id = 0;
    for b in 0..batches {
        // Two thirds spread over 30 days, the last third over the last day.
        let at = if b < batches * 2 / 3 {
            now - 30 * DAY_MS + i64::from(b) * (29 * DAY_MS) / i64::from(batches * 2 / 3).max(1)
        } else {
            now - DAY_MS + i64::from(b - batches * 2 / 3) * DAY_MS / i64::from(batches / 3).max(1)
        };
        let rows: Vec<(String, String, Option<i64>, &str)> = (0..batch.min(n_events - b * batch))
            .map(|i| {
                let n = i64::from(b * batch + i);
                let t = TYPES[(n % TYPES.len() as i64) as usize];
                let conv = (t != "contact_updated").then_some(1_000_000 + n % 50_000);
                let payload = format!(
                    r#"{{"type":"{t}","orgId":{ORG},"data":{{"id":{n},"conversationId":{},"body":"message text number {n} of the benchmark"}}}}"#,
                    conv.unwrap_or(0)
                );
                (format!("bench-{n}"), payload, conv, t)
            })
            .collect();
        let evs: Vec<NewEvent<'_>> = rows
            .iter()
            .map(|(k, p, c, t)| NewEvent {
                dedup_key: k,
                org_id: Some(ORG),
                event_type: t,
                payload: p,
                parse_error: None,
                conversation_id: *c,
            })
            .collect();
        let mut tx = store.begin_redoable().await?;
        let ids = events::insert_many(&mut tx, &evs, at).await?;
        tx.commit().await?;
        if first_id == 0 {
            first_id = ids.first().copied().flatten().unwrap_or(1);
        }
    }
    let queue = Queue::new(store.clone(), QueueConfig::default());
    let kinds = [
        "sync_conversation",
        "deliver_conversation",
        "upsert_message",
        "sync_contact",
    ];
    let mut made = 0;
    while made < n_jobs {
        let n = 5_000.min(n_jobs - made);
        let jobs: Vec<NewJob> = (0..n)
            .map(|i| NewJob {
                name: kinds[((made + i) % 4) as usize].into(),
                org_id: Some(ORG),
                args: serde_json::json!({"conversation_id": 1_000_000 + i64::from((made + i) % 50_000)}),
                event_id: Some(first_id + i64::from(made + i)),
            })
            .collect();
        let mut tx = store.begin_redoable().await?;
        queue.enqueue_many(&mut tx, &jobs, now - DAY_MS).await?;
        tx.commit().await?;
        made += n;
    }
    // States by id: 90% done, 5% dead (with an error), 4% queued, 1% cancelled.
    for (sql, what) in [
        (
            "UPDATE jobs SET state = 'done', finished_at = created_at + (id % 3600000) WHERE id % 100 < 90",
            "done",
        ),
        (
            "UPDATE jobs SET state = 'dead', attempts = 8, finished_at = created_at + (id % 3600000), \
          last_error = 'sink hubspot: HubSpot answered 503 Service Unavailable (timeout)' \
          WHERE id % 100 >= 90 AND id % 100 < 95",
            "dead",
        ),
        (
            "UPDATE jobs SET state = 'cancelled', finished_at = created_at WHERE id % 100 = 99",
            "cancelled",
        ),
    ] {
        bridge_store::sqlx::query(bridge_store::sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .map_err(|e| anyhow::anyhow!("setting {what} jobs: {e}"))?;
    }
    Ok((1_000_000, first_id))
}

/// The pages fetched, with the ids the filled store has.
fn pages(conversation: i64, event: i64) -> Vec<String> {
    vec![
        "/admin".into(),
        "/admin/events".into(),
        "/admin/events?type=playbook_goal_met".into(),
        format!("/admin/events?conversation={conversation}"),
        "/admin/events?org=1&since=1h".into(),
        format!("/admin/events/{event}"),
        "/admin/jobs".into(),
        "/admin/jobs?state=dead".into(),
        "/admin/jobs?state=dead&error=timeout".into(),
        "/admin/jobs?name=sync_contact&state=queued".into(),
        format!("/admin/conversations/{ORG}/{conversation}"),
        "/admin/tenants".into(),
        "/admin/syncs".into(),
        "/admin/privacy".into(),
        "/admin/audit".into(),
        "/metrics".into(),
    ]
}

/// Fetches every page `n` times from a `serve` on `config`; answers each page's sorted
/// latencies in ms. On the empty store the one-event page answers 404 (its event is not
/// there), which is still a rendered page; on the full store every page must answer 200.
async fn measure(
    config: &crate::config::Config,
    paths: &[String],
    n: usize,
    empty: bool,
) -> Result<Vec<Vec<f64>>> {
    let running = crate::serve::start(config, false).await?;
    let (_, cookie) = running.sessions.start(
        bridge_web::console::Role::Admin,
        "bench",
        false,
        drift_types::now_ms(),
    );
    let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for p in paths {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = http
                .get(format!("http://{}{p}", running.addr))
                .header("cookie", &cookie)
                .bearer_auth("bench-admin-token")
                .send()
                .await?;
            let status = r.status();
            let _ = r.bytes().await?;
            let rendered_missing = empty && status == reqwest::StatusCode::NOT_FOUND;
            if !(status.is_success() || rendered_missing) {
                bail!("{p} answered {status}");
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        out.push(times);
    }
    running.stop().await;
    Ok(out)
}

/// Runs the benchmark.
pub async fn run(a: ConsoleArgs, database_url: Option<String>) -> Result<()> {
    // The baseline is an empty store on the same backend.
    let empty_url = match &database_url {
        Some(u) if u.starts_with("postgres") => {
            let name = format!("driftbridge_bench_empty_{}", std::process::id());
            Some(bridge_store::reads::create_postgres_database(u, &name).await?)
        }
        _ => None,
    };
    let (mut empty, _d1) = bench_config(empty_url)?;
    empty.admin.token = Some(drift_types::Secret::new("bench-admin-token"));
    let (mut full, _d2) = bench_config(database_url)?;
    full.admin.token = Some(drift_types::Secret::new("bench-admin-token"));
    let store = crate::serve::open_queue(&full).await?.store().clone();
    let t = Instant::now();
    let (conversation, event) = fill(&store, a.events, a.jobs).await?;
    let fill_secs = t.elapsed().as_secs_f64();
    store.close().await;
    let paths = pages(conversation, event);
    let base = measure(&empty, &paths, a.requests, true).await?;
    let loaded = measure(&full, &paths, a.requests, false).await?;
    let rows: Vec<PageTime> = paths
        .iter()
        .zip(base.iter().zip(&loaded))
        .map(|(p, (b, l))| PageTime {
            path: p.clone(),
            empty_p50_ms: pct(b, 0.5),
            full_p50_ms: pct(l, 0.5),
            full_max_ms: l.last().copied().unwrap_or(f64::NAN),
        })
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"events": a.events, "jobs": a.jobs, "fill_seconds": fill_secs,
                "backend": format!("{:?}", store.backend()), "pages": rows})
        );
        return Ok(());
    }
    println!(
        "console pages, {} requests each; full store: {} events, {} jobs ({:?}, filled in {fill_secs:.0} s)",
        a.requests,
        a.events,
        a.jobs,
        store.backend()
    );
    println!(
        "{:<44} {:>12} {:>12} {:>12}",
        "page", "empty p50", "full p50", "full max"
    );
    for r in &rows {
        println!(
            "{:<44} {:>9.1} ms {:>9.1} ms {:>9.1} ms",
            r.path, r.empty_p50_ms, r.full_p50_ms, r.full_max_ms
        );
    }
    Ok(())
}
