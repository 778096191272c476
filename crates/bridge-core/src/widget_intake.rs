//! Storing widget batches: a batch's events, the consent a `gdprClicked` gives, and a
//! `derive_attribution` job per conversation its new events name are committed together
//! before the browser is answered. Batches arriving together share one transaction
//! ([`crate::group_commit`]), so a burst of page views costs one `fsync`, not one per
//! request, and does not hold SQLite's one connection in front of webhook intake. An event
//! about an erased person (an erased conversation, or an erased email in its payload) is
//! answered as taken and not stored.

use std::collections::BTreeSet;
use std::sync::Arc;

use bridge_queue::Queue;
use bridge_store::Op as _;
use bridge_store::privacy::Tombstones;
use bridge_store::widget::NewWidgetEvent;
use drift_types::{ConversationId, OrgId};
use serde_json::Value;

use crate::group_commit::{CommitError, Committer, GroupWrite};
use crate::jobs::{DeriveAttribution, JobKind};
use crate::metrics::Metrics;

/// One request's checked events.
#[derive(Debug, Clone)]
pub struct WidgetBatch {
    /// The org of the site.
    pub org: OrgId,
    /// The site's key.
    pub site: String,
    /// The visitor.
    pub visitor: String,
    /// The events, checked.
    pub events: Vec<NewWidgetEvent>,
}

/// What storing a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Events taken now: stored, or an erased person's, dropped.
    pub fresh: usize,
    /// Events stored earlier (a re-sent batch); nothing new was written for them.
    pub duplicates: usize,
}

/// Handle to the widget batches' committer task.
#[derive(Debug, Clone)]
pub struct WidgetIngestor(Committer<WidgetWrites>);

impl WidgetIngestor {
    /// Starts the committer on `queue`'s store.
    pub fn spawn(queue: Queue, metrics: Arc<Metrics>) -> Self {
        WidgetIngestor(Committer::spawn(WidgetWrites(queue), metrics))
    }

    /// Stores the batch durably, or says why not (then nothing of it was stored).
    pub async fn store(&self, batch: WidgetBatch) -> Result<Stored, CommitError> {
        self.0.submit(batch).await
    }
}

/// Widget batches, stored by the group committer.
#[derive(Debug)]
struct WidgetWrites(Queue);

impl GroupWrite for WidgetWrites {
    type Item = WidgetBatch;
    type Out = Stored;
    const METRIC: (&'static str, &'static str) = (
        "driftbridge_widget_commit_seconds",
        "Time to commit the widget batches that arrived together.",
    );

    async fn commit(&self, batches: &[WidgetBatch]) -> Result<Vec<Stored>, bridge_queue::Error> {
        let now = drift_types::now_ms();
        let mut tx = self.0.store().begin().await?;
        let orgs: BTreeSet<i64> = batches.iter().map(|b| b.org.0).collect();
        let orgs: Vec<i64> = orgs.into_iter().collect();
        let tombstones = Tombstones::load(&mut tx, &orgs).await?;
        // Every row in one order, (org, site, event id) and then consents by (org, site,
        // visitor), whatever order the batches and their events came in: on PostgreSQL an
        // insert of a key another open transaction holds waits for it, so two processes
        // storing a batch a browser sent twice would otherwise wait on each other, a deadlock
        // PostgreSQL breaks by failing one commit.
        let mut kept: Vec<(usize, &NewWidgetEvent)> = Vec::new();
        let mut erased = vec![0; batches.len()];
        for (i, b) in batches.iter().enumerate() {
            for e in &b.events {
                // An erased person's events are answered as taken but not stored.
                if !tombstones.is_empty() && about_erased(&tombstones, b.org.0, e) {
                    erased[i] += 1;
                } else {
                    kept.push((i, e));
                }
            }
        }
        kept.sort_by(|(i, e), (j, f)| {
            (batches[*i].org.0, &e.site, &e.event_id).cmp(&(
                batches[*j].org.0,
                &f.site,
                &f.event_id,
            ))
        });
        let mut fresh = erased;
        let mut conversations = BTreeSet::new();
        let mut consents = Vec::new();
        for (i, e) in kept {
            let b = &batches[i];
            let new = bridge_store::widget::insert(&mut tx, b.org.0, std::slice::from_ref(e), now)
                .await?;
            if !new.first().copied().unwrap_or(false) {
                continue;
            }
            fresh[i] += 1;
            if let Some(c) = e.conversation_id {
                conversations.insert((b.org, c));
            }
            if e.event_type == "gdprClicked" {
                let accepted = serde_json::from_str::<Value>(&e.data)
                    .ok()
                    .and_then(|d| d.get("accepted").and_then(Value::as_bool))
                    .unwrap_or(false);
                consents.push((b.org.0, &b.site, &b.visitor, e.occurred_at, accepted));
            }
        }
        // The latest answer wins whatever the order (the upsert keeps the newer), so sorting
        // changes nothing but the order of the locks.
        consents.sort();
        for (org, site, visitor, at, accepted) in consents {
            bridge_store::widget::record_consent(&mut tx, org, site, visitor, accepted, at).await?;
        }
        let out: Vec<Stored> = batches
            .iter()
            .zip(fresh)
            .map(|(b, fresh)| Stored {
                fresh,
                duplicates: b.events.len() - fresh,
            })
            .collect();
        let jobs: Vec<_> = conversations
            .into_iter()
            .map(|(org, c)| {
                DeriveAttribution {
                    conversation_id: ConversationId(c),
                }
                .to_job(Some(org))
            })
            .collect();
        self.0.enqueue_many(&mut tx, &jobs, now).await?;
        tx.commit().await.op("committing widget events")?;
        Ok(out)
    }

    fn committed(&self, outs: &[Stored]) {
        // A new event may have made a job (a wake without one costs an empty claim).
        if outs.iter().any(|s| s.fresh > 0) {
            self.0.wake();
        }
    }
}

/// Whether a widget event is about an erased person: it names an erased conversation, or a
/// text of its payload is an erased email (a form's `emailCapture`).
fn about_erased(t: &Tombstones, org: i64, e: &NewWidgetEvent) -> bool {
    fn emails(v: &Value, t: &Tombstones, org: i64) -> bool {
        match v {
            Value::String(s) => s.contains('@') && t.email(org, s),
            Value::Array(a) => a.iter().any(|x| emails(x, t, org)),
            Value::Object(o) => o.values().any(|x| emails(x, t, org)),
            _ => false,
        }
    }
    e.conversation_id.is_some_and(|c| t.conversation(org, c))
        || serde_json::from_str::<Value>(&e.data).is_ok_and(|d| emails(&d, t, org))
}
