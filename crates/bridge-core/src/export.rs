//! The data connector: a full export or an incremental sync of every Drift object into a
//! [`Sink`], resumable after a crash.
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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bridge_store::tables::{Batch, Stream, TABLES, Table};
use drift_client::{DriftClient, ListConversations};
use drift_types::{AuthorType, Contact, ContactId, Conversation, ConversationId, OrgId, UserId};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{Value, json};

/// Where exported rows go: a destination that commits rows together with checkpoints.
pub trait Sink: Clone + Send + Sync + 'static {
    /// The saved state of `stream`.
    fn checkpoint(&self, stream: &str) -> impl Future<Output = Result<Option<Value>>> + Send;
    /// Writes rows and checkpoints atomically; answers how many rows changed.
    fn commit(
        &self,
        batch: Batch,
        states: Vec<(String, Value)>,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// Forgets the checkpoints (and for append-only sinks the rows) of `streams`.
    fn reset(&self, streams: &[String]) -> impl Future<Output = Result<()>> + Send;
    /// Stored `updated_at` per conversation id, where the sink can tell.
    fn conversation_versions(
        &self,
        ids: &[i64],
    ) -> impl Future<Output = Result<std::collections::HashMap<i64, Option<i64>>>> + Send;
    /// Ids already stored in `table`, where the sink can tell.
    fn stored_ids(
        &self,
        table: &'static Table,
    ) -> impl Future<Output = Result<HashSet<i64>>> + Send;
}

impl Sink for bridge_sinks::Destination {
    async fn checkpoint(&self, stream: &str) -> Result<Option<Value>> {
        Ok(bridge_sinks::Destination::checkpoint(self, stream)
            .await?
            .filter(|v| !v.is_null()))
    }
    async fn commit(&self, batch: Batch, states: Vec<(String, Value)>) -> Result<u64> {
        Ok(bridge_sinks::Destination::commit(self, batch, states).await?)
    }
    async fn reset(&self, streams: &[String]) -> Result<()> {
        Ok(bridge_sinks::Destination::reset(self, streams).await?)
    }
    async fn conversation_versions(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Option<i64>>> {
        Ok(bridge_sinks::Destination::conversation_versions(self, ids).await?)
    }
    async fn stored_ids(&self, table: &'static Table) -> Result<HashSet<i64>> {
        Ok(bridge_sinks::Destination::stored_ids(self, table).await?)
    }
}

/// Full export or incremental sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every object; resumes an interrupted export, else starts from the top.
    Full,
    /// Only what changed since the stored high-water mark.
    Incremental,
}

/// A contact named in `--contacts-from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContactRef {
    /// By email (every contact with it).
    Email(String),
    /// By the customer's external id.
    ExternalId(String),
}

/// Parses a contact list: one email or external id per line; blank lines and `#` comments
/// are skipped.
pub fn parse_contact_list(text: &str) -> Vec<ContactRef> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            if l.contains('@') {
                ContactRef::Email(l.to_owned())
            } else {
                ContactRef::ExternalId(l.to_owned())
            }
        })
        .collect()
}

/// What to export and how.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Full or incremental.
    pub mode: Mode,
    /// Selected streams.
    pub streams: BTreeSet<Stream>,
    /// Conversations fetched at once.
    pub concurrency: usize,
    /// Conversation list page size (Drift's maximum is 100).
    pub page_size: u32,
    /// How far below the high-water mark a sync still looks (Drift's `updatedAt` can lag).
    pub overlap_ms: i64,
    /// Meetings with a slot starting at or after this (Drift serves the last 30 days).
    pub meetings_since_ms: i64,
    /// ... and before this.
    pub meetings_until_ms: i64,
    /// Width of one meetings request window.
    pub meetings_window_ms: i64,
    /// Extra contacts to export.
    pub contacts_from: Vec<ContactRef>,
    /// Contact ids referenced by stored webhook events.
    pub contacts_from_events: Vec<i64>,
    /// Forget checkpoints and start from the top.
    pub restart: bool,
}

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

