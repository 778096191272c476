//! `driftbridge bench ingest-wrk`: durable webhook intake under an external load generator
//! (`wrk`, a separate process), with the workers running, beside a no-op handler measured the
//! same way in the same run. Every request is a distinct `new_message` (wrk's Lua script
//! numbers them), so none is a duplicate and each makes one job.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use drift_sim::SimConfig;
use drift_types::Secret;

use super::support::{VERIFY, bench_config};

/// Arguments of `driftbridge bench ingest-wrk`.
#[derive(Debug, clap::Args)]
pub struct WrkArgs {
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Open connections in the maximum-throughput run.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads (the server shares the machine's cores with them).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Offered rate of the latency run, events/s (paced by wrk's `delay`).
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    wrk: String,
    /// Run without the workers (intake alone).
    #[arg(long)]
    no_workers: bool,
    /// Worker concurrency (default: the configuration's).
    #[arg(long)]
    workers: Option<usize>,
    /// Connections of the paced run (each waits `connections / rate` between requests).
    #[arg(long, default_value_t = 100)]
    paced_connections: u32,
}

/// The Lua script: a distinct event per request; `delay` paces each connection when set.
fn script(org: i64, delay_ms: Option<f64>) -> String {
    let delay = delay_ms.map_or(String::new(), |d| {
        format!("function delay() return {d} end\n")
    });
    format!(
        r#"local counter = 0
local base = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("base", threads * 1000000000)
end
function init(args)
  base = tonumber(base) or 0
end
function request()
  counter = counter + 1
  local n = base + counter
  local body = string.format('{{"type":"new_message","orgId":{org},"token":"{VERIFY}","data":{{"id":%d,"conversationId":42,"createdAt":%d,"body":"Hi! I would like to learn more about pricing for a team of 40.","author":{{"type":"contact","id":77,"bot":false}},"type":"chat","context":{{"ip":"203.0.113.9","userAgent":"Mozilla/5.0"}}}}}}', n, 1700000000000 + n)
  return wrk.format("POST", "/webhooks/drift", {{["Content-Type"] = "application/json"}}, body)
end
{delay}"#
    )
}

/// What one wrk run reported.
#[derive(Debug, Default)]
struct Run {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: String,
}

fn ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

fn parse(out: &str) -> Run {
    let mut r = Run::default();
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.per_sec = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("50%") {
            r.p50_ms = ms(v).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_ms = ms(v).unwrap_or(f64::NAN);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx = v.trim().parse().unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            r.socket_errors = line.to_owned();
        }
    }
    r
}

async fn wrk(a: &WrkArgs, addr: SocketAddr, conns: u32, threads: u32, lua: &str) -> Result<Run> {
    let file = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(file.path(), lua)?;
    let out = tokio::process::Command::new(&a.wrk)
        .arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", a.seconds))
        .arg("--latency")
        .arg("-s")
        .arg(file.path())
        .arg(format!("http://{addr}"))
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| {
            format!(
                "while running {} (install it: apt-get install wrk, or pass --wrk)",
                a.wrk
            )
        })?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Runs `bench ingest-wrk`.
pub async fn run(a: WrkArgs, database_url: Option<String>) -> Result<()> {
    let sim = drift_sim::spawn(
        SimConfig::unlimited(10),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let org = sim.state.default_org().0;
    let (mut config, _dir) = bench_config(database_url)?;
    let backend = if config.database.url.expose().starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    config.drift.base_url = sim.base_url();
    config.drift.token = Some(Secret::new(sim.token()));
    config.drift.rate_limit_per_minute = 0;
    if let Some(n) = a.workers {
        config.workers.concurrency = n;
    }
    let running = crate::serve::start(&config, !a.no_workers).await?;
    let noop = super::ingest::noop_server().await?;
    // Per connection, one request every `conns / rate` seconds after the last answer (wrk's
    // `delay`), so the achieved rate is a little under the offered one; it is printed.
    let paced_conns = a.paced_connections;
    let delay = f64::from(paced_conns) * 1000.0 / f64::from(a.rate.max(1));
    println!(
        "target                  | run                                | req/s    | p50 ms | p99 ms | non-2xx | socket errors"
    );
    for (name, addr) in [("no-op axum handler", noop), (backend, running.addr)] {
        // Paced with the workers keeping up, then flat out, then paced again while the
        // workers drain what the flat-out run queued.
        let paced = wrk(&a, addr, paced_conns, 1, &script(org, Some(delay))).await?;
        let max = wrk(&a, addr, a.connections, a.threads, &script(org, None)).await?;
        let after = wrk(&a, addr, paced_conns, 1, &script(org, Some(delay))).await?;
        for (run, r) in [
            (format!("paced at {}/s", a.rate), paced),
            (format!("max, {} connections", a.connections), max),
            (format!("paced at {}/s, backlog draining", a.rate), after),
        ] {
            println!(
                "{name:<23} | {run:<34} | {:>8.0} | {:>6.2} | {:>6.2} | {:>7} | {}",
                r.per_sec, r.p50_ms, r.p99_ms, r.non_2xx, r.socket_errors
            );
        }
    }
    let drain = std::time::Instant::now();
    let queued = running.queue.pending().await?;
    if !a.no_workers {
        running.drained(Duration::from_millis(50)).await?;
    }
    let drain = drain.elapsed().as_secs_f64();
    let counts = running.queue.store().table_counts().await?;
    let n = |t: &str| counts.iter().find(|(x, _)| *x == t).map_or(0, |c| c.1);
    println!(
        "durably stored by {backend}: {} events; their jobs all done: {} messages written \
         ({queued} jobs still queued after the last run, drained in {drain:.1} s: {:.0} jobs/s)",
        n("events"),
        n("messages"),
        queued as f64 / drain.max(0.001)
    );
    running.stop().await;
    sim.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read_with_its_units() {
        let out = "  Latency Distribution\n     50%  612.00us\n     75%    1.02ms\n     99%    \
                   12.50ms\n  Socket errors: connect 0, read 0, write 0, timeout 3\n\
                   Non-2xx or 3xx responses: 7\nRequests/sec:  10543.21\n";
        let r = parse(out);
        assert_eq!(r.per_sec, 10543.21);
        assert_eq!(r.p50_ms, 0.612);
        assert_eq!(r.p99_ms, 12.5);
        assert_eq!(r.non_2xx, 7);
        assert!(r.socket_errors.contains("timeout 3"));
    }
}
