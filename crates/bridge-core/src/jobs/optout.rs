//! Email opt-outs: Drift's `user_unsubscribed` makes `opt_out_contact`, which queues one
//! `opt_out_of_sink` per sink serving the org; each sets that CRM's opt-out field on the
//! records it holds for the email (Salesforce `HasOptedOutOfEmail`, Marketo `unsubscribed`,
//! a HubSpot property) or sends the HTTP endpoint a signed `contact.unsubscribed`.

use anyhow::anyhow;
use bridge_queue::{JobCtx, JobError};
use bridge_sinks::sink::OptOut;
use bridge_store::privacy::{Tombstones, forget_job_data, normalize_email};
use drift_types::{ContactId, OrgId};
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::{Pipeline, configured};
use crate::failure::{SinkFailure, drift_error};
use crate::metrics::labels;

/// Fans an opt-out out to the sinks (Drift's `user_unsubscribed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptOutContact {
    /// The contact that opted out.
    pub contact_id: ContactId,
    /// Its email, when the event carried it (else fetched from Drift).
    #[serde(default)]
    pub email: Option<String>,
}

impl JobKind for OptOutContact {
    const NAME: &'static str = "opt_out_contact";
}

impl OptOutContact {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let email = match self.email.filter(|e| e.contains('@')) {
            Some(e) => e,
            None => {
                let client = p.drift.client(org).await?;
                let c = client
                    .contact(self.contact_id)
                    .await
                    .map_err(|e| drift_error(e, "the contact"))?;
                c.attributes.email().map(str::to_owned).ok_or_else(|| {
                    JobError::Permanent(anyhow!(
                        "contact {} opted out but has no email: no CRM can find them",
                        self.contact_id.0
                    ))
                })?
            }
        };
        let email = normalize_email(&email);
        let now = drift_types::now_ms();
        let queue = ctx.queue().clone();
        let mut tx = ctx.begin().await?;
        let t = Tombstones::load(&mut tx, &[org.0]).await?;
        if t.email(org.0, &email) || t.contact(org.0, self.contact_id.0) {
            // Erased: there is nothing left anywhere to flag, and nothing to keep.
            forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
            return ctx.finish(tx).await;
        }
        // Kept (as a digest) for the records that deliveries and signals create later.
        bridge_store::privacy::record_opt_out(&mut tx, org.0, &email, now).await?;
        for name in p.sinks.names() {
            if p.sinks.get(&name).is_some_and(|s| s.serves(org.0)) {
                let job = OptOutOfSink {
                    sink: name,
                    opt_out: OptOut {
                        org: org.0,
                        contact: Some(self.contact_id.0),
                        email: email.clone(),
                        at: now,
                    },
                }
                .to_job(Some(org));
                queue.enqueue(&mut tx, &job, now).await?;
            }
        }
        ctx.finish(tx).await
    }
}

/// A sink write rendered before the person's opt-out was recorded, and recorded after it:
/// the opt-out's own job flags only the records a CRM already holds, and may have run before
/// this write created them. Queues that sink's opt-out again in the write's transaction.
pub(crate) async fn if_opted_out_meanwhile(
    conn: &mut bridge_store::Conn,
    queue: &bridge_queue::Queue,
    sink: &str,
    org: OrgId,
    rendered_opted_out: bool,
    contact: Option<i64>,
    email: &str,
) -> anyhow::Result<()> {
    if rendered_opted_out || !bridge_store::privacy::opted_out(conn, org.0, email).await? {
        return Ok(());
    }
    let now = drift_types::now_ms();
    let job = OptOutOfSink {
        sink: sink.to_owned(),
        opt_out: OptOut {
            org: org.0,
            contact,
            email: normalize_email(email),
            at: now,
        },
    }
    .to_job(Some(org));
    queue.enqueue(conn, &job, now).await?;
    Ok(())
}

/// Sets an opt-out in one sink.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptOutOfSink {
    /// The `[sinks.NAME]` name.
    pub sink: String,
    /// What to set.
    pub opt_out: OptOut,
}

impl JobKind for OptOutOfSink {
    const NAME: &'static str = "opt_out_of_sink";
}

const OUTCOMES: &str = "driftbridge_sink_opt_outs_total";
const OUTCOMES_HELP: &str =
    "Opt-out jobs by sink and outcome: done, retried, throttled, failed (the CRM refused)";

impl OptOutOfSink {
    pub(crate) async fn run(self, p: &Pipeline, ctx: &mut JobCtx) -> Result<(), JobError> {
        let sink = configured(&p.sinks, &self.sink)?;
        let count = |outcome: &str| {
            p.metrics.inc(
                OUTCOMES,
                OUTCOMES_HELP,
                labels(&[("sink", &self.sink), ("outcome", outcome)]),
                1,
            )
        };
        match sink.opt_out(&self.opt_out).await {
            Ok(n) => {
                let tx = ctx.begin().await?;
                ctx.finish(tx).await?;
                count("done");
                tracing::info!(sink = %self.sink, records = n, "opt-out set");
                Ok(())
            }
            Err(e) => {
                let f = SinkFailure::new(e, format!("opting out in sink {}", self.sink));
                count(f.outcome);
                Err(f.into_job_error())
            }
        }
    }
}
