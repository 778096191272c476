//! Contacts, their attributes, tags and timeline (drift-api.md §5.2).

use drift_types::{
    AttributeDefinitions, Contact, ContactId, ContactTag, ContactWrite, Data, OkResult,
    TimelineEvent,
};
use futures::stream::Stream;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::paging::{next_link, pages, to_json};
use crate::client::{DriftClient, Idempotent, Request};
use crate::error::Result;

impl DriftClient {
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
            let d: Data<Vec<Contact>> = crate::client::decode(req.endpoint, &bytes)?;
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
}
