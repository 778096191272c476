//! GDPR erasure across driftbridge: one transaction removes the person from the store
//! (`bridge_store::privacy`), records tombstones and the erasure, and queues one
//! `erase_from_sink` job per configured sink that holds or may hold them ([`erase_in`], which
//! `erase_subject` runs for Drift's `gdpr_delete_requested` and `driftbridge gdpr delete` for an
//! operator). The sink jobs carry ids only, and each deletion they make is idempotent, so a
//! crash at any point ends, after a restart, with the same result and each CRM erasure made
//! once in effect.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;
use bridge_queue::{JobCtx, JobError, Queue};
use bridge_sinks::registry::{SinkSpec, Sinks};
use bridge_sinks::sink::ErasureRequest;
use bridge_store::Conn;
use bridge_store::privacy::{self, Erased, SubjectKey};
use drift_types::OrgId;
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::{Pipeline, configured};
use crate::failure::SinkFailure;
use crate::metrics::labels;

/// Recorded values that are not CRM records: an HTTP delivery's message id and the status it
/// was answered with. Every other role is a record the erasure hands to its sink (`contact`,
/// `note`, `lead`, `task`, `meeting:KEY`, `event:KEY`, ...), so a record kind a sink adds is
/// erased without a list here to keep in step; a sink deletes the roles it knows.
const NOT_RECORDS: &[&str] = &["webhook_id", "status"];

fn is_record(role: &str) -> bool {
    !NOT_RECORDS.contains(&role)
}

/// A configured sink as an erasure sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRoute {
    /// `[sinks.NAME]`.
    pub name: String,
    /// Orgs served (empty: all).
    pub orgs: Vec<i64>,
    /// Told of every erasure in its orgs (an HTTP endpoint), not only of records it got.
    pub always: bool,
}

impl SinkRoute {
    /// From the configuration (the command line needs no built sink).
    pub fn from_specs(specs: &BTreeMap<String, SinkSpec>) -> Vec<SinkRoute> {
        specs
            .iter()
            .map(|(name, s)| SinkRoute {
                name: name.clone(),
                orgs: s.common().orgs.clone(),
                always: s.kind() == "http",
            })
            .collect()
    }

    /// From the built sinks.
    pub fn from_sinks(sinks: &Sinks) -> Vec<SinkRoute> {
        sinks
            .names()
            .into_iter()
            .filter_map(|n| {
                let s = sinks.get(&n)?;
                Some(SinkRoute {
                    always: s.told_of_every_erasure(),
                    orgs: s.orgs.clone(),
                    name: n,
                })
            })
            .collect()
    }

    fn serves(&self, org: i64) -> bool {
        self.orgs.is_empty() || self.orgs.contains(&org)
    }
}

/// Who asked and when.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The person's email (any case, surrounding spaces ignored).
    pub email: &'a str,
    /// `webhook` or `cli`.
    pub source: &'a str,
    /// The `gdpr_delete_requested` event, when one asked.
    pub event_id: Option<i64>,
    /// When it was asked for (epoch ms).
    pub requested_at: i64,
}

/// Erases the person from each of `orgs` inside the caller's transaction and queues the sink
/// jobs in it; the caller commits, then calls `Store::checkpoint`.
pub async fn erase_in(
    conn: &mut Conn,
    queue: &Queue,
    sinks: &[SinkRoute],
    orgs: &[i64],
    req: &Request<'_>,
) -> anyhow::Result<Vec<Erased>> {
    let key = SubjectKey::load_or_create(conn).await?;
    let mut out = Vec::new();
    for &org in orgs {
        let erased = privacy::erase_org(
            conn,
            &key,
            org,
            req.email,
            req.source,
            req.event_id,
            req.requested_at,
        )
        .await?;
        let now = drift_types::now_ms();
        let mut told = BTreeSet::new();
        for sink in sinks.iter().filter(|s| s.serves(org)) {
            told.insert(sink.name.as_str());
            let request = request_for(&erased, &sink.name);
            // An endpoint only ever got the person through our deliveries, so when the store
            // holds nothing of them (never did, or an earlier erasure took it) it has nothing
            // to hear.
            let held = !erased.contacts.is_empty() || !erased.conversations.is_empty();
            if request.records.is_empty() && !(sink.always && held) {
                privacy::mark_sink(conn, erased.erasure_id, &sink.name, "nothing", 0, None).await?;
                continue;
            }
            privacy::mark_sink(conn, erased.erasure_id, &sink.name, "pending", 0, None).await?;
            let job = EraseFromSink {
                sink: sink.name.clone(),
                request,
            }
            .to_job(Some(drift_types::OrgId(org)));
            queue.enqueue(conn, &job, now).await?;
        }
        // Records a sink that is no longer configured got: nobody can delete them from here.
        let gone: BTreeSet<&str> = erased
            .deliveries
            .iter()
            .map(|d| d.sink.as_str())
            .filter(|s| !told.contains(s))
            .collect();
        for sink in gone {
            let n = request_for(&erased, sink)
                .records
                .values()
                .map(Vec::len)
                .sum::<usize>();
            privacy::mark_sink(
                conn,
                erased.erasure_id,
                sink,
                "failed",
                n as i64,
                Some("this sink is no longer configured: delete its records in the CRM by hand"),
            )
            .await?;
        }
        out.push(erased);
    }
    Ok(out)
}

