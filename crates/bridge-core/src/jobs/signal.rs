//! Lead signals (crm-apis.md §8): `contact_identified`, `playbook_goal_met` and
//! `phone_captured` reach the sinks that route them without waiting for the conversation to
//! close. `lead_signal` fetches the contact and enqueues one `deliver_signal` per routed sink
//! in one transaction; each delivery is an upsert by email (a CRM) or a message with a stable
//! id (an endpoint), so a retry changes nothing.

use bridge_queue::{JobCtx, JobError};
use bridge_sinks::sink::{LeadSignal, SignalDetails};
use drift_types::{ContactId, OrgId};
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
        }
    }

    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let contact = p.contact(org, self.contact_id).await?;
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
    pub(crate) async fn run(self, p: &Pipeline, ctx: &mut JobCtx) -> Result<(), JobError> {
        let sink = configured(&p.sinks, &self.sink)?;
        let (doc, _) = sink.render_signal(&self.signal);
        let result = sink.signal(&self.signal, &doc).await;
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
                let mut tx = ctx.begin().await?;
                // What it wrote is kept by contact: the person may be in the CRM by this
                // signal alone, and an erasure deletes by these ids.
                if !d.external.is_empty() {
                    bridge_store::deliveries::record_signal(
                        &mut tx,
                        self.signal.org.0,
                        self.signal.contact.id.0,
                        &self.sink,
                        &d.external,
                        drift_types::now_ms(),
                    )
                    .await?;
                }
                ctx.finish(tx).await
            }
            Err(e) => Err(SinkFailure::new(e, format!("sink {}", self.sink)).into_job_error()),
        }
    }
}
