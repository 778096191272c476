//! The small streams: users, playbooks with landing pages, accounts page by page, meetings
//! window by window.

use anyhow::Result;
use bridge_store::tables::Batch;
use serde_json::{Value, json};

use super::context::{Ctx, commit, done, is_done};
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

/// The meetings from a start to the window's end, window by window: a window that hits the
/// per-call cap is halved and asked again; each window's meetings are noted by the
/// conversation that booked them.
struct Windows {
    start: i64,
    width: i64,
}

impl Windows {
    fn from<S: ExportDestination>(ctx: &Ctx<S>, start: i64) -> Self {
        Windows {
            start,
            width: ctx.opts.meetings_window_ms.max(60_000),
        }
    }

    /// The next window's meetings and its end, or `None` past the last.
    async fn next<S: ExportDestination>(
        &mut self,
        ctx: &Ctx<S>,
    ) -> Result<Option<(Vec<drift_types::Meeting>, i64)>> {
        let o = &ctx.opts;
        while self.start < o.meetings_until_ms {
            let end = (self.start + self.width).min(o.meetings_until_ms);
            let found = ctx.client.meetings(self.start, end - 1).await?;
            if found.len() >= MEETINGS_PER_CALL && end - self.start > 60_000 {
                self.width = (end - self.start) / 2;
                continue;
            }
            remember(ctx, &found);
            self.start = end;
            self.width = o.meetings_window_ms.max(60_000);
            return Ok(Some((found, end)));
        }
        Ok(None)
    }
}

/// Lists the meetings window again without writing it, for the facts of a resumed run whose
/// meetings stream had finished (a call or two: at most 1,000 meetings a call).
pub(crate) async fn recall_meetings<S: ExportDestination>(ctx: &Ctx<S>) -> Result<()> {
    let mut w = Windows::from(ctx, ctx.opts.meetings_since_ms);
    while w.next(ctx).await?.is_some() {}
    Ok(())
}

pub(crate) async fn meetings<S: ExportDestination>(
    ctx: &Ctx<S>,
    state: Option<Value>,
) -> Result<()> {
    let o = &ctx.opts;
    let start = state
        .as_ref()
        .and_then(|s| s.get("next_start"))
        .and_then(Value::as_i64)
        .unwrap_or(o.meetings_since_ms);
    let mut w = Windows::from(ctx, start);
    while let Some((found, end)) = w.next(ctx).await? {
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
    }
    if state.is_none() && o.meetings_since_ms >= o.meetings_until_ms {
        commit(ctx, Batch::new(), vec![("meetings".into(), done())]).await?;
    }
    Ok(())
}

/// Rows of the widget tables read at once from the driftbridge store.
const WIDGET_PAGE: i64 = 2000;

/// The widget tables, copied page by page from the driftbridge store that collected them
/// (Drift has no copy). The checkpoint holds the table and the key of the last row copied.
pub(crate) async fn widget<S: ExportDestination>(ctx: &Ctx<S>, state: Option<Value>) -> Result<()> {
    use bridge_store::tables::Value as Cell;
    let Some(source) = &ctx.opts.driftbridge_store else {
        // Without the driftbridge database there is nothing to copy; the stream is done.
        return commit(ctx, Batch::new(), vec![("widget".into(), done())]).await;
    };
    let tables = bridge_store::widget::TABLES;
    let resumed = state.as_ref().filter(|s| !is_done(&Some((*s).clone())));
    let mut table = resumed
        .and_then(|s| s.get("table"))
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let mut after: Option<Vec<Cell>> = resumed
        .and_then(|s| s.get("after"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::Number(n) => Cell::Int(n.as_i64().unwrap_or_default()),
                    Value::String(s) => Cell::Text(s.clone()),
                    _ => Cell::Null,
                })
                .collect()
        });
    while table < tables.len() {
        let t = bridge_store::tables::table(tables[table])
            .ok_or_else(|| anyhow::anyhow!("no table {}", tables[table]))?;
        let rows = {
            let mut conn = source.acquire().await?;
            bridge_store::widget::page(&mut conn, ctx.org.0, t.name, after.as_deref(), WIDGET_PAGE)
                .await?
        };
        let full = rows.len() as i64 == WIDGET_PAGE;
        after = rows.last().map(|r| r[1..t.key].to_vec());
        let mut b = Batch::new();
        for r in rows {
            b.push(t, r);
        }
        if !full {
            (table, after) = (table + 1, None);
        }
        let state = if table >= tables.len() {
            done()
        } else {
            json!({"table": table, "after": after.as_ref().map(|a| a.iter().map(Cell::to_json).collect::<Vec<_>>())})
        };
        commit(ctx, b, vec![("widget".into(), state)]).await?;
    }
    Ok(())
}
