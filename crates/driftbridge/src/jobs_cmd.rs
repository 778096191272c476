//! `driftbridge jobs list|dead|retry|cancel` and `events list|show`: the console's listings
//! on the command line, one compact line per row (`--json` for a JSON line per row).

use anyhow::{Result, anyhow, bail};
use bridge_queue::{JobFilter, JobState, JobSummary};
use bridge_store::ops::events::{EventFilter, EventRow};

use crate::config::Config;
use crate::ops::when;

/// The filters `jobs list`, `jobs dead` and `jobs retry --all` take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct JobFilterArgs {
    /// Only this job kind (sync_conversation, deliver_conversation, ...).
    #[arg(long)]
    pub name: Option<String>,
    /// Only this org.
    #[arg(long)]
    pub org: Option<i64>,
    /// Created since: an age (15m, 2h, 7d), a date (YYYY-MM-DD) or epoch milliseconds.
    #[arg(long)]
    pub since: Option<String>,
    /// The last error contains this text (any case).
    #[arg(long)]
    pub error: Option<String>,
}

impl JobFilterArgs {
    fn filter(&self, state: Option<JobState>) -> Result<JobFilter> {
        Ok(JobFilter {
            state,
            name: self.name.clone(),
            org: self.org,
            since: self
                .since
                .as_deref()
                .map(|s| bridge_export::parse_since(s, drift_types::now_ms()))
                .transpose()?,
            error: self.error.clone(),
            ..JobFilter::default()
        })
    }
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    }
}

fn job_line(j: &JobSummary) -> String {
    format!(
        "{:>9}  {:<9}  {:<22} org {:<10} attempts {:<2} {:>12}  {}",
        j.id,
        j.state,
        j.name,
        j.org_id.map_or("-".into(), |o| o.to_string()),
        j.attempts,
        when(Some(j.created_at)),
        j.last_error
            .as_deref()
            .map(|e| clip(e, 100))
            .unwrap_or_default()
    )
}

/// `jobs list` (and `jobs dead`, which is `--state dead`).
pub async fn list(
    config: &Config,
    state: Option<&str>,
    f: &JobFilterArgs,
    limit: i64,
    json: bool,
) -> Result<()> {
    let state = state
        .map(|s| {
            JobState::parse(s).ok_or_else(|| {
                anyhow!("--state {s:?}: choose queued, running, done, dead or cancelled")
            })
        })
        .transpose()?;
    let filter = f.filter(state)?;
    let queue = crate::serve::open_existing_queue(config).await?;
    let rows = queue.search(&filter, limit).await?;
    for j in &rows {
        if json {
            println!("{}", serde_json::to_string(j)?);
        } else {
            println!("{}", job_line(j));
        }
    }
    if rows.is_empty() && !json {
        println!("no job matches");
    }
    Ok(())
}

/// `jobs retry ID` or `jobs retry --all [filters]`.
pub async fn retry(config: &Config, id: Option<i64>, all: bool, f: &JobFilterArgs) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let now = drift_types::now_ms();
    match (id, all) {
        (Some(id), false) => {
            if queue.retry(id, now).await? {
                println!("job {id} queued again");
                Ok(())
            } else {
                bail!("job {id} is not dead or cancelled (see `driftbridge jobs dead`)")
            }
        }
        (None, true) => {
            let n = queue.retry_matching(&f.filter(None)?, now).await?;
            println!("{n} dead or cancelled jobs matching the filter queued again");
            Ok(())
        }
        _ => bail!("give a job id, or --all with filters (--name, --org, --since, --error)"),
    }
}

/// `jobs cancel ID`.
pub async fn cancel(config: &Config, id: i64) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    if queue.cancel(id, drift_types::now_ms()).await? {
        println!("job {id} cancelled");
        Ok(())
    } else {
        bail!(
            "job {id} is not queued: a running job finishes its attempt, a finished one stays as it is"
        )
    }
}

/// The filters of `events list`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EventFilterArgs {
    /// Only this event type (conversation_push, new_message, ...).
    #[arg(long = "type")]
    pub event_type: Option<String>,
    /// Only this org.
    #[arg(long)]
    pub org: Option<i64>,
    /// Only events about this conversation.
    #[arg(long)]
    pub conversation: Option<i64>,
    /// Received since: an age (15m, 2h, 7d), a date (YYYY-MM-DD) or epoch milliseconds.
    #[arg(long)]
    pub since: Option<String>,
}

fn event_line(e: &EventRow) -> String {
    format!(
        "{:>9}  {:<32} org {:<10} conversation {:<12} {:>12}{}",
        e.id,
        e.event_type,
        e.org_id.map_or("-".into(), |o| o.to_string()),
        e.conversation_id.map_or("-".into(), |c| c.to_string()),
        when(Some(e.received_at)),
        e.parse_error
            .as_deref()
            .map(|p| format!("  did not parse: {}", clip(p, 80)))
            .unwrap_or_default()
    )
}

/// `events list`.
pub async fn events_list(
    config: &Config,
    f: &EventFilterArgs,
    limit: i64,
    json: bool,
) -> Result<()> {
    let filter = EventFilter {
        event_type: f.event_type.clone(),
        org: f.org,
        conversation: f.conversation,
        since: f
            .since
            .as_deref()
            .map(|s| bridge_export::parse_since(s, drift_types::now_ms()))
            .transpose()?,
        ..EventFilter::default()
    };
    let queue = crate::serve::open_existing_queue(config).await?;
    let rows = bridge_store::ops::events::search(queue.store(), &filter, limit).await?;
    for e in &rows {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!("{}", event_line(e));
        }
    }
    if rows.is_empty() && !json {
        println!("no event matches");
    }
    Ok(())
}

/// `events show ID`: the stored envelope (without its token) and the jobs it made.
pub async fn events_show(config: &Config, id: i64, json: bool) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let ev = bridge_store::events::get(&mut conn, id)
        .await?
        .ok_or_else(|| anyhow!("no stored event {id}"))?;
    drop(conn);
    let jobs = queue
        .search(
            &JobFilter {
                event: Some(id),
                ..JobFilter::default()
            },
            100,
        )
        .await?;
    if json {
        println!(
            "{}",
            serde_json::json!({"id": ev.id, "org_id": ev.org_id, "type": ev.event_type,
                "received_at": ev.received_at, "payload": ev.payload, "jobs": jobs})
        );
        return Ok(());
    }
    println!(
        "event {id}  {}  org {}  received {}",
        ev.event_type,
        ev.org_id.map_or("-".into(), |o| o.to_string()),
        when(Some(ev.received_at))
    );
    println!("{}", serde_json::to_string_pretty(&ev.payload)?);
    println!("jobs it made:");
    for j in &jobs {
        println!("{}", job_line(j));
    }
    if jobs.is_empty() {
        println!("  none");
    }
    Ok(())
}
