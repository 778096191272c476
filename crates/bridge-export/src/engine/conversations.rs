//! The conversation walk: the list newest-updated first, page by page, each page's
//! conversations fetched together and committed with the checkpoint of the next page; then
//! the listed contacts and the users that conversations referenced but the user list lacked.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Result, anyhow};
use bridge_store::tables::{Batch, Stream};
use drift_client::{ListConversations, Part, Parts};
use drift_types::{Contact, ContactId, Conversation, UserId};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::context::{CONTACT_LIST, CONVERSATIONS, Ctx, commit, done};
use super::options::{ContactRef, Mode};
use super::output::ExportDestination;
use crate::rows::ConversationView;

pub(crate) async fn walk<S: ExportDestination>(
    ctx: &Arc<Ctx<S>>,
    state: Option<Value>,
) -> Result<()> {
    let get = |k: &str| state.as_ref().and_then(|s| s.get(k)).cloned();
    let hwm = get("hwm").and_then(|v| v.as_i64());
    let mut next: Option<String> = get("next").and_then(|v| v.as_str().map(str::to_owned));
    // The newest updatedAt this walk has seen (carried over when resuming a walk).
    let mut seen_max = get("walk_max").and_then(|v| v.as_i64()).unwrap_or(0);
    let floor = match ctx.opts.mode {
        Mode::Incremental => hwm.map(|h| h - ctx.opts.overlap_ms),
        Mode::Full => None,
    };
    let list = ListConversations {
        limit: Some(ctx.opts.page_size),
        ..Default::default()
    };
    loop {
        let (page, following) = ctx
            .client
            .conversations_page(next.as_deref(), &list)
            .await?;
        let (todo, stop) = plan_page(ctx, page, floor, &mut seen_max).await?;
        // The page's conversations are fetched together; the next page is listed only after
        // this one is committed, so a crash costs at most this page.
        let batches: Vec<Batch> = futures::stream::iter(todo)
            .map(|c| {
                let ctx = ctx.clone();
                async move {
                    tokio::spawn(async move { fetch_one(&ctx, c).await })
                        .await
                        .map_err(|e| anyhow!("a fetch task failed: {e}"))?
                }
            })
            .buffered(ctx.opts.concurrency)
            .try_collect()
            .await?;
        let mut b = Batch::new();
        batches.into_iter().for_each(|x| b.append(x));
        next = if stop { None } else { following };
        let state = match &next {
            Some(n) => json!({"next": n, "walk_max": seen_max, "hwm": hwm}),
            None => json!({
                "done": true,
                "hwm": seen_max.max(hwm.unwrap_or(0)),
                "at": drift_types::now_ms(),
            }),
        };
        commit(ctx, b, vec![(CONVERSATIONS.into(), state)]).await?;
        if next.is_none() {
            return Ok(());
        }
    }
}

/// Which conversations of a listed page need fetching; `true` when the walk can stop after
/// this page (an incremental sync reached the floor).
async fn plan_page<S: ExportDestination>(
    ctx: &Ctx<S>,
    page: Vec<Conversation>,
    floor: Option<i64>,
    seen_max: &mut i64,
) -> Result<(Vec<Conversation>, bool)> {
    ctx.progress
        .listed
        .fetch_add(page.len() as u64, Ordering::Relaxed);
    let mut stop = false;
    let mut keep = Vec::with_capacity(page.len());
    for c in page {
        let updated = c.updated_at.map_or(0, |u| u.0);
        *seen_max = (*seen_max).max(updated);
        if floor.is_some_and(|f| updated < f) {
            stop = true;
        } else {
            keep.push(c);
        }
    }
    if ctx.opts.mode == Mode::Incremental && !keep.is_empty() {
        let ids: Vec<i64> = keep.iter().map(|c| c.id.0).collect();
        let stored = ctx.sink.conversation_versions(&ids).await?;
        let before = keep.len();
        keep.retain(|c| {
            stored
                .get(&c.id.0)
                .is_none_or(|u| *u != c.updated_at.map(|x| x.0))
        });
        ctx.progress
            .unchanged
            .fetch_add((before - keep.len()) as u64, Ordering::Relaxed);
    }
    Ok((keep, stop))
}

