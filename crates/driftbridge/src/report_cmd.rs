//! `driftbridge report`: conversation analytics from the stored facts, as aligned text, JSON
//! or CSV, and `--check-against-drift`. The definitions live in `bridge_core::analytics`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use bridge_core::analytics::{By, Group, Ours, Tally, check_against_drift};
use clap::Args;

use crate::config::Config;

/// Arguments of `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Conversations started from this date (YYYY-MM-DD, UTC) or epoch ms; default 30 days ago.
    #[arg(long)]
    pub since: Option<String>,
    /// ... and before this one; default now.
    #[arg(long)]
    pub until: Option<String>,
    /// The org (default: the only org with facts).
    #[arg(long)]
    pub org: Option<i64>,
    /// Group by day, week, agent, playbook or inbox.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// text, json, csv, or html (one self-contained page with SVG charts that opens offline).
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare every conversation's facts with Drift's `POST /reports/conversations` and print
    /// each disagreement (exit status 1 when there is one).
    #[arg(long)]
    pub check_against_drift: bool,
}

const DAY_MS: i64 = 86_400_000;

/// Runs `report`.
pub async fn run(config: &Config, a: ReportArgs) -> Result<()> {
    let by = By::parse(&a.by).ok_or_else(|| {
        anyhow!(
            "--by {:?}: choose day, week, agent, playbook or inbox",
            a.by
        )
    })?;
    if !["text", "json", "csv", "html"].contains(&a.format.as_str()) {
        bail!("--format {:?}: choose text, json, csv or html", a.format);
    }
    let now = drift_types::now_ms();
    let since = match &a.since {
        Some(s) => bridge_export::parse_time(s).context("--since")?,
        None => now - 30 * DAY_MS,
    };
    let until = match &a.until {
        Some(s) => bridge_export::parse_time(s).context("--until")?,
        None => now + 1,
    };
    let queue = crate::serve::open_existing_queue(config).await?;
    let store = queue.store().clone();
    let org = match a.org {
        Some(o) => o,
        None => match bridge_store::analytics::orgs(&store).await?.as_slice() {
            [o] => *o,
            [] => bail!("no conversation facts stored yet: run `driftbridge export` or `serve`"),
            many => bail!("facts of several orgs ({many:?}): pass --org"),
        },
    };
    // Tallied as the facts are read: a year of a large org holds counts and times, not rows.
    if a.check_against_drift {
        let mut ours = Ours::default();
        bridge_store::analytics::each_fact(&store, org, since, until, |f| ours.add(&f)).await?;
        let pool = crate::drift_access::drift_pool(config, "report").await?;
        let client = pool.client(drift_types::OrgId(org)).await?;
        let diffs = check_against_drift(&client, &ours, since, until).await?;
        for d in &diffs {
            println!(
                "conversation {} {}: ours {} drift {}",
                d.conversation_id,
                d.metric,
                d.ours.map_or("none".into(), |v| v.to_string()),
                d.drift.map_or("none".into(), |v| v.to_string())
            );
        }
        println!(
            "{} conversations compared with Drift's report: {} disagreements",
            ours.len(),
            diffs.len()
        );
        if !diffs.is_empty() {
            bail!("our facts disagree with Drift's report");
        }
        return Ok(());
    }
    let mut tally = Tally::new(by);
    let mut charts = (a.format == "html").then(bridge_web::report::ChartFacts::default);
    bridge_store::analytics::each_fact(&store, org, since, until, |f| {
        tally.add(&f);
        if let Some(c) = &mut charts {
            c.add(&f);
        }
    })
    .await?;
    let groups = tally.groups();
    let text = match a.format.as_str() {
        "json" => serde_json::to_string_pretty(&groups)? + "\n",
        "csv" => csv_of(&groups)?,
        "html" => bridge_web::report::html(
            &format!("Drift conversations of org {org}"),
            &drift_types::EpochMillis(since).to_iso8601(),
            &drift_types::EpochMillis(until.min(now)).to_iso8601(),
            charts.unwrap_or_default(),
            &a.by,
            &groups,
        )?,
        _ => table_of(&groups, &a.by),
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("while writing {}", p.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn table_of(groups: &[Group], by: &str) -> String {
    let mut out = format!(
        "{by:<12} {:>6} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6} {:>8}\n",
        "convs", "handoff", "bot-only", "reply p50", "reply p90", "close p50", "goal", "meeting"
    );
    for g in groups.iter().map(bridge_web::report::Shown::from) {
        out.push_str(&format!(
            "{:<12} {:>6} {:>8} {:>8} {:>9} {:>9} {:>9} {:>6} {:>8}\n",
            g.key,
            g.conversations,
            g.handoff,
            g.bot_only,
            g.reply_p50,
            g.reply_p90,
            g.close_p50,
            g.goal,
            g.meeting
        ));
    }
    out
}

fn csv_of(groups: &[Group]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for g in groups {
        w.serialize(g)?;
    }
    Ok(String::from_utf8(
        w.into_inner().map_err(|e| anyhow!("{e}"))?,
    )?)
}
