//! CRM/MAP delivery: after a conversation sync, one `deliver_conversation` job per routed
//! sink carries the bundle; the job holds the (org, conversation, sink) delivery row, skips
//! content it already delivered, marks the row pending before the first CRM write, lets the
//! sink upsert by its keys, and records the CRM's ids in the transaction that completes it.

use std::time::Duration;

use anyhow::anyhow;
use bridge_queue::{JobCtx, JobError, NewJob};
use bridge_sinks::registry::Sinks;
use bridge_sinks::sink::{BookedMeeting, ConversationBundle, Prior};
use bridge_store::deliveries::{self, Key};
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::configured;
use crate::drift::DriftPool;
use crate::failure::SinkFailure;
use crate::metrics::{Metrics, labels};

/// Delivers a conversation bundle to one CRM/MAP sink. The bundle rides in the arguments,
/// so a delivery never calls Drift again and survives a restart unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverConversation {
    /// The `[sinks.NAME]` name.
    pub sink: String,
    /// Deliver even when the content is unchanged.
    #[serde(default)]
    pub force: bool,
    /// What to deliver.
    pub bundle: ConversationBundle,
}

impl JobKind for DeliverConversation {
    const NAME: &'static str = "deliver_conversation";
}

const DELIVERIES: &str = "driftbridge_sink_deliveries_total";
const DELIVERIES_HELP: &str = "Deliveries by sink and outcome: sent (first delivery), updated \
(re-delivery), unchanged (skipped, same content), failed (dead: the CRM refused), retried, throttled";
const RECORDS: &str = "driftbridge_sink_records_total";
const RECORDS_HELP: &str = "CRM records written by sink and operation (created, updated)";

/// The delivery jobs for a synced bundle: to the sinks it routes to, or to the sinks a replay
/// names. Adds the playbook to the bundle when some sink receives it.
pub(crate) async fn plan(
    sinks: &Sinks,
    drift: &DriftPool,
    bundle: &mut ConversationBundle,
    named: Option<&[String]>,
    force: bool,
) -> Result<Vec<NewJob>, JobError> {
    let targets = match named {
        Some(names) => {
            for n in names {
                configured(sinks, n)?;
            }
            names.to_vec()
        }
        None => sinks.routed(bundle),
    };
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    crate::conversation::with_playbook(drift, bundle).await?;
    Ok(targets
        .into_iter()
        .map(|sink| {
            DeliverConversation {
                sink,
                force,
                bundle: bundle.clone(),
            }
            .to_job(Some(bundle.org))
        })
        .collect())
}

/// A stored meeting as the sinks read it.
pub(crate) fn booked(m: bridge_store::meetings::StoredMeeting) -> BookedMeeting {
    let status = match m.status.as_deref() {
        Some("CANCELED") => "canceled",
        Some("RESCHEDULED") => "rescheduled",
        _ => "booked",
    };
    BookedMeeting {
        key: m.key,
        status: status.into(),
        start_ms: m.slot_start,
        end_ms: m.slot_end,
        booked_at_ms: m.scheduled_at,
        agent_id: m.agent_id,
        meeting_type: m.meeting_type,
        time_zone: m.time_zone,
        notes: m.notes,
    }
}

fn count(metrics: &Metrics, sink: &str, outcome: &str) {
    metrics.inc(
        DELIVERIES,
        DELIVERIES_HELP,
        labels(&[("sink", sink), ("outcome", outcome)]),
        1,
    );
}