/// Everything one listed conversation needs: details, messages, transcript and contact, as
/// the selected streams ask, through the same fetch as the webhook sync.
async fn fetch_one<S: ExportDestination>(ctx: &Ctx<S>, listed: Conversation) -> Result<Batch> {
    let (o, org, now) = (&ctx.opts, ctx.org, drift_types::now_ms());
    let parts = Parts {
        details: o.wants(Stream::Conversations),
        messages: o.wants(Stream::Messages),
        transcript: o.wants(Stream::Transcripts),
        contact: o.wants(Stream::Contacts),
    };
    let id = listed.id;
    let fetched = match ctx
        .client
        .fetch_conversation(id, Some(listed), parts, |cid| {
            ctx.contacts.lock().insert(cid.0)
        })
        .await
    {
        Ok(f) => f,
        // Deleted between the list and now (GDPR): nothing to export.
        Err(e) if e.part == Part::Conversation && e.source.is_not_found() => {
            return Ok(Batch::new());
        }
        Err(e) => return Err(e.into()),
    };
    let mut b = Batch::new();
    crate::rows::conversation(
        &mut b,
        org,
        ConversationView {
            outcomes: ctx.outcomes(fetched.conversation.id.0),
            ..ConversationView::of(&fetched, parts.details, parts.messages)
        },
        now,
    );
    if o.wants(Stream::Users) {
        let known = ctx.users.lock();
        let missing: Vec<i64> = fetched
            .referenced_users()
            .into_iter()
            .map(|u| u.0)
            .filter(|u| !known.contains(u))
            .collect();
        drop(known);
        ctx.missing_users.lock().extend(missing);
    }
    ctx.progress.fetched.fetch_add(1, Ordering::Relaxed);
    Ok(b)
}

/// Contacts named by `--contacts-from` and by stored events, those not exported yet.
pub(crate) async fn contact_list<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let (c, org, now) = (&ctx.client, ctx.org, drift_types::now_ms());
    let mut b = Batch::new();
    let add = |b: &mut Batch, x: &Contact| {
        if ctx.contacts.lock().insert(x.id.0) {
            b.contact(org, x, now);
        }
    };
    let mut external = Vec::new();
    for r in &ctx.opts.contacts_from {
        match r {
            ContactRef::Email(e) => {
                let found: Vec<Contact> = c.contacts_by_email(e).try_collect().await?;
                found.iter().for_each(|x| add(&mut b, x));
            }
            ContactRef::ExternalId(x) => external.push(x.as_str()),
        }
    }
    for chunk in external.chunks(50) {
        for x in c.contacts_by_external_id(chunk).await? {
            add(&mut b, &x);
        }
    }
    for id in &ctx.opts.contacts_from_events {
        if !ctx.contacts.lock().contains(id)
            && let Some(x) = c.contact_if_exists(ContactId(*id)).await?
        {
            add(&mut b, &x);
        }
    }
    commit(ctx, b, vec![(CONTACT_LIST.into(), done())]).await
}

/// Users that conversations reference but `/users/list` did not return.
pub(crate) async fn missing_users<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let ids: Vec<UserId> = std::mem::take(&mut *ctx.missing_users.lock())
        .into_iter()
        .filter(|u| !ctx.users.lock().contains(u))
        .map(UserId)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut b = Batch::new();
    for chunk in ids.chunks(drift_client::USERS_PER_BATCH) {
        for u in ctx.client.users_by_id(chunk).await?.values() {
            b.user(ctx.org, u);
        }
    }
    commit(ctx, b, Vec::new()).await
}
