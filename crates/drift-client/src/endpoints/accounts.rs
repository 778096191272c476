//! Accounts (drift-api.md §5.4).

use drift_types::{Account, AccountWrite, AccountsPage, Data, OkResult};
use futures::stream::Stream;
use reqwest::Method;

use super::paging::{pages, to_json};
use crate::client::{DriftClient, Idempotent, Request};
use crate::error::Result;

impl DriftClient {
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
}
