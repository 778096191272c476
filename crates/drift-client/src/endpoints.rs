//! One method per Drift endpoint (drift-api.md §5). Paginated lists are lazy `Stream`s that
//! fetch the next page only when the previous one is consumed, and follow every page.

use std::collections::HashMap;

use drift_types::{
    Account, AccountWrite, AccountsPage, AttributeDefinitions, Contact, ContactId, ContactTag,
    ContactWrite, Conversation, ConversationId, ConversationListPage, ConversationStatus, Data,
    GdprMessage, GdprRequest, LandingPage, LegacyConversationPage, Meeting, Message, MessagesData,
    MessagesPage, NewConversation, NewMessage, OkResult, Playbook, ReportRequest, ReportResponse,
    TimelineEvent, TokenInfo, User, UserId, UserUpdate,
};
use futures::stream::{self, Stream, TryStreamExt};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{DriftClient, Idempotent, Request};
use crate::error::{Error, Result};

/// Options of the conversation list.
#[derive(Clone, Debug, Default)]
pub struct ListConversations {
    /// Page size (current generation: max 100; legacy: max 50).
    pub limit: Option<u32>,
    /// Only these statuses.
    pub statuses: Vec<ConversationStatus>,
}

impl ListConversations {
    /// Adds one `statusId` parameter per wanted status.
    fn with_statuses<'a>(&self, mut r: Request<'a>) -> Request<'a> {
        for id in self
            .statuses
            .iter()
            .filter_map(ConversationStatus::status_id)
        {
            r = r.query("statusId", id);
        }
        r
    }
}

/// Most user ids `GET /users?userId=` takes at once (drift-api.md §9).
pub const USERS_PER_BATCH: usize = 20;

