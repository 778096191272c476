//! Messages, buttons and message context (drift-api.md §10.2, §10.3, §5.1.2).

use serde::{Deserialize, Serialize};

use crate::lenient::open_enum;
use crate::{ConversationId, EpochMillis, MessageId, OrgId, UserId};

open_enum!(
    /// Who wrote a message.
    AuthorType {
        /// The end user.
        Contact => "contact",
        /// A Drift user (agent or bot).
        User => "user",
    }
);

open_enum!(
    /// Message type.
    MessageType {
        /// Visible to the contact and users.
        Chat => "chat",
        /// Visible to users only.
        PrivateNote => "private_note",
        /// Visible to users only; may carry compose/action buttons.
        PrivatePrompt => "private_prompt",
        /// Suggestion (legacy).
        Suggestion => "suggestion",
        /// An edit of another message (legacy).
        Edit => "edit",
    }
);

open_enum!(
    /// Kind of a message button.
    ButtonType {
        /// Clicking sends the label as a contact message.
        Reply => "reply",
        /// Inserts `value` into the user's composer.
        Compose => "compose",
        /// Signals the app via the `button_action` webhook.
        Action => "action",
    }
);

/// The author of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Contact or user.
    #[serde(rename = "type")]
    pub kind: AuthorType,
    /// Contact id or user id, depending on `kind`.
    pub id: i64,
    /// True for the org's bot user.
    #[serde(default)]
    pub bot: bool,
}

impl Author {
    /// The author as a user id, when a user wrote it.
    pub fn user_id(&self) -> Option<UserId> {
        (self.kind == AuthorType::User).then_some(UserId(self.id))
    }
}

/// What happens to a message when a button is clicked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReaction {
    /// `replace` or `delete`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Replacement message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A message button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageButton {
    /// Visible label.
    pub label: String,
    /// Value (equals the label for reply buttons).
    #[serde(default)]
    pub value: String,
    /// Kind.
    #[serde(rename = "type", default = "default_button_type")]
    pub kind: ButtonType,
    /// `primary` or `danger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Click reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ButtonReaction>,
}

fn default_button_type() -> ButtonType {
    ButtonType::Reply
}

/// Geographic location in a message context.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region or state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Latitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// Browser context of a contact message. Extra keys are kept in `extra`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageContext {
    /// Visitor IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Visitor user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Page title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// Time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Keys this version does not model.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A file attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// File name.
    #[serde(default)]
    pub file_name: String,
    /// MIME type.
    #[serde(default)]
    pub mime_type: String,
    /// Download URL.
    #[serde(default)]
    pub url: String,
    /// The attachment's document id, the `{id}` of `GET /attachments/{id}/data` (not in
    /// Drift's documented shape; read from the URL when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Size in bytes, when Drift says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

impl Attachment {
    /// The document id: `id`, else the number in a `.../attachments/{id}/data` URL.
    pub fn document_id(&self) -> Option<i64> {
        self.id.or_else(|| {
            let path = self.url.split(['?', '#']).next().unwrap_or_default();
            let mut parts = path.rsplit('/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("data"), Some(id), Some("attachments")) => id.parse().ok(),
                _ => None,
            }
        })
    }
}

/// A message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Message id.
    pub id: MessageId,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Creation time.
    pub created_at: EpochMillis,
    /// HTML body; absent for button-only messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Author.
    pub author: Author,
    /// Type.
    #[serde(rename = "type", default = "default_message_type")]
    pub kind: MessageType,
    /// Buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<MessageButton>>,
    /// Browser context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    /// Attributes such as `preMessages` and `developer_app_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// For edit messages: the edited message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_message_id: Option<MessageId>,
    /// For edit messages: `delete|replace|replace_body|replace_buttons`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_type: Option<String>,
    /// Attachments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<Attachment>>,
}

fn default_message_type() -> MessageType {
    MessageType::Chat
}

/// Body of `POST /conversations/{id}/messages`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    /// `chat` or `private_note` (legacy: `private_prompt`, `edit`).
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// HTML body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<MessageButton>>,
    /// Author; the org's bot when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// Edited message, for `edit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_message_id: Option<MessageId>,
    /// Edit type, for `edit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit_type: Option<String>,
}

impl NewMessage {
    /// A chat message with an HTML body, written by the bot.
    pub fn chat(body: impl Into<String>) -> Self {
        Self {
            kind: MessageType::Chat,
            body: Some(body.into()),
            buttons: None,
            user_id: None,
            edited_message_id: None,
            edit_type: None,
        }
    }
}
