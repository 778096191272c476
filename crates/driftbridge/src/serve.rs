//! `driftbridge serve`: the gateway and the workers in one process, with graceful shutdown
//! (stop accepting, let running jobs finish for the grace period, release the rest).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bridge_core::drift::DriftPool;
use bridge_core::ingest::Ingestor;
use bridge_core::jobs::Pipeline;
use bridge_core::metrics::{Metrics, labels};
use bridge_core::schedule::{self, ScheduleConfig};
use bridge_core::sink_secrets::SinkSecrets;
use bridge_core::tenants::Tenants;
use bridge_core::widget_intake::WidgetIngestor;
use bridge_queue::{Queue, WorkerConfig, WorkerStats, run_workers};
use bridge_store::vault::{Keyring, Vault};
use bridge_store::{Store, StoreOptions};
use bridge_web::{AppState, OAuthFlow};
use drift_types::OrgId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;

/// A running gateway + worker pool.
#[derive(Debug)]
pub struct Running {
    /// Where the HTTP server listens.
    pub addr: SocketAddr,
    /// The queue.
    pub queue: Queue,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Worker counters.
    pub worker_stats: Arc<WorkerStats>,
    /// Console sessions (mints one-time sign-in links).
    pub sessions: Arc<bridge_web::console::Sessions>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    workers: JoinHandle<()>,
    scheduler: JoinHandle<()>,
    auditor: JoinHandle<()>,
    purger: JoinHandle<()>,
}

/// How often token uses are written to the audit table.
const AUDIT_FLUSH: Duration = Duration::from_secs(5);

/// Opens the queue on an existing database, for commands that read or change what `serve`
/// stored: a SQLite file that does not exist is an error, not a new empty database.
pub async fn open_existing_queue(config: &Config) -> Result<Queue> {
    let url = config.database.url.expose();
    if let Some(path) = bridge_store::sqlite_file(url)
        && !path.exists()
    {
        anyhow::bail!(
            "no database at {} ({}): nothing was created; `serve` or `export` makes one, or \
             check --database-url / database.url",
            path.display(),
            bridge_store::redact_url(url)
        );
    }
    open_queue(config).await
}

/// Opens the configured database (applying migrations) and the queue on it.
pub async fn open_queue(config: &Config) -> Result<Queue> {
    let store = Store::connect_with(
        config.database.url.expose(),
        StoreOptions {
            max_connections: config.database.max_connections,
            ..StoreOptions::default()
        },
    )
    .await
    .context("while opening the database")?;
    Ok(Queue::new(store, config.queue()))
}

/// Sink secrets on `store`, sealed with `keyring`.
pub fn sink_secrets_on(store: Store, keyring: Keyring) -> SinkSecrets {
    SinkSecrets::new(store, Arc::new(Vault::new(keyring)))
}

/// Widget sites' signing secrets on `store`, sealed with `keyring`.
pub fn site_secrets_on(store: Store, keyring: Keyring) -> bridge_core::widget::SiteSecrets {
    bridge_core::widget::SiteSecrets::new(store, Arc::new(Vault::new(keyring)))
}

/// The tenants on `store`, their secrets opened with `keyring`, refreshed with the configured
/// Drift app.
pub fn tenants_on(config: &Config, store: Store, keyring: Keyring) -> Result<Tenants> {
    Ok(Tenants::new(
        store,
        Arc::new(Vault::new(keyring)),
        config.oauth_app()?,
    ))
}