impl ExportOptions {
    /// Defaults: every stream, 16 at once, pages of 100, a 1 h overlap, meetings of the last
    /// 30 days and the next 180.
    pub fn new(mode: Mode) -> Self {
        let now = crate::now_ms();
        ExportOptions {
            mode,
            streams: Stream::ALL.into_iter().collect(),
            concurrency: 16,
            page_size: 100,
            overlap_ms: 3_600_000,
            meetings_since_ms: now - 30 * DAY_MS,
            meetings_until_ms: now + 180 * DAY_MS,
            meetings_window_ms: 30 * DAY_MS,
            contacts_from: Vec::new(),
            contacts_from_events: Vec::new(),
            restart: false,
        }
    }

    /// Whether the stream is selected.
    pub fn wants(&self, s: Stream) -> bool {
        self.streams.contains(&s)
    }

    fn conversation_family(&self) -> bool {
        [
            Stream::Conversations,
            Stream::Messages,
            Stream::Transcripts,
            Stream::Contacts,
        ]
        .into_iter()
        .any(|s| self.wants(s))
    }
}

/// Live counters, read by the progress display while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    rows: [AtomicU64; TABLES.len()],
    /// Rows that changed in the destination.
    pub changed: AtomicU64,
    /// Conversations listed so far.
    pub listed: AtomicU64,
    /// Conversations fetched (details, messages, transcript).
    pub fetched: AtomicU64,
    /// Listed conversations skipped because the stored copy is current.
    pub unchanged: AtomicU64,
    /// Conversations in the org, when known (for the ETA).
    pub total: AtomicU64,
}

impl Progress {
    /// Rows sent so far, per table.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        TABLES
            .iter()
            .zip(self.rows.iter())
            .map(|(t, n)| (t.name, n.load(Ordering::Relaxed)))
            .collect()
    }

    fn count(&self, b: &Batch) {
        for (t, rows) in b.tables() {
            self.rows[t.position()].fetch_add(rows.len() as u64, Ordering::Relaxed);
        }
    }
}

/// What a run did.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Full or incremental.
    pub mode: Mode,
    /// Rows sent to the destination, per table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Rows that changed in the destination (SQL) or were written (files).
    pub rows_changed: u64,
    /// Conversations listed.
    pub conversations_listed: u64,
    /// Conversations fetched.
    pub conversations_fetched: u64,
    /// Conversations skipped as unchanged.
    pub conversations_unchanged: u64,
    /// HTTP requests to Drift, retries included.
    pub api_calls: u64,
    /// 429 answers.
    pub responses_429: u64,
    /// Retried requests.
    pub retries: u64,
    /// Wall time.
    pub seconds: f64,
}

struct Ctx<S: Sink> {
    client: DriftClient,
    sink: S,
    org: OrgId,
    opts: ExportOptions,
    progress: Arc<Progress>,
    /// Contacts stored or being fetched in this run.
    contacts: std::sync::Mutex<HashSet<i64>>,
    /// Users listed or stored.
    users: std::sync::Mutex<HashSet<i64>>,
    /// Users referenced but not listed.
    missing_users: std::sync::Mutex<BTreeSet<i64>>,
}

/// Checkpoint names: one per stream, the conversation list covering its family.
const CONVERSATIONS: &str = "conversations";
const CONTACT_LIST: &str = "contact_list";

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
    v
}

