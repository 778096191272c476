//! The Drift REST endpoints of drift-api.md §5, answered from the world with Drift's shapes.

mod accounts;
mod app;
mod contacts;
mod conversations;
mod request;
mod users;

pub use accounts::{
    ACCOUNTS_PAGE_MAX, create_account, delete_account, get_account, list_accounts, update_account,
};
pub use app::{fallback, gdpr_delete, gdpr_retrieve, landing_pages, playbooks, uninstall};
pub use contacts::{
    add_tags, attributes, create_contact, delete_contact, delete_tag, delete_tags_bulk,
    get_contact, get_tags, query_contacts, timeline, unsubscribe_emails, update_contact,
};
pub use conversations::{
    MESSAGES_PAGE, attachment_data, conversation_summary, get_conversation, json_transcript,
    list_conversations, list_messages, new_conversation, post_message, report, stats, transcript,
};
pub use request::{parse_json, query_pairs};
pub use users::{
    MEETINGS_MAX, USERS_BATCH_MAX, get_user, list_users, meetings, teams, update_user, users_batch,
};
