//! A meeting's event: the stored meeting moves to the newest state any event carried (an
//! older event arriving late changes nothing), and the conversation that booked it is
//! synced and delivered to the sinks that route meeting events, whose documents carry the
//! conversation's meetings as the store holds them when the delivery runs. A meeting booked
//! from a calendar page has no conversation: it goes out as a signal about its scheduler
//! (`jobs/signal.rs`), which carries the meeting as the store holds it at its delivery.

use bridge_queue::{JobCtx, JobError};
use bridge_store::tables::{Batch, meeting_key};
use bridge_store::warehouse;
use drift_types::{Meeting, OrgId};
use serde::{Deserialize, Serialize};

use super::conversation::SyncConversation;
use super::kind::JobKind;
use super::signal::PlanSignal;

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
    /// Deliver even when the stored meeting is as new as this event (`replay --event`): the
    /// row stays as it is, the sinks get the meeting again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redeliver: bool,
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

/// Whether an event's meeting is the same as or older than the stored one (a re-delivery, or
/// an event overtaken by a later one), so nothing changes. Without times to compare, an
/// update (a reschedule or cancellation) is applied and a booking only creates.
fn is_stale(stored: Option<Option<i64>>, incoming: Option<i64>, update: bool) -> bool {
    match (stored, incoming) {
        (None, _) | (Some(None), _) => false,
        (Some(Some(at)), Some(i)) => i <= at,
        (Some(Some(_)), None) => !update,
    }
}

impl UpsertMeeting {
    /// The job for a meeting event.
    pub fn from_event(meeting: Meeting, event: &str, event_type: Option<String>) -> Self {
        UpsertMeeting {
            meeting,
            event: Some(event.to_owned()),
            event_type,
            redeliver: false,
        }
    }

    pub(crate) async fn run(self, org: OrgId, ctx: &mut JobCtx) -> Result<(), JobError> {
        let mut m = self.meeting;
        if let Some(t) = &self.event_type {
            m.status = Some(status_after(t));
        }
        let mut tx = ctx.begin().await?;
        let stored = bridge_store::meetings::version(&mut tx, org.0, &meeting_key(&m)).await?;
        let update = self.event.as_deref() == Some("meeting_updated");
        if is_stale(stored, m.updated_at.map(|t| t.0), update) {
            if !self.redeliver {
                return ctx.finish(tx).await;
            }
            // Replayed: the stored row is as new or newer and stays; the deliveries below
            // read it.
        } else {
            let mut b = Batch::new();
            b.meeting(org, &m);
            let (_, scrubbed) = warehouse::write_checked(&mut tx, &b).await?;
            if scrubbed.rows > 0 {
                bridge_store::privacy::forget_job_data(&mut tx, ctx.job.id, ctx.job.event_id)
                    .await?;
                return ctx.finish(tx).await;
            }
        }
        let job = match (&self.event, m.conversation_id, m.scheduler_id) {
            (Some(event), Some(conversation), _) => {
                Some(SyncConversation::new(conversation, event).to_job(Some(org)))
            }
            // Booked from a calendar page: no conversation carries it, so it reaches the
            // sinks as a signal about the person who booked.
            (Some(event), None, Some(contact)) => Some(
                PlanSignal {
                    meeting_key: Some(meeting_key(&m)),
                    ..PlanSignal::new(event, contact)
                }
                .to_job(Some(org)),
            ),
            _ => None,
        };
        if let Some(job) = job {
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
    fn only_a_newer_event_moves_a_stored_meeting() {
        assert!(!is_stale(None, Some(5), false), "nothing stored yet");
        assert!(is_stale(Some(Some(5)), Some(5), true), "a re-delivery");
        assert!(
            is_stale(Some(Some(9)), Some(5), false),
            "a booking after its reschedule"
        );
        assert!(
            !is_stale(Some(Some(5)), Some(9), true),
            "a later reschedule"
        );
        assert!(
            !is_stale(Some(Some(5)), None, true),
            "an update without a time applies"
        );
        assert!(
            is_stale(Some(Some(5)), None, false),
            "a booking without a time only creates"
        );
    }

    #[test]
    fn an_update_s_event_type_sets_the_status() {
        assert_eq!(status_after("canceled"), "CANCELED");
        assert_eq!(status_after("Cancelled"), "CANCELED");
        assert_eq!(status_after("rescheduled"), "RESCHEDULED");
    }
}
