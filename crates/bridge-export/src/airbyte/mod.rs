//! `driftbridge airbyte spec|check|discover|read`: the export as an Airbyte source.
//!
//! Every exported table is an Airbyte stream with a JSON schema built from the same table
//! definitions as the other destinations. `read` runs the export engine with a sink that
//! prints RECORD messages and, after every committed page, one STATE message per stream the
//! page's checkpoint covers. Stdout carries protocol messages only (logs go to stderr as LOG
//! messages' counterpart); a failure ends with a TRACE error message and a non-zero exit.
//!
//! The conversation tables (conversations, participants, tags, messages, buttons,
//! transcripts, contacts) support incremental mode: their state is the conversation walk's
//! high-water mark, and a read given that state fetches only conversations updated since
//! (minus the overlap window), emitting every row of each. The other tables are small lists
//! without a change feed in Drift's API and are full refresh only.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bridge_store::tables::TABLES;
use drift_client::{ClientConfig, DriftClient, RateBudget, StaticToken};
use drift_types::{OrgId, Secret};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::{self, ExportOptions, Mode, Progress, parse_time};
use catalog::{catalog, incremental, spec};
use output::{AirbyteSink, Out, parse_state};

mod catalog;
mod output;

/// An Airbyte command, as the binary parsed it.
#[derive(Debug, Clone)]
pub enum Command {
    /// Print the connector specification.
    Spec,
    /// Check that the configuration reaches Drift.
    Check {
        /// Connector configuration (JSON, see `spec`).
        config: PathBuf,
    },
    /// Print the catalog of streams.
    Discover {
        /// Connector configuration.
        config: PathBuf,
    },
    /// Read records.
    Read {
        /// Connector configuration.
        config: PathBuf,
        /// Configured catalog (default: every stream, full refresh).
        catalog: Option<PathBuf>,
        /// State from an earlier read.
        state: Option<PathBuf>,
    },
}

/// The connector configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    access_token: Secret,
    #[serde(default = "default_base_url")]
    base_url: String,
    org_id: Option<i64>,
    #[serde(default = "default_rate")]
    rate_limit_per_minute: u32,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    meetings_since: Option<String>,
    #[serde(default = "default_overlap")]
    overlap_seconds: i64,
    driftbridge_database_url: Option<Secret>,
}