fn is_done(state: &Option<Value>) -> bool {
    state
        .as_ref()
        .and_then(|s| s.get("done"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Runs an export or sync of `org` into `sink`.
pub async fn run<S: Sink>(
    client: DriftClient,
    sink: S,
    org: OrgId,
    opts: ExportOptions,
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
    let ctx = Arc::new(Ctx {
        contacts: std::sync::Mutex::new(if seed && opts.wants(Stream::Contacts) {
            sink.stored_ids(table("contacts")).await?
        } else {
            HashSet::new()
        }),
        users: std::sync::Mutex::new(if seed && opts.wants(Stream::Users) {
            sink.stored_ids(table("users")).await?
        } else {
            HashSet::new()
        }),
        missing_users: Default::default(),
        client,
        sink,
        org,
        opts,
        progress,
    });
    let skip = |name: &str| opts_full_done(&ctx.opts, &states, name);

    if ctx.opts.wants(Stream::Users) && !skip("users") {
        users(&ctx).await.context("while exporting users")?;
    }
    if ctx.opts.wants(Stream::Playbooks) && !skip("playbooks") {
        playbooks(&ctx).await.context("while exporting playbooks")?;
    }
    if ctx.opts.wants(Stream::Accounts) && !skip("accounts") {
        accounts(&ctx, states["accounts"].clone())
            .await
            .context("while exporting accounts")?;
    }
    if ctx.opts.wants(Stream::Meetings) && !skip("meetings") {
        meetings(&ctx, states["meetings"].clone())
            .await
            .context("while exporting meetings")?;
    }
    if ctx.opts.conversation_family() && !skip(CONVERSATIONS) {
        conversations(&ctx, states[CONVERSATIONS].clone())
            .await
            .context("while exporting conversations")?;
    }
    if states.contains_key(CONTACT_LIST) && !skip(CONTACT_LIST) {
        contact_list(&ctx)
            .await
            .context("while exporting the listed contacts")?;
    }
    missing_users(&ctx)
        .await
        .context("while fetching referenced users")?;

    let st = ctx.client.stats();
    let p = &ctx.progress;
    Ok(Summary {
        mode: ctx.opts.mode,
        rows: p.rows().into_iter().collect(),
        rows_changed: p.changed.load(Ordering::Relaxed),
        conversations_listed: p.listed.load(Ordering::Relaxed),
        conversations_fetched: p.fetched.load(Ordering::Relaxed),
        conversations_unchanged: p.unchanged.load(Ordering::Relaxed),
        api_calls: st.requests.load(Ordering::Relaxed) - stats0.0,
        responses_429: st.rate_limited.load(Ordering::Relaxed) - stats0.1,
        retries: st.retries.load(Ordering::Relaxed) - stats0.2,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn opts_full_done(
    opts: &ExportOptions,
    states: &BTreeMap<String, Option<Value>>,
    name: &str,
) -> bool {
    opts.mode == Mode::Full && states.get(name).is_some_and(is_done)
}

fn table(name: &str) -> &'static Table {
    bridge_store::tables::table(name).unwrap_or_else(|| panic!("no table {name}"))
}

async fn commit<S: Sink>(ctx: &Ctx<S>, b: Batch, states: Vec<(String, Value)>) -> Result<()> {
    ctx.progress.count(&b);
    let changed = ctx.sink.commit(b, states).await?;
    ctx.progress.changed.fetch_add(changed, Ordering::Relaxed);
    Ok(())
}

fn done() -> Value {
    json!({"done": true, "at": crate::now_ms()})
}

async fn users<S: Sink>(ctx: &Ctx<S>) -> Result<()> {
    let users = ctx.client.users().await?;
    let mut b = Batch::new();
    for u in &users {
        b.user(ctx.org, u);
    }
    crate::lock(&ctx.users).extend(users.iter().map(|u| u.id.0));
    commit(ctx, b, vec![("users".into(), done())]).await
}

async fn playbooks<S: Sink>(ctx: &Ctx<S>) -> Result<()> {
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

async fn accounts<S: Sink>(ctx: &Ctx<S>, state: Option<Value>) -> Result<()> {
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

async fn meetings<S: Sink>(ctx: &Ctx<S>, state: Option<Value>) -> Result<()> {
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

async fn conversations<S: Sink>(ctx: &Arc<Ctx<S>>, state: Option<Value>) -> Result<()> {
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
                "at": crate::now_ms(),
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
async fn plan_page<S: Sink>(
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
/// the selected streams ask.
async fn fetch_one<S: Sink>(ctx: &Ctx<S>, listed: Conversation) -> Result<Batch> {
    let (c, o, org, now) = (&ctx.client, &ctx.opts, ctx.org, crate::now_ms());
    let id: ConversationId = listed.id;
    let mut b = Batch::new();
    let conversation = if o.wants(Stream::Conversations) {
        match c.conversation(id).await {
            Ok(full) => full,
            // Deleted between the list and now (GDPR): nothing to export.
            Err(e) if e.is_not_found() => return Ok(b),
            Err(e) => return Err(e.into()),
        }
    } else {
        listed
    };
    let mut referenced: Vec<i64> = conversation.participants.iter().map(|u| u.0).collect();
    if o.wants(Stream::Conversations) {
        b.conversation(org, &conversation, now);
    }
    if o.wants(Stream::Messages) {
        let messages: Vec<_> = c.messages(id).try_collect().await?;
        for m in &messages {
            if m.author.kind == AuthorType::User && !m.author.bot {
                referenced.push(m.author.id);
            }
            b.message(org, m);
        }
    }
    if o.wants(Stream::Transcripts) {
        match c.transcript(id).await {
            Ok(t) => b.transcript(org, id.0, &t, now),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if o.wants(Stream::Contacts)
        && let Some(cid) = conversation.contact_id
        && crate::lock(&ctx.contacts).insert(cid.0)
        && let Some(contact) = fetch_contact(c, cid).await?
    {
        b.contact(org, &contact, now);
    }
    if o.wants(Stream::Users) {
        let known = crate::lock(&ctx.users);
        let missing: Vec<i64> = referenced
            .into_iter()
            .filter(|u| !known.contains(u))
            .collect();
        drop(known);
        crate::lock(&ctx.missing_users).extend(missing);
    }
    ctx.progress.fetched.fetch_add(1, Ordering::Relaxed);
    Ok(b)
}

async fn fetch_contact(c: &DriftClient, id: ContactId) -> Result<Option<Contact>> {
    match c.contact(id).await {
        Ok(x) => Ok(Some(x)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Contacts named by `--contacts-from` and by stored events, those not exported yet.
async fn contact_list<S: Sink>(ctx: &Ctx<S>) -> Result<()> {
    let (c, org, now) = (&ctx.client, ctx.org, crate::now_ms());
    let mut b = Batch::new();
    let add = |b: &mut Batch, x: &Contact| {
        if crate::lock(&ctx.contacts).insert(x.id.0) {
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
        if !crate::lock(&ctx.contacts).contains(id)
            && let Some(x) = fetch_contact(c, ContactId(*id)).await?
        {
            add(&mut b, &x);
        }
    }
    commit(ctx, b, vec![(CONTACT_LIST.into(), done())]).await
}

/// Users that conversations reference but `/users/list` did not return.
async fn missing_users<S: Sink>(ctx: &Ctx<S>) -> Result<()> {
    let ids: Vec<UserId> = std::mem::take(&mut *crate::lock(&ctx.missing_users))
        .into_iter()
        .filter(|u| !crate::lock(&ctx.users).contains(u))
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

/// How long until a run finishes, from what is left and the rate so far, never faster than
/// the rate limit allows (`calls_per_conversation` calls each, `limit_per_minute` a minute).
pub fn eta(
    remaining_conversations: u64,
    conversations_per_sec: f64,
    calls_per_conversation: f64,
    limit_per_minute: u32,
) -> Option<Duration> {
    let by_rate = (conversations_per_sec > 0.0)
        .then(|| remaining_conversations as f64 / conversations_per_sec);
    let by_limit = (limit_per_minute > 0).then(|| {
        remaining_conversations as f64 * calls_per_conversation
            / (f64::from(limit_per_minute) / 60.0)
    });
    match (by_rate, by_limit) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
    .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_list_tells_emails_from_external_ids_and_skips_comments() {
        let l = parse_contact_list("# vips\nada@example.com\n\n  crm-42 \n");
        assert_eq!(
            l,
            vec![
                ContactRef::Email("ada@example.com".into()),
                ContactRef::ExternalId("crm-42".into())
            ]
        );
    }

    #[test]
    fn the_eta_never_beats_the_rate_limit() {
        // 1,000 conversations at 4 calls each under 600/min take at least 400 s, however
        // fast the first ones went.
        let e = eta(1000, 100.0, 4.0, 600).unwrap();
        assert_eq!(e.as_secs(), 400);
        let e = eta(1000, 1.0, 4.0, 600).unwrap();
        assert_eq!(e.as_secs(), 1000);
        assert!(eta(10, 0.0, 4.0, 0).is_none());
    }
}
