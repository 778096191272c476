//! Which jobs an event makes, and the handler that runs them. Every job is idempotent: it
//! fetches or reads its input and upserts by key, so running it twice changes nothing.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use bridge_queue::{Handler, JobCtx, JobError, NewJob};
use bridge_store::tables::Batch;
use bridge_store::warehouse;
use drift_types::webhook::{ParticipantsChanged, PlaybookGoalMet};
use drift_types::{ContactId, ConversationId, Meeting, Message, OrgId, UserId, WebhookEvent};
use serde_json::{Value, json};

use crate::drift::DriftPool;
use crate::metrics::Metrics;
use bridge_sinks::sink::Sinks;

/// Job names (stable: they are stored).
pub mod names {
    /// Fetch a conversation with everything it references and upsert it.
    pub const SYNC_CONVERSATION: &str = "sync_conversation";
    /// Upsert a message delivered in a `new_message` event.
    pub const UPSERT_MESSAGE: &str = "upsert_message";
    /// Fetch a contact and upsert it.
    pub const SYNC_CONTACT: &str = "sync_contact";
    /// Apply participant additions or removals.
    pub const APPLY_PARTICIPANTS: &str = "apply_participants";
    /// Record a met playbook goal.
    pub const RECORD_GOAL_MET: &str = "record_goal_met";
    /// Upsert a meeting from its event.
    pub const UPSERT_MEETING: &str = "upsert_meeting";
    /// Fetch a user and upsert it.
    pub const SYNC_USER: &str = "sync_user";
    /// Disconnect a tenant: uninstall at Drift, delete its secrets, cancel its jobs.
    pub const DISCONNECT_TENANT: &str = "disconnect_tenant";
    /// Deliver a conversation bundle to one CRM/MAP sink.
    pub const DELIVER_CONVERSATION: &str = "deliver_conversation";
}

pub(crate) fn job(name: &str, org: Option<OrgId>, args: Value) -> NewJob {
    NewJob {
        name: name.into(),
        org_id: org.map(|o| o.0),
        args,
        event_id: None,
    }
}

/// The job that syncs one conversation (replays use it too).
pub fn sync_job(org: OrgId, id: ConversationId) -> NewJob {
    job(
        names::SYNC_CONVERSATION,
        Some(org),
        json!({ "conversation_id": id, "event": "replay" }),
    )
}

/// The job that syncs a conversation and delivers it again to the named sinks, whatever
/// their filters and even when unchanged (`driftbridge replay --sink`).
pub fn replay_job(org: OrgId, id: ConversationId, sinks: &[String]) -> NewJob {
    job(
        names::SYNC_CONVERSATION,
        Some(org),
        json!({ "conversation_id": id, "event": "replay", "sinks": sinks, "force": true }),
    )
}

/// The jobs for an event. Events that need no work here (unknown types, and those handled by
/// later features such as GDPR and disconnects) make none: they are stored all the same.
pub fn jobs_for(event: &WebhookEvent, org: Option<OrgId>) -> Vec<NewJob> {
    use WebhookEvent as E;
    let kind = event.event_type().to_owned();
    let sync = |id: ConversationId| {
        vec![job(
            names::SYNC_CONVERSATION,
            org,
            json!({ "conversation_id": id, "event": kind }),
        )]
    };
    match event {
        E::ConversationPush(p) => sync(p.data.conversation_id),
        E::ConversationManualPush(p) => sync(p.conversation_id),
        E::ConversationInactive(p) => sync(p.conversation_id),
        E::NewConversation(c) => sync(c.id),
        E::NewMessage(m) | E::NewCommandMessage(m) => {
            vec![job(names::UPSERT_MESSAGE, org, json!({ "message": m }))]
        }
        E::ContactIdentified(c) => {
            vec![job(names::SYNC_CONTACT, org, json!({ "contact_id": c.id }))]
        }
        E::ContactUpdated(c) => {
            vec![job(
                names::SYNC_CONTACT,
                org,
                json!({ "contact_id": c.end_user_id }),
            )]
        }
        E::ConversationParticipantAdded(p) => vec![job(
            names::APPLY_PARTICIPANTS,
            org,
            json!({ "change": p, "added": true }),
        )],
        E::ConversationParticipantRemoved(p) => vec![job(
            names::APPLY_PARTICIPANTS,
            org,
            json!({ "change": p, "added": false }),
        )],
        E::PlaybookGoalMet(g) => vec![job(names::RECORD_GOAL_MET, org, json!({ "goal": g }))],
        E::NewMeeting(m) => vec![job(names::UPSERT_MEETING, org, json!({ "meeting": m }))],
        E::MeetingUpdated(m) => vec![job(
            names::UPSERT_MEETING,
            org,
            json!({ "meeting": m.meeting }),
        )],
        E::UserAvailabilityUpdated(u) => {
            vec![job(names::SYNC_USER, org, json!({ "user_id": u.user_id }))]
        }
        E::AppDisconnected(_) => vec![job(names::DISCONNECT_TENANT, org, json!({}))],
        _ => Vec::new(),
    }
}

/// Runs every job this crate defines.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Drift clients per org.
    pub drift: Arc<DriftPool>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// CRM/MAP sinks (none configured: conversations go to the warehouse only).
    pub sinks: Sinks,
}

pub(crate) fn arg<T: serde::de::DeserializeOwned>(args: &Value, key: &str) -> Result<T, JobError> {
    serde_json::from_value(args.get(key).cloned().unwrap_or(Value::Null))
        .with_context(|| format!("job argument {key:?} is missing or malformed"))
        .map_err(JobError::Permanent)
}

