//! The webhook envelope `{type, token, orgId, data}` (drift-api.md §8.2) and one typed
//! event per event type of §8.3.
//!
//! Parsing happens in two steps so that nothing is lost: [`WebhookEnvelope`] accepts any
//! JSON object with a string `type`; [`WebhookEnvelope::event`] then types the `data`.
//! Unknown event types become [`WebhookEvent::Unknown`] with the raw JSON kept.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Author, Contact, ContactId, Conversation, ConversationId, EpochMillis, Meeting, Message,
    MessageButton, MessageId, OrgId, PlaybookId, Secret, UserId,
};

/// Every event type this version knows, in the order of drift-api.md §8.3.
pub const EVENT_TYPES: &[&str] = &[
    "contact_identified",
    "new_message",
    "new_command_message",
    "new_conversation",
    "conversation_status_updated",
    "conversation_participant_added",
    "conversation_participant_removed",
    "conversation_push",
    "conversation_manual_push",
    "conversation_inactive",
    "button_action",
    "button_clicked",
    "playbook_goal_met",
    "phone_captured",
    "contact_updated",
    "user_availability_updated",
    "user_unsubscribed",
    "new_meeting",
    "meeting_updated",
    "chat_to_call",
    "gdpr_delete_requested",
    "app_disconnected",
];

/// The webhook envelope as delivered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEnvelope {
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The app's verification token (also sent as `X-Verification-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The org the event belongs to.
    #[serde(rename = "orgId", default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Event data, shaped by `event_type`.
    #[serde(default)]
    pub data: Value,
}

/// A known event type whose `data` does not have the documented shape.
#[derive(Debug)]
pub struct WebhookDataError {
    /// The event type.
    pub event_type: String,
    /// Why the data did not fit.
    pub source: serde_json::Error,
}

impl std::fmt::Display for WebhookDataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` event data is malformed: {}",
            self.event_type, self.source
        )
    }
}

impl std::error::Error for WebhookDataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl WebhookEnvelope {
    /// Builds an envelope for `event`.
    pub fn new(event: &WebhookEvent, org_id: OrgId, token: Option<Secret>) -> Self {
        Self {
            event_type: event.event_type().to_owned(),
            token,
            org_id: Some(org_id),
            data: event.data_json(),
        }
    }

    /// Types the `data` according to `event_type`.
    pub fn event(&self) -> Result<WebhookEvent, WebhookDataError> {
        WebhookEvent::from_parts(&self.event_type, &self.data)
    }
}

/// `conversation_push` details.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushDetails {
    /// The conversation to sync.
    pub conversation_id: ConversationId,
    /// The user who pushed it, for manual pushes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_at: Option<EpochMillis>,
}

/// `conversation_push` data: `{source, data: {conversationId, userId, pushedAt}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationPush {
    /// e.g. `conversation_manual_push`, `conversation_inactive`, `conversation_closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Details.
    pub data: PushDetails,
}

/// `conversation_inactive` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInactive {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Last activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<EpochMillis>,
}

/// `conversation_status_updated` data (deprecated by Drift).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusUpdated {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// New status.
    #[serde(default)]
    pub status: String,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<EpochMillis>,
}

/// `conversation_participant_added` / `_removed` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantsChanged {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Users added (`addedParticipants`) or removed (`removedParticipants`).
    #[serde(default, alias = "addedParticipants", alias = "removedParticipants")]
    pub participants: Vec<UserId>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<EpochMillis>,
}

/// `button_action` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ButtonAction {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Who clicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    /// The message carrying the button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_id: Option<MessageId>,
    /// The button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<MessageButton>,
}

/// `playbook_goal_met` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookGoalMet {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_id: Option<PlaybookId>,
    /// Contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// Goal (UUID string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_id: Option<String>,
    /// Goal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal_name: Option<String>,
    /// Playbook name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_name: Option<String>,
    /// Contact email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
}

/// `phone_captured` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneCaptured {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_id: Option<i64>,
    /// Author type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_type: Option<String>,
    /// The number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// One changed attribute in `contact_updated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeDiff {
    /// `attributes.X` or `X.Y`.
    pub name: String,
    /// Old value.
    #[serde(default)]
    pub previous: Value,
    /// New value.
    #[serde(default)]
    pub updated: Value,
}

/// `contact_updated` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpdated {
    /// The contact.
    pub end_user_id: ContactId,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<EpochMillis>,
    /// Org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Changes.
    #[serde(default)]
    pub diff: Vec<AttributeDiff>,
}

/// `user_availability_updated` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityUpdated {
    /// The user.
    pub user_id: UserId,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochMillis>,
    /// e.g. ONLINE, AVAILABLE, OFFLINE.
    #[serde(default)]
    pub availability: String,
}

