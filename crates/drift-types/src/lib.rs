#![doc = include_str!("../README.md")]

pub mod lenient;

mod account;
mod contact;
mod conversation;
mod error;
pub mod html;
mod ids;
mod meeting;
mod message;
mod oauth;
mod playbook;
mod responses;
pub mod retry;
mod user;
pub mod webhook;
pub mod widget;

pub use account::{Account, AccountWrite, AccountsPage, CustomProperty};
pub use contact::{
    AttributeDefinition, AttributeDefinitions, Contact, ContactAttributes, ContactTag,
    ContactWrite, TimelineEvent,
};
pub use conversation::{
    Conversation, ConversationStatus, ConversationTag, MessagesData, NewConversation,
    NewConversationMessage,
};
pub use error::{ApiErrorBody, ErrorDetail};
pub use ids::{
    ContactId, ConversationId, EpochMillis, InboxId, MessageId, OrgId, PlaybookId, Secret, UserId,
};
pub use meeting::Meeting;
pub use message::{
    Attachment, Author, AuthorType, ButtonReaction, ButtonType, Location, Message, MessageButton,
    MessageContext, MessageType, NewMessage,
};
pub use oauth::{TokenInfo, TokenRequest, TokenResponse};
pub use playbook::{LandingPage, Playbook, PlaybookGoal};
pub use responses::{
    ConversationListPage, Data, GdprMessage, GdprRequest, LegacyConversationPage, Links,
    MessagesPage, OkResult, Pagination, ReportFilter, ReportRequest, ReportResponse, ReportRow,
};
pub use user::{User, UserUpdate};
pub use webhook::{WebhookEnvelope, WebhookEvent};

/// A duration in milliseconds as a short age for people: `45 s`, `12 min`, `3 h`, `2 days`
/// (whole units, rounded down; the unit changes at 2 minutes, 2 hours and 2 days).
pub fn age(ms: i64) -> String {
    match ms / 1000 {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Epoch milliseconds now: the one wall clock every crate reads (time that tests control
/// comes from `drift_client::Clock` instead).
pub fn now_ms() -> i64 {
    EpochMillis::now().0
}
