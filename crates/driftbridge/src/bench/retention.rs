//! `driftbridge bench retention`: thirty simulated days of webhook traffic on a controllable
//! clock (no real waiting), with and without the retention purge, measuring each day's row
//! counts and database size. Everything goes through the store's and the queue's own
//! functions, each given the simulated time.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use bridge_core::retention::{RetentionConfig, purge};
use bridge_queue::{NewJob, Queue, QueueConfig};
use bridge_store::deliveries::{self, Key};
use bridge_store::events::{self, NewEvent};
use bridge_store::retention::{Kind, Windows};
use bridge_store::tables::{Batch, table};
use bridge_store::{Store, warehouse};
use clap::Args;
use serde::Serialize;
use serde_json::json;

/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;
/// The simulated first day: 2026-01-01.
const START_MS: i64 = 1_767_225_600_000;

/// The traffic of one simulated day.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// Webhooks (an event and a job each).
    pub webhooks: u32,
    /// New messages (warehouse rows).
    pub new_messages: i64,
    /// Conversations the traffic keeps coming back to: each gets a fresh transcript and is
    /// delivered again every day (their rows are upserted, not added).
    pub conversations: i64,
}

/// Arguments.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Simulated days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Webhooks per simulated day.
    #[arg(long, default_value_t = 2000)]
    pub per_day: u32,
    /// The window of every kind, in days.
    #[arg(long, default_value_t = 7)]
    pub window_days: u64,
    /// New messages per simulated day (warehouse rows: kept, their bodies cleared after the
    /// window). 0 shows the store with only what retention bounds.
    #[arg(long, default_value_t = 200)]
    pub new_messages: i64,
}

/// One simulated day's end.
#[derive(Debug, Clone, Serialize)]
pub struct Day {
    /// Day number, from 1.
    pub day: u32,
    /// Rows of each table that grows with traffic.
    pub rows: BTreeMap<&'static str, i64>,
    /// The SQLite file after a WAL checkpoint, in bytes.
    pub file_bytes: u64,
}

/// The windows of a run: `days` for every kind.
pub fn windows(days: u64) -> Windows {
    let w = Some(Duration::from_secs(days * 86_400));
    Windows(Kind::ALL.iter().map(|k| (*k, w)).collect())
}

