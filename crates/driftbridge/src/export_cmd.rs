//! `driftbridge export` and `driftbridge sync`: the data connector's command line.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use bridge_export::lease::{self, Leased};
use bridge_export::{self as export, Destination, ExportOptions, Mode, Progress, Summary, Target};
use bridge_store::Store;
use bridge_store::tables::Stream;
use clap::Args;
use drift_client::DriftClient;
use drift_types::{OrgId, WebhookEnvelope, WebhookEvent};

use crate::config::Config;

/// Arguments shared by `export` and `sync`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Destination: sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or parquet:DIR
    /// (default: the configured database).
    #[arg(long)]
    pub to: Option<String>,
    /// Only these streams, comma-separated: users, playbooks, accounts, meetings,
    /// conversations, messages, transcripts, contacts, widget.
    #[arg(long, value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Also export the contacts listed in this file (one email or external id per line).
    #[arg(long)]
    pub contacts_from: Option<PathBuf>,
    /// The Drift org (default: the only configured org, or the token's own org).
    #[arg(long)]
    pub org: Option<i64>,
    /// Conversations fetched at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Meetings with a slot from this date (YYYY-MM-DD) or epoch ms; default 30 days ago,
    /// the furthest back Drift serves.
    #[arg(long)]
    pub meetings_since: Option<String>,
    /// Also save every message attachment's bytes under DIR/ORG/DOCUMENT-FILE_NAME (the
    /// `attachments` table always holds their metadata).
    #[arg(long, value_name = "DIR")]
    pub attachments: Option<PathBuf>,
    /// Forget checkpoints and start from the top.
    #[arg(long)]
    pub restart: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Sync only: how far below the high-water mark to look again, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub overlap_secs: i64,
}

/// Runs `export` (full) or `sync` (incremental).
pub async fn run(config: &Config, a: ExportArgs, mode: Mode) -> Result<()> {
    let target: Target =
        a.to.clone()
            .unwrap_or_else(|| config.database.url.expose().to_owned())
            .parse()?;
    let mut opts = ExportOptions::new(mode);
    opts.concurrency = a.concurrency.max(1);
    opts.overlap_ms = a.overlap_secs.max(0) * 1000;
    opts.restart = a.restart;
    opts.attachments_dir = a.attachments.clone();
    if !a.tables.is_empty() {
        opts.streams = a
            .tables
            .iter()
            .map(|t| {
                Stream::parse(t.trim()).ok_or_else(|| {
                    anyhow!(
                        "unknown table {t:?} in --tables; choose from {}",
                        Stream::ALL.map(Stream::name).join(", ")
                    )
                })
            })
            .collect::<Result<BTreeSet<_>>>()?;
    }
    if let Some(s) = &a.meetings_since {
        opts.meetings_since_ms = export::parse_time(s)?;
    }
    if let Some(path) = &a.contacts_from {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("while reading --contacts-from {}", path.display()))?;
        opts.contacts_from = export::parse_contact_list(&text);
    }
    // Refuse what cannot work before asking Drift anything.
    if mode == Mode::Incremental && !target.upserts() {
        bail!(
            "sync needs a destination that upserts by key (sqlite:PATH or postgres://...); \
             {target} is append-only: run `driftbridge export` into a new directory instead"
        );
    }
    let drift = config.drift();
    let pool = crate::drift_access::drift_pool(config, "export").await?;
    let org = crate::drift_access::resolve_org(config, a.org, &pool).await?;
    let client: DriftClient = (*pool.client(org).await?).clone();
    from_configured_store(config, org, &mut opts).await?;
    let dest = Destination::open(&target, org)
        .await
        .with_context(|| format!("while opening {target}"))?;
    let run_store = dest.sql_store().cloned();
    if let Some(store) = dest.sql_store()
        && opts.wants(Stream::Contacts)
    {
        opts.contacts_from_events = contacts_in_events(store, org).await?;
    }
    let progress = Arc::new(Progress::default());
    let display = crate::progress::Display::start(
        progress.clone(),
        client.clone(),
        drift.rate_limit_per_minute,
        !a.json,
    )
    .await;
    let what = match mode {
        Mode::Full => "export",
        Mode::Incremental => "sync",
    };
    tracing::info!(org.id = org.0, destination = %target, "{what} starting");
    let started = drift_types::now_ms();
    let run = export::run(client, dest, org, opts, progress);
    // Outer error: the run was refused; inner: it ran and stopped.
    let result: Result<Result<Summary>> = match &run_store {
        // One run of an org into a database at a time: the scheduled sync and other
        // commands hold the same lease.
        Some(store) => {
            let holder = format!("{what} pid{}-{started}", std::process::id());
            let lease = std::time::Duration::from_secs(config.sync.lease_secs);
            match lease::hold(store, org, &holder, lease, run).await? {
                Leased::Ran(r) => {
                    let mode = match mode {
                        Mode::Full => "full",
                        Mode::Incremental => "incremental",
                    };
                    export::runs::record(store, org, mode, "database", started, &r).await;
                    Ok(r)
                }
                Leased::Busy(holder) => Err(anyhow!(busy(org, &target, holder))),
                Leased::Lost => Ok(Err(anyhow!(
                    "this run lost org {org}'s sync lease in {target} (it stalled for longer \
                     than sync.lease_secs, {}s), and another run may have taken over",
                    config.sync.lease_secs
                ))),
            }
        }
        None => Ok(run.await),
    };
    display.finish().await;
    if let Some(t) = pool.tenants() {
        t.flush_audit().await?;
    }
    let summary = result?.with_context(|| {
        format!("{what} of org {org} into {target} stopped; run it again to resume")
    })?;
    print_summary(&summary, &target, a.json);
    Ok(())
}

