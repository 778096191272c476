//! `driftbridge bench ingest` and `bench e2e`: the durable-core benchmarks of
//! docs/BENCHMARKS.md. The load generator runs in the same process as the server (two cores
//! shared), beside a no-op axum handler measured the same way: the HTTP ceiling.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::routing::post;
use drift_sim::{FaultRule, SimConfig};
use drift_types::Secret;
use serde_json::{Value, json};

use super::support::{Pushed, VERIFY, bench_config, pct, push_conversations};

/// Arguments of `driftbridge bench ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Offered rates (events/s) for the latency runs.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000")]
    rates: Vec<u32>,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent senders in the maximum-throughput run.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// Arguments of `driftbridge bench e2e`.
#[derive(Debug, clap::Args)]
pub struct E2eArgs {
    /// Latency the simulator adds to every Drift call, in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// conversation_push events sent.
    #[arg(long, default_value_t = 200)]
    events: u32,
    /// Offered rate, events/s.
    #[arg(long, default_value_t = 20)]
    rate: u32,
}

static SEQ: AtomicI64 = AtomicI64::new(1);

fn event() -> Value {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    json!({"type": "new_message", "orgId": 5000883, "token": VERIFY, "data": {
        "id": n, "conversationId": 42, "createdAt": 1_700_000_000_000i64 + n,
        "body": "Hi! I'd like to learn more about pricing for a team of 40.",
        "author": {"type": "contact", "id": 77, "bot": false}, "type": "chat",
        "context": {"ip": "203.0.113.9", "userAgent": "Mozilla/5.0"}
    }})
}

async fn max_throughput(http: &reqwest::Client, url: &str, conc: usize, secs: u64) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < deadline {
                if let Ok(r) = http.post(&url).json(&event()).send().await
                    && r.status().is_success()
                {
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
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Open loop: request i is due at start + i/rate; its latency counts from when it was due,
/// so a stalled server is charged for the requests that queued behind it.
pub(crate) async fn fixed_rate(
    http: &reqwest::Client,
    url: &str,
    rate: u32,
    secs: u64,
) -> Result<(f64, f64, u64)> {
    let n = u64::from(rate) * secs;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(due.into()).await;
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let ok = http
                .post(&url)
                .json(&event())
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (ok, due.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (ok, ms) = t.await?;
        if ok {
            lat.push(ms);
        } else {
            failed += 1;
        }
    }
    lat.sort_by(f64::total_cmp);
    Ok((pct(&lat, 0.5), pct(&lat, 0.99), failed))
}

pub(crate) async fn noop_server() -> Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/webhooks/drift",
        post(|body: axum::body::Bytes| async move {
            let _ = body.len();
            axum::Json(json!({"status": "accepted"}))
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}
/// `serve` without workers and the no-op handler beside it, for a benchmark to drive.
pub(crate) struct Servers {
    /// `serve`.
    pub running: crate::serve::Running,
    /// The no-op handler.
    pub noop: SocketAddr,
    /// A client keeping enough connections open for the benchmark's senders.
    pub http: reqwest::Client,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
}

/// Starts [`Servers`] on `config`.
pub(crate) async fn servers(config: &crate::config::Config, senders: usize) -> Result<Servers> {
    let backend = if config.database.url.expose().starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    Ok(Servers {
        running: crate::serve::start(config, false).await?,
        noop: noop_server().await?,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(senders)
            .build()?,
        backend,
    })
}

/// Runs `bench ingest`.
pub async fn ingest(a: IngestArgs, database_url: Option<String>) -> Result<()> {
    let (config, _dir) = bench_config(database_url)?;
    let Servers {
        running,
        noop,
        http,
        backend,
    } = servers(&config, 256).await?;
    let targets = [
        (
            "no-op axum handler",
            format!("http://{noop}/webhooks/drift"),
        ),
        (backend, format!("http://{}/webhooks/drift", running.addr)),
    ];
    println!(
        "target               | max acks/s ({} senders) | offered/s | p50 ms | p99 ms | failed",
        a.concurrency
    );
    for (name, url) in &targets {
        let max = max_throughput(&http, url, a.concurrency, a.seconds).await?;
        for rate in &a.rates {
            let (p50, p99, failed) = fixed_rate(&http, url, *rate, a.seconds).await?;
            println!("{name:<20} | {max:>24.0} | {rate:>9} | {p50:>6.2} | {p99:>6.2} | {failed}");
        }
    }
    let stored = running
        .queue
        .store()
        .table_counts()
        .await?
        .into_iter()
        .find(|(t, _)| *t == "events")
        .map_or(0, |c| c.1);
    println!("events durably stored by {backend}: {stored}");
    running.stop().await;
    Ok(())
}

/// Runs `bench e2e`.
pub async fn e2e(a: E2eArgs, database_url: Option<String>) -> Result<()> {
    let sim = drift_sim::spawn(
        SimConfig::unlimited(a.events.max(1)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    sim.state.faults.lock().set(vec![FaultRule {
        latency_ms: a.latency_ms,
        ..FaultRule::default()
    }]);
    let (mut config, _dir) = bench_config(database_url)?;
    config.drift.base_url = sim.base_url();
    config.drift.token = Some(Secret::new(sim.token()));
    config.drift.rate_limit_per_minute = 0;
    config.workers.poll_interval_ms = 100;
    let running = crate::serve::start(&config, true).await?;
    let sent = push_conversations(&sim, running.addr, a.events as usize, Some(a.rate)).await?;
    running.drained(Duration::from_millis(20)).await?;
    let mut lat = Vec::new();
    for Pushed {
        event_id,
        sent_ms: t0,
        ..
    } in sent
    {
        let done = bridge_store::reads::job_finished_at(running.queue.store(), event_id)
            .await
            .context("while reading job completion")?;
        if let Some(d) = done {
            lat.push((d - t0) as f64);
        }
    }
    lat.sort_by(f64::total_cmp);
    let calls = sim.state.log.lock().total;
    println!(
        "{} conversation_push events at {}/s, {} ms per Drift call: end-to-end p50 {:.0} ms, p99 {:.0} ms ({} Drift calls)",
        lat.len(),
        a.rate,
        a.latency_ms,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        calls
    );
    running.stop().await;
    sim.stop().await;
    Ok(())
}
