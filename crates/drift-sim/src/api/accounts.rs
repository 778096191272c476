//! Accounts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use drift_types::{AccountWrite, AccountsPage, Data, OkResult};

use crate::middleware::Caller;
use crate::state::{SimError, SimResult};

use super::request::{Id, St, int_param, now, parse_json, query_pairs};

// ---- accounts ------------------------------------------------------------------------

/// `POST /accounts/create`.
pub async fn create_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_write")?;
    let w: AccountWrite = parse_json(&body)?;
    let mut world = st.world.lock();
    let seq = world.fresh_id();
    let a = world.org_mut(caller.org)?.create_account(w, seq, now())?;
    Ok(Json(Data { data: a }))
}

/// `GET /accounts/{id}` (deleted accounts too, with `deleted: true`).
pub async fn get_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<String>,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_read")?;
    let world = st.world.lock();
    let a = world
        .org(caller.org)?
        .accounts
        .get(&id)
        .ok_or_else(|| SimError::not_found(format!("account {id} not found")))?;
    Ok(Json(Data { data: a.clone() }))
}

/// Largest `size` of `GET /accounts` (sources say 100 or 65; 100 is the house choice).
pub const ACCOUNTS_PAGE_MAX: usize = 100;

/// `GET /accounts?index=&size=`.
pub async fn list_accounts(
    State(st): St,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> SimResult<Json<Data<AccountsPage>>> {
    caller.require("account_read")?;
    let pairs = query_pairs(&q);
    let index = int_param::<usize>(&pairs, "index")?.unwrap_or(0);
    let size = int_param::<usize>(&pairs, "size")?
        .unwrap_or(10)
        .clamp(1, ACCOUNTS_PAGE_MAX);
    let world = st.world.lock();
    let org = world.org(caller.org)?;
    let accounts: Vec<_> = org
        .accounts
        .values()
        .skip(index)
        .take(size)
        .cloned()
        .collect();
    let total = org.accounts.len();
    let next =
        (index + size < total).then(|| format!("/accounts?index={}&size={size}", index + size));
    Ok(Json(Data {
        data: AccountsPage {
            accounts,
            next,
            total: Some(total as u64),
        },
    }))
}

/// `PATCH /accounts/update`.
pub async fn update_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> SimResult<Json<Data<drift_types::Account>>> {
    caller.require("account_write")?;
    let w: AccountWrite = parse_json(&body)?;
    let a = st
        .world
        .lock()
        .org_mut(caller.org)?
        .update_account(w, now())?;
    Ok(Json(Data { data: a }))
}

/// `DELETE /accounts/{id}`: soft delete.
pub async fn delete_account(
    State(st): St,
    Extension(caller): Extension<Caller>,
    Id(id): Id<String>,
) -> SimResult<Json<OkResult>> {
    caller.require("account_write")?;
    let mut world = st.world.lock();
    let a = world
        .org_mut(caller.org)?
        .accounts
        .get_mut(&id)
        .ok_or_else(|| SimError::not_found(format!("account {id} not found")))?;
    a.deleted = true;
    a.update_date_time = Some(now());
    Ok(Json(OkResult::ok()))
}
