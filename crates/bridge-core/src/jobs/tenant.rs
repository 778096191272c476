//! Disconnecting a tenant.

use anyhow::Context;
use bridge_queue::{JobCtx, JobError};
use drift_types::OrgId;
use serde::{Deserialize, Serialize};

use super::kind::JobKind;
use super::pipeline::Pipeline;

/// Disconnects a tenant: uninstall at Drift, delete its secrets, cancel its jobs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DisconnectTenant {}

impl JobKind for DisconnectTenant {
    const NAME: &'static str = "disconnect_tenant";
}

impl DisconnectTenant {
    pub(crate) async fn run(
        self,
        p: &Pipeline,
        org: OrgId,
        ctx: &mut JobCtx,
    ) -> Result<(), JobError> {
        if let Some(t) = p.drift.tenants() {
            let reason = match ctx.job.event_id {
                Some(id) => format!("Drift sent app_disconnected (event {id})"),
                None => "Drift sent app_disconnected".to_owned(),
            };
            let r = t
                .revoke(org, p.drift.base_url(), &reason)
                .await
                .context("while disconnecting the tenant")?;
            tracing::warn!(
                org.id = org.0,
                uninstalled = r.uninstalled,
                secrets.deleted = r.secrets_deleted,
                jobs.cancelled = r.jobs_cancelled,
                "tenant disconnected by Drift's app_disconnected: its events are kept and its jobs \
                 skipped until a re-install or `driftbridge tenants restore`"
            );
        }
        p.drift.forget_client(org);
        let tx = ctx.queue().store().begin().await?;
        ctx.finish(tx).await
    }
}
