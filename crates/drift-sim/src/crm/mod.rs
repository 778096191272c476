//! Simulators of the CRM/MAP targets (crm-apis.md §6), served beside the Drift API on their
//! own path prefixes: `/hubspot` (HubSpot's API host), `/salesforce` (login host and
//! instance), `/marketo` (a Munchkin host with `/identity` and `/rest`). Each keeps its
//! records in memory, answers with the vendor's shapes, auth, errors and limits, and logs
//! every write so tests can read them back from `GET /sim/crm`.
//!
//! Controls: `PUT /sim/crm/settings` (latency, limits, search lag), `PUT /sim/crm/faults`
//! (a target answers rate-limit or unavailable errors for a while), `POST
//! /sim/crm/salesforce/expire` (every Salesforce session becomes invalid), `POST
//! /sim/crm/salesforce/seed` (a record created outside driftbridge).

// Helpers answer either a value or the finished error `Response` the handler returns; that
// response is large, and boxing it would only add noise to a simulator.
#![allow(clippy::result_large_err)]

mod common;
mod data;
pub mod hubspot;
mod hubspot_gate;
pub mod marketo;
pub mod salesforce;
mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub use common::{CrmSettings, FaultMode, Record, Stats, Target, Write};
pub use data::{HubSpotData, MarketoData, SalesforceData};
pub use state::CrmState;

type St = State<Arc<CrmState>>;

async fn dump(State(st): St) -> Json<Value> {
    Json(st.dump())
}

async fn writes(State(st): St) -> Json<Value> {
    Json(json!(st.writes()))
}

async fn put_settings(State(st): St, Json(s): Json<CrmSettings>) -> Json<Value> {
    *st.settings.lock() = s.clone();
    Json(json!(s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    target: Target,
    mode: FaultMode,
    seconds: f64,
}

async fn put_fault(State(st): St, Json(b): Json<FaultBody>) -> Response {
    if !(b.seconds >= 0.0 && b.seconds <= 86_400.0) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "seconds must be in [0, 86400]"})),
        )
            .into_response();
    }
    st.set_fault(b.target, b.mode, Duration::from_secs_f64(b.seconds));
    Json(json!({"target": b.target, "mode": b.mode, "seconds": b.seconds})).into_response()
}

/// Routes: the three CRMs and their controls.
pub fn routes() -> Router<Arc<CrmState>> {
    Router::new()
        .nest("/hubspot", hubspot::routes())
        .nest("/salesforce", salesforce::routes())
        .nest("/marketo", marketo::routes())
        .route("/sim/crm", get(dump))
        .route("/sim/crm/writes", get(writes))
        .route("/sim/crm/settings", put(put_settings))
        .route("/sim/crm/faults", put(put_fault))
        .route("/sim/crm/salesforce/expire", post(salesforce::expire))
        .route("/sim/crm/salesforce/seed", post(salesforce::seed))
}
