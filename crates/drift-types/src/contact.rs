//! Contacts (drift-api.md §10.4, §5.2): an id, a creation time and an open attribute map.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ContactId, EpochMillis};

/// A contact (end user / site visitor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Contact id (int64).
    pub id: ContactId,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    /// All attributes, standard and custom.
    #[serde(default)]
    pub attributes: ContactAttributes,
}

/// The open attribute map of a contact, with accessors for the common keys.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactAttributes(pub Map<String, Value>);

impl ContactAttributes {
    fn str_of(&self, keys: &[&str]) -> Option<&str> {
        keys.iter()
            .filter_map(|k| self.0.get(*k).and_then(Value::as_str))
            .find(|s| !s.is_empty())
    }

    /// `email`.
    pub fn email(&self) -> Option<&str> {
        self.str_of(&["email"])
    }

    /// `name`, else `display_name`.
    pub fn name(&self) -> Option<&str> {
        self.str_of(&["name", "display_name"])
    }

    /// `phone`.
    pub fn phone(&self) -> Option<&str> {
        self.str_of(&["phone"])
    }

    /// `externalId`, else its mirror `external_id`.
    pub fn external_id(&self) -> Option<&str> {
        self.str_of(&["externalId", "external_id"])
    }

    /// `first_name`.
    pub fn first_name(&self) -> Option<&str> {
        self.str_of(&["first_name"])
    }

    /// `last_name`.
    pub fn last_name(&self) -> Option<&str> {
        self.str_of(&["last_name"])
    }

    /// Any attribute.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

/// Body of `POST /contacts` and `PATCH /contacts/{id}`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactWrite {
    /// Attributes to set; new keys become custom attributes.
    pub attributes: Map<String, Value>,
}

/// A custom attribute definition from `GET /contacts/attributes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDefinition {
    /// STRING, NUMERIC, BOOLEAN, DATETIME, DATE.
    #[serde(rename = "type")]
    pub kind: String,
    /// Label shown in the UI.
    #[serde(default)]
    pub display_name: String,
    /// Key used in `attributes`.
    pub name: String,
}

/// `data` of `GET /contacts/attributes`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AttributeDefinitions {
    /// Definitions.
    #[serde(default)]
    pub properties: Vec<AttributeDefinition>,
}

/// A contact tag (deprecated by Drift in favour of attributes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTag {
    /// Name.
    pub name: String,
    /// Colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A timeline event (`POST /contacts/timeline`, drift-api.md §5.2.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEvent {
    /// Contact, or use `external_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<ContactId>,
    /// Your external id of the contact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Event time; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    /// Event label.
    pub event: String,
    /// Deprecated map of stringified values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}
