//! OAuth token bodies (drift-api.md §2, §15): token exchange/refresh responses and
//! `POST /app/token_info`.

use serde::{Deserialize, Serialize};

use crate::{OrgId, Secret};

/// Response of `POST /oauth2/token`. Accepts snake_case and Drift's older camelCase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// Access token.
    #[serde(alias = "accessToken")]
    pub access_token: Secret,
    /// Refresh token (rotated on every refresh).
    #[serde(
        default,
        alias = "refreshToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Secret>,
    /// `bearer`.
    #[serde(default, alias = "tokenType", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Lifetime in seconds (7200 by the house decision); 0 or absent means no expiry.
    #[serde(default, alias = "expiresIn", skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The installing org.
    #[serde(
        default,
        rename = "orgId",
        alias = "org_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub org_id: Option<OrgId>,
    /// Granted scopes, space separated, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Form body of `POST /oauth2/token` (snake_case; the simulator also takes camelCase JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    #[serde(alias = "grantType")]
    pub grant_type: String,
    /// App client id.
    #[serde(alias = "clientId")]
    pub client_id: String,
    /// App client secret.
    #[serde(alias = "clientSecret")]
    pub client_secret: Secret,
    /// For `authorization_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Secret>,
    /// For `refresh_token`.
    #[serde(
        default,
        alias = "refreshToken",
        skip_serializing_if = "Option::is_none"
    )]
    pub refresh_token: Option<Secret>,
    /// Sent by some integrations with the code exchange.
    #[serde(
        default,
        alias = "redirectUri",
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_uri: Option<String>,
}

/// Response of `POST /app/token_info` (flat, no `data`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token asked about.
    pub access_token: Secret,
    /// `"orgId:<id>"`.
    #[serde(default)]
    pub authenticated_userid: String,
    /// App id.
    #[serde(default)]
    pub credential_id: String,
    /// `bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Remaining lifetime in milliseconds; 0 = never expires.
    #[serde(default)]
    pub expires_in: i64,
    /// Creation time (ms).
    #[serde(default)]
    pub created_at: i64,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Token record id.
    #[serde(default)]
    pub id: String,
}

impl TokenInfo {
    /// The org id out of `authenticated_userid`.
    pub fn org_id(&self) -> Option<OrgId> {
        self.authenticated_userid
            .strip_prefix("orgId:")
            .and_then(|s| s.parse().ok())
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}
