//! `driftbridge bench widget`: widget intake (`POST /widget/events`) with many browsers
//! posting at once, beside a no-op axum handler measured the same way; and webhook ack
//! latency at a fixed rate, alone and while the browsers post, since both store through the
//! same database (on SQLite, its one connection).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use bridge_core::widget::{SiteConfig, SiteMode};
use serde_json::{Value, json};

use super::ingest::{Servers, fixed_rate, servers};
use super::support::bench_config;

/// Arguments of `driftbridge bench widget`.
#[derive(Debug, clap::Args)]
pub struct WidgetArgs {
    /// Browsers posting batches at once.
    #[arg(long, default_value_t = 64)]
    browsers: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 3)]
    events: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Offered webhook rate (events/s) for the latency runs.
    #[arg(long, default_value_t = 500)]
    webhook_rate: u32,
}

const ORIGIN: &str = "http://bench.example";

static SEQ: AtomicU64 = AtomicU64::new(1);

fn batch(browser: usize, events: usize) -> Value {
    let now = drift_types::now_ms();
    let events: Vec<Value> = (0..events)
        .map(|_| {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            json!({"id": format!("e{n}"), "type": "chatOpen", "ts": now,
                "page": {"url": "https://bench.example/pricing", "path": "/pricing"},
                "touch": {"utm_source": "ads", "utm_campaign": "spring",
                    "landing_page": "https://bench.example/?utm_source=ads"},
                "data": {}})
        })
        .collect();
    json!({"site": "bench", "visitor": format!("v{browser}"), "session": "s", "events": events})
}

/// `browsers` posting batches flat out until `until`; answers the batches stored.
async fn browsers(
    http: &reqwest::Client,
    url: &str,
    n: usize,
    events: usize,
    until: Instant,
) -> Result<u64> {
    let mut tasks = Vec::with_capacity(n);
    for b in 0..n {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < until {
                let r = http
                    .post(&url)
                    .header("origin", ORIGIN)
                    .json(&batch(b, events))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    Ok(total)
}

/// Runs `bench widget`.
pub async fn run(a: WidgetArgs, database_url: Option<String>) -> Result<()> {
    let (mut config, _dir) = bench_config(database_url)?;
    let w = &mut config.widget;
    w.sites = vec![SiteConfig {
        key: "bench".into(),
        org_id: 5_000_883,
        origins: vec![ORIGIN.into()],
        mode: SiteMode::Public,
        collect_contact: false,
    }];
    (w.per_ip_per_sec, w.per_ip_burst) = (u32::MAX / 2, u32::MAX / 2);
    (w.per_site_per_sec, w.per_site_burst) = (u32::MAX / 2, u32::MAX / 2);
    let Servers {
        running,
        noop,
        http,
        backend,
    } = servers(&config, 512).await?;
    let widget_url = format!("http://{}/widget/events", running.addr);
    let webhook_url = format!("http://{}/webhooks/drift", running.addr);
    let secs = Duration::from_secs(a.seconds);

    println!(
        "target               | batches/s ({} browsers, {} events each) | events/s",
        a.browsers, a.events
    );
    for (name, url) in [
        (
            "no-op axum handler",
            format!("http://{noop}/webhooks/drift"),
        ),
        (backend, widget_url.clone()),
    ] {
        let started = Instant::now();
        let n = browsers(&http, &url, a.browsers, a.events, started + secs).await?;
        let rate = n as f64 / started.elapsed().as_secs_f64();
        println!(
            "{name:<20} | {rate:>40.0} | {:>8.0}",
            rate * a.events as f64
        );
    }

    println!(
        "{:<30} | p50 ms | p99 ms | failed",
        format!("webhooks at {}/s on {backend}", a.webhook_rate)
    );
    let (p50, p99, failed) = fixed_rate(&http, &webhook_url, a.webhook_rate, a.seconds).await?;
    println!("{:<30} | {p50:>6.2} | {p99:>6.2} | {failed}", "alone");
    let until = Instant::now() + secs;
    let load = {
        let (http, url, n, events) = (http.clone(), widget_url, a.browsers, a.events);
        tokio::spawn(async move { browsers(&http, &url, n, events, until).await })
    };
    let (p50, p99, failed) = fixed_rate(&http, &webhook_url, a.webhook_rate, a.seconds).await?;
    let batches = load.await??;
    println!(
        "{:<30} | {p50:>6.2} | {p99:>6.2} | {failed}   ({:.0} batches/s meanwhile)",
        format!("while {} browsers post", a.browsers),
        batches as f64 / a.seconds as f64
    );
    let commits = running
        .metrics
        .render(&[])
        .lines()
        .find_map(|l| l.strip_prefix("driftbridge_widget_commit_seconds_count "))
        .and_then(|c| c.parse::<u64>().ok());
    let stored: i64 = bridge_store::sqlx::query_scalar("SELECT COUNT(*) FROM widget_events")
        .fetch_one(running.queue.store().pool())
        .await?;
    println!(
        "widget events durably stored by {backend}: {stored}; commits: {}",
        commits.map_or("not counted".into(), |c| c.to_string())
    );
    running.stop().await;
    Ok(())
}
