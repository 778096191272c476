//! `driftbridge tenants`: list (with why an org is inactive), revoke (confirmed, and refused
//! for an org that only a configured token speaks for), restore, audit.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use bridge_core::drift::{DriftPool, OrgNotServed};
use bridge_core::tenants::Tenants;
use bridge_queue::Queue;
use drift_types::OrgId;

use crate::config::Config;
use crate::ops::when;

async fn open(config: &Config) -> Result<(Tenants, Queue)> {
    let keyring = config.keyring()?;
    let queue = crate::serve::open_existing_queue(config).await?;
    let tenants = crate::serve::tenants_on(config, queue.store().clone(), keyring)?;
    Ok((tenants, queue))
}

/// `driftbridge tenants list`.
pub async fn list(config: &Config) -> Result<()> {
    let (t, queue) = open(config).await?;
    println!(
        "{:<12} {:<8} {:<16} {:<16} scopes",
        "org", "status", "installed", "last activity"
    );
    for x in t.list().await? {
        println!(
            "{:<12} {:<8} {:<16} {:<16} {}",
            x.org_id,
            x.status,
            when(Some(x.installed_at)),
            when(x.last_activity_at),
            x.scopes.as_deref().unwrap_or_default()
        );
        if x.status == "active" {
            continue;
        }
        let since = x.revoked_at.unwrap_or(x.installed_at);
        let mut conn = queue.store().acquire().await?;
        let kept = bridge_store::events::count_for_org_since(&mut conn, x.org_id, since).await?;
        println!(
            "{:<12} disconnected {} by {}; {kept} events kept since, their jobs skipped; \
             `driftbridge tenants restore {}` or a re-install runs them",
            "",
            when(x.revoked_at),
            x.revoked_reason.as_deref().unwrap_or("an unrecorded cause"),
            x.org_id
        );
    }
    Ok(())
}

/// What `tenants revoke` may do without asking.
#[derive(Debug, Clone, Copy, Default)]
pub struct RevokeFlags {
    /// Confirmed already (scripts).
    pub yes: bool,
    /// Also for an org with no installed tenant.
    pub force: bool,
}

/// `driftbridge tenants revoke ORG [--yes] [--force]`.
pub async fn revoke(config: &Config, org: i64, flags: RevokeFlags) -> Result<()> {
    let (t, _queue) = open(config).await?;
    let o = OrgId(org);
    let tenant = t.get(o).await?;
    if let Some(x) = tenant.as_ref().filter(|x| x.status == "revoked") {
        println!(
            "org {org} is already disconnected (by {}); `driftbridge tenants restore {org}` undoes it",
            x.revoked_reason.as_deref().unwrap_or("an unrecorded cause")
        );
        return Ok(());
    }
    let installed = tenant.is_some() && t.tokens(o).await?.is_some();
    if !installed && !flags.force {
        let why = match configured_token_serves(config, o).await {
            Ok(true) => "the configured Drift token speaks for it".to_owned(),
            Ok(false) => "no token speaks for it".to_owned(),
            Err(e) => format!("could not ask Drift which org the configured token is for ({e:#})"),
        };
        bail!(
            "org {org} has not installed the app ({why}); revoking it would skip every later \
             webhook of that org while a configured token keeps working. Remove the token from \
             the configuration instead, or pass --force to record the org as disconnected \
             (undo with `driftbridge tenants restore {org}`)"
        );
    }
    if !flags.yes {
        confirm(org)?;
    }
    let r = t
        .revoke(
            o,
            &config.drift.base_url,
            "an operator's `driftbridge tenants revoke`",
        )
        .await?;
    println!(
        "org {org} disconnected: Drift uninstall {}, {} secrets deleted, {} queued jobs cancelled, \
         scheduled syncs stopped; its webhooks are kept but not processed until \
         `driftbridge tenants restore {org}` or a re-install",
        if r.uninstalled {
            "done"
        } else {
            "not possible (no working token)"
        },
        r.secrets_deleted,
        r.jobs_cancelled
    );
    Ok(())
}

/// Whether a configured token (not an install) belongs to the org, as Drift says.
async fn configured_token_serves(config: &Config, org: OrgId) -> Result<bool> {
    let pool = DriftPool::new(config.drift()).with_purpose("tenants");
    match pool.serves(org).await {
        Ok(()) => Ok(true),
        Err(e) if e.is::<OrgNotServed>() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Asks on the terminal; without one the operator must say `--yes`.
fn confirm(org: i64) -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "`tenants revoke` asks for confirmation and standard input is not a terminal: \
             pass --yes to disconnect org {org}"
        );
    }
    print!(
        "Disconnect org {org}? Drift is asked to uninstall the app, its tokens are deleted, its \
         queued jobs cancelled, and its later webhooks kept but not processed.\n\
         Type the org id to confirm: "
    );
    std::io::stdout()
        .flush()
        .context("while writing the prompt")?;
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("while reading the confirmation")?;
    if line.trim() != org.to_string() {
        bail!(
            "not confirmed ({:?} is not {org}); nothing changed",
            line.trim()
        );
    }
    Ok(())
}

/// `driftbridge tenants restore ORG`.
pub async fn restore(config: &Config, org: i64) -> Result<()> {
    let (t, queue) = open(config).await?;
    let o = OrgId(org);
    match t.get(o).await? {
        None => bail!("org {org} has neither installed the app nor been disconnected"),
        Some(x) if x.status == "active" => {
            println!("org {org} is active; nothing to restore");
            return Ok(());
        }
        Some(_) => {}
    }
    // A disconnect deleted the tenant's own tokens: only a configured one can speak for it.
    let served = configured_token_serves(config, o)
        .await
        .with_context(|| format!("while asking Drift whether a configured token is org {org}'s"))?;
    if !served {
        bail!(
            "org {org} has no token left: the disconnect deleted its tokens and no configured \
             token belongs to it. Re-install the app (`/oauth/install` on serve): that makes it \
             active again and runs what was skipped"
        );
    }
    let r = bridge_core::reconnect::restore(&t, &queue, o).await?;
    println!(
        "org {org} is active again: {} cancelled jobs and the jobs of {} events that arrived \
         while it was disconnected are queued{}; a running `serve` does them",
        r.jobs_requeued,
        r.events_replayed,
        if r.events_unreadable > 0 {
            format!(
                " ({} events did not parse: `driftbridge events malformed`)",
                r.events_unreadable
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `driftbridge tenants audit ORG`.
pub async fn audit(config: &Config, org: i64) -> Result<()> {
    let (t, _queue) = open(config).await?;
    println!("{:<20} {:<16} calls", "when", "purpose");
    for a in t.audit(OrgId(org)).await? {
        println!("{:<20} {:<16} {}", when(Some(a.at)), a.purpose, a.calls);
    }
    Ok(())
}