/// Maps a Drift error: gone or forbidden is permanent (retrying cannot help), the rest retries.
pub fn drift_error(e: drift_client::Error, what: &str) -> JobError {
    let permanent = matches!(e.status(), Some(400 | 401 | 403 | 404 | 410 | 422));
    let e = anyhow::Error::new(e).context(format!("while fetching {what}"));
    if permanent {
        JobError::Permanent(e)
    } else {
        JobError::Retry(e)
    }
}

/// Writes the rows and completes the job in one transaction.
async fn write(ctx: &mut JobCtx, b: Batch) -> Result<(), JobError> {
    let mut tx = ctx.queue().store().begin().await?;
    warehouse::write(&mut tx, &b).await?;
    ctx.finish(tx).await
}

impl Handler for Pipeline {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let org = ctx
            .job
            .org_id
            .map(OrgId)
            .ok_or_else(|| JobError::Permanent(anyhow!("the event had no orgId")))?;
        let args = ctx.job.args.clone();
        let now = crate::now_ms();
        if ctx.job.name != names::DISCONNECT_TENANT
            && let Some(t) = self.drift.tenants()
            && t.disconnected(org).await?
        {
            // A disconnected tenant's events are kept, but nothing is fetched for them.
            tracing::info!(org.id = org.0, job.name = %ctx.job.name, "skipped: the tenant disconnected");
            let tx = ctx.queue().store().begin().await?;
            return ctx.finish(tx).await;
        }
        match ctx.job.name.as_str() {
            names::SYNC_CONVERSATION => {
                let id: ConversationId = arg(&args, "conversation_id")?;
                let event: String = arg::<Option<String>>(&args, "event")?.unwrap_or_default();
                let mut bundle =
                    crate::sync::fetch_conversation(&self.drift, org, id, &event).await?;
                let mut b = Batch::new();
                crate::sync::rows(&bundle, now, &mut b);
                let deliveries =
                    crate::deliver::plan(&self.sinks, &self.drift, &mut bundle, &args).await?;
                let mut tx = ctx.queue().store().begin().await?;
                warehouse::write(&mut tx, &b).await?;
                for d in &deliveries {
                    ctx.queue().enqueue(&mut tx, d, now).await?;
                }
                ctx.finish(tx).await
            }
            names::DELIVER_CONVERSATION => {
                crate::deliver::run(&self.sinks, &self.metrics, ctx).await
            }
            names::UPSERT_MESSAGE => {
                let m: Message = arg(&args, "message")?;
                let mut b = Batch::new();
                b.message(org, &m);
                write(ctx, b).await
            }
            names::SYNC_CONTACT => {
                let id: ContactId = arg(&args, "contact_id")?;
                let client = self.drift.client(org).await?;
                let contact = client
                    .contact(id)
                    .await
                    .map_err(|e| drift_error(e, "the contact"))?;
                let mut b = Batch::new();
                b.contact(org, &contact, now);
                write(ctx, b).await
            }
            names::APPLY_PARTICIPANTS => {
                let change: ParticipantsChanged = arg(&args, "change")?;
                let added: bool = arg(&args, "added")?;
                let ids: Vec<i64> = change.participants.iter().map(|u| u.0).collect();
                let users = if added {
                    self.drift.users(org, &change.participants).await?
                } else {
                    Vec::new()
                };
                if added {
                    let mut b = Batch::new();
                    for u in &users {
                        b.user(org, u);
                    }
                    for id in &ids {
                        b.participant(org, change.conversation_id.0, *id);
                    }
                    return write(ctx, b).await;
                }
                let mut tx = ctx.queue().store().begin().await?;
                warehouse::remove_participants(&mut tx, org, change.conversation_id.0, &ids)
                    .await?;
                ctx.finish(tx).await
            }
            names::RECORD_GOAL_MET => {
                let g: PlaybookGoalMet = arg(&args, "goal")?;
                let mut tx = ctx.queue().store().begin().await?;
                warehouse::record_goal_met(&mut tx, org, &g, ctx.job.event_id.unwrap_or(0)).await?;
                ctx.finish(tx).await
            }
            names::UPSERT_MEETING => {
                let m: Meeting = arg(&args, "meeting")?;
                let mut b = Batch::new();
                b.meeting(org, &m);
                write(ctx, b).await
            }
            names::SYNC_USER => {
                let id: UserId = arg(&args, "user_id")?;
                self.drift.forget_user(org, id);
                let users = self.drift.users(org, &[id]).await?;
                let mut b = Batch::new();
                for u in &users {
                    b.user(org, u);
                }
                write(ctx, b).await
            }
            names::DISCONNECT_TENANT => {
                if let Some(t) = self.drift.tenants() {
                    let r = t
                        .revoke(org, self.drift.base_url())
                        .await
                        .context("while disconnecting the tenant")?;
                    tracing::info!(
                        org.id = org.0,
                        uninstalled = r.uninstalled,
                        secrets.deleted = r.secrets_deleted,
                        jobs.cancelled = r.jobs_cancelled,
                        "tenant disconnected"
                    );
                }
                self.drift.forget_client(org);
                let tx = ctx.queue().store().begin().await?;
                ctx.finish(tx).await
            }
            other => Err(JobError::Permanent(anyhow!("no handler for job {other:?}"))),
        }
    }
}
