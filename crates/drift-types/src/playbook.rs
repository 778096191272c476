//! Playbooks and conversational landing pages (drift-api.md §10.7, §5.5).

use serde::{Deserialize, Serialize};

use crate::{EpochMillis, OrgId, PlaybookId, UserId};

/// A playbook goal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookGoal {
    /// Goal id (a UUID string).
    pub id: String,
    /// Goal text.
    #[serde(default)]
    pub message: String,
}

/// A playbook, as `GET /playbooks/list` returns it (a bare array).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Playbook {
    /// Playbook id.
    pub id: PlaybookId,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    /// Last update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochMillis>,
    /// Creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_author_id: Option<UserId>,
    /// Last editor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_author_id: Option<UserId>,
    /// Interaction id used by the widget's `startInteraction`; null while draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction_id: Option<i64>,
    /// Report type, e.g. `BOOK_MORE_MEETINGS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_type: Option<String>,
    /// Goals.
    #[serde(default)]
    pub goals: Vec<PlaybookGoal>,
}

/// A conversational landing page (`GET /playbooks/clp`). The key names are not documented;
/// these follow the field names of the other playbook objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LandingPage {
    /// Playbook id.
    #[serde(alias = "playbookId")]
    pub id: PlaybookId,
    /// Playbook name.
    #[serde(default, alias = "playbookName")]
    pub name: String,
    /// Landing page URL.
    #[serde(default, alias = "landingPageUrl")]
    pub url: String,
}