/// `meeting_updated` data: the meeting plus what happened to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingUpdated {
    /// `canceled` or `rescheduled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The meeting.
    #[serde(flatten)]
    pub meeting: Meeting,
}

/// `gdpr_delete_requested` data (house decision: `{email, requestedAt}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GdprDeleteRequested {
    /// The data subject.
    pub email: String,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<EpochMillis>,
}

/// `app_disconnected` data (house decision: `{orgId, appId, disconnectedAt}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDisconnected {
    /// Org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// App.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<Value>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_at: Option<EpochMillis>,
}

/// A typed webhook event.
#[derive(Clone, Debug, PartialEq)]
pub enum WebhookEvent {
    /// A contact gave an email in chat.
    ContactIdentified(Contact),
    /// A message was created.
    NewMessage(Message),
    /// A message starting with `/`.
    NewCommandMessage(Message),
    /// A visitor started a conversation.
    NewConversation(Conversation),
    /// Status changed (deprecated by Drift).
    ConversationStatusUpdated(StatusUpdated),
    /// Users added.
    ConversationParticipantAdded(ParticipantsChanged),
    /// Users removed.
    ConversationParticipantRemoved(ParticipantsChanged),
    /// Conversation ready for sync.
    ConversationPush(ConversationPush),
    /// Closed or manually pushed.
    ConversationManualPush(PushDetails),
    /// Idle timeout.
    ConversationInactive(ConversationInactive),
    /// An action button was clicked.
    ButtonAction(ButtonAction),
    /// A button was clicked (sample is a message).
    ButtonClicked(Message),
    /// A playbook goal was met.
    PlaybookGoalMet(PlaybookGoalMet),
    /// A phone number was captured.
    PhoneCaptured(PhoneCaptured),
    /// Contact attributes changed.
    ContactUpdated(ContactUpdated),
    /// Agent availability changed.
    UserAvailabilityUpdated(AvailabilityUpdated),
    /// A contact unsubscribed from emails (also spelled `user_unsubscribe`).
    UserUnsubscribed(Contact),
    /// A meeting was booked.
    NewMeeting(Meeting),
    /// A meeting was rescheduled or canceled.
    MeetingUpdated(MeetingUpdated),
    /// A chat-to-call finished (shape undocumented, kept raw).
    ChatToCall(Value),
    /// GDPR deletion requested.
    GdprDeleteRequested(GdprDeleteRequested),
    /// The org disconnected the app.
    AppDisconnected(AppDisconnected),
    /// An event type this version does not know; kept verbatim.
    Unknown {
        /// The `type` as delivered.
        event_type: String,
        /// The `data` as delivered.
        data: Value,
    },
}

impl WebhookEvent {
    /// Types `data` by `event_type`.
    pub fn from_parts(event_type: &str, data: &Value) -> Result<Self, WebhookDataError> {
        fn de<T: serde::de::DeserializeOwned>(t: &str, v: &Value) -> Result<T, WebhookDataError> {
            T::deserialize(v).map_err(|source| WebhookDataError {
                event_type: t.to_owned(),
                source,
            })
        }
        let t = event_type;
        Ok(match t {
            "contact_identified" => Self::ContactIdentified(de(t, data)?),
            "new_message" => Self::NewMessage(de(t, data)?),
            "new_command_message" => Self::NewCommandMessage(de(t, data)?),
            "new_conversation" => Self::NewConversation(de(t, data)?),
            "conversation_status_updated" => Self::ConversationStatusUpdated(de(t, data)?),
            "conversation_participant_added" => Self::ConversationParticipantAdded(de(t, data)?),
            "conversation_participant_removed" => {
                Self::ConversationParticipantRemoved(de(t, data)?)
            }
            "conversation_push" => Self::ConversationPush(de(t, data)?),
            "conversation_manual_push" => Self::ConversationManualPush(de(t, data)?),
            "conversation_inactive" => Self::ConversationInactive(de(t, data)?),
            "button_action" => Self::ButtonAction(de(t, data)?),
            "button_clicked" => Self::ButtonClicked(de(t, data)?),
            "playbook_goal_met" => Self::PlaybookGoalMet(de(t, data)?),
            "phone_captured" => Self::PhoneCaptured(de(t, data)?),
            "contact_updated" => Self::ContactUpdated(de(t, data)?),
            "user_availability_updated" => Self::UserAvailabilityUpdated(de(t, data)?),
            "user_unsubscribed" | "user_unsubscribe" => Self::UserUnsubscribed(de(t, data)?),
            "new_meeting" => Self::NewMeeting(de(t, data)?),
            "meeting_updated" => Self::MeetingUpdated(de(t, data)?),
            "chat_to_call" => Self::ChatToCall(data.clone()),
            "gdpr_delete_requested" => Self::GdprDeleteRequested(de(t, data)?),
            "app_disconnected" => Self::AppDisconnected(de(t, data)?),
            other => Self::Unknown {
                event_type: other.to_owned(),
                data: data.clone(),
            },
        })
    }

