//! Sinks aimed at the simulator's CRMs (and, for `http`, at a local receiver): what the
//! demo and `bench crm` configure.

use anyhow::{Result, bail};
use serde_json::{Value, json};

/// A sink of `target` pointing at the simulator at `sim` (or, for `http`, at `hook`).
pub fn spec(target: &str, sim: &str, hook: &str) -> Result<Value> {
    Ok(match target {
        "hubspot" => json!({"kind": "hubspot", "base_url": format!("{sim}/hubspot"),
                            "token": "pat-na1-driftbridge-sim"}),
        "salesforce" => json!({"kind": "salesforce", "login_url": format!("{sim}/salesforce"),
            "client_id": "sim-salesforce-client", "client_secret": "sim-salesforce-secret",
            "refresh_token": "sim-salesforce-refresh"}),
        "marketo" => json!({"kind": "marketo", "base_url": format!("{sim}/marketo"),
            "client_id": "sim-marketo-client", "client_secret": "sim-marketo-secret",
            "calls_per_20s": 1_000_000, "max_concurrency": 64}),
        "http" => json!({"kind": "http", "url": format!("{hook}/hook"),
                         "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
        other => bail!("unknown target {other:?}: use hubspot, salesforce, marketo or http"),
    })
}
