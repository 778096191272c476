//! Progress of an export: bars on a terminal, periodic structured log lines otherwise.
//!
//! On a terminal the conversation bar's length comes from one reporting call (the count of
//! conversations), and its ETA is the later of "at the rate so far" and "at the rate limit",
//! so a run that started fast on a full bucket does not promise too much.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bridge_export::{Progress, eta};
use drift_client::DriftClient;
use drift_types::ReportRequest;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the log-line mode reports.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A running progress display.
#[derive(Debug)]
pub struct Display {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Display {
    /// Starts showing `progress`; `enabled = false` shows nothing.
    pub async fn start(
        progress: Arc<Progress>,
        client: DriftClient,
        limit_per_minute: u32,
        enabled: bool,
    ) -> Display {
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        if !enabled {
            return Display { stop, task: None };
        }
        let terminal = std::io::stderr().is_terminal();
        if terminal && let Ok(r) = client.report_conversations(&ReportRequest::default()).await {
            progress.total.store(r.count, Ordering::Relaxed);
        }
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let bars = terminal.then(|| Bars::new(&progress));
            let mut tick = tokio::time::interval(if terminal {
                Duration::from_millis(200)
            } else {
                LOG_EVERY
            });
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = rx.changed() => break,
                }
                let secs = started.elapsed().as_secs_f64();
                match &bars {
                    Some(b) => b.draw(&progress, &client, limit_per_minute, secs),
                    None => log_line(&progress, &client, secs),
                }
            }
            if let Some(b) = bars {
                b.multi.clear().ok();
            }
        });
        Display {
            stop,
            task: Some(task),
        }
    }

    /// Stops the display.
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn log_line(p: &Progress, client: &DriftClient, secs: f64) {
    let rows: u64 = p.rows().iter().map(|(_, n)| n).sum();
    tracing::info!(
        elapsed_secs = secs as u64,
        rows,
        rows_per_sec = (rows as f64 / secs.max(0.001)) as u64,
        conversations.listed = p.listed.load(Ordering::Relaxed),
        conversations.fetched = p.fetched.load(Ordering::Relaxed),
        api.calls = client.stats().requests.load(Ordering::Relaxed),
        api.responses_429 = client.stats().rate_limited.load(Ordering::Relaxed),
        "export progress"
    );
}

struct Bars {
    multi: MultiProgress,
    conversations: ProgressBar,
    tables: Vec<(&'static str, ProgressBar)>,
}

impl Bars {
    fn new(p: &Progress) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = p.total.load(Ordering::Relaxed);
        let conversations = multi.add(if total > 0 {
            ProgressBar::new(total)
        } else {
            ProgressBar::new_spinner()
        });
        conversations.set_style(
            ProgressStyle::with_template("{prefix:>26} [{bar:30}] {pos}/{len} {per_sec} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        conversations.set_prefix("conversations");
        let tables = p
            .rows()
            .into_iter()
            .map(|(t, _)| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("{prefix:>26} {pos:>9} rows {per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_prefix(t);
                (t, b)
            })
            .collect();
        Bars {
            multi,
            conversations,
            tables,
        }
    }

    fn draw(&self, p: &Progress, client: &DriftClient, limit: u32, secs: f64) {
        let fetched = p.fetched.load(Ordering::Relaxed);
        self.conversations.set_position(fetched);
        let total = p.total.load(Ordering::Relaxed);
        if total > 0 && fetched > 0 {
            let calls = client.stats().requests.load(Ordering::Relaxed) as f64;
            let e = eta(
                total.saturating_sub(fetched),
                fetched as f64 / secs.max(0.001),
                calls / fetched as f64,
                limit,
            );
            if let Some(e) = e {
                self.conversations
                    .set_message(format!("ETA {}s", e.as_secs()));
            }
        }
        for ((_, bar), (_, n)) in self.tables.iter().zip(p.rows()) {
            bar.set_position(n);
        }
    }
}

impl std::fmt::Debug for Bars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bars")
    }
}
