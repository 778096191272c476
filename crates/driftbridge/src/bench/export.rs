//! `driftbridge bench export`: a full export against a simulator child process, measured:
//! rows/s, API calls against the fewest the dataset needs, 429s, the fraction of the rate
//! limit used, and the exporter's peak RSS (docs/BENCHMARKS.md).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use bridge_export::{self as export, Destination, ExportOptions, Mode, Progress, Target};
use clap::Args;
use drift_types::OrgId;
use serde_json::{Value, json};

use super::support::{AnonPeak, SimLoad, peak_rss_kib};

/// Arguments of `driftbridge bench export`.
#[derive(Debug, Args)]
pub struct ExportBenchArgs {
    /// Destination kind: sqlite, postgres (a fresh database on the local server), jsonl, csv
    /// or parquet; files and SQLite go to a temporary directory.
    #[arg(long, default_value = "jsonl")]
    to: String,
    #[command(flatten)]
    load: SimLoad,
    /// PostgreSQL server for `--to postgres` (a fresh database is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
}

/// Runs the export benchmark.
pub async fn run(a: ExportBenchArgs) -> Result<()> {
    let (child, base, client) = a.load.start().await?;
    let (to, postgres, a) = (a.to, a.postgres, a.load);
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{base}/sim/info"))
        .send()
        .await?
        .json()
        .await
        .context("while reading the simulator's dataset")?;
    let d = &info["datasets"][0];
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    let org = OrgId(
        d["orgId"]
            .as_i64()
            .ok_or_else(|| anyhow!("no org in /sim/info"))?,
    );
    let first = d["meetingsFirstSlot"].as_i64().unwrap_or(0);
    let last = d["meetingsLastSlot"].as_i64().unwrap_or(0);

    let dir = tempfile::tempdir()?;
    let target: Target = match to.as_str() {
        "sqlite" => format!("sqlite:{}", dir.path().join("bench.db").display()).parse()?,
        "postgres" => Target::Sql(
            bridge_store::reads::create_postgres_database(
                &postgres,
                &format!("driftbridge_bench_{}", std::process::id()),
            )
            .await
            .context("while creating a database for --to postgres")?,
        ),
        f => format!("{f}:{}", dir.path().join(f).display()).parse()?,
    };
    let mut opts = ExportOptions::new(Mode::Full);
    opts.concurrency = a.concurrency;
    opts.meetings_since_ms = first;
    opts.meetings_until_ms = last + 1;
    let windows = ((last + 1 - first).max(1) as u64).div_ceil(opts.meetings_window_ms as u64);
    let conversations = n("conversations");
    let minimum = 3
        + n("accounts").div_ceil(100).max(1)
        + windows
        + conversations.div_ceil(u64::from(opts.page_size)).max(1)
        + 2 * conversations
        + n("messagePages")
        + n("contactsReferenced");

    let anon = AnonPeak::start();
    let dest = Destination::open(&target, org).await?;
    let s = export::run(client, dest, org, opts, Arc::new(Progress::default())).await?;
    let peak_anon_kib = anon.finish();
    drop(child);
    let rows: u64 = s.rows.values().sum();
    let per_min = s.api_calls as f64 / s.seconds * 60.0;
    let report = json!({
        "destination": to,
        "conversations": conversations,
        "messages": n("messages"),
        "rows": rows,
        "seconds": s.seconds,
        "rows_per_second": rows as f64 / s.seconds,
        "api_calls": s.api_calls,
        "minimum_calls": minimum,
        "calls_over_minimum": s.api_calls as f64 / minimum as f64 - 1.0,
        "responses_429": s.responses_429,
        "retries": s.retries,
        "requests_per_minute": per_min,
        "fraction_of_limit": (a.rate_limit > 0).then(|| per_min / f64::from(a.rate_limit)),
        "peak_rss_kib": peak_rss_kib(),
        "peak_anon_kib": peak_anon_kib,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "exported {rows} rows ({conversations} conversations) into {} in {:.2} s: {:.0} rows/s; \
             {} API calls (minimum {minimum}, {:+.2}%), {} x 429, {:.0} requests/min, peak RSS {} \
             (anonymous {})",
            to,
            s.seconds,
            rows as f64 / s.seconds,
            s.api_calls,
            (s.api_calls as f64 / minimum as f64 - 1.0) * 100.0,
            s.responses_429,
            per_min,
            peak_rss_kib().map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
            peak_anon_kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        );
        if a.rate_limit > 0 {
            println!(
                "achieved {:.3} of the {}/min limit",
                per_min / f64::from(a.rate_limit),
                a.rate_limit
            );
        }
    }
    Ok(())
}