    /// The wire `type`.
    pub fn event_type(&self) -> &str {
        match self {
            Self::ContactIdentified(_) => "contact_identified",
            Self::NewMessage(_) => "new_message",
            Self::NewCommandMessage(_) => "new_command_message",
            Self::NewConversation(_) => "new_conversation",
            Self::ConversationStatusUpdated(_) => "conversation_status_updated",
            Self::ConversationParticipantAdded(_) => "conversation_participant_added",
            Self::ConversationParticipantRemoved(_) => "conversation_participant_removed",
            Self::ConversationPush(_) => "conversation_push",
            Self::ConversationManualPush(_) => "conversation_manual_push",
            Self::ConversationInactive(_) => "conversation_inactive",
            Self::ButtonAction(_) => "button_action",
            Self::ButtonClicked(_) => "button_clicked",
            Self::PlaybookGoalMet(_) => "playbook_goal_met",
            Self::PhoneCaptured(_) => "phone_captured",
            Self::ContactUpdated(_) => "contact_updated",
            Self::UserAvailabilityUpdated(_) => "user_availability_updated",
            Self::UserUnsubscribed(_) => "user_unsubscribed",
            Self::NewMeeting(_) => "new_meeting",
            Self::MeetingUpdated(_) => "meeting_updated",
            Self::ChatToCall(_) => "chat_to_call",
            Self::GdprDeleteRequested(_) => "gdpr_delete_requested",
            Self::AppDisconnected(_) => "app_disconnected",
            Self::Unknown { event_type, .. } => event_type,
        }
    }

    /// The `data` as JSON.
    pub fn data_json(&self) -> Value {
        fn j<T: Serialize>(v: &T) -> Value {
            serde_json::to_value(v).unwrap_or(Value::Null)
        }
        match self {
            Self::ContactIdentified(c) | Self::UserUnsubscribed(c) => j(c),
            Self::NewMessage(m) | Self::NewCommandMessage(m) | Self::ButtonClicked(m) => j(m),
            Self::NewConversation(c) => j(c),
            Self::ConversationStatusUpdated(s) => j(s),
            Self::ConversationParticipantAdded(p) => participants_json(p, "addedParticipants"),
            Self::ConversationParticipantRemoved(p) => participants_json(p, "removedParticipants"),
            Self::ConversationPush(p) => j(p),
            Self::ConversationManualPush(p) => j(p),
            Self::ConversationInactive(p) => j(p),
            Self::ButtonAction(b) => j(b),
            Self::PlaybookGoalMet(g) => j(g),
            Self::PhoneCaptured(p) => j(p),
            Self::ContactUpdated(c) => j(c),
            Self::UserAvailabilityUpdated(u) => j(u),
            Self::NewMeeting(m) => j(m),
            Self::MeetingUpdated(m) => j(m),
            Self::GdprDeleteRequested(g) => j(g),
            Self::AppDisconnected(a) => j(a),
            Self::ChatToCall(v) | Self::Unknown { data: v, .. } => v.clone(),
        }
    }

    /// The conversation this event is about, if any.
    pub fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            Self::NewMessage(m) | Self::NewCommandMessage(m) | Self::ButtonClicked(m) => {
                Some(m.conversation_id)
            }
            Self::NewConversation(c) => Some(c.id),
            Self::ConversationStatusUpdated(s) => Some(s.conversation_id),
            Self::ConversationParticipantAdded(p) | Self::ConversationParticipantRemoved(p) => {
                Some(p.conversation_id)
            }
            Self::ConversationPush(p) => Some(p.data.conversation_id),
            Self::ConversationManualPush(p) => Some(p.conversation_id),
            Self::ConversationInactive(c) => Some(c.conversation_id),
            Self::ButtonAction(b) => Some(b.conversation_id),
            Self::PlaybookGoalMet(g) => Some(g.conversation_id),
            Self::PhoneCaptured(p) => Some(p.conversation_id),
            Self::NewMeeting(m) => m.conversation_id,
            Self::MeetingUpdated(m) => m.meeting.conversation_id,
            _ => None,
        }
    }
}

fn participants_json(p: &ParticipantsChanged, key: &str) -> Value {
    let mut v = serde_json::json!({ "conversationId": p.conversation_id, key: p.participants });
    if let (Some(at), Some(obj)) = (p.changed_at, v.as_object_mut()) {
        obj.insert("changedAt".into(), at.get().into());
    }
    v
}
