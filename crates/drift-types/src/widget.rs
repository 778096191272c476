//! The widget's side of a conversation (docs/WIDGET.md): the batch `/widget.js` posts to
//! `POST /widget/events`, the Drift widget events it carries (drift-api.md §12), and a
//! session's first touch.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Drift widget events `/widget.js` registers for (`campaign:*` stands for every
/// `campaign:` event).
pub const EVENTS: &[&str] = &[
    "ready",
    "startConversation",
    "conversation:firstInteraction",
    "message:sent",
    "message",
    "emailCapture",
    "phoneCapture",
    "scheduling:requestMeeting",
    "scheduling:meetingBooked",
    "conversation:playbookFired",
    "conversation:playbookClicked",
    "conversation:playbookDismissed",
    "conversation:buttonClicked",
    "campaign:open",
    "campaign:dismiss",
    "campaign:click",
    "campaign:submit",
    "chatOpen",
    "chatClose",
    "gdprClicked",
];

/// Whether `name` is an event the intake accepts.
pub fn is_known(name: &str) -> bool {
    EVENTS.contains(&name)
        || name
            .strip_prefix("campaign:")
            .is_some_and(|rest| !rest.is_empty() && rest.len() <= 40)
}

/// A session's first touch: its UTM parameters, landing page and referrer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Touch {
    /// `utm_source`.
    pub utm_source: Option<String>,
    /// `utm_medium`.
    pub utm_medium: Option<String>,
    /// `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// `utm_term`.
    pub utm_term: Option<String>,
    /// `utm_content`.
    pub utm_content: Option<String>,
    /// The first page of the session (URL).
    pub landing_page: Option<String>,
    /// The referrer of that first page.
    pub referrer: Option<String>,
}

/// The page an event happened on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Page {
    /// `location.href`.
    pub url: Option<String>,
    /// `location.pathname`.
    pub path: Option<String>,
    /// `document.referrer`.
    pub referrer: Option<String>,
}

/// One event as the browser reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The browser's own id for it (re-sent batches are de-duplicated by it).
    pub id: String,
    /// The Drift widget event's name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened, epoch milliseconds (the browser's clock).
    pub ts: i64,
    /// The conversation the payload names, when it names one.
    #[serde(default, rename = "conversationId")]
    pub conversation_id: Option<i64>,
    /// The page.
    #[serde(default)]
    pub page: Page,
    /// The session's first touch.
    #[serde(default)]
    pub touch: Touch,
    /// Drift's payload, as the widget handed it over (minus what the site does not collect).
    #[serde(default)]
    pub data: Value,
}

/// What `/widget.js` posts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The site's key.
    pub site: String,
    /// The visitor (a signed site takes it from the token instead).
    pub visitor: String,
    /// The tab's session.
    pub session: String,
    /// A signed site's token, minted by the site's backend.
    #[serde(default)]
    pub token: Option<String>,
    /// The events, oldest first.
    pub events: Vec<Event>,
}
