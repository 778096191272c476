//! Operator commands: `replay` and `jobs`.

use anyhow::{Context, Result, anyhow, bail};
use bridge_core::jobs::{jobs_for, names};
use bridge_queue::{JobState, NewJob, Queue};
use bridge_store::events;
use drift_types::{OrgId, WebhookEvent};
use serde_json::json;

use crate::config::Config;

async fn enqueue_all(queue: &Queue, jobs: &[NewJob]) -> Result<Vec<i64>> {
    let mut tx = queue.store().begin().await?;
    let mut ids = Vec::new();
    for j in jobs {
        ids.push(queue.enqueue(&mut tx, j, bridge_core::now_ms()).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// `replay --conversation ID [--org ORG]`: sync the conversation again.
pub async fn replay_conversation(config: &Config, id: i64, org: Option<i64>) -> Result<()> {
    let queue = crate::serve::open_queue(config).await?;
    let org = match org {
        Some(o) => o,
        None => {
            let known: Vec<i64> =
                sqlx::query_scalar("SELECT org_id FROM conversations WHERE id = $1")
                    .bind(id)
                    .fetch_all(queue.store().pool())
                    .await?;
            match (
                known.as_slice(),
                config.drift().tokens.keys().collect::<Vec<_>>().as_slice(),
            ) {
                ([o], _) => *o,
                ([], [o]) => **o,
                _ => bail!("cannot tell which org conversation {id} belongs to; pass --org"),
            }
        }
    };
    let job = NewJob {
        name: names::SYNC_CONVERSATION.into(),
        org_id: Some(org),
        args: json!({ "conversation_id": id }),
        event_id: None,
    };
    let ids = enqueue_all(&queue, &[job]).await?;
    println!(
        "queued job {} to sync conversation {id} of org {org}",
        ids[0]
    );
    Ok(())
}

/// `replay --event ID`: run a stored event's jobs again.
pub async fn replay_event(config: &Config, id: i64) -> Result<()> {
    let queue = crate::serve::open_queue(config).await?;
    let mut conn = queue.store().pool().acquire().await?;
    let ev = events::get(&mut conn, id)
        .await?
        .ok_or_else(|| anyhow!("no stored event {id}"))?;
    drop(conn);
    let data = ev.payload.get("data").cloned().unwrap_or_default();
    let typed = WebhookEvent::from_parts(&ev.event_type, &data)
        .with_context(|| format!("event {id} ({}) does not parse", ev.event_type))?;
    let jobs: Vec<NewJob> = jobs_for(&typed, ev.org_id.map(OrgId))
        .into_iter()
        .map(|j| NewJob {
            event_id: Some(id),
            ..j
        })
        .collect();
    if jobs.is_empty() {
        println!("event {id} ({}) makes no jobs", ev.event_type);
        return Ok(());
    }
    for (jid, j) in enqueue_all(&queue, &jobs).await?.iter().zip(&jobs) {
        println!("queued job {jid} ({}) for event {id}", j.name);
    }
    Ok(())
}

/// `jobs dead`: dead letters with their errors.
pub async fn jobs_dead(config: &Config, limit: i64) -> Result<()> {
    let queue = crate::serve::open_queue(config).await?;
    let dead = queue.list(JobState::Dead, limit).await?;
    if dead.is_empty() {
        println!("no dead jobs");
    }
    for j in dead {
        println!(
            "{:>8}  {:<20} org {:<10} attempts {}  args {}\n          error: {}",
            j.id,
            j.name,
            j.org_id.map_or("-".into(), |o| o.to_string()),
            j.attempts,
            j.args,
            j.last_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// `jobs retry ID`.
pub async fn jobs_retry(config: &Config, id: i64) -> Result<()> {
    let queue = crate::serve::open_queue(config).await?;
    if queue.retry(id, bridge_core::now_ms()).await? {
        println!("job {id} queued again");
        Ok(())
    } else {
        bail!("job {id} is not dead (see `driftbridge jobs dead`)")
    }
}
