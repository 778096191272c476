//! Conversations, messages, transcripts, reports (drift-api.md §5.1).

use drift_types::{
    Conversation, ConversationId, ConversationListPage, ConversationStatus, Data,
    LegacyConversationPage, Message, MessagesData, MessagesPage, NewConversation, NewMessage,
    ReportRequest, ReportResponse,
};
use futures::stream::Stream;
use reqwest::Method;

use super::paging::{pages, to_json};
use crate::client::{DriftClient, Idempotent, Request};
use crate::error::Result;

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

impl DriftClient {
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

    /// `GET /attachments/{id}/data`: a message attachment's bytes (held in memory whole).
    pub async fn attachment_data(&self, document_id: i64) -> Result<Vec<u8>> {
        let (_, bytes) = self
            .execute(&Request::get(
                "GET /attachments/{id}/data",
                format!("attachments/{document_id}/data"),
            ))
            .await?;
        Ok(Vec::from(bytes))
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
}
