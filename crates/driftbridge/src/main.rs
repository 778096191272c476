//! The `driftbridge` binary: the simulator and the demo today; serve, export, sync and the
//! operator tools as their issues land.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use drift_client::{ClientConfig, DriftClient, ListConversations, RateBudget, StaticToken};
use drift_sim::{DataConfig, RateLimitConfig, SimConfig};
use drift_types::Secret;
use futures::TryStreamExt;

mod bench;

#[derive(Debug, Parser)]
#[command(
    name = "driftbridge",
    version,
    about = "Self-hosted integration hub for Drift"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local Drift simulator.
    Sim(SimArgs),
    /// Start the simulator and walk it with the real client: every conversation and message.
    Demo(DemoArgs),
    /// Benchmarks that need the whole binary (see docs/BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Full walk of conversations and messages against a simulator child process.
    Walk(bench::WalkArgs),
}

#[derive(Debug, Args)]
struct DataArgs {
    /// Seed of the generated dataset.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Conversations per org.
    #[arg(long, default_value_t = 200)]
    conversations: u32,
    /// Number of orgs.
    #[arg(long, default_value_t = 1)]
    orgs: u32,
}

impl DataArgs {
    fn config(&self) -> DataConfig {
        DataConfig {
            seed: self.seed,
            conversations: self.conversations,
            orgs: self.orgs,
            ..DataConfig::default()
        }
    }
}

#[derive(Debug, Args)]
struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8900)]
    port: u16,
    #[command(flatten)]
    data: DataArgs,
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
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    data: DataArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(a) => sim(a).await,
        Command::Demo(a) => demo(a).await,
        Command::Bench(BenchCommand::Walk(a)) => bench::walk(a).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn sim(a: SimArgs) -> Result<()> {
    let mut config = SimConfig {
        data: a.data.config(),
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
    let (convs, msgs) = drift_sim::lock(&sim.state.world).counts();
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

async fn demo(a: DemoArgs) -> Result<()> {
    let config = SimConfig {
        data: a.data.config(),
        rate_limit: RateLimitConfig {
            per_minute: 0,
            burst: None,
        },
        ..SimConfig::default()
    };
    let sim = drift_sim::spawn(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("while starting the simulator")?;
    println!("Drift simulator on {}", sim.base_url());
    let mut cc = ClientConfig::with_base_url(&sim.base_url())?;
    cc.budget = RateBudget {
        per_minute: 0,
        burst: None,
    };
    let client = DriftClient::new(cc, Arc::new(StaticToken(Secret::new(sim.token()))))?;
    let started = Instant::now();
    let convs: Vec<_> = client
        .conversations(ListConversations {
            limit: Some(100),
            ..Default::default()
        })
        .try_collect()
        .await
        .context("while listing conversations")?;
    let mut messages = 0usize;
    let mut longest = (0usize, None);
    for c in &convs {
        let n = client
            .messages(c.id)
            .try_fold(0usize, |n, _| async move { Ok(n + 1) })
            .await
            .with_context(|| format!("while reading messages of {}", c.id))?;
        messages += n;
        if n > longest.0 {
            longest = (n, Some(c.id));
        }
    }
    let users = client.users().await?;
    let accounts: Vec<_> = client.accounts(100).try_collect().await?;
    let playbooks = client.playbooks().await?;
    println!(
        "Walked {} conversations, {messages} messages, {} users, {} accounts, {} playbooks in {:.2?} ({} requests)",
        convs.len(),
        users.len(),
        accounts.len(),
        playbooks.len(),
        started.elapsed(),
        client
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    if let Some(id) = convs.first().map(|c| c.id) {
        println!(
            "\nTranscript of conversation {id}:\n{}",
            client.transcript(id).await?
        );
    }
    if let (n, Some(id)) = longest {
        println!("Longest conversation: {id} with {n} messages");
    }
    tokio::time::timeout(Duration::from_secs(5), sim.stop())
        .await
        .ok();
    Ok(())
}