/// What changed about the person while a sink write's CRM calls ran, settled in the
/// transaction that would record the write: an erasure takes what the write made
/// ([`late_write`]); an opt-out the write did not carry is queued again for its sink
/// ([`super::optout::if_opted_out_meanwhile`]). Answers whether the person was erased: the
/// caller then forgets its row instead of recording it, and completes its job.
pub(crate) async fn settle_write(
    conn: &mut Conn,
    queue: &Queue,
    sink: &str,
    org: OrgId,
    about: privacy::WrittenAbout<'_>,
    external: &BTreeMap<String, String>,
    rendered_opted_out: bool,
) -> anyhow::Result<bool> {
    if let Some(erasure) = privacy::erasure_of(conn, org.0, about).await? {
        late_write(conn, queue, erasure, sink, org, about, external).await?;
        return Ok(true);
    }
    if let Some(email) = about.email {
        super::optout::if_opted_out_meanwhile(
            conn,
            queue,
            sink,
            org,
            rendered_opted_out,
            about.contacts.first().copied(),
            email,
        )
        .await?;
    }
    Ok(false)
}

/// Hands a sink write that ended after the person's erasure to that erasure, in the write's
/// own transaction instead of its record (the caller completes its job in it): the sink is
/// told to delete what the write made (`external`, by role), as an `erase_from_sink` job like
/// the erasure's own, and the erasure lists the sink as pending again. Without this, records
/// a CRM created while the erasure committed were recorded nowhere and stayed.
async fn late_write(
    conn: &mut Conn,
    queue: &Queue,
    erasure: i64,
    sink: &str,
    org: OrgId,
    about: privacy::WrittenAbout<'_>,
    external: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let request = ErasureRequest {
        erasure,
        org: org.0,
        contacts: about.contacts.to_vec(),
        conversations: about.conversations.to_vec(),
        records: external
            .iter()
            .filter(|(role, _)| is_record(role))
            .map(|(role, id)| (role.clone(), vec![id.clone()]))
            .collect(),
    };
    privacy::mark_sink(conn, erasure, sink, "pending", 0, None).await?;
    let job = EraseFromSink {
        sink: sink.to_owned(),
        request,
    }
    .to_job(Some(org));
    queue.enqueue(conn, &job, drift_types::now_ms()).await?;
    tracing::warn!(
        sink,
        erasure.id = erasure,
        "a write to the sink ended after the person's erasure; what it made is erased too"
    );
    Ok(())
}

/// What one sink is told of an erasure: the person's Drift ids and the CRM ids our
/// deliveries to it recorded, each once.
fn request_for(e: &Erased, sink: &str) -> ErasureRequest {
    let mut records: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in e.deliveries.iter().filter(|d| d.sink == sink) {
        for (role, id) in &d.external_ids {
            if is_record(role) {
                records.entry(role.clone()).or_default().insert(id.clone());
            }
        }
    }
    ErasureRequest {
        erasure: e.erasure_id,
        org: e.org,
        contacts: e.contacts.clone(),
        conversations: e.conversations.clone(),
        records: records
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect(),
    }
}

/// Erases a person from the store of one org (Drift asked: `gdpr_delete_requested`). Its
/// arguments hold the email until it runs: the erasure redacts them with everything else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EraseSubject {
    /// The person's email.
    pub email: String,
    /// When Drift says it was asked for (epoch ms).
    #[serde(default)]
    pub requested_at: Option<i64>,
}

impl JobKind for EraseSubject {
    const NAME: &'static str = "erase_subject";
}