fn default_base_url() -> String {
    "https://driftapi.com".into()
}
fn default_rate() -> u32 {
    600
}
fn default_concurrency() -> usize {
    16
}
fn default_overlap() -> i64 {
    3600
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the {what} {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the {what} {} is not JSON", path.display()))
}

fn load_config(path: &Path) -> Result<SourceConfig> {
    serde_json::from_value(read_json(path, "config")?)
        .with_context(|| format!("the config {} does not match the spec", path.display()))
}

fn client(c: &SourceConfig) -> Result<DriftClient> {
    let mut cc = ClientConfig::with_base_url(&c.base_url)?;
    cc.budget = RateBudget {
        per_minute: c.rate_limit_per_minute,
        burst: None,
    };
    Ok(DriftClient::new(
        cc,
        Arc::new(StaticToken(c.access_token.clone())),
    )?)
}

async fn org(c: &SourceConfig, client: &DriftClient) -> Result<OrgId> {
    if let Some(o) = c.org_id {
        return Ok(OrgId(o));
    }
    let info = client.token_info(&c.access_token).await?;
    info.authenticated_userid
        .strip_prefix("orgId:")
        .and_then(|s| s.parse().ok())
        .map(OrgId)
        .ok_or_else(|| anyhow!("token_info named no org; set org_id in the config"))
}

/// Runs an `airbyte` subcommand; errors are reported as a TRACE message as well.
pub async fn run(cmd: Command) -> Result<()> {
    let out = Out::new();
    let result = dispatch(cmd, &out).await;
    if let Err(e) = &result {
        let _ = out.send(&json!({
            "type": "TRACE",
            "trace": {
                "type": "ERROR",
                "emitted_at": drift_types::now_ms() as f64,
                "error": {
                    "message": format!("{e:#}"),
                    "internal_message": format!("{e:?}"),
                    "failure_type": "system_error",
                }
            }
        }));
    }
    out.flush()?;
    result
}

async fn dispatch(cmd: Command, out: &Out) -> Result<()> {
    match cmd {
        Command::Spec => out.send(&json!({"type": "SPEC", "spec": spec()})),
        Command::Discover { config } => {
            load_config(&config)?;
            out.send(&json!({"type": "CATALOG", "catalog": catalog()}))
        }
        Command::Check { config } => {
            let c = load_config(&config)?;
            let status = match client(&c)?.users().await {
                Ok(u) => {
                    json!({"status": "SUCCEEDED", "message": format!("reached Drift: {} users", u.len())})
                }
                Err(e) => json!({"status": "FAILED", "message": e.to_string()}),
            };
            out.send(&json!({"type": "CONNECTION_STATUS", "connectionStatus": status}))
        }
        Command::Read {
            config,
            catalog,
            state,
        } => read(&config, catalog.as_deref(), state.as_deref(), out).await,
    }
}

async fn read(
    config: &Path,
    catalog: Option<&Path>,
    state: Option<&Path>,
    out: &Out,
) -> Result<()> {
    let c = load_config(config)?;
    let mut selected: HashSet<&'static str> = HashSet::new();
    let mut any_incremental = false;
    match catalog {
        None => selected.extend(TABLES.iter().map(|t| t.name)),
        Some(path) => {
            let cat = read_json(path, "catalog")?;
            let streams = cat["streams"]
                .as_array()
                .ok_or_else(|| anyhow!("the catalog has no streams array"))?;
            for s in streams {
                let name = s["stream"]["name"].as_str().unwrap_or_default();
                let t = bridge_store::tables::table(name)
                    .ok_or_else(|| anyhow!("the catalog names an unknown stream {name:?}"))?;
                match s["sync_mode"].as_str() {
                    Some("incremental") if incremental(t) => any_incremental = true,
                    Some("incremental") => bail!("stream {name} supports full_refresh only"),
                    Some("full_refresh") | None => {}
                    Some(m) => bail!("unknown sync_mode {m:?} for stream {name}"),
                }
                selected.insert(t.name);
            }
        }
    }
    let states = match state {
        Some(p) => parse_state(read_json(p, "state")?)?,
        None => BTreeMap::new(),
    };
    let mode = if any_incremental && !states.is_empty() {
        Mode::Incremental
    } else {
        Mode::Full
    };
    let mut opts = ExportOptions::new(mode);
    opts.streams = TABLES
        .iter()
        .filter(|t| selected.contains(t.name))
        .map(|t| t.stream)
        .collect();
    opts.concurrency = c.concurrency.max(1);
    opts.overlap_ms = c.overlap_seconds.max(0) * 1000;
    if let Some(s) = &c.meetings_since {
        opts.meetings_since_ms = parse_time(s)?;
    }
    let client = client(&c)?;
    let org = org(&c, &client).await?;
    if let Some(url) = &c.driftbridge_database_url {
        let store = bridge_store::Store::connect(url.expose())
            .await
            .context("while opening driftbridge_database_url")?;
        opts.read_driftbridge_store(store, org).await?;
    }
    let sink = AirbyteSink {
        out: out.clone(),
        selected: Arc::new(selected),
        states: Arc::new(Mutex::new(if mode == Mode::Incremental {
            states
        } else {
            BTreeMap::new()
        })),
    };
    out.log(
        "INFO",
        &format!("reading org {org} ({mode:?}) from {}", c.base_url),
    )?;
    let summary = engine::run(client, sink, org, opts, Arc::new(Progress::default())).await?;
    out.log(
        "INFO",
        &format!(
            "done: {} records, {} API calls, {} x 429 in {:.1} s",
            summary.rows_changed, summary.api_calls, summary.responses_429, summary.seconds
        ),
    )
}
