//! Lead signals (crm-apis.md §8): `contact_identified`, `playbook_goal_met` and
//! `phone_captured` reach the sinks that route them without waiting for the conversation to
//! close. `lead_signal` fetches the contact and enqueues one `deliver_signal` per routed sink
//! in one transaction; each delivery is an upsert by email (a CRM) or a message with a stable
//! id (an endpoint), so a retry changes nothing.
//!
//! A meeting booked from a calendar page (no conversation) is a signal too, about the person
//! who booked it: `deliver_signal` reads the meeting as the store holds it when it runs, so
//! whatever order a booking's events ran in, the CRMs end at its newest state. One job at a
//! time writes a person's signals to a sink (it holds their `signal_records` row), and a
//! retry after a crash looks for the meeting its earlier attempt may have created.

use std::time::Duration;

use anyhow::anyhow;
use bridge_queue::{JobCtx, JobError};
use bridge_sinks::sink::{LeadSignal, Prior, SignalDetails, SignalMeeting};
use bridge_store::signals::{self, Key};
use drift_types::{ContactId, OrgId, UserId};
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::{Pipeline, configured};
use crate::failure::SinkFailure;
use crate::metrics::labels;

/// Makes a lead signal from an event and plans its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSignal {
    /// The Drift event.
    pub event: String,
    /// The contact it is about.
    pub contact_id: ContactId,
    /// When (epoch ms).
    pub at: i64,
    /// Where it happened and what it carried.
    #[serde(flatten)]
    pub details: SignalDetails,
    /// The stored meeting a calendar page booked, for `new_meeting` and `meeting_updated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_key: Option<String>,
}

impl JobKind for PlanSignal {
    const NAME: &'static str = "lead_signal";
}

impl PlanSignal {
    /// A signal about `contact` from `event`, now.
    pub fn new(event: &str, contact_id: ContactId) -> Self {
        PlanSignal {
            event: event.to_owned(),
            contact_id,
            at: drift_types::now_ms(),
            details: SignalDetails::default(),
            meeting_key: None,
        }
    }

    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let contact = p.contact(org, self.contact_id).await?;
        let meeting = match &self.meeting_key {
            Some(key) => {
                let mut conn = ctx.queue().store().acquire().await?;
                let Some(stored) = bridge_store::meetings::get(&mut conn, org.0, key).await? else {
                    // Erased since its event: nothing is left to deliver.
                    drop(conn);
                    let tx = ctx.begin().await?;
                    return ctx.finish(tx).await;
                };
                drop(conn);
                let agent = match stored.agent_id {
                    Some(id) => p.drift.users(org, &[UserId(id)]).await?.into_iter().next(),
                    None => None,
                };
                Some(SignalMeeting {
                    booked: super::deliver::booked(stored),
                    agent,
                })
            }
            None => None,
        };
        let signal = LeadSignal {
            org,
            event: self.event,
            // The stored event's id: one signal per event, whatever retries.
            id: match ctx.job.event_id {
                Some(e) => format!("event-{e}"),
                None => format!("job-{}", ctx.job.id),
            },
            at_ms: self.at,
            contact,
            details: self.details,
            meeting,
            opted_out: false,
        };
        let mut tx = ctx.begin().await?;
        let erased = {
            let t = bridge_store::privacy::Tombstones::load(&mut tx, &[org.0]).await?;
            t.contact(org.0, signal.contact.id.0)
                || signal.email().is_some_and(|e| t.email(org.0, &e))
        };
        if erased {
            bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
            return ctx.finish(tx).await;
        }
        let now = drift_types::now_ms();
        // The contact is stored as the CRMs will hold it: an erasure by email finds its id,
        // and with it what the signal's writes recorded.
        let mut b = bridge_store::tables::Batch::new();
        b.contact(org, &signal.contact, now);
        bridge_store::warehouse::write(&mut tx, &b).await?;
        for sink in p.sinks.routed_signal(&signal) {
            let job = DeliverSignal {
                sink,
                signal: signal.clone(),
            }
            .to_job(Some(org));
            ctx.queue().enqueue(&mut tx, &job, now).await?;
        }
        ctx.finish(tx).await
    }
}

/// Writes one lead signal to one sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverSignal {
    /// The `[sinks.NAME]` name.
    pub sink: String,
    /// The signal, with its contact.
    pub signal: LeadSignal,
}