/// Why a run into a database another run of the org holds was refused.
fn busy(org: OrgId, target: &Target, holder: Option<(String, i64)>) -> String {
    let by = holder.map_or_else(String::new, |(h, until)| {
        let left = (until - drift_types::now_ms()).max(0) / 1000;
        format!(" ({h}; its lease runs {left}s more unless renewed)")
    });
    format!(
        "another run is syncing org {org} into {target}{by}; wait for it to end (a scheduled \
         sync of `serve`, or another export or sync)"
    )
}

fn print_summary(s: &Summary, target: &Target, json: bool) {
    if json {
        println!("{}", serde_json::to_string(s).unwrap_or_default());
        return;
    }
    println!(
        "{} into {target} finished in {:.1} s",
        match s.mode {
            Mode::Full => "export",
            Mode::Incremental => "sync",
        },
        s.seconds
    );
    for (t, n) in &s.rows {
        if *n > 0 {
            println!("  {t:<28} {n:>9} rows");
        }
    }
    println!(
        "  rows changed {}; conversations listed {}, fetched {}, unchanged {}",
        s.rows_changed, s.conversations_listed, s.conversations_fetched, s.conversations_unchanged
    );
    if s.conversations_deleted > 0 {
        println!(
            "  conversations deleted in Drift, marked _deleted_at: {}",
            s.conversations_deleted
        );
    }
    println!(
        "  API calls {}, 429 answers {}, retries {}",
        s.api_calls, s.responses_429, s.retries
    );
}

/// What only the configured database knows (nothing when it does not exist yet): the org's
/// erasure tombstones, so that an export to any destination leaves erased people out, and
/// the conversations in which a playbook goal was met (only the webhook says so), for the
/// facts a file destination gets.
async fn from_configured_store(
    config: &Config,
    org: OrgId,
    opts: &mut ExportOptions,
) -> Result<()> {
    let url = config.database.url.expose();
    if bridge_store::sqlite_file(url).is_some_and(|f| !f.exists()) {
        return Ok(());
    }
    let store = Store::connect(url)
        .await
        .context("while reading erasures, goals and widget events from the configured database")?;
    opts.read_driftbridge_store(store, org).await
}

/// Contact ids that the org's stored webhook events reference.
async fn contacts_in_events(store: &Store, org: OrgId) -> Result<Vec<i64>> {
    let mut ids = BTreeSet::new();
    bridge_store::reads::each_event_payload(store, org, |p| {
        let Ok(env) = serde_json::from_str::<WebhookEnvelope>(p) else {
            return;
        };
        let Ok(ev) = env.event() else { return };
        let id = match ev {
            WebhookEvent::ContactIdentified(c) | WebhookEvent::UserUnsubscribed(c) => Some(c.id.0),
            WebhookEvent::NewConversation(c) => c.contact_id.map(|x| x.0),
            WebhookEvent::NewMessage(m) | WebhookEvent::NewCommandMessage(m)
                if m.author.kind == drift_types::AuthorType::Contact =>
            {
                Some(m.author.id)
            }
            WebhookEvent::PlaybookGoalMet(g) => g.contact_id.map(|x| x.0),
            _ => None,
        };
        ids.extend(id);
    })
    .await
    .context("while reading stored events")?;
    Ok(ids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help of `--tables` is written by hand; it named eight of the nine streams.
    #[test]
    fn the_help_of_tables_names_every_stream() {
        use clap::CommandFactory;

        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ExportArgs,
        }
        let cmd = Cli::command();
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id() == "tables")
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let listed: Vec<&str> = help
            .split_once(':')
            .map_or("", |(_, l)| l)
            .trim_end_matches('.')
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(listed, Stream::ALL.map(Stream::name), "{help}");
    }

    #[test]
    fn times_are_dates_or_epoch_ms_and_anything_else_is_refused() {
        assert_eq!(
            export::parse_time("1700000000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(export::parse_time("2026-01-01").unwrap(), 1_767_225_600_000);
        assert!(
            export::parse_time("last week")
                .unwrap_err()
                .to_string()
                .contains("YYYY-MM-DD")
        );
    }
}
