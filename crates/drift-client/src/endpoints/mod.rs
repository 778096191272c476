//! One method per Drift endpoint (drift-api.md §5). Paginated lists are lazy `Stream`s that
//! fetch the next page only when the previous one is consumed, and follow every page.

mod accounts;
mod app;
mod contacts;
mod conversations;
mod paging;
mod users;

pub use conversations::ListConversations;
pub use users::USERS_PER_BATCH;
