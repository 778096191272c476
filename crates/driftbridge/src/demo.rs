//! `driftbridge demo`: the simulator and `serve` on a fresh SQLite file; the simulator
//! delivers a burst of every event type (with re-deliveries, out of order); the demo waits
//! for the queue to drain, runs a full export and a sync into the same file, and shows what
//! landed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bridge_export::{self as export, ExportOptions, Mode, Progress};
use drift_sim::{DataConfig, RateLimitConfig, SimConfig};
use drift_types::Secret;

use crate::config::{Config, Overrides};

/// Demo settings.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Conversations in the simulated org.
    #[arg(long, default_value_t = 200)]
    conversations: u32,
    /// Webhook events the simulator delivers.
    #[arg(long, default_value_t = 400)]
    events: u32,
    /// Where to put the SQLite file (default: a fresh file in the temp directory).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Simulated Drift rate limit per token, requests/minute (driftbridge paces to it).
    #[arg(long, default_value_t = 12_000)]
    rate_limit: u32,
    /// Leave `serve` (and the simulator) running at the end and print the console's address
    /// with a one-time sign-in link; Ctrl-C stops them.
    #[arg(long)]
    keep: bool,
}

/// Where the demo's warehouse is.
fn database(a: &DemoArgs, database_url: Option<&str>) -> Result<(String, String)> {
    if let Some(url) = database_url {
        if a.db.is_some() {
            bail!("--db and --database-url both name the demo's database: pass one");
        }
        if let Some(path) = bridge_store::sqlite_file(url)
            && path.exists()
        {
            bail!(
                "the demo writes into a fresh database and {} already exists: remove it or name \
                 another file",
                path.display()
            );
        }
        return Ok((url.to_owned(), url.to_owned()));
    }
    let db = a.db.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("driftbridge-demo-{}.db", std::process::id()))
    });
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            std::fs::remove_file(&p).with_context(|| format!("while removing {}", p.display()))?;
        }
    }
    Ok((
        format!("sqlite:{}", db.display()),
        format!("SQLite at {} (open it with sqlite3)", db.display()),
    ))
}