impl EraseSubject {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        if !self.email.contains('@') {
            return Err(JobError::Permanent(anyhow!(
                "gdpr_delete_requested without an email: nothing to erase"
            )));
        }
        let req = Request {
            email: &self.email,
            source: "webhook",
            event_id: ctx.job.event_id,
            requested_at: self.requested_at.unwrap_or_else(drift_types::now_ms),
        };
        let routes = SinkRoute::from_sinks(&p.sinks);
        let queue = ctx.queue().clone();
        let mut tx = ctx.begin().await?;
        let erased = erase_in(&mut tx, &queue, &routes, &[org.0], &req).await?;
        ctx.finish(tx).await?;
        let store = queue.store();
        if !store.checkpoint(20).await? {
            tracing::warn!(
                org.id = org.0,
                "the WAL could not be truncated after an erasure \
                (another process holds an old snapshot); the next checkpoint removes it"
            );
        }
        for e in &erased {
            p.metrics.inc(
                "driftbridge_erasures_total",
                "People erased from the store, by who asked (webhook, cli).",
                labels(&[("source", "webhook")]),
                1,
            );
            tracing::info!(
                org.id = org.0,
                erasure.id = e.erasure_id,
                conversations = e.conversations.len(),
                "erased a person (gdpr_delete_requested)"
            );
        }
        Ok(())
    }
}

/// Deletes what one sink holds of an erased person (ids only in its arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EraseFromSink {
    /// The `[sinks.NAME]` name.
    pub sink: String,
    /// What to delete.
    pub request: ErasureRequest,
}

impl JobKind for EraseFromSink {
    const NAME: &'static str = "erase_from_sink";
}

const OUTCOMES: &str = "driftbridge_sink_erasures_total";
const OUTCOMES_HELP: &str =
    "Erasure jobs by sink and outcome: done, retried, throttled, failed (the CRM refused)";

impl EraseFromSink {
    pub(crate) async fn run(self, p: &Pipeline, ctx: &mut JobCtx) -> Result<(), JobError> {
        let count = |outcome: &str| {
            p.metrics.inc(
                OUTCOMES,
                OUTCOMES_HELP,
                labels(&[("sink", &self.sink), ("outcome", outcome)]),
                1,
            )
        };
        let store = ctx.queue().store().clone();
        let erasure = self.request.erasure;
        let sink = match configured(&p.sinks, &self.sink) {
            Ok(s) => s,
            Err(e) => {
                let mut conn = store.acquire().await?;
                let msg = match &e {
                    JobError::Permanent(why) => format!("{why:#}"),
                    other => format!("{other:?}"),
                };
                privacy::mark_sink(&mut conn, erasure, &self.sink, "failed", 0, Some(&msg)).await?;
                return Err(e);
            }
        };
        match sink.erase(&self.request).await {
            Ok(n) => {
                let mut tx = store.begin().await?;
                privacy::mark_sink(&mut tx, erasure, &self.sink, "done", i64::from(n), None)
                    .await?;
                ctx.finish(tx).await?;
                count("done");
                tracing::info!(sink = %self.sink, erasure.id = erasure, records = n,
                    "erased from a sink");
                Ok(())
            }
            Err(e) => {
                let f = SinkFailure::new(e, format!("erasing from sink {}", self.sink));
                let state = if f.rejected { "failed" } else { "pending" };
                let mut conn = store.acquire().await?;
                privacy::mark_sink(&mut conn, erasure, &self.sink, state, 0, Some(&f.message()))
                    .await?;
                count(f.outcome);
                Err(f.into_job_error())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge_store::privacy::ErasedDelivery;

    #[test]
    fn a_sink_is_told_every_record_its_deliveries_made_and_not_the_http_bookkeeping() {
        let delivery = |sink: &str, ids: &[(&str, &str)]| ErasedDelivery {
            sink: sink.into(),
            conversation_id: 1,
            external_ids: ids
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let e = Erased {
            deliveries: vec![
                delivery(
                    "hubspot",
                    &[("contact", "c1"), ("note", "n1"), ("meeting:1:evt", "m1")],
                ),
                delivery("hubspot", &[("contact", "c1"), ("note", "n2")]),
                delivery("webhook", &[("webhook_id", "msg_1"), ("status", "200")]),
            ],
            ..Erased::default()
        };
        let hs = request_for(&e, "hubspot").records;
        assert_eq!(hs["contact"], vec!["c1"]);
        assert_eq!(hs["note"], vec!["n1", "n2"]);
        assert_eq!(hs["meeting:1:evt"], vec!["m1"]);
        assert!(request_for(&e, "webhook").records.is_empty());
    }
}
