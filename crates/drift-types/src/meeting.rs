//! Booked meetings (drift-api.md §10.8).

use serde::{Deserialize, Serialize};

use crate::{ContactId, ConversationId, EpochMillis, OrgId, UserId};

/// A booked meeting. Fields are absent when unset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    /// The agent the meeting is with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<UserId>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// ACTIVE, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// e.g. EMAIL_DROP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_source: Option<String>,
    /// The contact who booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_id: Option<ContactId>,
    /// Calendar event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Meeting id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_start: Option<EpochMillis>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_end: Option<EpochMillis>,
    /// Last update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochMillis>,
    /// Booking time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<EpochMillis>,
    /// e.g. "New Meeting".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_type: Option<String>,
    /// The conversation it was booked in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The contact's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user_time_zone: Option<String>,
    /// Notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_notes: Option<String>,
    /// Who booked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booked_by: Option<i64>,
}
