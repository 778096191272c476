//! Syncing a conversation: fetch it with everything it references, write its rows, and in
//! the same transaction enqueue its deliveries to the CRM sinks it routes to.

use bridge_queue::{JobCtx, JobError};
use bridge_store::tables::Batch;
use bridge_store::warehouse;
use drift_types::{ConversationId, OrgId};
use serde::{Deserialize, Serialize};

use super::deliver;
use super::kind::JobKind;
use super::pipeline::Pipeline;

/// Fetches a conversation with everything it references and upserts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncConversation {
    /// Which conversation.
    pub conversation_id: ConversationId,
    /// The event type that asked for it (`replay` for replays).
    #[serde(default)]
    pub event: Option<String>,
    /// Deliver to these sinks, whatever their filters (`driftbridge replay --sink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<Vec<String>>,
    /// Deliver even when the content is unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

impl JobKind for SyncConversation {
    const NAME: &'static str = "sync_conversation";
}

impl SyncConversation {
    /// Syncs conversation `id` because of `event`.
    pub fn new(id: ConversationId, event: &str) -> Self {
        SyncConversation {
            conversation_id: id,
            event: Some(event.to_owned()),
            sinks: None,
            force: false,
        }
    }

    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        let event = self.event.clone().unwrap_or_default();
        let Some(mut bundle) =
            crate::conversation::fetch(&p.drift, org, self.conversation_id, &event).await?
        else {
            // Drift answers 404: the stored row (if any) is marked gone, and nothing is
            // delivered.
            let mut tx = ctx.begin().await?;
            bridge_store::ops::conversation::mark_deleted(
                &mut tx,
                bridge_store::ops::conversation::Deletable::Conversations,
                org.0,
                &[self.conversation_id.0],
                drift_types::now_ms(),
            )
            .await?;
            tracing::info!(
                conversation.id = self.conversation_id.0,
                "the conversation is gone from Drift; marked deleted"
            );
            return ctx.finish(tx).await;
        };
        let now = drift_types::now_ms();
        let mut b = Batch::new();
        crate::conversation::rows(&bundle, now, &mut b);
        let deliveries = deliver::plan(
            &p.sinks,
            &p.drift,
            &mut bundle,
            self.sinks.as_deref(),
            self.force,
        )
        .await?;
        let mut tx = ctx.begin().await?;
        let (_, scrubbed) = warehouse::write_checked(&mut tx, &b).await?;
        if scrubbed.conversations.contains(&self.conversation_id.0) {
            // An erased person's conversation (Drift may serve it until its own erasure
            // completes): nothing of it is written or delivered.
            bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
            tracing::info!(
                conversation.id = self.conversation_id.0,
                "not synced: the conversation belongs to an erased person"
            );
            return ctx.finish(tx).await;
        }
        for d in &deliveries {
            ctx.queue().enqueue(&mut tx, d, now).await?;
        }
        ctx.finish(tx).await
    }
}
