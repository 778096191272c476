//! The data connector: a full export or an incremental sync of every Drift object into a
//! [`ExportDestination`], resumable after a crash.
//!
//! Streams run in a fixed order: users, playbooks (+ landing pages), accounts (page by page),
//! meetings (window by window), then the conversation list, newest-updated first. For each
//! listed conversation the details, every message page, the transcript and its contact (once
//! per run) are fetched by up to `concurrency` spawned tasks; then the page is committed,
//! with the checkpoint that says where the next page starts, in one atomic commit, and only
//! then is the next page listed. A killed run therefore re-reads at most the page it was
//! working on.
//!
//! The incremental sync walks the same list and stops below the stored high-water mark minus
//! an overlap window; conversations whose `updatedAt` equals the stored one are skipped
//! without a call. Pacing is the client's: its budget holds the request rate at the token's
//! limit, and `concurrency` only has to be high enough to keep that budget busy.

mod attachments;
mod context;
mod conversations;
mod deletes;
mod options;
mod output;
mod progress;
mod streams;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result};
use bridge_store::tables::Stream;
use drift_client::DriftClient;
use drift_types::OrgId;
use serde_json::Value;

use context::{CONTACT_LIST, CONVERSATIONS, Ctx, is_done, stored_ids};
pub use options::{
    ContactRef, DAY_MS, ExportOptions, Mode, parse_contact_list, parse_since, parse_time,
};
pub use output::ExportDestination;
pub use progress::{Progress, Summary, eta};

fn checkpoint_names(opts: &ExportOptions) -> Vec<String> {
    let mut v: Vec<String> = [
        Stream::Users,
        Stream::Playbooks,
        Stream::Accounts,
        Stream::Meetings,
    ]
    .into_iter()
    .filter(|s| opts.wants(*s))
    .map(|s| s.name().to_owned())
    .collect();
    if opts.conversation_family() {
        v.push(CONVERSATIONS.into());
    }
    if !opts.contacts_from.is_empty() || !opts.contacts_from_events.is_empty() {
        v.push(CONTACT_LIST.into());
    }
    if opts.wants(Stream::Widget) {
        v.push(Stream::Widget.name().into());
    }
    v
}

