//! What `/sim/site` serves, as `PUT /sim/site` set it.

use serde::{Deserialize, Serialize};

/// `PUT /sim/site`: which driftbridge the page loads `/widget.js` from, as which site.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteSetup {
    /// driftbridge's base URL (`http://127.0.0.1:8080`).
    pub driftbridge_url: String,
    /// The site key.
    pub site: String,
    /// A signed site's secret; without it the page is a public site's.
    #[serde(default)]
    pub secret: Option<String>,
    /// Let the script send emails and phone numbers (the site opted in).
    #[serde(default)]
    pub collect_contact: bool,
    /// Milliseconds between the scripted widget events.
    #[serde(default = "default_step")]
    pub step_ms: u64,
}

fn default_step() -> u64 {
    250
}
