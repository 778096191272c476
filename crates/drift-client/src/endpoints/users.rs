//! Users and meetings (drift-api.md §5.3).

use std::collections::HashMap;

use drift_types::{Data, Meeting, User, UserId, UserUpdate};
use reqwest::Method;

use super::paging::to_json;
use crate::client::{DriftClient, Idempotent, Request};
use crate::error::Result;

/// Most user ids `GET /users?userId=` takes at once (drift-api.md §9).
pub const USERS_PER_BATCH: usize = 20;

impl DriftClient {
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
}
