//! The jobs: one type per kind with its arguments as fields and a stable stored name
//! ([`JobKind`]), which jobs an event makes, and the dispatcher that runs them. Every job is
//! idempotent: it fetches or reads its input and upserts by key, so running it twice changes
//! nothing.
//!
//! One file per family (`conversation`, `deliver`, `records`, `tenant`); they import nothing
//! from this file, which only decodes and dispatches.

mod conversation;
mod deliver;
mod kind;
mod pipeline;
mod records;
mod tenant;

use anyhow::anyhow;
use bridge_queue::{Handler, JobCtx, JobError, NewJob};
use drift_types::{ConversationId, OrgId, WebhookEvent};
use serde_json::Value;

pub use conversation::SyncConversation;
pub use deliver::DeliverConversation;
pub use kind::JobKind;
pub use pipeline::Pipeline;
pub use records::{
    ApplyParticipants, RecordGoalMet, SyncContact, SyncUser, UpsertMeeting, UpsertMessage,
};
pub use tenant::DisconnectTenant;

/// Every job kind, decoded from its stored name and arguments.
#[derive(Debug, Clone)]
pub enum Job {
    /// [`SyncConversation`].
    SyncConversation(SyncConversation),
    /// [`DeliverConversation`].
    DeliverConversation(Box<DeliverConversation>),
    /// [`UpsertMessage`].
    UpsertMessage(Box<UpsertMessage>),
    /// [`SyncContact`].
    SyncContact(SyncContact),
    /// [`ApplyParticipants`].
    ApplyParticipants(ApplyParticipants),
    /// [`RecordGoalMet`].
    RecordGoalMet(RecordGoalMet),
    /// [`UpsertMeeting`].
    UpsertMeeting(Box<UpsertMeeting>),
    /// [`SyncUser`].
    SyncUser(SyncUser),
    /// [`DisconnectTenant`].
    DisconnectTenant(DisconnectTenant),
}

impl Job {
    /// Decodes a stored job. An unknown name or arguments that do not fit are permanent
    /// failures: no retry can make them run.
    pub fn decode(name: &str, args: &Value) -> Result<Job, JobError> {
        Ok(match name {
            SyncConversation::NAME => Job::SyncConversation(SyncConversation::decode(args)?),
            DeliverConversation::NAME => {
                Job::DeliverConversation(Box::new(DeliverConversation::decode(args)?))
            }
            UpsertMessage::NAME => Job::UpsertMessage(Box::new(UpsertMessage::decode(args)?)),
            SyncContact::NAME => Job::SyncContact(SyncContact::decode(args)?),
            ApplyParticipants::NAME => Job::ApplyParticipants(ApplyParticipants::decode(args)?),
            RecordGoalMet::NAME => Job::RecordGoalMet(RecordGoalMet::decode(args)?),
            UpsertMeeting::NAME => Job::UpsertMeeting(Box::new(UpsertMeeting::decode(args)?)),
            SyncUser::NAME => Job::SyncUser(SyncUser::decode(args)?),
            DisconnectTenant::NAME => Job::DisconnectTenant(DisconnectTenant::decode(args)?),
            other => return Err(JobError::Permanent(anyhow!("no handler for job {other:?}"))),
        })
    }
}

/// The job that syncs one conversation (replays use it too).
pub fn sync_job(org: OrgId, id: ConversationId) -> NewJob {
    SyncConversation::new(id, "replay").to_job(Some(org))
}

/// The job that syncs a conversation and delivers it again to the named sinks, whatever
/// their filters and even when unchanged (`driftbridge replay --sink`).
pub fn replay_job(org: OrgId, id: ConversationId, sinks: &[String]) -> NewJob {
    SyncConversation {
        sinks: Some(sinks.to_vec()),
        force: true,
        ..SyncConversation::new(id, "replay")
    }
    .to_job(Some(org))
}

/// The jobs for an event. Events that need no work here (unknown types, and those handled by
/// later features such as GDPR) make none: they are stored all the same.
pub fn jobs_for(event: &WebhookEvent, org: Option<OrgId>) -> Vec<NewJob> {
    use WebhookEvent as E;
    let sync = |id: ConversationId| SyncConversation::new(id, event.event_type()).to_job(org);
    let job = match event {
        E::ConversationPush(p) => sync(p.data.conversation_id),
        E::ConversationManualPush(p) => sync(p.conversation_id),
        E::ConversationInactive(p) => sync(p.conversation_id),
        E::NewConversation(c) => sync(c.id),
        E::NewMessage(m) | E::NewCommandMessage(m) => {
            UpsertMessage { message: m.clone() }.to_job(org)
        }
        E::ContactIdentified(c) => SyncContact { contact_id: c.id }.to_job(org),
        E::ContactUpdated(c) => SyncContact {
            contact_id: c.end_user_id,
        }
        .to_job(org),
        E::ConversationParticipantAdded(p) => ApplyParticipants {
            change: p.clone(),
            added: true,
        }
        .to_job(org),
        E::ConversationParticipantRemoved(p) => ApplyParticipants {
            change: p.clone(),
            added: false,
        }
        .to_job(org),
        E::PlaybookGoalMet(g) => RecordGoalMet { goal: g.clone() }.to_job(org),
        E::NewMeeting(m) => UpsertMeeting { meeting: m.clone() }.to_job(org),
        E::MeetingUpdated(m) => UpsertMeeting {
            meeting: m.meeting.clone(),
        }
        .to_job(org),
        E::UserAvailabilityUpdated(u) => SyncUser { user_id: u.user_id }.to_job(org),
        E::AppDisconnected(_) => DisconnectTenant {}.to_job(org),
        _ => return Vec::new(),
    };
    vec![job]
}

impl Handler for Pipeline {
    async fn handle(&self, ctx: &mut JobCtx) -> Result<(), JobError> {
        let org = ctx
            .job
            .org_id
            .map(OrgId)
            .ok_or_else(|| JobError::Permanent(anyhow!("the event had no orgId")))?;
        let job = Job::decode(&ctx.job.name, &ctx.job.args)?;
        if !matches!(job, Job::DisconnectTenant(_))
            && let Some(t) = self.drift.tenants()
            && t.disconnected(org).await?
        {
            // A disconnected tenant's events are kept, but nothing is fetched for them.
            tracing::info!(org.id = org.0, job.name = %ctx.job.name, "skipped: the tenant disconnected");
            let tx = ctx.queue().store().begin().await?;
            return ctx.finish(tx).await;
        }
        match job {
            Job::SyncConversation(j) => j.run(self, org, ctx).await,
            Job::DeliverConversation(j) => deliver::run(*j, &self.sinks, &self.metrics, ctx).await,
            Job::UpsertMessage(j) => j.run(org, ctx).await,
            Job::SyncContact(j) => j.run(self, org, ctx).await,
            Job::ApplyParticipants(j) => j.run(self, org, ctx).await,
            Job::RecordGoalMet(j) => j.run(org, ctx).await,
            Job::UpsertMeeting(j) => j.run(org, ctx).await,
            Job::SyncUser(j) => j.run(self, org, ctx).await,
            Job::DisconnectTenant(j) => j.run(self, org, ctx).await,
        }
    }
}
