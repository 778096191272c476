//! `driftbridge bench crm`: conversations delivered per second to each CRM simulator (and a
//! local HTTP receiver) with simulated latency, and the end-to-end latency from
//! `conversation_push` to the recorded CRM write (docs/BENCHMARKS.md).
//!
//! Each target runs alone: a fresh simulator and store, `serve` with one sink, the simulator's
//! CRM answering after `--latency-ms`. A burst of every conversation gives the throughput; a
//! run paced at `--rate` gives p50/p99 under a load the sink keeps up with. End to end is from
//! the moment the push is sent to the commit that records the CRM's answer, which happens
//! right after the last CRM write of that delivery.

use std::time::Duration;

use anyhow::{Result, bail};

use super::support::{crm_bench, pct, push_conversations};

/// Arguments of `driftbridge bench crm`.
#[derive(Debug, clap::Args)]
pub struct CrmBenchArgs {
    /// Conversations in the dataset (each delivered once per run).
    #[arg(long, default_value_t = 400)]
    conversations: u32,
    /// Latency every CRM answer (and the HTTP receiver) adds, in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Offered push rate of the latency run, per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Worker slots (`workers.concurrency`).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Targets to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "hubspot,salesforce,marketo,http"
    )]
    targets: Vec<String>,
}

struct Run {
    delivered: usize,
    per_sec: f64,
    p50: f64,
    p99: f64,
    crm_calls: u64,
}

async fn run(
    a: &CrmBenchArgs,
    target: &str,
    rate: Option<u32>,
    database_url: Option<String>,
) -> Result<Run> {
    let (sim, config, _dir) = crm_bench(
        a.conversations,
        a.latency_ms,
        a.workers,
        &[target],
        database_url,
    )
    .await?;
    let running = crate::serve::start(&config, true).await?;
    let sent = push_conversations(&sim, running.addr, usize::MAX, rate).await?;
    running.drained(Duration::from_millis(10)).await?;
    let rows =
        bridge_store::deliveries::list(running.queue.store(), Some(target), i64::MAX).await?;
    let done: std::collections::HashMap<i64, i64> = rows
        .iter()
        .filter(|r| r.state == "delivered")
        .map(|r| (r.conversation_id, r.updated_at))
        .collect();
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|p| done.get(&p.conversation).map(|d| (d - p.sent_ms) as f64))
        .collect();
    lat.sort_by(f64::total_cmp);
    let first = sent.first().map_or(0, |p| p.sent_ms);
    let last = done.values().copied().max().unwrap_or(first);
    let crm_calls = [
        drift_sim::crm::Target::Hubspot,
        drift_sim::crm::Target::Salesforce,
        drift_sim::crm::Target::Marketo,
    ]
    .iter()
    .map(|t| sim.state.crm.stats(*t).requests)
    .sum();
    running.stop().await;
    sim.stop().await;
    Ok(Run {
        delivered: done.len(),
        per_sec: done.len() as f64 / ((last - first).max(1) as f64 / 1000.0),
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        crm_calls,
    })
}

/// Runs `bench crm`.
pub async fn run_all(a: CrmBenchArgs, database_url: Option<String>) -> Result<()> {
    println!(
        "{} conversations per run, {} ms per CRM answer, {} workers; latency runs at {}/s",
        a.conversations, a.latency_ms, a.workers, a.rate
    );
    println!(
        "| target | delivered/s (burst) | CRM calls per conversation | p50 ms at {}/s | p99 ms at {}/s |",
        a.rate, a.rate
    );
    println!("|---|---|---|---|---|");
    for t in &a.targets {
        let burst = run(&a, t, None, database_url.clone()).await?;
        let paced = run(&a, t, Some(a.rate), database_url.clone()).await?;
        if burst.delivered != a.conversations as usize
            || paced.delivered != a.conversations as usize
        {
            bail!(
                "{t}: {} and {} of {} delivered",
                burst.delivered,
                paced.delivered,
                a.conversations
            );
        }
        println!(
            "| {t} | {:.0} | {:.2} | {:.0} | {:.0} |",
            burst.per_sec,
            burst.crm_calls as f64 / f64::from(a.conversations),
            paced.p50,
            paced.p99
        );
    }
    Ok(())
}
