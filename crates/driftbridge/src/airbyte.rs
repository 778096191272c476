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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use bridge_core::export::{self, ExportOptions, Mode, Progress, Sink};
use bridge_store::tables::{Batch, ColumnType, Stream, TABLES, Table};
use clap::{Args, Subcommand};
use drift_client::{ClientConfig, DriftClient, RateBudget, StaticToken};
use drift_types::{OrgId, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

/// `driftbridge airbyte ...`.
#[derive(Debug, Subcommand)]
pub enum AirbyteCommand {
    /// Print the connector specification.
    Spec,
    /// Check that the configuration reaches Drift.
    Check(ConfigArg),
    /// Print the catalog of streams.
    Discover(ConfigArg),
    /// Read records.
    Read(ReadArgs),
}

/// `--config F`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Connector configuration (JSON, see `spec`).
    #[arg(long)]
    config: PathBuf,
}

/// Arguments of `read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Connector configuration (JSON, see `spec`).
    #[arg(long)]
    config: PathBuf,
    /// Configured catalog (default: every stream, full refresh).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// State from an earlier read (an array of STATE messages' `state` objects).
    #[arg(long)]
    state: Option<PathBuf>,
}

/// The connector configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceConfig {
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

fn spec() -> Value {
    json!({
        "documentationUrl": "https://github.com/driftbridge/driftbridge/blob/main/docs/SCHEMA.md",
        "supportsIncremental": true,
        "connectionSpecification": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Drift source (driftbridge)",
            "type": "object",
            "required": ["access_token"],
            "additionalProperties": false,
            "properties": {
                "access_token": {"type": "string", "airbyte_secret": true,
                    "description": "A Drift OAuth access token or private-app token."},
                "base_url": {"type": "string", "default": "https://driftapi.com"},
                "org_id": {"type": "integer",
                    "description": "The Drift org (default: asked of token introspection)."},
                "rate_limit_per_minute": {"type": "integer", "default": 600, "minimum": 0},
                "concurrency": {"type": "integer", "default": 16, "minimum": 1},
                "meetings_since": {"type": "string",
                    "description": "YYYY-MM-DD or epoch ms; default 30 days ago."},
                "overlap_seconds": {"type": "integer", "default": 3600, "minimum": 0}
            }
        }
    })
}

/// Which checkpoints cover a table: the conversation walk for its family, the contact list
/// for contacts, the table's own stream otherwise.
fn covering(t: &Table) -> Vec<&'static str> {
    match t.stream {
        Stream::Conversations | Stream::Messages | Stream::Transcripts => vec!["conversations"],
        Stream::Contacts => vec!["conversations", "contact_list"],
        s => vec![s.name()],
    }
}

fn incremental(t: &Table) -> bool {
    covering(t).contains(&"conversations")
}

fn stream_schema(t: &Table) -> Value {
    let props: serde_json::Map<String, Value> = t
        .columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::Int => "integer",
                ColumnType::Text => "string",
            };
            let ty = if c.nullable {
                json!([ty, "null"])
            } else {
                json!(ty)
            };
            (c.name.to_owned(), json!({"type": ty}))
        })
        .collect();
    let mut s = json!({
        "name": t.name,
        "json_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": props,
            "required": t.columns.iter().filter(|c| !c.nullable).map(|c| c.name).collect::<Vec<_>>(),
        },
        "supported_sync_modes": if incremental(t) { json!(["full_refresh", "incremental"]) } else { json!(["full_refresh"]) },
        "source_defined_primary_key": t.columns[..t.key].iter().map(|c| vec![c.name]).collect::<Vec<_>>(),
    });
    if incremental(t) {
        s["source_defined_cursor"] = json!(true);
        if t.index("updated_at").is_some() {
            s["default_cursor_field"] = json!(["updated_at"]);
        }
    }
    s
}

fn catalog() -> Value {
    json!({"streams": TABLES.iter().map(stream_schema).collect::<Vec<_>>()})
}

/// Prints protocol messages on stdout, one JSON object per line.
#[derive(Debug, Clone)]
struct Out(Arc<Mutex<std::io::BufWriter<std::io::Stdout>>>);

impl Out {
    fn new() -> Self {
        Out(Arc::new(Mutex::new(std::io::BufWriter::new(
            std::io::stdout(),
        ))))
    }

    fn send(&self, v: &Value) -> Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_writer(&mut *w, v)?;
        w.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()?;
        Ok(())
    }

    fn log(&self, level: &str, message: &str) -> Result<()> {
        self.send(&json!({"type": "LOG", "log": {"level": level, "message": message}}))
    }
}

fn now_ms() -> i64 {
    drift_types::EpochMillis::now().0
}

/// The Airbyte sink: rows become RECORD messages, checkpoints STATE messages.
#[derive(Debug, Clone)]
struct AirbyteSink {
    out: Out,
    selected: Arc<HashSet<&'static str>>,
    /// The latest state of every checkpoint.
    states: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl AirbyteSink {
    fn emit_states(&self, names: &BTreeSet<String>) -> Result<()> {
        let states = self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for t in TABLES.iter().filter(|t| self.selected.contains(t.name)) {
            let cover = covering(t);
            if !cover.iter().any(|c| names.contains(*c)) {
                continue;
            }
            let stream_state: serde_json::Map<String, Value> = cover
                .iter()
                .filter_map(|c| states.get(*c).map(|s| ((*c).to_owned(), s.clone())))
                .collect();
            self.out.send(&json!({
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "stream": {
                        "stream_descriptor": {"name": t.name},
                        "stream_state": stream_state,
                    }
                }
            }))?;
        }
        Ok(())
    }
}

