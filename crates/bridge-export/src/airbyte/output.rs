//! Protocol messages on stdout, and the destination that turns committed pages into RECORD
//! and STATE messages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use anyhow::{Result, bail};
use bridge_store::tables::{Batch, TABLES, Table};
use parking_lot::Mutex;
use serde_json::{Value, json};

use super::catalog::covering;
use crate::engine::ExportDestination;

/// Prints protocol messages on stdout, one JSON object per line.
#[derive(Debug, Clone)]
pub struct Out(Arc<Mutex<std::io::BufWriter<std::io::Stdout>>>);

impl Out {
    pub fn new() -> Self {
        Out(Arc::new(Mutex::new(std::io::BufWriter::new(
            std::io::stdout(),
        ))))
    }

    pub fn send(&self, v: &Value) -> Result<()> {
        let mut w = self.0.lock();
        serde_json::to_writer(&mut *w, v)?;
        w.write_all(b"\n")?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.0.lock().flush()?;
        Ok(())
    }

    pub fn log(&self, level: &str, message: &str) -> Result<()> {
        self.send(&json!({"type": "LOG", "log": {"level": level, "message": message}}))
    }
}

/// The Airbyte sink: rows become RECORD messages, checkpoints STATE messages.
#[derive(Debug, Clone)]
pub(crate) struct AirbyteSink {
    pub out: Out,
    pub selected: Arc<HashSet<&'static str>>,
    /// The latest state of every checkpoint.
    pub states: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl AirbyteSink {
    fn emit_states(&self, names: &BTreeSet<String>) -> Result<()> {
        let states = self.states.lock().clone();
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

impl ExportDestination for AirbyteSink {
    async fn checkpoint(&self, stream: &str) -> Result<Option<Value>> {
        Ok(self.states.lock().get(stream).cloned())
    }

    async fn commit(&self, batch: Batch, states: Vec<(String, Value)>) -> Result<u64> {
        let at = drift_types::now_ms();
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
                    .map(|(c, v)| (c.name.to_owned(), crate::cells::to_json(c, v)))
                    .collect();
                self.out.send(&json!({
                    "type": "RECORD",
                    "record": {"stream": t.name, "data": data, "emitted_at": at}
                }))?;
                n += 1;
            }
        }
        let names: BTreeSet<String> = states.iter().map(|(k, _)| k.clone()).collect();
        self.states.lock().extend(states);
        self.emit_states(&names)?;
        self.out.flush()?;
        Ok(n)
    }

    async fn reset(&self, _streams: &[String]) -> Result<()> {
        self.states.lock().clear();
        Ok(())
    }

    async fn conversation_versions(&self, _ids: &[i64]) -> Result<HashMap<i64, Option<i64>>> {
        Ok(HashMap::new())
    }

    async fn stored_ids(&self, _table: &'static Table) -> Result<HashSet<i64>> {
        Ok(HashSet::new())
    }
    async fn mark_deleted(&self, _ids: &[i64], _at: i64) -> Result<u64> {
        Ok(0)
    }
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// Parses `--state`: an array of per-stream state messages (or of whole STATE messages),
/// merged into one map of checkpoints.
pub(crate) fn parse_state(v: Value) -> Result<BTreeMap<String, Value>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
