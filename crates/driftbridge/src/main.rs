//! The `driftbridge` binary: serve, the demo, the simulator, operator tools and benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use drift_sim::{DataConfig, RateLimitConfig, SimConfig};
use drift_types::Secret;

use driftbridge::bench::{self, BenchCommand};
use driftbridge::config::{self, Config, Overrides};
use driftbridge::{demo, gdpr_cmd, jobs_cmd, ops, serve, tenants_cmd};

#[derive(Debug, Parser)]
#[command(
    name = "driftbridge",
    version,
    about = "Self-hosted integration hub for Drift"
)]
struct Cli {
    /// Config file (default: ./driftbridge.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://... (overrides the config).
    #[arg(long, global = true, env = "DRIFTBRIDGE_DATABASE_URL")]
    database_url: Option<String>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook gateway and the workers.
    Serve {
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<String>,
        /// Run only the gateway, no workers.
        #[arg(long)]
        no_workers: bool,
    },
    /// Start the simulator and serve on a fresh SQLite file, deliver a burst of webhooks,
    /// and show what landed.
    Demo(demo::DemoArgs),
    /// Run the local Drift simulator.
    Sim(SimArgs),
    /// Run a conversation's sync or a stored event's jobs again.
    Replay {
        /// Conversation id.
        #[arg(long, conflicts_with = "event", required_unless_present = "event")]
        conversation: Option<i64>,
        /// Org of the conversation (default: from the warehouse or the only configured org).
        #[arg(long, requires = "conversation")]
        org: Option<i64>,
        /// Stored event id.
        #[arg(long)]
        event: Option<i64>,
        /// Deliver the conversation to these sinks again, whatever their filters and even
        /// when unchanged (repeatable).
        #[arg(long, requires = "conversation")]
        sink: Vec<String>,
    },
    /// List, retry and cancel jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Conversation analytics from the stored facts (docs/ANALYTICS.md), or their check
    /// against Drift's own reporting API.
    Report(driftbridge::report_cmd::ReportArgs),
    /// GDPR: erase a person everywhere driftbridge wrote them, list erasures, export what is
    /// held about a person (docs/PRIVACY.md).
    #[command(subcommand)]
    Gdpr(GdprCommand),
    /// Inspect stored webhook events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Full export of every Drift object into a destination; resumes an interrupted one.
    Export(driftbridge::export_cmd::ExportArgs),
    /// Incremental sync: only what changed since the last export or sync.
    Sync(driftbridge::export_cmd::ExportArgs),
    /// The export as an Airbyte source: JSON protocol messages on stdout.
    #[command(subcommand)]
    Airbyte(driftbridge::airbyte::AirbyteCommand),
    /// Master keys: generate one, or re-seal every data key under the configured one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Installed tenants: list, revoke (disconnect), restore, audit.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// CRM/MAP sinks: their secrets in the vault, and their deliveries.
    #[command(subcommand)]
    Sinks(SinksCommand),
    /// The widget bridge's sites (docs/WIDGET.md).
    #[command(subcommand)]
    Widget(WidgetCommand),
    /// Print the commented default configuration.
    ConfigDefaults,
    /// The configuration: check it, or print the commented defaults.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks that need the whole binary (see docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum SinksCommand {
    /// Seal a sink's secret (read from standard input) in the vault; the config may then
    /// leave it out.
    SetSecret {
        /// Sink name (`[sinks.NAME]`).
        sink: String,
        /// `token` (hubspot), `client_secret` and `refresh_token` (salesforce),
        /// `client_secret` (marketo) or `secret` (http).
        field: String,
    },
    /// Configured sinks, where their secrets come from, and their deliveries by state.
    List,
}

