//! The intake's settings and state: the sites, their secrets (cached), the rate limiters,
//! the committer that stores the batches.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bridge_core::widget::{SiteSecrets, WidgetConfig};
use bridge_core::widget_intake::WidgetIngestor;
use drift_types::Secret;
use parking_lot::Mutex;

use super::limits;

/// How long a site's secret is cached: a rotated secret is in force within this.
const SECRET_TTL: Duration = Duration::from_secs(30);

/// The intake's settings and state.
pub struct Intake {
    pub(super) config: WidgetConfig,
    secrets: Option<SiteSecrets>,
    cached: Mutex<HashMap<String, (Instant, Option<Secret>)>>,
    pub(super) limits: limits::Limits,
    pub(super) checks: AtomicU64,
    pub(super) store: WidgetIngestor,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("sites", &self.config.sites.len())
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake for the configured sites; `secrets` opens signed sites' secrets, `store`
    /// commits the batches.
    pub fn new(config: WidgetConfig, secrets: Option<SiteSecrets>, store: WidgetIngestor) -> Self {
        Intake {
            store,
            limits: limits::Limits::new(&config),
            config,
            secrets,
            cached: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
        }
    }

    pub(super) fn origin_allowed_anywhere(&self, origin: &str) -> bool {
        self.config
            .sites
            .iter()
            .any(|s| s.origins.iter().any(|o| o == origin))
    }

    pub(super) async fn secret(&self, site: &str) -> anyhow::Result<Option<Secret>> {
        if let Some((at, s)) = self.cached.lock().get(site)
            && at.elapsed() < SECRET_TTL
        {
            return Ok(s.clone());
        }
        let Some(secrets) = &self.secrets else {
            return Ok(None);
        };
        let s = secrets.get(site).await?;
        self.cached
            .lock()
            .insert(site.to_owned(), (Instant::now(), s.clone()));
        Ok(s)
    }
}
