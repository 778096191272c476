//! First-touch attribution: derived from the widget events whenever a batch names a
//! conversation; a conversation already handed to sinks is delivered to them again (only
//! sinks whose documents change with it write anything).

use bridge_queue::{JobCtx, JobError};
use drift_types::{ConversationId, OrgId};
use serde::{Deserialize, Serialize};

use super::conversation::SyncConversation;
use super::kind::JobKind;

/// Derives a conversation's first-touch attribution from its widget events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeriveAttribution {
    /// Which conversation.
    pub conversation_id: ConversationId,
}

impl JobKind for DeriveAttribution {
    const NAME: &'static str = "derive_attribution";
}

impl DeriveAttribution {
    pub(crate) async fn run(self, org: OrgId, ctx: &mut JobCtx) -> Result<(), JobError> {
        let id = self.conversation_id.0;
        let mut tx = ctx.begin().await?;
        let found = bridge_store::widget::derive_attribution(&mut tx, org.0, id).await?;
        let sinks = bridge_store::deliveries::sinks_of(&mut tx, org.0, id).await?;
        if found.is_some() && !sinks.is_empty() {
            let job = SyncConversation {
                sinks: Some(sinks),
                ..SyncConversation::new(self.conversation_id, "widget_attribution")
            }
            .to_job(Some(org));
            ctx.queue()
                .enqueue(&mut tx, &job, drift_types::now_ms())
                .await?;
        }
        ctx.finish(tx).await
    }
}