#[derive(Debug, Subcommand)]
enum WidgetCommand {
    /// Make a new signing secret for a signed site, seal it in the vault (replacing the old
    /// one, which stops verifying within 30 s) and print it once, for the site's backend.
    Secret {
        /// The site's key (`[[widget.sites]]` key).
        site: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load the defaults, the file (`--config`, else ./driftbridge.toml) and the
    /// `DRIFTBRIDGE_` variables, and print every problem (unknown keys with their source and
    /// the closest known key, wrong types, invalid values, sink templates); exits non-zero
    /// when there is one.
    Check,
    /// Print the commented default configuration.
    Defaults,
}

#[derive(Debug, Subcommand)]
enum GdprCommand {
    /// Erase a person: Drift's `POST /gdpr/delete` (unless --local-only), every stored row about
    /// them, their data in stored events and jobs, a tombstone so nothing writes them again,
    /// and one erase job per sink (a running `serve` does those).
    Delete {
        /// The person's email (any case).
        email: String,
        /// Only this org (default: every org that holds the email; with Drift, the token's).
        #[arg(long)]
        org: Option<i64>,
        /// Do not call Drift: erase only what driftbridge holds.
        #[arg(long)]
        local_only: bool,
    },
    /// Remove every erased person from export directories (the configured database's
    /// erasures): parts holding one are written again without them, atomically; their
    /// conversations' saved attachment files are deleted.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["dirs", "attachments"])))]
    Purge {
        /// jsonl:DIR, csv:DIR or parquet:DIR (repeatable).
        #[arg(long = "dir")]
        dirs: Vec<String>,
        /// A directory `export --attachments` saved files to (repeatable): the erased
        /// people's conversations' files are removed.
        #[arg(long)]
        attachments: Vec<PathBuf>,
    },
    /// Every erasure: when, what was erased where, and each sink's state. Holds no personal
    /// data (the subject is a keyed digest).
    Log {
        /// How many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write one JSON document with everything held about a person: stored rows, delivery
    /// records with the CRM ids, and (unless --local-only) what Drift's `POST /gdpr/retrieve`
    /// answers.
    Export {
        /// The person's email.
        email: String,
        /// Only this org.
        #[arg(long)]
        org: Option<i64>,
        /// Do not ask Drift.
        #[arg(long)]
        local_only: bool,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Print a new random master key (64 hex digits).
    Generate,
    /// Re-seal every tenant's data key under the configured master key (list the previous
    /// ones in secrets.old_master_keys until this finishes); safe while serve runs.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Tenants with status and last activity.
    List,
    /// Disconnect an org: Drift uninstall, delete its secrets, cancel its jobs; its later
    /// webhooks are kept but not processed until `tenants restore` or a re-install.
    Revoke {
        /// Org id.
        org: i64,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
        /// Also when the org has not installed the app (only a configured token, or none,
        /// speaks for it).
        #[arg(long)]
        force: bool,
    },
    /// Make a disconnected org active again (a configured token must belong to it) and queue
    /// again the jobs the disconnect cancelled or skipped.
    Restore {
        /// Org id.
        org: i64,
    },
    /// Every recorded use of the org's token.
    Audit {
        /// Org id.
        org: i64,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Stored webhook events, newest first, one line each.
    List {
        #[command(flatten)]
        filter: driftbridge::jobs_cmd::EventFilterArgs,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One stored event: its envelope (without the token) and the jobs it made.
    Show {
        /// Event id.
        id: i64,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Events of a known type stored with data that did not parse (no job was made), with
    /// the parser's words; `replay --event ID` runs one once a release reads it.
    Malformed {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Jobs, newest first, one line each (state, kind, org, attempts, age, last error).
    List {
        /// queued, running, done, dead or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        filter: driftbridge::jobs_cmd::JobFilterArgs,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Dead letters with their last error (`list --state dead`).
    Dead {
        #[command(flatten)]
        filter: driftbridge::jobs_cmd::JobFilterArgs,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead or cancelled job again with fresh attempts; with --all, every one that
    /// matches the filters.
    Retry {
        /// Job id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Every dead or cancelled job matching the filters.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: driftbridge::jobs_cmd::JobFilterArgs,
    },
    /// Cancel a queued job.
    Cancel {
        /// Job id.
        id: i64,
    },
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8900)]
    port: u16,
    /// Seed of the generated dataset.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Conversations per org.
    #[arg(long, default_value_t = 200)]
    conversations: u32,
    /// Number of orgs.
    #[arg(long, default_value_t = 1)]
    orgs: u32,
    /// Requests per minute per token; 0 turns the limit off.
    #[arg(long, default_value_t = 600)]
    rate_limit: u32,
    /// Bucket size of the limit (default: one minute's worth).
    #[arg(long)]
    rate_burst: Option<u32>,
    /// The first org's private-app token (random when not given).
    #[arg(long)]
    token: Option<String>,
    /// Deliver webhooks to this URL.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The app's verification token sent with webhooks.
    #[arg(long, default_value = "sim-verification-token")]
    verification_token: String,
    /// Latency added to every Drift API response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

impl Command {
    /// Whether the command serves (many connections, workers, long-lived): those run on the
    /// multi-thread runtime. A command that does one job and exits runs on one thread: an
    /// export then fetches, decodes and writes on the thread whose freed memory it reuses,
    /// without a thread hop per page (docs/BENCHMARKS.md, "One thread for one-shot commands").
    fn serves(&self) -> bool {
        match self {
            Command::Serve { .. } | Command::Demo(_) | Command::Sim(_) => true,
            Command::Bench(b) => !matches!(b, BenchCommand::Export(_)),
            _ => false,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut runtime = if cli.command.serves() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match runtime.enable_all().build() {
        Ok(rt) => rt.block_on(start(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start(cli: Cli) -> std::process::ExitCode {
    // The demo tells its own story on stdout: only warnings go to the log unless RUST_LOG says.
    let default_filter = match cli.command {
        Command::Demo(_) => "warn",
        _ => "warn,driftbridge=info,bridge_core=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    if cli.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .init();
    } else {
        // Logs go to stderr: stdout carries results (summaries, Airbyte messages). Colours
        // only on a terminal: a file or a log collector gets plain text.
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter)
            .init();
    }
    drift_client::install_crypto();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let load = |listen: Option<String>| {
        Config::load(
            cli.config.as_deref(),
            &Overrides {
                database_url: cli.database_url.clone(),
                listen,
            },
        )
    };
    match cli.command {
        Command::Serve { listen, no_workers } => {
            let config = load(listen)?;
            if config.drift.verification_tokens.is_empty() {
                anyhow::bail!(
                    "drift.verification_tokens is empty: set it in driftbridge.toml or \
                     DRIFTBRIDGE_DRIFT__VERIFICATION_TOKENS='[\"...\"]' (your Drift app's \
                     verification token)"
                );
            }
            serve::serve(config, !no_workers).await
        }
        Command::Demo(a) => demo::run(a, cli.database_url.as_deref(), cli.config.as_deref()).await,
        Command::Sim(a) => sim(a).await,
        Command::Replay {
            conversation,
            org,
            event,
            sink,
        } => {
            let config = load(None)?;
            match (conversation, event) {
                (Some(c), _) => ops::replay_conversation(&config, c, org, &sink).await,
                (None, Some(e)) => ops::replay_event(&config, e).await,
                (None, None) => unreachable!("clap requires one of them"),
            }
        }
        Command::Events(EventsCommand::Malformed { limit, json }) => {
            ops::events_malformed(&load(None)?, limit, json).await
        }
        Command::Events(EventsCommand::List {
            filter,
            limit,
            json,
        }) => jobs_cmd::events_list(&load(None)?, &filter, limit, json).await,
        Command::Events(EventsCommand::Show { id, json }) => {
            jobs_cmd::events_show(&load(None)?, id, json).await
        }
        Command::Jobs(JobsCommand::List {
            state,
            filter,
            limit,
            json,
        }) => jobs_cmd::list(&load(None)?, state.as_deref(), &filter, limit, json).await,
        Command::Jobs(JobsCommand::Dead {
            filter,
            limit,
            json,
        }) => jobs_cmd::list(&load(None)?, Some("dead"), &filter, limit, json).await,
        Command::Jobs(JobsCommand::Retry { id, all, filter }) => {
            jobs_cmd::retry(&load(None)?, id, all, &filter).await
        }
        Command::Jobs(JobsCommand::Cancel { id }) => jobs_cmd::cancel(&load(None)?, id).await,
        Command::Export(a) => {
            driftbridge::export_cmd::run(&load(None)?, a, bridge_export::Mode::Full).await
        }
        Command::Sync(a) => {
            driftbridge::export_cmd::run(&load(None)?, a, bridge_export::Mode::Incremental).await
        }
        Command::Airbyte(c) => bridge_export::airbyte::run(c.into()).await,
        Command::Keys(KeysCommand::Generate) => ops::keys_generate(),
        Command::Keys(KeysCommand::Rotate) => ops::keys_rotate(&load(None)?).await,
        Command::Report(a) => driftbridge::report_cmd::run(&load(None)?, a).await,
        Command::Gdpr(GdprCommand::Delete {
            email,
            org,
            local_only,
        }) => gdpr_cmd::delete(&load(None)?, &email, org, local_only).await,
        Command::Gdpr(GdprCommand::Purge { dirs, attachments }) => {
            gdpr_cmd::purge(&load(None)?, &dirs, &attachments).await
        }
        Command::Gdpr(GdprCommand::Log { limit, json }) => {
            gdpr_cmd::log(&load(None)?, limit, json).await
        }
        Command::Gdpr(GdprCommand::Export {
            email,
            org,
            local_only,
            out,
        }) => gdpr_cmd::export(&load(None)?, &email, org, local_only, out.as_deref()).await,
        Command::Tenants(TenantsCommand::List) => tenants_cmd::list(&load(None)?).await,
        Command::Tenants(TenantsCommand::Revoke { org, yes, force }) => {
            tenants_cmd::revoke(&load(None)?, org, tenants_cmd::RevokeFlags { yes, force }).await
        }
        Command::Tenants(TenantsCommand::Restore { org }) => {
            tenants_cmd::restore(&load(None)?, org).await
        }
        Command::Tenants(TenantsCommand::Audit { org }) => {
            tenants_cmd::audit(&load(None)?, org).await
        }
        Command::Sinks(SinksCommand::SetSecret { sink, field }) => {
            ops::sinks_set_secret(&load(None)?, &sink, &field).await
        }
        Command::Sinks(SinksCommand::List) => ops::sinks_list(&load(None)?).await,
        Command::Widget(WidgetCommand::Secret { site }) => {
            ops::widget_secret(&load(None)?, &site).await
        }
        Command::ConfigDefaults | Command::Config(ConfigCommand::Defaults) => {
            print!("{}", config::DEFAULTS);
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            let c = load(None)?;
            println!(
                "configuration is valid: {} sink(s), database {}",
                c.sinks.len(),
                bridge_store::redact_url(c.database.url.expose())
            );
            Ok(())
        }
        Command::Bench(b) => bench::run(b, cli.database_url).await,
    }
}

async fn sim(a: SimArgs) -> Result<()> {
    let mut config = SimConfig {
        data: DataConfig {
            seed: a.seed,
            conversations: a.conversations,
            orgs: a.orgs,
            ..DataConfig::default()
        },
        rate_limit: RateLimitConfig {
            per_minute: a.rate_limit,
            burst: a.rate_burst,
        },
        token: a.token,
        ..SimConfig::default()
    };
    config.webhooks.url = a.webhook_url;
    config.webhooks.verification_token = Secret::new(a.verification_token);
    let addr = SocketAddr::from(([127, 0, 0, 1], a.port));
    let sim = drift_sim::spawn(config, addr)
        .await
        .with_context(|| format!("while binding {addr}"))?;
    if a.latency_ms > 0 {
        sim.state
            .faults
            .lock()
            .set(vec![drift_sim::faults::FaultRule {
                latency_ms: a.latency_ms,
                ..Default::default()
            }]);
    }
    let (convs, msgs) = sim.state.world.lock().counts();
    println!(
        "Drift simulator on {}  ({convs} conversations, {msgs} messages)",
        sim.base_url()
    );
    for (org, token) in &sim.state.private_tokens {
        println!("  org {org}: private-app token {token}");
    }
    println!(
        "  OAuth: client_id {}  authorize {}/authorize",
        sim.state.config.app.client_id,
        sim.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("while waiting for Ctrl-C")?;
    sim.stop().await;
    Ok(())
}
