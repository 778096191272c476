//! ABM accounts (drift-api.md §10.6, §5.4).

use serde::{Deserialize, Serialize};

use crate::{EpochMillis, UserId};

/// A custom property of an account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomProperty {
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Key.
    pub name: String,
    /// Value, typed by `kind`.
    #[serde(default)]
    pub value: serde_json::Value,
    /// STRING, EMAIL, NUMBER, TEAMMEMBER, ENUM, DATE, DATETIME, LATLON, LAT, LON, PHONE, URL,
    /// ENUMARRAY (kept as sent).
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// An account. `account_id` is assigned by Drift, e.g. `"123458_domain.com"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Drift-assigned account id.
    pub account_id: String,
    /// Owner, a Drift user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<UserId>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Domain (unique per org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Custom properties.
    #[serde(default)]
    pub custom_properties: Vec<CustomProperty>,
    /// Soft-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_date_time: Option<EpochMillis>,
    /// Last update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_date_time: Option<EpochMillis>,
    /// Targeted account.
    #[serde(default)]
    pub targeted: bool,
}

/// Body of `POST /accounts/create` and `PATCH /accounts/update`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountWrite {
    /// Required on update, absent on create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Owner (required).
    pub owner_id: UserId,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Custom properties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_properties: Vec<CustomProperty>,
    /// Targeted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeted: Option<bool>,
}

/// `data` of `GET /accounts?index=&size=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountsPage {
    /// Accounts of this page.
    #[serde(default)]
    pub accounts: Vec<Account>,
    /// Path of the next page (`/accounts?index=..&size=..`); absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Total, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}
