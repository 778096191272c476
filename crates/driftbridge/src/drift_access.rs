//! Which Drift tokens a command uses and which org it acts for: the same rules for `export`,
//! `sync` and `replay` (and the same isolation as `serve`: a token speaks for its own org).

use anyhow::{Context, Result, anyhow, bail};
use drift_types::OrgId;

use crate::config::Config;

/// A Drift pool for a command: with installed tenants' vault tokens when a master key is
/// configured, else configured tokens only.
pub async fn drift_pool(config: &Config, purpose: &str) -> Result<bridge_core::drift::DriftPool> {
    let pool = bridge_core::drift::DriftPool::new(config.drift()).with_purpose(purpose);
    // No key: configured tokens only. A key that is configured but does not parse is an
    // error, never a silent fall back to running without the tenants.
    let Some(keyring) = config.keyring_if_configured()? else {
        return Ok(pool);
    };
    let queue = crate::serve::open_queue(config).await?;
    let tenants = crate::serve::tenants_on(config, queue.store().clone(), keyring)?;
    Ok(pool.with_tenants(tenants))
}

/// The org a command acts for: `--org`, else the only org with a configured token, else the
/// org the default token belongs to (asked of Drift's token introspection), else the only
/// installed tenant.
pub async fn resolve_org(
    config: &Config,
    arg: Option<i64>,
    pool: &bridge_core::drift::DriftPool,
) -> Result<OrgId> {
    if let Some(o) = arg {
        return Ok(OrgId(o));
    }
    let drift = config.drift();
    if drift.default_token.is_none() && drift.tokens.len() == 1 {
        return Ok(OrgId(*drift.tokens.keys().next().unwrap_or(&0)));
    }
    if drift.default_token.is_none()
        && let Some(t) = pool.tenants()
    {
        let active: Vec<i64> = t
            .list()
            .await?
            .into_iter()
            .filter(|t| t.status == "active")
            .map(|t| t.org_id)
            .collect();
        match active.as_slice() {
            [o] => return Ok(OrgId(*o)),
            [] => {}
            many => bail!("several installed tenants ({many:?}): pass --org"),
        }
    }
    let token = drift.default_token.clone().ok_or_else(|| {
        anyhow!(
            "no Drift token configured and no installed tenant: set drift.token or \
             drift.tokens, or install the app"
        )
    })?;
    pool.token_org(&token)
        .await
        .context("while asking Drift which org the token belongs to (pass --org to skip)")
}