/// Opens the store (applying migrations), binds the listener and starts everything.
pub async fn start(config: &Config, run_workers_here: bool) -> Result<Running> {
    let keyring = config.keyring()?;
    let queue = open_queue(config).await?;
    let sinks = config
        .build_sinks(Some(Arc::new(sink_secrets_on(
            queue.store().clone(),
            keyring.clone(),
        ))))
        .await?;
    let metrics = Arc::new(Metrics::default());
    let oauth_app = config.oauth_app()?;
    let state_key = keyring.primary.derive("oauth state cookie");
    let sessions = Arc::new(bridge_web::console::Sessions::new(
        &keyring.primary.derive("console session"),
    ));
    let widget = (!config.widget.sites.is_empty()).then(|| {
        Arc::new(bridge_web::widget::Intake::new(
            config.widget.clone(),
            Some(site_secrets_on(queue.store().clone(), keyring.clone())),
            WidgetIngestor::spawn(queue.clone(), metrics.clone()),
        ))
    });
    let tenants = tenants_on(config, queue.store().clone(), keyring)?;
    // Jobs give their worker back when an org's budget is spent (scheduled syncs wait).
    let mut drift_config = config.drift();
    drift_config.max_budget_wait = Some(bridge_core::drift::JOB_BUDGET_WAIT);
    let drift = Arc::new(DriftPool::new(drift_config).with_tenants(tenants.clone()));
    let ingestor = Ingestor::spawn(queue.clone(), metrics.clone());
    let state = AppState {
        ingestor,
        queue: queue.clone(),
        verification_tokens: Arc::new(config.drift.verification_tokens.clone()),
        metrics: metrics.clone(),
        drift: drift.clone(),
        tenants: Some(tenants.clone()),
        oauth: oauth_app.map(|app| OAuthFlow { app, state_key }),
        admin_token: config.admin.token.clone(),
        viewer_token: config.admin.viewer_token.clone(),
        sessions: sessions.clone(),
        secure_cookies: config.admin.secure_cookies,
        metrics_public: config.admin.metrics_public,
        body_read_timeout: config.server_limits().body_read_timeout,
        sinks: sinks.clone(),
        widget,
    };
    let listener = tokio::net::TcpListener::bind(config.listen())
        .await
        .with_context(|| format!("while binding {}", config.listen()))?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let mut server_rx = rx.clone();
    let mut limits = config.server_limits();
    limits.max_connections = connection_cap(limits.max_connections);
    let server = tokio::spawn(async move {
        bridge_web::server::serve(listener, bridge_web::router(state), limits, async move {
            let _ = server_rx.wait_for(|s| *s).await;
        })
        .await
    });
    let m = metrics.clone();
    let worker_config = WorkerConfig {
        concurrency: config.workers.concurrency,
        poll_interval: Duration::from_millis(config.workers.poll_interval_ms),
        grace: Duration::from_secs(config.workers.shutdown_grace_secs),
        on_finish: Some(Arc::new(move |job, outcome, took| {
            m.inc(
                "driftbridge_jobs_finished_total",
                "Job attempts by job name and outcome.",
                labels(&[("name", &job.name), ("outcome", outcome)]),
                1,
            );
            m.observe(
                "driftbridge_job_seconds",
                "Job attempt duration, by job name.",
                labels(&[("name", &job.name)]),
                took,
            );
        })),
        ..WorkerConfig::default()
    };
    let worker_stats = worker_config.stats.clone();
    let auditor = {
        let (tenants, mut rx) = (tenants.clone(), rx.clone());
        tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    _ = tokio::time::sleep(AUDIT_FLUSH) => false,
                    _ = rx.wait_for(|s| *s) => true,
                };
                if let Err(e) = tenants.flush_audit().await {
                    tracing::warn!(error = format!("{e:#}"), "writing the token audit failed");
                }
                if stop {
                    return;
                }
            }
        })
    };
    let scheduler = {
        let (store, drift, metrics, rx) = (
            queue.store().clone(),
            Arc::new(
                DriftPool::new(config.drift())
                    .with_tenants(tenants.clone())
                    .with_purpose("scheduled_sync"),
            ),
            metrics.clone(),
            rx.clone(),
        );
        let cfg = (config.sync.interval_secs > 0 && run_workers_here).then(|| ScheduleConfig {
            interval: Duration::from_secs(config.sync.interval_secs),
            orgs: config.sync_orgs().into_iter().map(OrgId).collect(),
            lease: Duration::from_secs(config.sync.lease_secs),
            overlap: Duration::from_secs(config.sync.overlap_secs),
            holder: format!("pid{}-{}", std::process::id(), drift_types::now_ms()),
        });
        tokio::spawn(async move {
            if let Some(cfg) = cfg {
                schedule::run(store, drift, metrics, cfg, rx).await;
            }
        })
    };
    let purger = {
        let (store, metrics, rx) = (queue.store().clone(), metrics.clone(), rx.clone());
        let holder = format!("pid{}-{}", std::process::id(), drift_types::now_ms());
        let cfg = (config.retention.interval_secs > 0 && run_workers_here)
            .then(|| config.retention(&holder));
        tokio::spawn(async move {
            if let Some(cfg) = cfg {
                bridge_core::retention::run(store, cfg, metrics, rx).await;
            }
        })
    };
    let pipeline = Arc::new(Pipeline {
        drift,
        metrics: metrics.clone(),
        sinks,
        skips: Arc::default(),
        pauses: Arc::default(),
    });
    let wq = queue.clone();
    let workers = tokio::spawn(async move {
        if run_workers_here {
            run_workers(wq, pipeline, worker_config, rx).await;
        }
    });
    Ok(Running {
        addr,
        queue,
        metrics,
        worker_stats,
        sessions,
        shutdown,
        server,
        workers,
        scheduler,
        auditor,
        purger,
    })
}

impl Running {
    /// Graceful stop: the server stops accepting and finishes in-flight requests; workers
    /// finish or release their jobs; the pool closes.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.workers.await;
        let _ = self.scheduler.await;
        let _ = self.auditor.await;
        let _ = self.purger.await;
        self.queue.store().close().await;
    }

    /// Waits until no job is queued or running.
    pub async fn drained(&self, poll: Duration) -> Result<()> {
        while self.queue.pending().await? > 0 {
            tokio::time::sleep(poll).await;
        }
        Ok(())
    }
}

/// Runs until Ctrl-C or SIGTERM; without workers when `run_workers_here` is false.
pub async fn serve(config: Config, run_workers_here: bool) -> Result<()> {
    let running = start(&config, run_workers_here).await?;
    println!(
        "driftbridge listening on http://{} (database {}{})",
        running.addr,
        bridge_store::redact_url(config.database.url.expose()),
        if run_workers_here { "" } else { ", no workers" }
    );
    tracing::info!(addr = %running.addr, "serving");
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// File descriptors kept for everything but client connections: the database pool, Drift
/// and CRM connections, export files, logs. 256 covers the largest pool (`database.
/// max_connections`) several times over.
const RESERVED_FDS: u64 = 256;

/// The connection cap the process can honour: the open-file limit is raised to its hard
/// limit, and the cap kept [`RESERVED_FDS`] below it, so a flood of clients meets the cap
/// (where idle ones are closed to admit new ones) before "too many open files".
fn connection_cap(configured: usize) -> usize {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(fds) => {
            let room =
                usize::try_from(fds.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
            if room < configured {
                tracing::warn!(
                    server.max_connections = configured,
                    open_files = fds,
                    effective = room,
                    "server.max_connections is above what the open-file limit allows; \
                     capping it (raise `ulimit -n` to allow more)"
                );
                room
            } else {
                configured
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the open-file limit; keeping server.max_connections");
            configured
        }
    }
}