/// Runs an export or sync of `org` into `sink`.
pub async fn run<S: ExportDestination>(
    client: DriftClient,
    sink: S,
    org: OrgId,
    mut opts: ExportOptions,
    progress: Arc<Progress>,
) -> Result<Summary> {
    let started = Instant::now();
    let stats0 = (
        client.stats().requests.load(Ordering::Relaxed),
        client.stats().rate_limited.load(Ordering::Relaxed),
        client.stats().retries.load(Ordering::Relaxed),
    );
    let names = checkpoint_names(&opts);
    let mut states = BTreeMap::new();
    for n in &names {
        states.insert(n.clone(), sink.checkpoint(n).await?);
    }
    // A full export resumes one that was interrupted; once everything is done, the next
    // full export starts again from the top.
    let resuming = opts.mode == Mode::Full
        && !opts.restart
        && states.values().any(|s| s.is_some() && !is_done(s));
    if opts.mode == Mode::Full
        && !resuming
        && (opts.restart || states.values().any(Option::is_some))
    {
        sink.reset(&names).await?;
        states.values_mut().for_each(|s| *s = None);
    }
    if opts.mode == Mode::Full && resuming {
        tracing::info!("resuming an interrupted export from its checkpoints");
    }
    let seed = opts.mode == Mode::Incremental || resuming;
    let tombstones = (
        opts.tombstones_at,
        Arc::new(std::mem::take(&mut opts.tombstones)),
    );
    let ctx = Arc::new(Ctx {
        tombstones: parking_lot::Mutex::new(tombstones),
        contacts: parking_lot::Mutex::new(if seed && opts.wants(Stream::Contacts) {
            stored_ids(&sink, "contacts").await?
        } else {
            HashSet::new()
        }),
        users: parking_lot::Mutex::new(if seed && opts.wants(Stream::Users) {
            stored_ids(&sink, "users").await?
        } else {
            HashSet::new()
        }),
        missing_users: Default::default(),
        meetings: Default::default(),
        client,
        sink,
        org,
        opts,
        progress,
    });
    let walked = walk(&ctx, &states).await;
    // What the pages committed is made durable even when a later page failed.
    let flushed = ctx
        .sink
        .flush()
        .await
        .context("while completing the export's files");
    let conversations_deleted = walked?;
    flushed?;

    let st = ctx.client.stats();
    let p = &ctx.progress;
    Ok(Summary {
        mode: ctx.opts.mode,
        rows: p.rows().into_iter().collect(),
        rows_changed: p.changed.load(Ordering::Relaxed),
        conversations_listed: p.listed.load(Ordering::Relaxed),
        conversations_fetched: p.fetched.load(Ordering::Relaxed),
        conversations_unchanged: p.unchanged.load(Ordering::Relaxed),
        conversations_deleted,
        attachments_saved: p.attachments_saved.load(Ordering::Relaxed),
        api_calls: st.requests.load(Ordering::Relaxed) - stats0.0,
        responses_429: st.rate_limited.load(Ordering::Relaxed) - stats0.1,
        retries: st.retries.load(Ordering::Relaxed) - stats0.2,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Walks every stream the options ask for; answers how many conversations it found deleted.
async fn walk<S: ExportDestination>(
    ctx: &Arc<Ctx<S>>,
    states: &BTreeMap<String, Option<Value>>,
) -> Result<u64> {
    let skip = |name: &str| opts_full_done(&ctx.opts, states, name);

    if ctx.opts.wants(Stream::Users) && !skip("users") {
        streams::users(ctx).await.context("while exporting users")?;
    }
    if ctx.opts.wants(Stream::Playbooks) && !skip("playbooks") {
        streams::playbooks(ctx)
            .await
            .context("while exporting playbooks")?;
    }
    if ctx.opts.wants(Stream::Accounts) && !skip("accounts") {
        streams::accounts(ctx, states["accounts"].clone())
            .await
            .context("while exporting accounts")?;
    }
    if ctx.opts.wants(Stream::Meetings) && !skip("meetings") {
        streams::meetings(ctx, states["meetings"].clone())
            .await
            .context("while exporting meetings")?;
    } else if ctx.opts.wants(Stream::Meetings)
        && ctx.opts.conversation_family()
        && !skip(CONVERSATIONS)
    {
        // A resumed run: the facts still to write need the meetings' conversations (a file
        // destination cannot ask its own tables, as a SQL store does).
        streams::recall_meetings(ctx)
            .await
            .context("while listing meetings again")?;
    }
    let mut conversations_deleted = 0;
    if ctx.opts.conversation_family() && !skip(CONVERSATIONS) {
        conversations::walk(ctx, states[CONVERSATIONS].clone())
            .await
            .context("while exporting conversations")?;
        if ctx.opts.mode == Mode::Incremental
            && ctx.opts.capture_deletes
            && ctx.opts.wants(Stream::Conversations)
        {
            conversations_deleted = deletes::sweep(ctx)
                .await
                .context("while looking for conversations deleted in Drift")?;
        }
    }
    if states.contains_key(CONTACT_LIST) && !skip(CONTACT_LIST) {
        conversations::contact_list(ctx)
            .await
            .context("while exporting the listed contacts")?;
    }
    conversations::missing_users(ctx)
        .await
        .context("while fetching referenced users")?;
    if states.contains_key("widget") && !skip("widget") {
        streams::widget(ctx, states["widget"].clone())
            .await
            .context("while exporting the widget events")?;
    }
    Ok(conversations_deleted)
}

fn opts_full_done(
    opts: &ExportOptions,
    states: &BTreeMap<String, Option<Value>>,
    name: &str,
) -> bool {
    opts.mode == Mode::Full && states.get(name).is_some_and(is_done)
}
