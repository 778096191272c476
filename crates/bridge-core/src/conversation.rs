//! The conversation sync's fetch: everything a conversation references, through the same
//! [`DriftClient::fetch_conversation`](drift_client::DriftClient::fetch_conversation) as the
//! export, then its users from the per-org cache; written in one transaction by the job, so
//! a reader never sees half a conversation.

use anyhow::Context;
use bridge_export::rows::ConversationView;
use bridge_queue::JobError;
pub use bridge_sinks::sink::ConversationBundle;
use bridge_store::tables::Batch;
use drift_client::Parts;
use drift_types::{ConversationId, OrgId};

use crate::drift::DriftPool;
use crate::failure::fetch_error;

/// Fetches a conversation bundle (without its playbook: only CRM deliveries need that, and
/// [`with_playbook`] adds it). `event` is what asked for it. `None`: Drift answers 404 for the
/// conversation (deleted there).
pub async fn fetch(
    drift: &DriftPool,
    org: OrgId,
    id: ConversationId,
    event: &str,
) -> Result<Option<ConversationBundle>, JobError> {
    let client = drift.client(org).await?;
    let f = match client
        .fetch_conversation(id, None, Parts::ALL, |_| true)
        .await
    {
        Ok(f) => f,
        // The conversation itself is gone from Drift: not a failure to retry.
        Err(e) if e.part == drift_client::Part::Conversation && e.source.is_not_found() => {
            return Ok(None);
        }
        Err(e) => return Err(fetch_error(e)),
    };
    let users = drift
        .users(org, &f.referenced_users())
        .await
        .context("while fetching the participants")?;
    Ok(Some(ConversationBundle {
        org,
        event: event.to_owned(),
        conversation: f.conversation,
        contact: f.contact,
        users,
        messages: f.messages,
        transcript: f.transcript,
        playbook: None,
        attribution: None,
        meetings: Vec::new(),
        opted_out: false,
    }))
}

/// Adds the bundle's playbook (from the per-org playbook cache).
pub async fn with_playbook(
    drift: &DriftPool,
    bundle: &mut ConversationBundle,
) -> anyhow::Result<()> {
    if let Some(id) = bundle.conversation.related_playbook_id {
        bundle.playbook = drift
            .playbook(bundle.org, id)
            .await
            .context("while fetching the playbook")?;
    }
    Ok(())
}

/// The bundle's rows: the export's mapping of the fetched conversation, plus its users.
pub fn rows(bundle: &ConversationBundle, now_ms: i64, b: &mut Batch) {
    let org = bundle.org;
    let view = ConversationView {
        conversation: &bundle.conversation,
        with_details: true,
        contact: bundle.contact.as_ref(),
        messages: &bundle.messages,
        messages_complete: true,
        transcript: bundle.transcript.as_deref(),
        // The store this is written to recomputes them from its goals and meetings.
        outcomes: Default::default(),
    };
    bridge_export::rows::conversation(b, org, view, now_ms);
    for u in &bundle.users {
        b.user(org, u);
    }
}
