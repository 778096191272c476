//! Conversations (drift-api.md §10.1, §5.1) and the request bodies that create them.

use serde::{Deserialize, Serialize};

use crate::lenient::open_enum;
use crate::{ContactId, ConversationId, EpochMillis, InboxId, Message, OrgId, PlaybookId, UserId};

open_enum!(
    /// Conversation status. Unknown statuses are kept verbatim.
    ConversationStatus {
        /// Open.
        Open => "open",
        /// Closed.
        Closed => "closed",
        /// Pending.
        Pending => "pending",
        /// Playbook message delivered but not interacted with.
        BulkSent => "bulk_sent",
    }
);

impl ConversationStatus {
    /// The numeric `statusId` filter value (1 open, 2 closed, 3 pending; 4 bulk_sent is the
    /// house decision of drift-api.md §15).
    pub fn status_id(&self) -> Option<u8> {
        match self {
            Self::Open => Some(1),
            Self::Closed => Some(2),
            Self::Pending => Some(3),
            Self::BulkSent => Some(4),
            Self::Other(_) => None,
        }
    }

    /// The status for a numeric `statusId`.
    pub fn from_status_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Open),
            2 => Some(Self::Closed),
            3 => Some(Self::Pending),
            4 => Some(Self::BulkSent),
            _ => None,
        }
    }
}

/// A conversation tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationTag {
    /// Hex colour without `#`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Tag name.
    pub name: String,
}

/// A conversation as `GET /conversations/{id}` returns it. List endpoints return a subset,
/// so everything beyond the id is optional or defaulted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    /// Conversation id.
    pub id: ConversationId,
    /// Participating users.
    #[serde(default)]
    pub participants: Vec<UserId>,
    /// Status.
    #[serde(default = "default_status")]
    pub status: ConversationStatus,
    /// The contact (end user) of the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// Inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<InboxId>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    /// Last update (status changes and new messages bump it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochMillis>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// The playbook that started it; absent for the default welcome message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_playbook_id: Option<PlaybookId>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversation_tags: Vec<ConversationTag>,
}

fn default_status() -> ConversationStatus {
    ConversationStatus::Open
}

/// Body of `POST /conversations/new`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewConversation {
    /// The contact's email; the earliest contact with it is used or one is created.
    pub email: String,
    /// The first message.
    pub message: NewConversationMessage,
}

/// The first message of [`NewConversation`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewConversationMessage {
    /// HTML body.
    pub body: String,
    /// Attributes, for example `integrationSource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `data` of `GET /conversations/{id}/messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessagesData {
    /// Messages of this page in creation order.
    #[serde(default)]
    pub messages: Vec<Message>,
}
