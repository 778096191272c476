//! What every stream of one run shares: the client, the destination, the options, the
//! counters and the sets that keep a run from fetching anything twice.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use std::sync::atomic::Ordering;

use anyhow::{Result, anyhow};
use bridge_store::privacy::{self, Tombstones};
use bridge_store::tables::Batch;
use drift_client::DriftClient;
use drift_types::OrgId;
use serde_json::{Value, json};

use super::options::ExportOptions;
use super::output::ExportDestination;
use super::progress::Progress;

/// Checkpoint names: one per stream, the conversation list covering its family.
pub(crate) const CONVERSATIONS: &str = "conversations";
pub(crate) const CONTACT_LIST: &str = "contact_list";

pub(crate) struct Ctx<S: ExportDestination> {
    pub client: DriftClient,
    pub sink: S,
    pub org: OrgId,
    pub opts: ExportOptions,
    pub progress: Arc<Progress>,
    /// Contacts stored or being fetched in this run.
    pub contacts: Mutex<HashSet<i64>>,
    /// Users listed or stored.
    pub users: Mutex<HashSet<i64>>,
    /// Users referenced but not listed.
    pub missing_users: Mutex<BTreeSet<i64>>,
    /// Meetings listed in this run, by the conversation that booked them (their keys).
    pub meetings: Mutex<std::collections::HashMap<i64, HashSet<String>>>,
    /// The tombstones this run drops rows by, and the newest erasure they hold.
    pub tombstones: Mutex<(i64, Arc<Tombstones>)>,
}

/// Whether a checkpoint says its stream is done.
impl<S: ExportDestination> Ctx<S> {
    /// A conversation's outcomes as this run knows them: its meetings listed, a goal the
    /// driftbridge store recorded.
    pub(crate) fn outcomes(&self, conversation: i64) -> bridge_store::tables::Outcomes {
        bridge_store::tables::Outcomes {
            goal_met: self.opts.goals_met.contains(&conversation),
            meetings_booked: self
                .meetings
                .lock()
                .get(&conversation)
                .map_or(0, |k| k.len() as i64),
            touch: self
                .opts
                .attribution
                .get(&conversation)
                .map(|a| a.touch.clone())
                .unwrap_or_default(),
        }
    }
}

pub(crate) fn is_done(state: &Option<Value>) -> bool {
    state
        .as_ref()
        .and_then(|s| s.get("done"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The ids already stored in the table called `name`.
pub(crate) async fn stored_ids<S: ExportDestination>(sink: &S, name: &str) -> Result<HashSet<i64>> {
    let table =
        bridge_store::tables::table(name).ok_or_else(|| anyhow!("there is no table {name:?}"))?;
    sink.stored_ids(table).await
}

/// The tombstones to drop a page's rows by: read again from the driftbridge store when an
/// erasure was made there since they were read, so a person erased during a long run is left
/// out of every page committed after their erasure (those committed before it are for
/// `gdpr purge`, or the erasure itself in the driftbridge store).
async fn tombstones<S: ExportDestination>(ctx: &Ctx<S>) -> Result<Arc<Tombstones>> {
    if let Some(store) = &ctx.opts.driftbridge_store {
        let mut conn = store.acquire().await?;
        let latest = privacy::latest_erasure(&mut conn, ctx.org.0).await?;
        if latest > ctx.tombstones.lock().0 {
            let read = Arc::new(Tombstones::load(&mut conn, &[ctx.org.0]).await?);
            tracing::info!(
                org.id = ctx.org.0,
                erasure.id = latest,
                "an erasure was made during this run: its person is left out from here on"
            );
            *ctx.tombstones.lock() = (latest, read);
        }
    }
    Ok(ctx.tombstones.lock().1.clone())
}

/// Commits a page of rows with its checkpoints and counts them.
pub(crate) async fn commit<S: ExportDestination>(
    ctx: &Ctx<S>,
    mut b: Batch,
    states: Vec<(String, Value)>,
) -> Result<()> {
    tombstones(ctx).await?.scrub(&mut b);
    // After the scrub, so an erased person's files are not fetched either.
    if let Some(dir) = &ctx.opts.attachments_dir {
        let (c, o) = (&ctx.client, &ctx.opts);
        super::attachments::save(c, ctx.org, &ctx.progress, o.concurrency, dir, &b).await?;
    }
    ctx.progress.count(&b);
    let changed = ctx.sink.commit(b, states).await?;
    ctx.progress.changed.fetch_add(changed, Ordering::Relaxed);
    Ok(())
}

/// The checkpoint of a finished stream.
pub(crate) fn done() -> Value {
    json!({"done": true, "at": drift_types::now_ms()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Destination, FileFormat, Target};

    #[tokio::test]
    async fn an_unknown_table_name_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::Files {
            format: FileFormat::Jsonl,
            dir: dir.path().to_owned(),
        };
        let dest = Destination::open(&target, OrgId(1)).await.unwrap();
        let e = stored_ids(&dest, "chats").await.unwrap_err().to_string();
        assert!(e.contains("\"chats\""), "{e}");
        assert!(stored_ids(&dest, "contacts").await.unwrap().is_empty());
    }
}