fn pages<T, S, F, Fut>(first: S, fetch: F) -> impl Stream<Item = Result<T>>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<S>)>>,
{
    let mut fetch = fetch;
    stream::try_unfold(Some(first), move |state| {
        let fut = state.map(&mut fetch);
        async move {
            match fut {
                None => Ok(None),
                Some(f) => {
                    let (items, next) = f.await?;
                    // An empty page ends the walk even if it carries a next link.
                    let next = if items.is_empty() { None } else { next };
                    Ok(Some((items, next)))
                }
            }
        }
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
}

impl DriftClient {
    // ---- conversations ------------------------------------------------------------

    /// `GET /conversations/{id}`.
    pub async fn conversation(&self, id: ConversationId) -> Result<Conversation> {
        let d: Data<Conversation> = self
            .json(Request::get(
                "GET /conversations/{id}",
                format!("conversations/{id}"),
            ))
            .await?;
        Ok(d.data)
    }

    /// Every conversation, newest-updated first, via `page_token` pagination.
    pub fn conversations(
        &self,
        opts: ListConversations,
    ) -> impl Stream<Item = Result<Conversation>> + '_ {
        pages(None::<String>, move |next: Option<String>| {
            let opts = opts.clone();
            async move {
                let (items, next) = self.conversations_page(next.as_deref(), &opts).await?;
                Ok((items, next.map(Some)))
            }
        })
    }

    /// One page of the conversation list: the first when `next` is `None`, else the page
    /// that `links.next` named. Answers the page and the next page's URL (none at the end;
    /// an empty page also ends the list).
    pub async fn conversations_page(
        &self,
        next: Option<&str>,
        opts: &ListConversations,
    ) -> Result<(Vec<Conversation>, Option<String>)> {
        let req = match next {
            Some(url) => Request::get("GET /conversations/list", url.to_owned()),
            None => {
                let mut r = Request::get("GET /conversations/list", "conversations/list".into());
                if let Some(l) = opts.limit {
                    r = r.query("limit", l);
                }
                opts.with_statuses(r)
            }
        };
        let page: ConversationListPage = self.json(req).await?;
        let next = if page.data.is_empty() {
            None
        } else {
            page.links.next
        };
        Ok((page.data, next))
    }

    /// Every conversation via the legacy `next` cursor pagination.
    pub fn conversations_legacy(
        &self,
        opts: ListConversations,
    ) -> impl Stream<Item = Result<Conversation>> + '_ {
        pages(String::new(), move |cursor: String| {
            let opts = opts.clone();
            async move {
                let r = Request::get(
                    "GET /conversations/list (legacy)",
                    "conversations/list".into(),
                )
                .query("next", cursor)
                .query("limit", opts.limit.unwrap_or(50));
                let page: LegacyConversationPage = self.json(opts.with_statuses(r)).await?;
                let next = page.pagination.filter(|p| p.more).and_then(|p| p.next);
                Ok((page.data, next))
            }
        })
    }

    /// One page of messages starting at cursor `next`.
    pub async fn messages_page(
        &self,
        id: ConversationId,
        next: Option<&str>,
    ) -> Result<MessagesPage> {
        let mut r = Request::get(
            "GET /conversations/{id}/messages",
            format!("conversations/{id}/messages"),
        );
        if let Some(n) = next {
            r = r.query("next", n);
        }
        self.json(r).await
    }

    /// Every message of a conversation, oldest first.
    pub fn messages(&self, id: ConversationId) -> impl Stream<Item = Result<Message>> + '_ {
        pages(None::<String>, move |next: Option<String>| async move {
            let page = self.messages_page(id, next.as_deref()).await?;
            let next = page
                .pagination
                .filter(|p| p.more)
                .and_then(|p| p.next)
                .map(Some);
            Ok((page.data.messages, next))
        })
    }

    /// `GET /conversations/{id}/transcript`: plain text.
    pub async fn transcript(&self, id: ConversationId) -> Result<String> {
        let (_, bytes) = self
            .execute(&Request::get(
                "GET /conversations/{id}/transcript",
                format!("conversations/{id}/transcript"),
            ))
            .await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `POST /conversations/new` (not retried: it is not idempotent).
    pub async fn create_conversation(&self, new: &NewConversation) -> Result<Conversation> {
        self.json(Request::send_json(
            Method::POST,
            "POST /conversations/new",
            "conversations/new".into(),
            to_json(new)?,
            Idempotent::No,
        ))
        .await
    }

    /// `POST /conversations/{id}/messages` (not retried).
    pub async fn post_message(&self, id: ConversationId, msg: &NewMessage) -> Result<Vec<Message>> {
        let d: Data<MessagesData> = self
            .json(Request::send_json(
                Method::POST,
                "POST /conversations/{id}/messages",
                format!("conversations/{id}/messages"),
                to_json(msg)?,
                Idempotent::No,
            ))
            .await?;
        Ok(d.data.messages)
    }

    /// `POST /reports/conversations` (a read; safe to retry).
    pub async fn report_conversations(&self, req: &ReportRequest) -> Result<ReportResponse> {
        self.json(Request::send_json(
            Method::POST,
            "POST /reports/conversations",
            "reports/conversations".into(),
            to_json(req)?,
            Idempotent::Yes,
        ))
        .await
    }

    // ---- contacts ----------------------------------------------------------------

    /// `GET /contacts/{id}`.
    pub async fn contact(&self, id: ContactId) -> Result<Contact> {
        let d: Data<Contact> = self
            .json(Request::get("GET /contacts/{id}", format!("contacts/{id}")))
            .await?;
        Ok(d.data)
    }

    /// Every contact with `email` (not unique), following the `Link: rel='next'` header.
    pub fn contacts_by_email<'a>(
        &'a self,
        email: &'a str,
    ) -> impl Stream<Item = Result<Contact>> + 'a {
        pages(None::<String>, move |next: Option<String>| async move {
            let req = match next {
                Some(path) => Request::get("GET /contacts?email=", path),
                None => Request::get("GET /contacts?email=", "contacts".into())
                    .query("email", email)
                    .query("limit", 100),
            };
            let (headers, bytes) = self.execute(&req).await?;
            let d: Data<Vec<Contact>> =
                serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
                    endpoint: req.endpoint,
                    source,
                })?;
            let next = headers
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            Ok((d.data, next.map(Some)))
        })
    }

    /// `GET /contacts?idType=external&id=..`.
    pub async fn contacts_by_external_id(&self, ids: &[&str]) -> Result<Vec<Contact>> {
        let mut r = Request::get("GET /contacts?idType=external", "contacts".into())
            .query("idType", "external");
        for id in ids {
            r = r.query("id", id);
        }
        let d: Data<Vec<Contact>> = self.json(r).await?;
        Ok(d.data)
    }

    /// `POST /contacts` (not retried).
    pub async fn create_contact(&self, attributes: Map<String, Value>) -> Result<Contact> {
        let d: Data<Contact> = self
            .json(Request::send_json(
                Method::POST,
                "POST /contacts",
                "contacts".into(),
                to_json(&ContactWrite { attributes })?,
                Idempotent::No,
            ))
            .await?;
        Ok(d.data)
    }

    /// `PATCH /contacts/{id}`: setting attributes to values is idempotent, so it is retried.
    pub async fn update_contact(
        &self,
        id: ContactId,
        attributes: Map<String, Value>,
    ) -> Result<Contact> {
        let d: Data<Contact> = self
            .json(Request::send_json(
                Method::PATCH,
                "PATCH /contacts/{id}",
                format!("contacts/{id}"),
                to_json(&ContactWrite { attributes })?,
                Idempotent::Yes,
            ))
            .await?;
        Ok(d.data)
    }

    /// `DELETE /contacts/{id}`.
    pub async fn delete_contact(&self, id: ContactId) -> Result<OkResult> {
        let r = Request::new(
            Method::DELETE,
            "DELETE /contacts/{id}",
            format!("contacts/{id}"),
        );
        self.json(r).await
    }

    /// `POST /contacts/timeline` (not retried).
    pub async fn post_timeline_event(&self, ev: &TimelineEvent) -> Result<TimelineEvent> {
        let d: Data<TimelineEvent> = self
            .json(Request::send_json(
                Method::POST,
                "POST /contacts/timeline",
                "contacts/timeline".into(),
                to_json(ev)?,
                Idempotent::No,
            ))
            .await?;
        Ok(d.data)
    }

    /// `GET /contacts/attributes`.
    pub async fn contact_attributes(&self) -> Result<AttributeDefinitions> {
        let d: Data<AttributeDefinitions> = self
            .json(Request::get(
                "GET /contacts/attributes",
                "contacts/attributes".into(),
            ))
            .await?;
        Ok(d.data)
    }

    /// `GET /contacts/{id}/tags`.
    pub async fn contact_tags(&self, id: ContactId) -> Result<Vec<ContactTag>> {
        let d: Data<Vec<ContactTag>> = self
            .json(Request::get(
                "GET /contacts/{id}/tags",
                format!("contacts/{id}/tags"),
            ))
            .await?;
        Ok(d.data)
    }

    /// `POST /contacts/{id}/tags` (adding a tag twice is a no-op, so it is retried).
    pub async fn add_contact_tags(&self, id: ContactId, names: &[&str]) -> Result<Vec<ContactTag>> {
        let body = Value::Array(names.iter().map(|n| json!({ "name": n })).collect());
        let d: Data<Vec<ContactTag>> = self
            .json(Request::send_json(
                Method::POST,
                "POST /contacts/{id}/tags",
                format!("contacts/{id}/tags"),
                body,
                Idempotent::Yes,
            ))
            .await?;
        Ok(d.data)
    }

    /// `DELETE /contacts/{id}/tags/{name}`.
    pub async fn delete_contact_tag(&self, id: ContactId, name: &str) -> Result<OkResult> {
        let enc: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let r = Request::new(
            Method::DELETE,
            "DELETE /contacts/{id}/tags/{name}",
            format!("contacts/{id}/tags/{enc}"),
        );
        self.json(r).await
    }

    // ---- users -------------------------------------------------------------------

    /// `GET /users/list`: every user, bot included.
    pub async fn users(&self) -> Result<Vec<User>> {
        let d: Data<Vec<User>> = self
            .json(Request::get("GET /users/list", "users/list".into()))
            .await?;
        Ok(d.data)
    }

    /// `GET /users/{id}`.
    pub async fn user(&self, id: UserId) -> Result<User> {
        let d: Data<User> = self
            .json(Request::get("GET /users/{id}", format!("users/{id}")))
            .await?;
        Ok(d.data)
    }

    /// `GET /users?userId=..`, in batches of 20; unknown ids are simply absent.
    pub async fn users_by_id(&self, ids: &[UserId]) -> Result<HashMap<UserId, User>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(USERS_PER_BATCH) {
            let mut r = Request::get("GET /users?userId=", "users".into());
            for id in chunk {
                r = r.query("userId", id);
            }
            let d: Data<HashMap<String, User>> = self.json(r).await?;
            out.extend(d.data.into_values().map(|u| (u.id, u)));
        }
        Ok(out)
    }

    /// `PATCH /users/update?userId=`.
    pub async fn update_user(&self, id: UserId, update: &UserUpdate) -> Result<User> {
        let r = Request::send_json(
            Method::PATCH,
            "PATCH /users/update",
            "users/update".into(),
            to_json(update)?,
            Idempotent::Yes,
        )
        .query("userId", id);
        let d: Data<User> = self.json(r).await?;
        Ok(d.data)
    }

    /// `GET /users/meetings/org` for slots starting in `[min_start, max_start]` (epoch ms).
    pub async fn meetings(&self, min_start: i64, max_start: i64) -> Result<Vec<Meeting>> {
        let r = Request::get("GET /users/meetings/org", "users/meetings/org".into())
            .query("min_start_time", min_start)
            .query("max_start_time", max_start);
        let d: Data<Vec<Meeting>> = self.json(r).await?;
        Ok(d.data)
    }

    // ---- accounts ----------------------------------------------------------------

    /// `POST /accounts/create` (not retried).
    pub async fn create_account(&self, account: &AccountWrite) -> Result<Account> {
        let d: Data<Account> = self
            .json(Request::send_json(
                Method::POST,
                "POST /accounts/create",
                "accounts/create".into(),
                to_json(account)?,
                Idempotent::No,
            ))
            .await?;
        Ok(d.data)
    }

    /// `GET /accounts/{accountId}`.
    pub async fn account(&self, account_id: &str) -> Result<Account> {
        let enc: String = url::form_urlencoded::byte_serialize(account_id.as_bytes()).collect();
        let d: Data<Account> = self
            .json(Request::get(
                "GET /accounts/{id}",
                format!("accounts/{enc}"),
            ))
            .await?;
        Ok(d.data)
    }

    /// Every account, following `data.next` (pages of `size`, at most 100).
    pub fn accounts(&self, size: u32) -> impl Stream<Item = Result<Account>> + '_ {
        pages(None::<String>, move |next: Option<String>| async move {
            let (items, next) = self.accounts_page(next.as_deref(), size).await?;
            Ok((items, next.map(Some)))
        })
    }

    /// One page of accounts: the first (of `size`) when `next` is `None`, else the page at
    /// the `data.next` path. Answers the accounts and the next path, if any.
    pub async fn accounts_page(
        &self,
        next: Option<&str>,
        size: u32,
    ) -> Result<(Vec<Account>, Option<String>)> {
        let req = match next {
            Some(path) => Request::get("GET /accounts", path.to_owned()),
            None => Request::get("GET /accounts", "accounts".into())
                .query("index", 0)
                .query("size", size),
        };
        let d: Data<AccountsPage> = self.json(req).await?;
        let next = if d.data.accounts.is_empty() {
            None
        } else {
            d.data.next
        };
        Ok((d.data.accounts, next))
    }

    /// `PATCH /accounts/update`.
    pub async fn update_account(&self, account: &AccountWrite) -> Result<Account> {
        let d: Data<Account> = self
            .json(Request::send_json(
                Method::PATCH,
                "PATCH /accounts/update",
                "accounts/update".into(),
                to_json(account)?,
                Idempotent::Yes,
            ))
            .await?;
        Ok(d.data)
    }

    /// `DELETE /accounts/{accountId}` (soft delete).
    pub async fn delete_account(&self, account_id: &str) -> Result<OkResult> {
        let enc: String = url::form_urlencoded::byte_serialize(account_id.as_bytes()).collect();
        let r = Request::new(
            Method::DELETE,
            "DELETE /accounts/{id}",
            format!("accounts/{enc}"),
        );
        self.json(r).await
    }

    // ---- playbooks, GDPR, app ------------------------------------------------------

    /// `GET /playbooks/list` (a bare array).
    pub async fn playbooks(&self) -> Result<Vec<Playbook>> {
        self.json(Request::get("GET /playbooks/list", "playbooks/list".into()))
            .await
    }

    /// `GET /playbooks/clp`.
    pub async fn landing_pages(&self) -> Result<Vec<LandingPage>> {
        let d: Data<Vec<LandingPage>> = self
            .json(Request::get("GET /playbooks/clp", "playbooks/clp".into()))
            .await?;
        Ok(d.data)
    }

    /// `POST /gdpr/retrieve` (shape undocumented; returned raw).
    pub async fn gdpr_retrieve(&self, email: &str) -> Result<Value> {
        let body = to_json(&GdprRequest {
            email: email.into(),
        })?;
        self.json(Request::send_json(
            Method::POST,
            "POST /gdpr/retrieve",
            "gdpr/retrieve".into(),
            body,
            Idempotent::Yes,
        ))
        .await
    }

    /// `POST /gdpr/delete` (erasing twice is harmless, so it is retried).
    pub async fn gdpr_delete(&self, email: &str) -> Result<GdprMessage> {
        let body = to_json(&GdprRequest {
            email: email.into(),
        })?;
        let d: Data<GdprMessage> = self
            .json(Request::send_json(
                Method::POST,
                "POST /gdpr/delete",
                "gdpr/delete".into(),
                body,
                Idempotent::Yes,
            ))
            .await?;
        Ok(d.data)
    }

    /// `POST /app/token_info` for `access_token`.
    pub async fn token_info(&self, access_token: &drift_types::Secret) -> Result<TokenInfo> {
        let body = json!({ "access_token": access_token.expose() });
        self.json(Request::send_json(
            Method::POST,
            "POST /app/token_info",
            "app/token_info".into(),
            body,
            Idempotent::Yes,
        ))
        .await
    }

    /// `POST /app/uninstall`: revokes this client's token for the app.
    pub async fn uninstall(
        &self,
        client_id: &str,
        client_secret: &drift_types::Secret,
    ) -> Result<OkResult> {
        let mut r = Request::new(Method::POST, "POST /app/uninstall", "app/uninstall".into())
            .query("clientId", client_id)
            .query("clientSecret", client_secret.expose());
        // Revoking twice is harmless, so it may be retried.
        r.idempotent = Idempotent::Yes;
        self.json(r).await
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|source| Error::Decode {
        endpoint: "request body",
        source,
    })
}

/// The target of `rel='next'` (or `rel="next"`) in a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(['\'', '"'], "");
            p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_headers_with_either_quote_style_are_followed() {
        assert_eq!(
            super::next_link("</contacts?email=a&offset=2>; rel='next'").as_deref(),
            Some("/contacts?email=a&offset=2")
        );
        assert_eq!(
            super::next_link("<https://x/y>; rel=\"prev\", <https://x/z>; rel=\"next\"").as_deref(),
            Some("https://x/z")
        );
        assert_eq!(super::next_link("<https://x/y>; rel=\"prev\""), None);
    }
}
