//! `driftbridge bench walk`: the client's full-walk benchmark (docs/BENCHMARKS.md).
//!
//! The simulator runs as a child process (this same binary, `sim`), so the peak RSS reported
//! is the walker's alone. The walk lists every conversation and reads every message page,
//! with several conversations' messages in flight at once.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use drift_client::{ClientConfig, DriftClient, ListConversations, RateBudget, StaticToken};
use drift_types::Secret;
use futures::TryStreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The dataset, limit and concurrency of a benchmark against a simulator child process.
#[derive(Debug, Args)]
pub struct SimLoad {
    /// Conversations in the simulator's dataset.
    #[arg(long, default_value_t = 5000)]
    pub conversations: u32,
    /// The simulator's limit per token in requests/minute, and the client's budget; 0 = off.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Conversations fetched at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl SimLoad {
    /// Starts the simulator child and a client paced to the same limit.
    pub async fn start(&self) -> Result<(tokio::process::Child, String, DriftClient)> {
        let (child, base) = spawn_sim(self.conversations, self.rate_limit).await?;
        let mut cc = ClientConfig::with_base_url(&base)?;
        cc.budget = RateBudget {
            per_minute: self.rate_limit,
            burst: None,
        };
        let client = DriftClient::new(cc, Arc::new(StaticToken(Secret::new(TOKEN.to_owned()))))?;
        Ok((child, base, client))
    }
}

/// Arguments of `driftbridge bench walk`.
#[derive(Debug, Args)]
pub struct WalkArgs {
    #[command(flatten)]
    load: SimLoad,
}

pub const TOKEN: &str = "bench-walk-token";

/// Runs the walk benchmark.
pub async fn walk(a: WalkArgs) -> Result<()> {
    let a = a.load;
    let (child, _, client) = a.start().await?;
    let started = Instant::now();
    let mut conversations = 0u64;
    let messages = client
        .conversations(ListConversations {
            limit: Some(100),
            ..Default::default()
        })
        .map_ok(|c| {
            conversations += 1;
            let client = &client;
            async move {
                client
                    .messages(c.id)
                    .try_fold(0u64, |n, _| async move { Ok(n + 1) })
                    .await
            }
        })
        .try_buffer_unordered(a.concurrency)
        .try_fold(0u64, |n, m| async move { Ok(n + m) })
        .await
        .context("while walking the simulator")?;
    let secs = started.elapsed().as_secs_f64();
    drop(child);

    let stats = client.stats();
    let requests = stats.requests.load(Ordering::Relaxed);
    let limited = stats.rate_limited.load(Ordering::Relaxed);
    let retries = stats.retries.load(Ordering::Relaxed);
    let records = conversations + messages;
    let rate_per_min = requests as f64 / secs * 60.0;
    let fraction = (a.rate_limit > 0).then(|| rate_per_min / f64::from(a.rate_limit));
    let rss_kib = peak_rss_kib();
    let report = serde_json::json!({
        "conversations": conversations,
        "messages": messages,
        "records": records,
        "requests": requests,
        "responses_429": limited,
        "retries": retries,
        "seconds": secs,
        "records_per_second": records as f64 / secs,
        "requests_per_minute": rate_per_min,
        "rate_limit_per_minute": a.rate_limit,
        "fraction_of_limit": fraction,
        "peak_rss_kib": rss_kib,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "walked {conversations} conversations + {messages} messages in {secs:.2} s: \
             {:.0} records/s, {requests} requests ({rate_per_min:.0}/min), {limited} x 429, \
             {retries} retries, peak RSS {} MiB",
            records as f64 / secs,
            rss_kib.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
        );
        if let Some(f) = fraction {
            println!("achieved {:.3} of the {}/min limit", f, a.rate_limit);
        }
    }
    Ok(())
}

/// Starts `driftbridge sim` as a child process with `conversations` and a limit of
/// `rate_limit`/min (0 = off) for [`TOKEN`]; answers the child (killed on drop) and its base
/// URL. The simulator's bucket holds one second's worth, the same as the client's, so a client
/// that ran ahead of the limit would be answered with 429s rather than absorbed by a
/// minute-sized burst.
pub async fn spawn_sim(
    conversations: u32,
    rate_limit: u32,
) -> Result<(tokio::process::Child, String)> {
    let exe = std::env::current_exe().context("while locating the driftbridge binary")?;
    let burst = (rate_limit / 60).max(1).to_string();
    let mut child = tokio::process::Command::new(exe)
        .args(["sim", "--port", "0", "--token", TOKEN, "--conversations"])
        .arg(conversations.to_string())
        .args(["--rate-limit", &rate_limit.to_string()])
        .args(["--rate-burst", &burst])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("while starting the simulator")?;
    let stdout = child.stdout.take().context("simulator stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let Some(line) = lines.next_line().await? else {
            bail!("the simulator exited before printing its address");
        };
        if let Some(rest) = line.strip_prefix("Drift simulator on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, base))
}

/// Peak resident set size of this process (VmHWM), where /proc has it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
