//! One conversation with everything it references, fetched the same way for the webhook
//! sync and the export, so that both write the same rows.
//!
//! The rule for users: a conversation references its participants and the author of every
//! message written by a Drift user, the org's bot included (the bot is a Drift user: its
//! messages name it, so a warehouse that drops it has messages whose author it cannot name).

use drift_types::{AuthorType, Contact, ContactId, Conversation, ConversationId, Message, UserId};
use futures::TryStreamExt;

use crate::{DriftClient, Error};

/// Which parts of a conversation to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// `GET /conversations/{id}` (else the listed copy is used).
    pub details: bool,
    /// Every message page.
    pub messages: bool,
    /// The transcript.
    pub transcript: bool,
    /// The contact (subject to the caller's `want_contact`).
    pub contact: bool,
}

impl Parts {
    /// Everything.
    pub const ALL: Parts = Parts {
        details: true,
        messages: true,
        transcript: true,
        contact: true,
    };
}

/// A fetched conversation. A missing contact or transcript (404) is `None`.
#[derive(Clone, Debug)]
pub struct FetchedConversation {
    /// The conversation (fetched, or as listed when details were not asked for).
    pub conversation: Conversation,
    /// Its contact.
    pub contact: Option<Contact>,
    /// Its messages, oldest first (empty when not asked for).
    pub messages: Vec<Message>,
    /// Its transcript.
    pub transcript: Option<String>,
}

impl FetchedConversation {
    /// The users it references: participants and user authors, bots included; sorted, once
    /// each.
    pub fn referenced_users(&self) -> Vec<UserId> {
        let mut ids: Vec<UserId> = self.conversation.participants.clone();
        ids.extend(
            self.messages
                .iter()
                .filter(|m| m.author.kind == AuthorType::User)
                .map(|m| UserId(m.author.id)),
        );
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Which part failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The conversation itself.
    Conversation,
    /// Its contact.
    Contact,
    /// A message page.
    Messages,
    /// The transcript.
    Transcript,
}

impl Part {
    /// `the conversation`, `the contact`, ...
    pub fn what(self) -> &'static str {
        match self {
            Part::Conversation => "the conversation",
            Part::Contact => "the contact",
            Part::Messages => "the messages",
            Part::Transcript => "the transcript",
        }
    }
}

/// A part of the conversation could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("while fetching {}", part.what())]
pub struct FetchError {
    /// Which part.
    pub part: Part,
    /// The client's error (it answers `is_retryable`, `status`).
    #[source]
    pub source: Error,
}

fn at(part: Part) -> impl FnOnce(Error) -> FetchError {
    move |source| FetchError { part, source }
}

impl DriftClient {
    /// `GET /contacts/{id}`, `None` when Drift no longer has it (deleted, GDPR).
    pub async fn contact_if_exists(&self, id: ContactId) -> Result<Option<Contact>, Error> {
        match self.contact(id).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches conversation `id` with the `parts` asked for. `listed` is the copy from the
    /// conversation list, used when `parts.details` is off. `want_contact` is asked once,
    /// with the contact's id, before the contact is fetched.
    pub async fn fetch_conversation(
        &self,
        id: ConversationId,
        listed: Option<Conversation>,
        parts: Parts,
        want_contact: impl FnOnce(ContactId) -> bool,
    ) -> Result<FetchedConversation, FetchError> {
        let conversation = match listed {
            Some(c) if !parts.details => c,
            _ => self
                .conversation(id)
                .await
                .map_err(at(Part::Conversation))?,
        };
        let contact = match conversation.contact_id {
            Some(cid) if parts.contact && want_contact(cid) => self
                .contact_if_exists(cid)
                .await
                .map_err(at(Part::Contact))?,
            _ => None,
        };
        let messages = if parts.messages {
            self.messages(id)
                .try_collect()
                .await
                .map_err(at(Part::Messages))?
        } else {
            Vec::new()
        };
        let transcript = if parts.transcript {
            match self.transcript(id).await {
                Ok(t) => Some(t),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(at(Part::Transcript)(e)),
            }
        } else {
            None
        };
        Ok(FetchedConversation {
            conversation,
            contact,
            messages,
            transcript,
        })
    }
}
