//! Users and meetings.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use drift_types::{Data, UserId, UserUpdate};
use serde_json::{Value, json};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult};

use super::request::{Id, St, int_param, now, parse_json, query_pairs};

// ---- users ---------------------------------------------------------------------------

/// `GET /users/list`.
pub async fn list_users(
    State(st): St,
    Extension(caller): Extension<Caller>,
) -> SimResult<Json<Data<Vec<drift_types::User>>>> {
    caller.require("user_read")?;
    let world = st.world.lock();
    Ok(Json(Data {
        data: world.org(caller.org)?.users.values().cloned().collect(),
    }))
}

/// `GET /users/{id}`.
pub async fn get_user(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<i64>,
) -> SimResult<Json<Data<drift_types::User>>> {
    caller.require("user_read")?;
    let world = st.world.lock();
    let u = world
        .org(caller.org)?
        .users
        .get(&UserId(id))
        .ok_or_else(|| SimError::not_found(format!("user {id} not found")))?;
    Ok(Json(Data { data: u.clone() }))
}

/// Most ids `GET /users?userId=` takes at once.
pub const USERS_BATCH_MAX: usize = 20;

/// `GET /users?userId=1&userId=2` -> map keyed by id. Without any `userId` real Drift answers
/// 2xx with an empty `data` (a connector built against a Drift sandbox reads it as an empty
/// stream); the simulator does the same, with the map's shape: `{"data": {}}`.
pub async fn users_batch(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Value>> {
    caller.require("user_read")?;
    let pairs = query_pairs(&q);
    let ids: Vec<i64> = pairs
        .iter()
        .filter(|(k, _)| k == "userId")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| SimError::invalid(format!("userId {v:?} is not a number")))
        })
        .collect::<SimResult<_>>()?;
    if ids.len() > USERS_BATCH_MAX {
        return Err(SimError::invalid(format!(
            "give at most {USERS_BATCH_MAX} userId parameters, got {}",
            ids.len()
        )));
    }
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let mut map = serde_json::Map::new();
    for id in ids {
        if let Some(u) = org.users.get(&UserId(id)) {
            map.insert(id.to_string(), serde_json::to_value(u).unwrap_or_default());
        }
    }
    Ok(Json(json!({ "data": map })))
}

/// `PATCH /users/update?userId=`.
pub async fn update_user(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::User>>> {
    caller.require("user_write")?;
    let pairs = query_pairs(&q);
    let id = int_param::<i64>(&pairs, "userId")?
        .ok_or_else(|| SimError::invalid("userId is required"))?;
    let up: UserUpdate = parse_json(&body)?;
    if let Some(a) = &up.availability
        && a != "AVAILABLE"
        && a != "OFFLINE"
    {
        return Err(SimError::invalid(format!(
            "availability {a:?} must be AVAILABLE or OFFLINE"
        )));
    }
    let mut world = st.world.lock();
    let u = world
        .org_mut(caller.org)?
        .users
        .get_mut(&UserId(id))
        .ok_or_else(|| SimError::not_found(format!("user {id} not found")))?;
    macro_rules! set {
        ($($f:ident),*) => { $(if up.$f.is_some() { u.$f = up.$f.clone(); })* };
    }
    set!(name, alias, email, phone, locale, avatar_url, availability);
    u.updated_at = Some(now());
    Ok(Json(Data { data: u.clone() }))
}

/// Most meetings one call returns.
pub const MEETINGS_MAX: usize = 1000;

/// How far back `GET /users/meetings/org` reaches (drift-api.md §5: the last 30 days).
pub const MEETINGS_WINDOW_MS: i64 = 30 * 86_400_000;

/// `GET /users/meetings/org?min_start_time=&max_start_time=`.
pub async fn meetings(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Data<Vec<drift_types::Meeting>>>> {
    caller.require("user_read")?;
    let pairs = query_pairs(&q);
    let (Some(min), Some(max)) = (
        int_param::<i64>(&pairs, "min_start_time")?,
        int_param::<i64>(&pairs, "max_start_time")?,
    ) else {
        return Err(SimError::invalid(
            "min_start_time and max_start_time are both required",
        ));
    };
    // Drift lists the last 30 days only: an older `min_start_time` is raised to that.
    let min = min.max(super::request::now().get() - MEETINGS_WINDOW_MS);
    let world = st.world.lock();
    let mut v: Vec<_> = world
        .org(caller.org)?
        .meetings
        .iter()
        .filter(|m| {
            m.slot_start
                .is_some_and(|s| s.get() >= min && s.get() <= max)
        })
        .cloned()
        .collect();
    v.sort_by_key(|m| (m.slot_start, m.slug.clone()));
    v.truncate(MEETINGS_MAX);
    Ok(Json(Data { data: v }))
}

/// `GET /teams/org`: the org's teams, in a house shape (Drift's is undocumented): one team,
/// "Sales", of every user but the bot: `{"data": [{id, name, orgId, status, members}]}`.
pub async fn teams(State(st): St, Extension(caller): Extension<Caller>) -> SimResult<Json<Value>> {
    caller.require("user_read")?;
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let members: Vec<i64> = org
        .users
        .values()
        .filter(|u| !u.bot)
        .map(|u| u.id.0)
        .collect();
    Ok(Json(json!({"data": [{
        "id": 1, "name": "Sales", "orgId": org.id, "status": "ACTIVE", "members": members,
    }]})))
}
