//! Everything the CRM simulators hold, shared by their handlers: settings, faults, counters,
//! the write log and each CRM's records.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::common::{CrmSettings, FaultMode, Stats, Target, Write};
use super::data::{HubSpotData, MarketoData, SalesforceData};

/// Everything the CRM simulators hold.
#[derive(Debug, Default)]
pub struct CrmState {
    /// Settings.
    pub settings: Mutex<CrmSettings>,
    faults: Mutex<BTreeMap<Target, (FaultMode, Instant)>>,
    stats: Mutex<BTreeMap<Target, Stats>>,
    writes: Mutex<Vec<Write>>,
    /// HubSpot's data.
    pub hubspot: Mutex<HubSpotData>,
    /// Salesforce's data.
    pub salesforce: Mutex<SalesforceData>,
    /// Marketo's data.
    pub marketo: Mutex<MarketoData>,
    /// Marketo calls being answered.
    pub(crate) marketo_in_flight: std::sync::atomic::AtomicU32,
    /// Serialises find-then-write upserts.
    pub(crate) upserts: tokio::sync::Mutex<()>,
    /// Serialises deletions while `delete_budget` is set.
    deletes: tokio::sync::Mutex<()>,
}

impl CrmState {
    /// Counts a request, waits the latency, and answers the active fault if any.
    pub(crate) async fn enter(&self, t: Target) -> Option<FaultMode> {
        let latency = self.settings.lock().latency_ms;
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        let fault = {
            let mut f = self.faults.lock();
            match f.get(&t) {
                Some((m, until)) if *until > Instant::now() => Some(*m),
                Some(_) => {
                    f.remove(&t);
                    None
                }
                None => None,
            }
        };
        let mut s = self.stats.lock();
        let st = s.entry(t).or_default();
        st.requests += 1;
        if let Some(m) = fault {
            st.faulted += 1;
            if m == FaultMode::RateLimit {
                st.throttled += 1;
            }
        }
        fault
    }

    /// Waits while `delete_budget` is set and reached. While it is set, a deletion holds the
    /// guard this answers until it is recorded, so a second one cannot pass on the same count.
    pub(crate) async fn hold_delete(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.settings.lock().delete_budget?;
        let guard = self.deletes.lock().await;
        loop {
            let Some(budget) = self.settings.lock().delete_budget else {
                break;
            };
            let done = self.writes.lock().iter().filter(|w| w.is_delete()).count();
            if done < budget {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Some(guard)
    }

    /// Updates a target's counters.
    pub(crate) fn count(&self, t: Target, f: impl FnOnce(&mut Stats)) {
        f(self.stats.lock().entry(t).or_default());
    }

    /// Records a write.
    pub(crate) fn wrote(&self, target: Target, object: &str, op: &'static str, id: &str) {
        self.count(target, |s| {
            if op == "create" {
                s.created += 1;
            } else {
                s.updated += 1;
            }
        });
        self.writes.lock().push(Write {
            target,
            object: object.to_owned(),
            op,
            id: id.to_owned(),
            at_ms: drift_types::now_ms(),
        });
    }

    /// The counters of a target.
    pub fn stats(&self, t: Target) -> Stats {
        self.stats.lock().get(&t).cloned().unwrap_or_default()
    }

    /// Every write so far.
    pub fn writes(&self) -> Vec<Write> {
        self.writes.lock().clone()
    }

    /// Makes `t` answer `mode` errors for `d`.
    pub fn set_fault(&self, t: Target, mode: FaultMode, d: Duration) {
        self.faults.lock().insert(t, (mode, Instant::now() + d));
    }

    /// Everything, as JSON.
    pub fn dump(&self) -> Value {
        let stats: BTreeMap<Target, Stats> = self.stats.lock().clone();
        json!({
            "hubspot": self.hubspot.lock().dump(),
            "salesforce": self.salesforce.lock().dump(),
            "marketo": self.marketo.lock().dump(),
            "stats": stats,
            "writes": self.writes.lock().len(),
        })
    }
}