/// Runs one `deliver_conversation` job.
pub(crate) async fn run(
    job: DeliverConversation,
    sinks: &Sinks,
    metrics: &Metrics,
    ctx: &mut JobCtx,
) -> Result<(), JobError> {
    let DeliverConversation {
        sink: name,
        force,
        bundle,
    } = job;
    let sink = configured(sinks, &name)?;
    let store = ctx.queue().store().clone();
    let key = Key {
        org: bundle.org.0,
        conversation: bundle.conversation.id.0,
        sink: &name,
    };
    let holder = ctx.job.id;
    let now = drift_types::now_ms();
    let hold = 2 * ctx.queue().config().lease.as_millis() as i64;
    let Some(row) = deliveries::claim(&store, &key, holder, now, now + hold).await? else {
        return Err(JobError::Defer {
            after: Duration::from_secs(1),
            reason: anyhow!(
                "another job is delivering conversation {} to {name}",
                key.conversation
            ),
        });
    };
    // The first touch is read now, not when the conversation was synced: widget events
    // that arrived since are in it (a derivation committed after this read sees this
    // delivery's row and delivers again).
    // The conversation's meetings too: a meeting event that commits after this read finds
    // this delivery's row and syncs the conversation again.
    let mut bundle = bundle;
    {
        let mut conn = store.acquire().await?;
        bundle.attribution =
            bridge_store::widget::attribution(&mut conn, key.org, key.conversation)
                .await?
                .map(|a| a.touch);
        bundle.meetings =
            bridge_store::meetings::of_conversation(&mut conn, key.org, key.conversation)
                .await?
                .into_iter()
                .map(booked)
                .collect();
        // An opt-out recorded since the event: the records this delivery writes carry it.
        if let Some(email) = bundle.email() {
            bundle.opted_out = bridge_store::privacy::opted_out(&mut conn, key.org, &email).await?;
        }
    }
    let (doc, hash) = sink.render(&bundle);
    if !force && row.state == "delivered" && row.content_hash.as_deref() == Some(hash.as_str()) {
        deliveries::release(&store, &key, holder, None, false, now).await?;
        count(metrics, &name, "unchanged");
        return Ok(());
    }
    deliveries::begin_write(&store, &key, holder, now).await?;
    let prior = Prior {
        external: row.external_ids.clone(),
        pending_since: row.pending_since,
    };
    let started = std::time::Instant::now();
    let delivered = sink.deliver(&bundle, &doc, &prior).await;
    metrics.observe(
        "driftbridge_sink_delivery_seconds",
        "Time a sink took to write one conversation to its CRM (every call of one delivery), by sink.",
        labels(&[("sink", &name)]),
        started.elapsed(),
    );
    match delivered {
        Ok(d) => {
            // What this delivery wrote joins what earlier ones recorded: a meeting event's
            // delivery writes the contact and the meetings but not the note or Task, and the
            // erasure deletes by these ids (a record deleted since answers 404 there).
            let mut external = prior.external;
            external.extend(d.external);
            let mut tx = store.begin().await?;
            let contacts: Vec<i64> = bundle
                .conversation
                .contact_id
                .map(|c| c.0)
                .into_iter()
                .collect();
            let email = bundle.email();
            let about = bridge_store::privacy::WrittenAbout {
                contacts: &contacts,
                conversations: &[key.conversation],
                email: email.as_deref(),
            };
            // An erasure or an opt-out that came in while the CRM calls ran.
            if super::erasure::settle_write(
                &mut tx,
                ctx.queue(),
                &name,
                bundle.org,
                about,
                &external,
                bundle.opted_out,
            )
            .await?
            {
                deliveries::forget(&mut tx, &key).await?;
                return ctx.finish(tx).await;
            }
            if !deliveries::record(
                &mut tx,
                &key,
                holder,
                &external,
                &hash,
                drift_types::now_ms(),
            )
            .await?
            {
                return Err(JobError::Retry(anyhow!(
                    "the delivery row was taken over by another job before this one recorded"
                )));
            }
            ctx.finish(tx).await?;
            let outcome = if row.deliveries == 0 {
                "sent"
            } else {
                "updated"
            };
            count(metrics, &name, outcome);
            for (op, n) in [("created", d.created), ("updated", d.updated)] {
                if n > 0 {
                    metrics.inc(
                        RECORDS,
                        RECORDS_HELP,
                        labels(&[("sink", &name), ("op", op)]),
                        u64::from(n),
                    );
                }
            }
            tracing::info!(sink = %name, conversation.id = key.conversation, created = d.created,
                updated = d.updated, "delivered");
            Ok(())
        }
        Err(e) => {
            // The sink's error keeps its status, vendor code and cause; the job's error wraps
            // it whole, so the chain reaches the dead letter and the logs.
            let (status, code) = (e.status(), e.code().map(str::to_owned));
            let f = SinkFailure::new(e, format!("sink {name}"));
            deliveries::release(
                &store,
                &key,
                holder,
                Some(&f.message()),
                f.rejected,
                drift_types::now_ms(),
            )
            .await?;
            count(metrics, &name, f.outcome);
            tracing::debug!(sink = %name, conversation.id = key.conversation, crm.status = ?status,
                crm.code = ?code, outcome = f.outcome, "delivery did not complete");
            Err(f.into_job_error())
        }
    }
}