impl Sink for AirbyteSink {
    async fn checkpoint(&self, stream: &str) -> Result<Option<Value>> {
        Ok(self
            .states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(stream)
            .cloned())
    }

    async fn commit(&self, batch: Batch, states: Vec<(String, Value)>) -> Result<u64> {
        let at = now_ms();
        let mut n = 0;
        for (t, rows) in batch.tables() {
            if !self.selected.contains(t.name) {
                continue;
            }
            for r in rows {
                let data: serde_json::Map<String, Value> = t
                    .columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| (c.name.to_owned(), v.to_json()))
                    .collect();
                self.out.send(&json!({
                    "type": "RECORD",
                    "record": {"stream": t.name, "data": data, "emitted_at": at}
                }))?;
                n += 1;
            }
        }
        let names: BTreeSet<String> = states.iter().map(|(k, _)| k.clone()).collect();
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(states);
        self.emit_states(&names)?;
        self.out.flush()?;
        Ok(n)
    }

    async fn reset(&self, _streams: &[String]) -> Result<()> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    async fn conversation_versions(&self, _ids: &[i64]) -> Result<HashMap<i64, Option<i64>>> {
        Ok(HashMap::new())
    }

    async fn stored_ids(&self, _table: &'static Table) -> Result<HashSet<i64>> {
        Ok(HashSet::new())
    }
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

/// Parses `--state`: an array of per-stream state messages (or of whole STATE messages),
/// merged into one map of checkpoints.
fn parse_state(v: Value) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let items = match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    for item in items {
        let s = item.get("state").cloned().unwrap_or(item);
        let Some(stream_state) = s.pointer("/stream/stream_state") else {
            bail!("state entries must be per-stream (type STREAM) state messages: {s}");
        };
        if let Some(m) = stream_state.as_object() {
            for (k, v) in m {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Runs an `airbyte` subcommand; errors are reported as a TRACE message as well.
pub async fn run(cmd: AirbyteCommand) -> Result<()> {
    let out = Out::new();
    let result = dispatch(cmd, &out).await;
    if let Err(e) = &result {
        let _ = out.send(&json!({
            "type": "TRACE",
            "trace": {
                "type": "ERROR",
                "emitted_at": now_ms() as f64,
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

async fn dispatch(cmd: AirbyteCommand, out: &Out) -> Result<()> {
    match cmd {
        AirbyteCommand::Spec => out.send(&json!({"type": "SPEC", "spec": spec()})),
        AirbyteCommand::Discover(a) => {
            load_config(&a.config)?;
            out.send(&json!({"type": "CATALOG", "catalog": catalog()}))
        }
        AirbyteCommand::Check(a) => {
            let c = load_config(&a.config)?;
            let status = match client(&c)?.users().await {
                Ok(u) => {
                    json!({"status": "SUCCEEDED", "message": format!("reached Drift: {} users", u.len())})
                }
                Err(e) => json!({"status": "FAILED", "message": e.to_string()}),
            };
            out.send(&json!({"type": "CONNECTION_STATUS", "connectionStatus": status}))
        }
        AirbyteCommand::Read(a) => read(a, out).await,
    }
}

async fn read(a: ReadArgs, out: &Out) -> Result<()> {
    let c = load_config(&a.config)?;
    let mut selected: HashSet<&'static str> = HashSet::new();
    let mut any_incremental = false;
    match &a.catalog {
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
    let states = match &a.state {
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
        opts.meetings_since_ms = crate::export_cmd::parse_time(s)?;
    }
    let client = client(&c)?;
    let org = org(&c, &client).await?;
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
    let summary = export::run(client, sink, org, opts, Arc::new(Progress::default())).await?;
    out.log(
        "INFO",
        &format!(
            "done: {} records, {} API calls, {} x 429 in {:.1} s",
            summary.rows_changed, summary.api_calls, summary.responses_429, summary.seconds
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_a_stream_and_only_the_conversation_family_is_incremental() {
        let c = catalog();
        let streams = c["streams"].as_array().unwrap();
        assert_eq!(streams.len(), TABLES.len());
        let inc: Vec<&str> = streams
            .iter()
            .filter(|s| s["supported_sync_modes"].as_array().unwrap().len() == 2)
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(inc.contains(&"messages") && inc.contains(&"contacts"));
        assert!(!inc.contains(&"users") && !inc.contains(&"accounts"));
    }

    #[test]
    fn state_is_merged_from_per_stream_messages_and_legacy_blobs_are_refused() {
        let s = parse_state(json!([
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "messages"},
              "stream_state": {"conversations": {"hwm": 5}}}},
            {"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "contacts"},
              "stream_state": {"conversations": {"hwm": 5}, "contact_list": {"done": true}}}}}
        ]))
        .unwrap();
        assert_eq!(s["conversations"], json!({"hwm": 5}));
        assert_eq!(s["contact_list"], json!({"done": true}));
        assert!(parse_state(json!({"data": {}})).is_err());
    }
}