/// Runs the demo on its built-in settings (no config file, no `DRIFTBRIDGE_` variables), on
/// `database_url` when given (`--database-url`: a new SQLite file or an empty PostgreSQL
/// database), else on a fresh SQLite file.
pub async fn run(
    a: DemoArgs,
    database_url: Option<&str>,
    config_file: Option<&Path>,
) -> Result<()> {
    let started = Instant::now();
    if let Some(f) = config_file {
        bail!(
            "the demo runs on built-in settings against the simulator and reads no config file; \
             drop --config {} (serve, export and the other commands read it)",
            f.display()
        );
    }
    let (url, described) = database(&a, database_url)?;
    let verification = "demo-verification-token";
    let sim_config = SimConfig {
        data: DataConfig {
            conversations: a.conversations,
            ..DataConfig::default()
        },
        rate_limit: RateLimitConfig {
            per_minute: a.rate_limit,
            burst: None,
        },
        ..SimConfig::default()
    };
    let sim = drift_sim::spawn(sim_config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("while starting the simulator")?;
    println!(
        "1. Drift simulator on {} ({} conversations)",
        sim.base_url(),
        a.conversations
    );

    let mut config = Config::builtin(&Overrides {
        database_url: Some(url.clone()),
        listen: Some("127.0.0.1:0".into()),
    })?;
    config.drift.base_url = sim.base_url();
    config.drift.token = Some(Secret::new(sim.token()));
    config.drift.verification_tokens = vec![Secret::new(verification)];
    config.drift.rate_limit_per_minute = a.rate_limit;
    // The console signs in with this token (or the one-time link `--keep` prints).
    let token = bridge_store::vault::MasterKey::generate()?;
    config.admin.token = Some(Secret::new(token.expose()));
    // The demo's vault holds nothing beyond this run, so a throwaway master key will do.
    config.secrets.master_key = Some(bridge_store::vault::MasterKey::generate()?);
    // Pushed conversations also go to the simulator's HubSpot, Salesforce and Marketo.
    config.outbound.allow = vec![format!("127.0.0.1:{}", sim.addr.port())];
    for target in ["hubspot", "salesforce", "marketo"] {
        let mut spec = crate::sim_sinks::spec(target, &sim.base_url(), "")?;
        if target == "hubspot" {
            // The widget's first touch, in the custom properties docs/WIDGET.md suggests.
            spec["fields"] = serde_json::json!({
                "drift_utm_source": "{{attribution.utm_source}}",
                "drift_utm_campaign": "{{attribution.utm_campaign}}",
            });
        }
        config
            .sinks
            .insert(target.into(), serde_json::from_value(spec)?);
    }
    // The simulator's site posts widget events to this serve as a signed site.
    config.widget.sites = vec![bridge_core::widget::SiteConfig {
        key: crate::demo_widget::SITE.into(),
        org_id: sim.state.default_org().0,
        origins: vec![sim.base_url()],
        mode: bridge_core::widget::SiteMode::Signed,
        collect_contact: false,
    }];
    let running = crate::serve::start(&config, true).await?;
    let held: i64 = running
        .queue
        .store()
        .table_counts()
        .await?
        .iter()
        .filter(|(t, _)| ["events", "jobs"].contains(t))
        .map(|(_, n)| n)
        .sum();
    if held > 0 {
        running.stop().await;
        bail!("the demo needs an empty database and {url} already holds events or jobs");
    }
    let hook = format!("http://{}/webhooks/drift", running.addr);
    println!(
        "2. driftbridge serve on http://{} with {described}",
        running.addr
    );

    sim.state.webhooks.configure(|w| {
        w.url = Some(hook.clone());
        w.verification_token = Secret::new(verification);
    });
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/sim/webhooks/emit", sim.base_url()))
        .json(&serde_json::json!({
            "count": a.events, "duplicate_rate": 0.1, "shuffle": true
        }))
        .send()
        .await
        .context("while asking the simulator to emit events")?;
    if !resp.status().is_success() {
        bail!(
            "the simulator refused to emit: {}",
            resp.text().await.unwrap_or_default()
        );
    }
    let emitted: serde_json::Value = resp.json().await?;
    println!(
        "3. the simulator is delivering {} events ({} deliveries with re-deliveries, shuffled)",
        emitted["events"], emitted["queued"]
    );
    if !sim.state.webhooks.drain(Duration::from_secs(120)).await {
        bail!("the simulator could not deliver every webhook within 2 minutes");
    }
    running.drained(Duration::from_millis(50)).await?;
    let ws = &running.worker_stats;
    let stats = sim.state.webhooks.stats();
    let dup = running.metrics.total("driftbridge_events_duplicate_total");
    let received = running.metrics.total("driftbridge_events_received_total");
    println!(
        "4. delivered {} webhooks: {} new events stored, {dup} re-deliveries dropped as duplicates; \
         queue drained: {} jobs done, {} retried, {} dead",
        stats.delivered,
        received.saturating_sub(dup),
        ws.completed.load(std::sync::atomic::Ordering::Relaxed),
        ws.retried.load(std::sync::atomic::Ordering::Relaxed),
        ws.dead.load(std::sync::atomic::Ordering::Relaxed),
    );
    let store = running.queue.store().clone();

    let (sim_url, serve_url) = (sim.base_url(), format!("http://{}", running.addr));
    let site_secret = crate::serve::site_secrets_on(store.clone(), config.keyring()?)
        .rotate(crate::demo_widget::SITE)
        .await?;
    crate::demo_widget::set_up(&http, &sim_url, &serve_url, &site_secret).await?;
    let (visit, visitor) = crate::demo_widget::visit(&http, &sim_url, &serve_url, &site_secret)
        .await
        .context("while playing the widget visit")?;
    if !sim.state.webhooks.drain(Duration::from_secs(60)).await {
        bail!("the simulator could not deliver the visit's webhooks within a minute");
    }
    running.drained(Duration::from_millis(50)).await?;
    let touch = {
        let mut conn = store.acquire().await?;
        bridge_store::widget::attribution(&mut conn, sim.state.default_org().0, visit).await?
    };
    let hubspot = sim.state.crm.dump();
    let contact = hubspot
        .pointer("/hubspot/contacts")
        .and_then(|c| c.as_array())
        .and_then(|c| c.iter().find(|c| c["fields"]["email"] == visitor.as_str()))
        .and_then(|c| c["fields"]["drift_utm_source"].as_str().map(str::to_owned));
    println!(
        "5. a widget visit (landing page ?{}): conversation {visit}, first touch {}; HubSpot's \
         contact {visitor} has drift_utm_source = {}",
        crate::demo_widget::CAMPAIGN,
        touch.map_or("none".into(), |a| format!(
            "utm_source={} utm_campaign={}",
            a.touch.utm_source.unwrap_or_default(),
            a.touch.utm_campaign.unwrap_or_default()
        )),
        contact.unwrap_or_default()
    );

    // The data connector fills in what webhooks never carry (accounts, playbooks, every
    // conversation nobody pushed) into the same file, and a sync right after finds nothing new.
    let org = sim.state.default_org();
    let client = (*bridge_core::drift::DriftPool::new(config.drift())
        .client(org)
        .await?)
        .clone();
    // The defaults: the simulator's data ends today, so the last 30 days hold meetings.
    let mut opts = ExportOptions::new(Mode::Full);
    let dest = bridge_export::Destination::store(store.clone(), org);
    let t0 = drift_types::now_ms();
    let r = export::run(
        client.clone(),
        dest.clone(),
        org,
        opts.clone(),
        Arc::new(Progress::default()),
    )
    .await;
    export::runs::record(&store, org, "full", "database", t0, &r).await;
    let s = r?;
    println!(
        "6. export into the same file: {} rows sent, {} changed, {} API calls in {:.1} s",
        s.rows.values().sum::<u64>(),
        s.rows_changed,
        s.api_calls,
        s.seconds
    );
    opts.mode = Mode::Incremental;
    let t0 = drift_types::now_ms();
    let r = export::run(client, dest, org, opts, Arc::new(Progress::default())).await;
    export::runs::record(&store, org, "incremental", "database", t0, &r).await;
    let s = r?;
    println!(
        "7. sync right after: {} conversations fetched, {} rows changed, {} API calls",
        s.conversations_fetched, s.rows_changed, s.api_calls
    );
    let crm = sim.state.crm.dump();
    let n = |p: &str| {
        crm.pointer(p)
            .and_then(|v| v.as_array())
            .map_or(0, Vec::len)
    };
    println!(
        "8. the CRMs hold (pushed conversations, lead signals, meetings): HubSpot {} contacts and {} notes, Salesforce {} Leads \
         and {} Tasks, Marketo {} leads; meetings booked in chats: HubSpot {} meetings, \
         Salesforce {} Events",
        n("/hubspot/contacts"),
        n("/hubspot/notes"),
        n("/salesforce/Lead"),
        n("/salesforce/Task"),
        n("/marketo/leads"),
        n("/hubspot/meetings"),
        n("/salesforce/Event")
    );
    if let Some(m) = crm.pointer("/hubspot/meetings/0/fields") {
        println!(
            "   a HubSpot meeting: {} at {} ({})",
            m["hs_meeting_title"].as_str().unwrap_or_default(),
            m["hs_meeting_start_time"].as_str().unwrap_or_default(),
            m["hs_meeting_outcome"].as_str().unwrap_or_default()
        );
    }
    if let Some(e) = crm.pointer("/salesforce/Event/0/fields") {
        println!(
            "   a Salesforce Event: {} at {}",
            e["Subject"].as_str().unwrap_or_default(),
            e["StartDateTime"].as_str().unwrap_or_default()
        );
    }
    if let Some(c) = crm.pointer("/hubspot/contacts/0") {
        println!(
            "   a HubSpot contact as the CRM holds it: {}",
            serde_json::to_string(c.get("fields").unwrap_or(c))?
        );
    }
    println!("\nRows per table:");
    for (table, n) in store.table_counts().await? {
        println!("  {table:<28} {n:>7}");
    }
    let transcript = bridge_store::reads::longest_transcript(&store).await?;
    if let Some((id, body)) = transcript {
        let lines: Vec<&str> = body.lines().collect();
        println!("\nTranscript of conversation {id} ({} lines):", lines.len());
        for l in lines.iter().take(12) {
            println!("  {l}");
        }
        if lines.len() > 12 {
            println!("  ...");
        }
    }
    println!(
        "\nDone in {:.1?}. The warehouse is {described}.",
        started.elapsed()
    );
    if a.keep {
        let code = running
            .sessions
            .link(bridge_web::console::Role::Admin, drift_types::now_ms());
        println!(
            "\nThe console: http://{0}/admin\n  sign in once with http://{0}/admin/login/once/{code} \
             (valid 15 minutes, one use)\n  a customer's page with the widget bridge, to open in a \
             browser: {sim_url}/sim/site?{campaign}\n  serve and the simulator keep running; Ctrl-C stops them.",
            running.addr,
            campaign = crate::demo_widget::CAMPAIGN
        );
        tokio::signal::ctrl_c()
            .await
            .context("while waiting for Ctrl-C")?;
    }
    running.stop().await;
    sim.stop().await;
    Ok(())
}
