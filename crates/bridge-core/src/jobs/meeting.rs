//! A meeting's event: the stored meeting moves to the newest state any event carried (an
//! older event arriving late changes nothing), and the conversation that booked it is
//! synced and delivered to the sinks that route meeting events, whose documents carry the
//! conversation's meetings as the store holds them when the delivery runs.

use bridge_queue::{JobCtx, JobError};
use bridge_store::tables::{Batch, meeting_key};
use bridge_store::warehouse;
use drift_types::{Meeting, OrgId};
use serde::{Deserialize, Serialize};

use super::conversation::SyncConversation;
use super::kind::JobKind;

/// Upserts a meeting from its event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpsertMeeting {
    /// The meeting as the event carried it.
    pub meeting: Meeting,
    /// `new_meeting` or `meeting_updated` (absent in jobs stored before meetings reached the
    /// sinks: those only write the row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// A `meeting_updated`'s `eventType`: `canceled` or `rescheduled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
}

impl JobKind for UpsertMeeting {
    const NAME: &'static str = "upsert_meeting";
}

/// The stored status a `meeting_updated` of `event_type` leaves.
fn status_after(event_type: &str) -> String {
    match event_type.to_ascii_lowercase().as_str() {
        "canceled" | "cancelled" => "CANCELED".into(),
        "rescheduled" => "RESCHEDULED".into(),
        other => other.to_ascii_uppercase(),
    }
}

impl UpsertMeeting {
    /// The job for a meeting event.
    pub fn from_event(meeting: Meeting, event: &str, event_type: Option<String>) -> Self {
        UpsertMeeting {
            meeting,
            event: Some(event.to_owned()),
            event_type,
        }
    }

    pub(crate) async fn run(self, org: OrgId, ctx: &mut JobCtx) -> Result<(), JobError> {
        let mut m = self.meeting;
        if let Some(t) = &self.event_type {
            m.status = Some(status_after(t));
        }
        let mut tx = ctx.begin().await?;
        let stored = bridge_store::meetings::version(&mut tx, org.0, &meeting_key(&m)).await?;
        let incoming = m.updated_at.map(|t| t.0);
        // Same or older than what is stored (a re-delivery, or an event overtaken by a later
        // one): nothing changes.
        let stale = match stored {
            None | Some(None) => false,
            Some(Some(at)) => incoming.is_none_or(|i| i <= at),
        };
        if stale {
            return ctx.finish(tx).await;
        }
        let mut b = Batch::new();
        b.meeting(org, &m);
        let (_, scrubbed) = warehouse::write_checked(&mut tx, &b).await?;
        if scrubbed.rows > 0 {
            bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id).await?;
            return ctx.finish(tx).await;
        }
        if let (Some(event), Some(conversation)) = (&self.event, m.conversation_id) {
            let job = SyncConversation::new(conversation, event).to_job(Some(org));
            ctx.queue()
                .enqueue(&mut tx, &job, drift_types::now_ms())
                .await?;
        }
        ctx.finish(tx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_s_event_type_sets_the_status() {
        assert_eq!(status_after("canceled"), "CANCELED");
        assert_eq!(status_after("Cancelled"), "CANCELED");
        assert_eq!(status_after("rescheduled"), "RESCHEDULED");
    }
}
