//! `driftbridge bench leads`: how long the moments sales acts on take to reach the CRMs
//! (docs/BENCHMARKS.md). Meetings booked in chats (`new_meeting`), goals met
//! (`playbook_goal_met`) and, as the baseline in the same run, closed conversations
//! (`conversation_push`, the path every earlier release delivered) take turns at `--rate`
//! events per second through `serve`, with HubSpot, Salesforce, Marketo and an HTTP receiver
//! each answering after `--latency-ms`. The latency of one event in one sink runs from the
//! moment its webhook is sent to the commit that completes that sink's delivery job, which
//! follows the sink's last write.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use drift_types::{EpochMillis, Meeting, Secret, WebhookEnvelope, WebhookEvent};
use serde_json::Value;

use super::support::{crm_bench, pct};

/// Arguments of `driftbridge bench leads`.
#[derive(Debug, clap::Args)]
pub struct LeadsBenchArgs {
    /// Events sent (a third each: meetings, goals met, pushes).
    #[arg(long, default_value_t = 600)]
    events: usize,
    /// Offered rate, events per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Latency every CRM answer (and the HTTP receiver) adds, in ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Worker slots (`workers.concurrency`).
    #[arg(long, default_value_t = 8)]
    workers: usize,
}

/// The events: in conversation i, a meeting booked (i % 3 = 0), a goal met (1) or its push (2).
fn events(sim: &drift_sim::SimHandle, n: usize) -> Result<Vec<(i64, WebhookEvent)>> {
    let org = sim.state.default_org();
    let mut world = sim.state.world.lock();
    let o = world.org_mut(org)?;
    let mut ids: Vec<_> = o.conversations.keys().copied().collect();
    ids.sort();
    let agent = o.users.values().find(|u| !u.bot).map(|u| u.id);
    let now = drift_types::now_ms();
    let mut out = Vec::new();
    for (i, id) in ids.into_iter().take(n).enumerate() {
        let c = &o.conversations[&id].conversation;
        let Some(contact) = c.contact_id else {
            continue;
        };
        let ev = if i % 3 == 2 {
            WebhookEvent::ConversationPush(drift_types::webhook::ConversationPush {
                source: Some("conversation_closed".into()),
                data: drift_types::webhook::PushDetails {
                    conversation_id: id,
                    user_id: None,
                    pushed_at: Some(EpochMillis(now)),
                },
            })
        } else if i % 3 == 0 {
            let m = Meeting {
                agent_id: agent,
                org_id: Some(org),
                status: Some("ACTIVE".into()),
                meeting_source: Some("CHAT".into()),
                scheduler_id: Some(contact),
                event_id: Some(format!("bench-{i}")),
                slug: None,
                slot_start: Some(EpochMillis(now + 86_400_000 + i as i64 * 60_000)),
                slot_end: Some(EpochMillis(
                    now + 86_400_000 + i as i64 * 60_000 + 1_800_000,
                )),
                updated_at: Some(EpochMillis(now)),
                scheduled_at: Some(EpochMillis(now)),
                meeting_type: Some("Demo".into()),
                conversation_id: Some(id),
                end_user_time_zone: None,
                meeting_notes: None,
                booked_by: None,
            };
            o.meetings.push(m.clone());
            WebhookEvent::NewMeeting(m)
        } else {
            let pb = o.playbooks.first();
            WebhookEvent::PlaybookGoalMet(drift_types::webhook::PlaybookGoalMet {
                conversation_id: id,
                playbook_id: pb.map(|p| p.id),
                contact_id: Some(contact),
                goal_id: pb.and_then(|p| p.goals.first()).map(|g| g.id.clone()),
                goal_name: pb.and_then(|p| p.goals.first()).map(|g| g.message.clone()),
                playbook_name: pb.map(|p| p.name.clone()),
                contact_email: None,
            })
        };
        out.push((id.0, ev));
    }
    Ok(out)
}

/// Runs `bench leads`.
pub async fn run(a: LeadsBenchArgs, database_url: Option<String>) -> Result<()> {
    let (sim, config, _dir) = crm_bench(
        a.events.max(2) as u32,
        a.latency_ms,
        a.workers,
        &["hubspot", "salesforce", "marketo", "http"],
        database_url,
    )
    .await?;
    let events = events(&sim, a.events)?;
    let running = crate::serve::start(&config, true).await?;
    let url = format!("http://{}/webhooks/drift", running.addr);
    let org = sim.state.default_org();
    let http = reqwest::Client::new();
    // Sent time by conversation (meetings) and by stored event (signals).
    let (mut by_conversation, mut by_event) = (HashMap::new(), HashMap::new());
    let start = Instant::now();
    for (i, (conversation, ev)) in events.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(a.rate.max(1)));
        tokio::time::sleep_until(due.into()).await;
        let sent = drift_types::now_ms();
        let body = WebhookEnvelope::new(ev, org, Some(Secret::new(super::support::VERIFY)));
        let r: Value = http.post(&url).json(&body).send().await?.json().await?;
        let Some(id) = r["event_id"].as_i64() else {
            bail!("unexpected answer {r}");
        };
        match ev {
            WebhookEvent::PlaybookGoalMet(_) => by_event.insert(format!("event-{id}"), sent),
            _ => by_conversation.insert(*conversation, sent),
        };
    }
    running.drained(Duration::from_millis(10)).await?;
    let done = running
        .queue
        .list(bridge_queue::JobState::Done, i64::MAX)
        .await?;
    let mut lat: BTreeMap<(&str, String), Vec<f64>> = BTreeMap::new();
    for j in &done {
        let Some(finished) = j.finished_at else {
            continue;
        };
        let sink = j.args["sink"].as_str().unwrap_or_default().to_owned();
        let bundle = &j.args["bundle"];
        let (kind, sent) = match (j.name.as_str(), bundle["event"].as_str()) {
            ("deliver_conversation", Some(event @ ("new_meeting" | "conversation_push"))) => (
                if event == "new_meeting" {
                    "meeting booked"
                } else {
                    "push (baseline)"
                },
                bundle["conversation"]["id"]
                    .as_i64()
                    .and_then(|c| by_conversation.get(&c)),
            ),
            ("deliver_signal", _) => (
                "goal met",
                j.args["signal"]["id"]
                    .as_str()
                    .and_then(|e| by_event.get(e)),
            ),
            _ => continue,
        };
        if let Some(sent) = sent {
            lat.entry((kind, sink))
                .or_default()
                .push((finished - sent) as f64);
        }
    }
    let dead = running.queue.list(bridge_queue::JobState::Dead, 10).await?;
    running.stop().await;
    sim.stop().await;
    if !dead.is_empty() {
        bail!("{} dead jobs, e.g. {:?}", dead.len(), dead[0].last_error);
    }
    println!(
        "{} events at {}/s (meetings, goals met and pushes in turn), {} ms per CRM answer, {} workers",
        events.len(),
        a.rate,
        a.latency_ms,
        a.workers
    );
    println!("| event | sink | delivered | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for ((kind, sink), mut v) in lat {
        v.sort_by(f64::total_cmp);
        println!(
            "| {kind} | {sink} | {} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            pct(&v, 0.5),
            pct(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
