//! What the benchmarks share: a simulator child process and its load, peak memory, a
//! `serve` configuration on a fresh database, paced `conversation_push` senders, percentiles.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use drift_client::{ClientConfig, DriftClient, RateBudget, StaticToken};
use drift_types::Secret;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::{Config, Overrides};

/// The simulator token the walk and export benchmarks use.
pub const TOKEN: &str = "bench-walk-token";

/// The verification token the benchmarks' gateway accepts.
pub(crate) const VERIFY: &str = "bench-verification-token";

/// The simulator a benchmark runs against, and how hard it is driven.
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
    status_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM")
}

/// A field of a `/proc/PID/status` text in KiB (`VmHWM`, `RssAnon`, ...).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The highest anonymous resident memory (`RssAnon`: heap, stacks, written data; not the
/// binary's code pages, which VmHWM counts too) seen while it runs, sampled every 5 ms on a
/// thread of its own. The kernel keeps no high-water mark of it.
#[derive(Debug)]
pub struct AnonPeak {
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl AnonPeak {
    /// Starts sampling.
    pub fn start() -> Self {
        use std::sync::atomic::Ordering;
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        // Reads into a buffer on its stack: the sampler allocates nothing while it samples,
        // so it does not add a malloc arena of its own to what it measures.
        let thread = std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let n = std::fs::File::open("/proc/self/status")
                    .and_then(|mut f| f.read(&mut buf))
                    .unwrap_or(0);
                let text = std::str::from_utf8(&buf[..n]).unwrap_or_default();
                if let Some(kib) = status_kib(text, "RssAnon") {
                    p.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        AnonPeak {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; answers the peak in KiB (None where /proc has no `RssAnon`).
    pub fn finish(mut self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Some(self.peak.load(Ordering::Relaxed)).filter(|k| *k > 0)
    }
}

impl Drop for AnonPeak {
    /// A run that failed before [`AnonPeak::finish`] stops the sampler too.
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

pub(crate) fn bench_config(
    database_url: Option<String>,
) -> Result<(Config, Option<tempfile::TempDir>)> {
    let (url, dir) = match database_url {
        Some(u) => (u, None),
        None => {
            let dir = tempfile::tempdir()?;
            (
                format!("sqlite:{}", dir.path().join("bench.db").display()),
                Some(dir),
            )
        }
    };
    // Built-in settings only: a benchmark measures the same thing on every machine.
    let mut c = Config::builtin(&Overrides {
        database_url: Some(url),
        listen: Some("127.0.0.1:0".into()),
    })?;
    c.drift.verification_tokens = vec![Secret::new(VERIFY)];
    c.secrets.master_key = Some(bridge_store::vault::MasterKey::generate()?);
    Ok((c, dir))
}

/// A local HTTP receiver that answers every POST to `/hook` after `latency`.
async fn receiver(latency: Duration) -> Result<SocketAddr> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || async move {
            tokio::time::sleep(latency).await;
            "ok"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}

/// The CRM benchmarks' setup: a simulator of `conversations` whose CRMs answer after
/// `latency_ms` with the vendors' limits lifted (they would bound these numbers: HubSpot 190
/// per 10 s, Marketo 100 per 20 s; docs/BENCHMARKS.md says so beside the results), a local
/// HTTP receiver with the same latency, and a `serve` configuration with `targets` as sinks.
pub(crate) async fn crm_bench(
    conversations: u32,
    latency_ms: u64,
    workers: usize,
    targets: &[&str],
    database_url: Option<String>,
) -> Result<(drift_sim::SimHandle, Config, Option<tempfile::TempDir>)> {
    let sim = drift_sim::spawn(
        drift_sim::SimConfig::unlimited(conversations.max(1)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    {
        let mut s = sim.state.crm.settings.lock();
        s.latency_ms = latency_ms;
        s.hubspot_per_10s = 1_000_000;
        s.hubspot_search_per_sec = 1_000_000;
        s.marketo_per_20s = 1_000_000;
        s.marketo_concurrency = 1_000;
    }
    let hook = receiver(Duration::from_millis(latency_ms)).await?;
    let (mut config, dir) = bench_config(database_url)?;
    config.drift.base_url = sim.base_url();
    config.drift.token = Some(Secret::new(sim.token()));
    config.drift.rate_limit_per_minute = 0;
    config.workers.poll_interval_ms = 20;
    config.workers.concurrency = workers;
    config.outbound.allow = vec![
        format!("127.0.0.1:{}", sim.addr.port()),
        format!("127.0.0.1:{}", hook.port()),
    ];
    for t in targets {
        let s = crate::sim_sinks::spec(t, &sim.base_url(), &format!("http://{hook}"))?;
        config
            .sinks
            .insert((*t).to_owned(), serde_json::from_value(s)?);
    }
    Ok((sim, config, dir))
}

/// One push of [`push_conversations`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pushed {
    /// The conversation pushed.
    pub conversation: i64,
    /// The stored event's id.
    pub event_id: i64,
    /// When the push was sent (epoch ms).
    pub sent_ms: i64,
}

/// Sends `conversation_push` for the first `limit` of the simulator's conversations (by id)
/// to the gateway at `addr`, `rate` per second (`None`: each as soon as the last is answered).
pub(crate) async fn push_conversations(
    sim: &drift_sim::SimHandle,
    addr: SocketAddr,
    limit: usize,
    rate: Option<u32>,
) -> Result<Vec<Pushed>> {
    let url = format!("http://{addr}/webhooks/drift");
    let org = sim.state.default_org();
    let ids: Vec<i64> = {
        let w = sim.state.world.lock();
        let mut v: Vec<i64> = w.org(org)?.conversations.keys().map(|c| c.0).collect();
        v.sort();
        v
    };
    let http = reqwest::Client::new();
    let mut sent = Vec::new();
    let start = Instant::now();
    for (i, id) in ids.iter().take(limit).enumerate() {
        if let Some(r) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(r));
            tokio::time::sleep_until(due.into()).await;
        }
        let sent_ms = drift_types::now_ms();
        let body = json!({"type": "conversation_push", "orgId": org.0, "token": VERIFY,
            "data": {"source": "conversation_closed", "data": {"conversationId": id}}});
        let r: Value = http.post(&url).json(&body).send().await?.json().await?;
        let Some(event_id) = r["event_id"].as_i64() else {
            bail!("unexpected answer {r}");
        };
        sent.push(Pushed {
            conversation: *id,
            event_id,
            sent_ms,
        });
    }
    Ok(sent)
}
