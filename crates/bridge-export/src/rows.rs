//! The rows of one fetched conversation: the one mapping the webhook sync and the export
//! share (users are added by each caller: the sync from its per-org cache, the export from
//! the user list).

use bridge_store::tables::{Batch, Outcomes};
use drift_client::FetchedConversation;
use drift_types::{Contact, Conversation, Message, OrgId};

/// A fetched conversation, borrowed from whatever holds it.
#[derive(Clone, Debug)]
pub struct ConversationView<'a> {
    /// The conversation.
    pub conversation: &'a Conversation,
    /// Whether its own row is wanted (the export can select only its messages, say).
    pub with_details: bool,
    /// Its contact.
    pub contact: Option<&'a Contact>,
    /// Its messages.
    pub messages: &'a [Message],
    /// Whether `messages` is the complete list (an export may not fetch them): only then are
    /// the conversation's facts computed.
    pub messages_complete: bool,
    /// Its transcript.
    pub transcript: Option<&'a str>,
    /// Its goal and meetings as the caller knows them (a SQL store recomputes them).
    pub outcomes: Outcomes,
}

impl<'a> ConversationView<'a> {
    /// A view of what [`DriftClient::fetch_conversation`](drift_client::DriftClient) returned.
    pub fn of(f: &'a FetchedConversation, with_details: bool, messages_complete: bool) -> Self {
        ConversationView {
            conversation: &f.conversation,
            with_details,
            contact: f.contact.as_ref(),
            messages: &f.messages,
            messages_complete,
            transcript: f.transcript.as_deref(),
            outcomes: Outcomes::default(),
        }
    }
}

/// Adds the conversation (when its row is wanted) with its facts (when its messages are
/// complete too), its contact, its messages and its transcript to `b`.
pub fn conversation(b: &mut Batch, org: OrgId, v: ConversationView<'_>, now_ms: i64) {
    if v.with_details {
        b.conversation(org, v.conversation, now_ms);
        if v.messages_complete {
            b.conversation_facts(org, v.conversation, v.messages, v.outcomes);
        }
    }
    if let Some(c) = v.contact {
        b.contact(org, c, now_ms);
    }
    for m in v.messages {
        b.message(org, m);
    }
    if let Some(t) = v.transcript {
        b.transcript(org, v.conversation.id.0, t, now_ms);
    }
}
