//! `bench walk`: a full walk of conversations and messages against a simulator child
//! process, the client's pacing measured against the rate limit.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use drift_client::ListConversations;
use futures::TryStreamExt;

use super::support::{SimLoad, peak_rss_kib};

/// Arguments of `driftbridge bench walk`.
#[derive(Debug, Args)]
pub struct WalkArgs {
    #[command(flatten)]
    load: SimLoad,
}

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
