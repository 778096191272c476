//! The conversation sync: everything a conversation references, fetched first and then
//! written in one transaction, so a reader never sees half a conversation.

use anyhow::Context;
use bridge_queue::JobError;
use bridge_store::tables::Batch;
use drift_types::{
    AuthorType, Contact, Conversation, ConversationId, Message, OrgId, User, UserId,
};
use futures::TryStreamExt;

use crate::drift::DriftPool;
use crate::jobs::drift_error;

/// A conversation and what it references.
#[derive(Debug, Clone)]
pub struct ConversationBundle {
    /// The conversation.
    pub conversation: Conversation,
    /// Its contact, when it has one that still exists.
    pub contact: Option<Contact>,
    /// Participants and message authors that are users.
    pub users: Vec<User>,
    /// Every message, oldest first.
    pub messages: Vec<Message>,
    /// Drift's plain-text transcript.
    pub transcript: Option<String>,
}

/// Fetches a conversation bundle.
pub async fn fetch_conversation(
    drift: &DriftPool,
    org: OrgId,
    id: ConversationId,
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
        conversation,
        contact,
        users,
        messages,
        transcript,
    })
}

impl ConversationBundle {
    /// The bundle's rows: conversation, contact, users, messages and transcript.
    pub fn rows(&self, org: OrgId, now_ms: i64, b: &mut Batch) {
        b.conversation(org, &self.conversation, now_ms);
        if let Some(c) = &self.contact {
            b.contact(org, c, now_ms);
        }
        for u in &self.users {
            b.user(org, u);
        }
        for m in &self.messages {
            b.message(org, m);
        }
        if let Some(t) = &self.transcript {
            b.transcript(org, self.conversation.id.0, t, now_ms);
        }
    }
}
