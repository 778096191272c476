//! The conversation sync: everything a conversation references, fetched first and then
//! written in one transaction, so a reader never sees half a conversation.

use anyhow::Context;
use bridge_queue::JobError;
pub use bridge_sinks::sink::ConversationBundle;
use bridge_store::tables::Batch;
use drift_types::{AuthorType, ConversationId, Message, OrgId, UserId};
use futures::TryStreamExt;

use crate::drift::DriftPool;
use crate::jobs::drift_error;

/// Fetches a conversation bundle (without its playbook: only CRM deliveries need that, and
/// [`with_playbook`] adds it). `event` is what asked for it.
pub async fn fetch_conversation(
    drift: &DriftPool,
    org: OrgId,
    id: ConversationId,
    event: &str,
) -> Result<ConversationBundle, JobError> {
    let client = drift.client(org).await?;
    let conversation = client
        .conversation(id)
        .await
        .map_err(|e| drift_error(e, "the conversation"))?;
    let contact = match conversation.contact_id {
        Some(cid) => match client.contact(cid).await {
            Ok(c) => Some(c),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(drift_error(e, "the contact")),
        },
        None => None,
    };
    let messages: Vec<Message> = client
        .messages(id)
        .try_collect()
        .await
        .map_err(|e| drift_error(e, "the messages"))?;
    let mut user_ids: Vec<UserId> = conversation.participants.clone();
    user_ids.extend(
        messages
            .iter()
            .filter(|m| m.author.kind == AuthorType::User)
            .map(|m| UserId(m.author.id)),
    );
    user_ids.sort();
    user_ids.dedup();
    let users = drift
        .users(org, &user_ids)
        .await
        .context("while fetching the participants")?;
    let transcript = match client.transcript(id).await {
        Ok(t) => Some(t),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(drift_error(e, "the transcript")),
    };
    Ok(ConversationBundle {
        org,
        event: event.to_owned(),
        conversation,
        contact,
        users,
        messages,
        transcript,
        playbook: None,
    })
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

/// The bundle's rows: conversation, contact, users, messages and transcript.
pub fn rows(bundle: &ConversationBundle, now_ms: i64, b: &mut Batch) {
    let org = bundle.org;
    b.conversation(org, &bundle.conversation, now_ms);
    if let Some(c) = &bundle.contact {
        b.contact(org, c, now_ms);
    }
    for u in &bundle.users {
        b.user(org, u);
    }
    for m in &bundle.messages {
        b.message(org, m);
    }
    if let Some(t) = &bundle.transcript {
        b.transcript(org, bundle.conversation.id.0, t, now_ms);
    }
}