impl JobKind for DeliverSignal {
    const NAME: &'static str = "deliver_signal";
}

impl DeliverSignal {
    pub(crate) async fn run(mut self, p: &Pipeline, ctx: &mut JobCtx) -> Result<(), JobError> {
        let sink = configured(&p.sinks, &self.sink)?;
        let store = ctx.queue().store().clone();
        let key = Key {
            org: self.signal.org.0,
            contact: self.signal.contact.id.0,
            sink: &self.sink,
        };
        let holder = ctx.job.id;
        let now = drift_types::now_ms();
        let hold = 2 * ctx.queue().config().lease.as_millis() as i64;
        let Some(records) = signals::claim(&store, key, holder, now, now + hold).await? else {
            return Err(JobError::Defer {
                after: Duration::from_secs(1),
                reason: anyhow!(
                    "another job is writing contact {}'s signals to {}",
                    key.contact,
                    self.sink
                ),
            });
        };
        // A calendar page's meeting as the store holds it now: a later event's delivery may
        // have run first, and this one must not take the CRM back to an older state.
        if let Some(m) = &mut self.signal.meeting {
            let mut conn = store.acquire().await?;
            let now_stored = bridge_store::meetings::get(&mut conn, key.org, &m.booked.key).await?;
            drop(conn);
            match now_stored {
                Some(stored) => m.booked = super::deliver::booked(stored),
                None => {
                    // Erased since it was planned.
                    signals::release(&store, key, holder, drift_types::now_ms()).await?;
                    let tx = ctx.begin().await?;
                    return ctx.finish(tx).await;
                }
            }
        }
        if let Some(email) = self.signal.email() {
            let mut conn = store.acquire().await?;
            self.signal.opted_out =
                bridge_store::privacy::opted_out(&mut conn, key.org, &email).await?;
        }
        let (doc, _) = sink.render_signal(&self.signal);
        signals::begin_write(&store, key, holder, now).await?;
        let prior = Prior {
            external: records.external_ids,
            pending_since: records.pending_since,
        };
        let result = sink.signal(&self.signal, &doc, &prior).await;
        p.metrics.observe(
            "driftbridge_signal_delivery_seconds",
            "Time from a lead signal's event to its write in a sink, by sink.",
            labels(&[("sink", &self.sink)]),
            std::time::Duration::from_millis(
                (drift_types::now_ms() - self.signal.at_ms).max(0) as u64
            ),
        );
        let outcome = match &result {
            Ok(_) => "sent",
            Err(_) => "failed",
        };
        p.metrics.inc(
            "driftbridge_signal_deliveries_total",
            "Lead signals written by sink and outcome.",
            labels(&[("sink", &self.sink), ("outcome", outcome)]),
            1,
        );
        match result {
            Ok(d) => {
                tracing::info!(sink = %self.sink, signal = %self.signal.event,
                    created = d.created, updated = d.updated, "lead signal delivered");
                // What it wrote joins what earlier signals recorded, kept by contact: the
                // person may be in the CRM by signals alone, and an erasure deletes by these ids.
                let mut external = prior.external;
                external.extend(d.external);
                let mut tx = ctx.begin().await?;
                let email = self.signal.email();
                let about = bridge_store::privacy::WrittenAbout {
                    contacts: &[key.contact],
                    conversations: &[],
                    email: email.as_deref(),
                };
                // An erasure or an opt-out that came in while the CRM calls ran.
                if super::erasure::settle_write(
                    &mut tx,
                    ctx.queue(),
                    &self.sink,
                    self.signal.org,
                    about,
                    &external,
                    self.signal.opted_out,
                )
                .await?
                {
                    signals::forget(&mut tx, key).await?;
                    return ctx.finish(tx).await;
                }
                if !signals::record(&mut tx, key, holder, &external, drift_types::now_ms()).await? {
                    return Err(JobError::Retry(anyhow!(
                        "the signal's records were taken over by another job before this one \
                         recorded"
                    )));
                }
                ctx.finish(tx).await
            }
            Err(e) => {
                signals::release(&store, key, holder, drift_types::now_ms()).await?;
                Err(SinkFailure::new(e, format!("sink {}", self.sink)).into_job_error())
            }
        }
    }
}
