//! The small streams: users, playbooks with landing pages, accounts page by page, meetings
//! window by window.

use anyhow::Result;
use bridge_store::tables::Batch;
use serde_json::{Value, json};

use super::context::{Ctx, commit, done};
use super::output::ExportDestination;

pub(crate) async fn users<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let users = ctx.client.users().await?;
    let mut b = Batch::new();
    for u in &users {
        b.user(ctx.org, u);
    }
    ctx.users.lock().extend(users.iter().map(|u| u.id.0));
    commit(ctx, b, vec![("users".into(), done())]).await
}

pub(crate) async fn playbooks<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let playbooks = ctx.client.playbooks().await?;
    let pages = ctx.client.landing_pages().await?;
    let mut b = Batch::new();
    for p in &playbooks {
        b.playbook(ctx.org, p);
    }
    for l in &pages {
        b.landing_page(ctx.org, l);
    }
    commit(ctx, b, vec![("playbooks".into(), done())]).await
}

pub(crate) async fn accounts<S: ExportDestination>(
    ctx: &Ctx<S>,
    state: Option<Value>,
) -> Result<()> {
    let mut next: Option<String> = state
        .as_ref()
        .and_then(|s| s.get("next"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    loop {
        let (accounts, following) = ctx.client.accounts_page(next.as_deref(), 100).await?;
        let mut b = Batch::new();
        for a in &accounts {
            b.account(ctx.org, a);
        }
        let state = match &following {
            Some(n) => json!({"next": n}),
            None => done(),
        };
        commit(ctx, b, vec![("accounts".into(), state)]).await?;
        match following {
            Some(n) => next = Some(n),
            None => return Ok(()),
        }
    }
}

/// Most meetings one request answers (drift-api.md §5.3); a full window is split in two.
const MEETINGS_PER_CALL: usize = 1000;

/// Notes which conversation booked each meeting (the facts' `meetings_booked`).
fn remember<S: ExportDestination>(ctx: &Ctx<S>, found: &[drift_types::Meeting]) {
    let mut by = ctx.meetings.lock();
    for m in found {
        if let Some(c) = m.conversation_id {
            by.entry(c.0)
                .or_default()
                .insert(bridge_store::tables::meeting_key(m));
        }
    }
}

/// Lists the meetings window again without writing it, for the facts of a resumed run whose
/// meetings stream had finished (a call or two: at most 1,000 meetings a call).
pub(crate) async fn recall_meetings<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let o = &ctx.opts;
    let mut start = o.meetings_since_ms;
    let mut width = o.meetings_window_ms.max(60_000);
    while start < o.meetings_until_ms {
        let end = (start + width).min(o.meetings_until_ms);
        let found = ctx.client.meetings(start, end - 1).await?;
        if found.len() >= MEETINGS_PER_CALL && end - start > 60_000 {
            width = (end - start) / 2;
            continue;
        }
        remember(ctx, &found);
        start = end;
        width = o.meetings_window_ms.max(60_000);
    }
    Ok(())
}

pub(crate) async fn meetings<S: ExportDestination>(
    ctx: &Ctx<S>,
    state: Option<Value>,
) -> Result<()> {
    let o = &ctx.opts;
    let mut start = state
        .as_ref()
        .and_then(|s| s.get("next_start"))
        .and_then(Value::as_i64)
        .unwrap_or(o.meetings_since_ms);
    let mut width = o.meetings_window_ms.max(60_000);
    while start < o.meetings_until_ms {
        let end = (start + width).min(o.meetings_until_ms);
        let found = ctx.client.meetings(start, end - 1).await?;
        if found.len() >= MEETINGS_PER_CALL && end - start > 60_000 {
            width = (end - start) / 2;
            continue;
        }
        remember(ctx, &found);
        let mut b = Batch::new();
        for m in &found {
            b.meeting(ctx.org, m);
        }
        let state = if end >= o.meetings_until_ms {
            done()
        } else {
            json!({"next_start": end})
        };
        commit(ctx, b, vec![("meetings".into(), state)]).await?;
        start = end;
        width = o.meetings_window_ms.max(60_000);
    }
    if state.is_none() && o.meetings_since_ms >= o.meetings_until_ms {
        commit(ctx, Batch::new(), vec![("meetings".into(), done())]).await?;
    }
    Ok(())
}