/// Runs `days` days of `traffic` on `store` (a fresh SQLite file); with `purge_cfg`, the purge
/// runs at the end of every day as of that day's clock.
pub async fn simulate(
    store: &Store,
    days: u32,
    traffic: Traffic,
    purge_cfg: Option<&RetentionConfig>,
) -> Result<Vec<Day>> {
    let per_day = traffic.webhooks;
    let queue = Queue::new(
        store.clone(),
        QueueConfig {
            max_attempts: 1,
            ..QueueConfig::default()
        },
    );
    let body = "x".repeat(400);
    let mut out = Vec::new();
    let mut next_message = 1_i64;
    for day in 1..=days {
        let now = START_MS + i64::from(day) * DAY_MS;
        // The webhooks: one event and one job each, the job run (one in twenty dies).
        let keys: Vec<String> = (0..per_day).map(|i| format!("d{day}-{i}")).collect();
        let payloads: Vec<String> = (0..per_day)
            .map(|i| {
                json!({"type": "new_message", "orgId": 1, "data": {"id": i, "body": body,
                    "conversationId": i64::from(i) % traffic.conversations.max(1)}})
                .to_string()
            })
            .collect();
        let rows: Vec<NewEvent> = keys
            .iter()
            .zip(&payloads)
            .map(|(k, p)| NewEvent {
                dedup_key: k,
                org_id: Some(1),
                event_type: "new_message",
                payload: p,
                parse_error: None,
                conversation_id: None,
            })
            .collect();
        let mut tx = store.begin().await?;
        let ids = events::insert_many(&mut tx, &rows, now).await?;
        let jobs: Vec<NewJob> = ids
            .iter()
            .flatten()
            .map(|id| NewJob {
                name: "upsert_message".into(),
                org_id: Some(1),
                args: json!({"message": {"body": body}}),
                event_id: Some(*id),
            })
            .collect();
        queue.enqueue_many(&mut tx, &jobs, now).await?;
        tx.commit().await?;
        loop {
            let claimed = queue.claim("bench", 500, now).await?;
            if claimed.is_empty() {
                break;
            }
            for (i, job) in claimed.iter().enumerate() {
                if i % 20 == 0 {
                    queue.fail(job, "simulated failure", true, now).await?;
                } else {
                    let mut tx = store.begin_redoable().await?;
                    queue.complete(&mut tx, job, now).await?;
                    tx.commit().await?;
                }
            }
        }
        // The warehouse: the same conversations again, each with a new message and a fresh
        // transcript; each delivered again to one sink.
        let mut b = Batch::new();
        if let (Some(m), Some(t)) = (table("messages"), table("transcripts")) {
            for i in 0..traffic.new_messages {
                let c = i % traffic.conversations.max(1);
                b.push(
                    m,
                    vec![
                        1.into(),
                        next_message.into(),
                        c.into(),
                        now.into(),
                        "contact".into(),
                        7.into(),
                        false.into(),
                        "chat".into(),
                        body.as_str().into(),
                        bridge_store::tables::Value::Null,
                        bridge_store::tables::Value::Null,
                        bridge_store::tables::Value::Null,
                        bridge_store::tables::Value::Null,
                    ],
                );
                next_message += 1;
            }
            for c in 0..traffic.conversations {
                b.push(
                    t,
                    vec![1.into(), c.into(), body.as_str().into(), now.into()],
                );
            }
        }
        let mut tx = store.begin().await?;
        warehouse::write(&mut tx, &b).await?;
        tx.commit().await?;
        for c in 0..traffic.conversations {
            let key = Key {
                org: 1,
                conversation: c,
                sink: "hubspot",
            };
            deliveries::claim(store, &key, 1, now, now + 60_000).await?;
            let mut tx = store.begin().await?;
            let ids = BTreeMap::from([("note".to_owned(), format!("{c}"))]);
            deliveries::record(&mut tx, &key, 1, &ids, "h", now).await?;
            tx.commit().await?;
        }
        if let Some(cfg) = purge_cfg {
            purge(store, cfg, now).await?;
        }
        store.checkpoint(5).await?;
        let mut rows = BTreeMap::new();
        for (t, n) in store.table_counts().await? {
            if ["events", "jobs", "messages", "transcripts"].contains(&t) {
                rows.insert(t, n);
            }
        }
        rows.insert(
            "deliveries",
            deliveries::list(store, None, i64::MAX).await?.len() as i64,
        );
        rows.insert(
            "message_bodies",
            bridge_store::reads::message_bodies(store).await?,
        );
        let file_bytes = bridge_store::sqlite_file(store.url())
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        out.push(Day {
            day,
            rows,
            file_bytes,
        });
    }
    Ok(out)
}

/// Runs the benchmark: the same traffic on two fresh SQLite files, without and with the purge.
pub async fn run(a: RetentionArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cfg = RetentionConfig {
        windows: windows(a.window_days),
        interval: Duration::from_secs(600),
        batch: 500,
        pause: Duration::ZERO,
        lease: Duration::from_secs(600),
        holder: "bench".into(),
    };
    let mut runs = Vec::new();
    for (name, purge_cfg) in [("no purge", None), ("purge", Some(&cfg))] {
        let url = format!(
            "sqlite:{}",
            dir.path()
                .join(format!("{}.db", name.replace(' ', "-")))
                .display()
        );
        let store = Store::connect(&url).await?;
        let started = std::time::Instant::now();
        let traffic = Traffic {
            webhooks: a.per_day,
            new_messages: a.new_messages,
            conversations: 200,
        };
        let days = simulate(&store, a.days, traffic, purge_cfg).await?;
        store.close().await;
        runs.push((name, days, started.elapsed()));
    }
    println!(
        "{} simulated days, {} webhooks and {} new messages a day, {}-day windows (SQLite, \
         file size after a WAL checkpoint)",
        a.days, a.per_day, a.new_messages, a.window_days
    );
    for (name, days, took) in &runs {
        println!("\n{name} ({:.1} s):", took.as_secs_f64());
        println!("  day   events     jobs  messages  bodies  transcripts  deliveries   file MB");
        for d in days
            .iter()
            .filter(|d| d.day % 5 == 0 || d.day == 1 || d.day == 7 || d.day == 8)
        {
            let r = |k: &str| d.rows.get(k).copied().unwrap_or(0);
            println!(
                "  {:>3} {:>8} {:>8} {:>9} {:>7} {:>12} {:>11} {:>9.2}",
                d.day,
                r("events"),
                r("jobs"),
                r("messages"),
                r("message_bodies"),
                r("transcripts"),
                r("deliveries"),
                d.file_bytes as f64 / 1e6
            );
        }
    }
    Ok(())
}
