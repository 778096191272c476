//! Jobs that upsert one record from its event, or fetch one record and upsert it: messages,
//! contacts, participants, goals, users (meetings: `meeting.rs`).

use bridge_queue::{JobCtx, JobError};
use bridge_store::tables::Batch;
use bridge_store::warehouse;
use drift_types::webhook::{ParticipantsChanged, PlaybookGoalMet};
use drift_types::{ContactId, Message, OrgId, UserId};
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::{Pipeline, write};

/// Upserts a message delivered in a `new_message` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertMessage {
    /// The message as the event carried it.
    pub message: Message,
}

impl JobKind for UpsertMessage {
    const NAME: &'static str = "upsert_message";
}

impl UpsertMessage {
    pub(crate) async fn run(self, org: OrgId, ctx: &mut JobCtx) -> Result<(), JobError> {
        let mut b = Batch::new();
        b.message(org, &self.message);
        write(ctx, b).await
    }
}

/// Fetches a contact and upserts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncContact {
    /// Which contact.
    pub contact_id: ContactId,
}

impl JobKind for SyncContact {
    const NAME: &'static str = "sync_contact";
}

impl SyncContact {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let contact = match p.contact(org, self.contact_id).await {
            Ok(c) => c,
            Err(JobError::Permanent(e))
                if e.downcast_ref::<drift_client::Error>()
                    .is_some_and(drift_client::Error::is_not_found) =>
            {
                // Gone from Drift: the stored row (if any) is marked, not left stale.
                let mut tx = ctx.begin().await?;
                bridge_store::ops::conversation::mark_deleted(
                    &mut tx,
                    bridge_store::ops::conversation::Deletable::Contacts,
                    org.0,
                    &[self.contact_id.0],
                    drift_types::now_ms(),
                )
                .await?;
                return ctx.finish(tx).await;
            }
            Err(e) => return Err(e),
        };
        let mut b = Batch::new();
        b.contact(org, &contact, drift_types::now_ms());
        write(ctx, b).await
    }
}

/// Applies participant additions or removals.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyParticipants {
    /// The change as the event carried it.
    pub change: ParticipantsChanged,
    /// Added (else removed).
    pub added: bool,
}

impl JobKind for ApplyParticipants {
    const NAME: &'static str = "apply_participants";
}

impl ApplyParticipants {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let ids: Vec<i64> = self.change.participants.iter().map(|u| u.0).collect();
        let conversation = self.change.conversation_id.0;
        if self.added {
            let users = p.drift.users(org, &self.change.participants).await?;
            let mut b = Batch::new();
            for u in &users {
                b.user(org, u);
            }
            for id in &ids {
                b.participant(org, conversation, *id);
            }
            return write(ctx, b).await;
        }
        let mut tx = ctx.begin().await?;
        warehouse::remove_participants(&mut tx, org, conversation, &ids).await?;
        ctx.finish(tx).await
    }
}

/// Records a met playbook goal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordGoalMet {
    /// The goal as the event carried it.
    pub goal: PlaybookGoalMet,
}

impl JobKind for RecordGoalMet {
    const NAME: &'static str = "record_goal_met";
}

impl RecordGoalMet {
    pub(crate) async fn run(self, org: OrgId, ctx: &mut JobCtx) -> Result<(), JobError> {
        let event = ctx.job.event_id.unwrap_or(0);
        let mut tx = ctx.begin().await?;
        if !warehouse::record_goal_met(&mut tx, org, &self.goal, event).await? {
            bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
        }
        ctx.finish(tx).await
    }
}

/// Fetches a user and upserts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncUser {
    /// Which user.
    pub user_id: UserId,
}

impl JobKind for SyncUser {
    const NAME: &'static str = "sync_user";
}

impl SyncUser {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        p.drift.forget_user(org, self.user_id);
        let users = p.drift.users(org, &[self.user_id]).await?;
        let mut b = Batch::new();
        for u in &users {
            b.user(org, u);
        }
        write(ctx, b).await
    }
}
