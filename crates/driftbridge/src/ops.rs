//! Operator commands: `replay`, `events malformed`, keys and sink secrets.

use anyhow::{Context, Result, anyhow, bail};
use bridge_core::jobs::jobs_for_stored;
use bridge_queue::{NewJob, Queue};
use bridge_store::events;
use drift_types::{ConversationId, OrgId};

use crate::config::Config;

async fn enqueue_all(queue: &Queue, jobs: &[NewJob]) -> Result<Vec<i64>> {
    let mut tx = queue.store().begin().await?;
    let mut ids = Vec::new();
    for j in jobs {
        ids.push(queue.enqueue(&mut tx, j, drift_types::now_ms()).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

/// `replay --conversation ID [--org ORG] [--sink NAME ...]`: sync the conversation again,
/// and deliver it again to the named sinks.
pub async fn replay_conversation(
    config: &Config,
    id: i64,
    org: Option<i64>,
    sinks: &[String],
) -> Result<()> {
    if let Some(bad) = sinks.iter().find(|s| !config.sinks.contains_key(*s)) {
        let known: Vec<&String> = config.sinks.keys().collect();
        bail!("no sink named {bad:?} is configured (configured: {known:?})");
    }
    let queue = crate::serve::open_existing_queue(config).await?;
    let org = match org {
        Some(o) => o,
        None => {
            let known = bridge_store::reads::conversation_orgs(queue.store(), id).await?;
            match known.as_slice() {
                [o] => *o,
                // Not stored yet: the org of the configured token, as `export` works it out.
                [] => {
                    let pool = crate::drift_access::drift_pool(config, "replay").await?;
                    crate::drift_access::resolve_org(config, None, &pool)
                        .await
                        .with_context(|| {
                            format!(
                                "cannot tell which org conversation {id} belongs to; pass --org"
                            )
                        })?
                        .0
                }
                _ => bail!("conversation {id} is stored for several orgs ({known:?}); pass --org"),
            }
        }
    };
    let job = if sinks.is_empty() {
        bridge_core::jobs::sync_job(OrgId(org), ConversationId(id))
    } else {
        bridge_core::jobs::replay_job(OrgId(org), ConversationId(id), sinks)
    };
    let ids = enqueue_all(&queue, &[job]).await?;
    let to = if sinks.is_empty() {
        String::new()
    } else {
        format!(" and deliver it to {}", sinks.join(", "))
    };
    println!(
        "queued job {} to sync conversation {id} of org {org}{to}; a running `serve` does it",
        ids[0]
    );
    Ok(())
}

/// `replay --event ID`: run a stored event's jobs again.
pub async fn replay_event(config: &Config, id: i64) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let ev = events::get(&mut conn, id)
        .await?
        .ok_or_else(|| anyhow!("no stored event {id}"))?;
    let jobs = jobs_for_stored(&ev)
        .with_context(|| format!("event {id} ({}) does not parse", ev.event_type))?;
    let jobs = bridge_core::jobs::replayed(jobs);
    // It parses now: it is no longer a malformed event.
    events::set_parse_error(&mut conn, id, None).await?;
    drop(conn);
    if jobs.is_empty() {
        println!("event {id} ({}) makes no jobs", ev.event_type);
        return Ok(());
    }
    for (jid, j) in enqueue_all(&queue, &jobs).await?.iter().zip(&jobs) {
        println!("queued job {jid} ({}) for event {id}", j.name);
    }
    Ok(())
}

/// `events malformed [--json]`: events stored with data that did not parse, newest first.
pub async fn events_malformed(config: &Config, limit: i64, json: bool) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let list = events::malformed(&mut conn, limit).await?;
    if json {
        for e in &list {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("no malformed events");
    }
    for e in list {
        println!(
            "event {}  {}  org {}  received {}\n  {}\n  replay once a release reads it: driftbridge replay --event {}",
            e.id,
            e.event_type,
            e.org_id.map_or("-".into(), |o| o.to_string()),
            when(Some(e.received_at)),
            e.error,
            e.id
        );
    }
    Ok(())
}

pub(crate) fn when(ms: Option<i64>) -> String {
    ms.map_or("-".into(), |m| {
        format!("{} ago", drift_types::age(drift_types::now_ms() - m))
    })
}

/// `driftbridge keys generate`.
pub fn keys_generate() -> Result<()> {
    let key = bridge_store::vault::MasterKey::generate()?;
    println!("{}", key.expose());
    eprintln!(
        "Keep it in a secret store and pass it as DRIFTBRIDGE_MASTER_KEY (or write it to a file \
         named by secrets.master_key_file). Losing it loses every stored token."
    );
    Ok(())
}

/// `driftbridge keys rotate`: re-seals every data key under the configured master key; the
/// previous keys must be listed in secrets.old_master_keys until it finishes.
pub async fn keys_rotate(config: &Config) -> Result<()> {
    let keyring = config.keyring()?;
    let primary = keyring.primary.id().to_owned();
    let queue = crate::serve::open_existing_queue(config).await?;
    let vault = bridge_store::vault::Vault::new(keyring);
    let n = vault.rotate(queue.store()).await?;
    println!(
        "re-sealed {n} data keys under master key {primary}; every tenant's data key is now under \
         it, so the old master keys can be removed from the configuration and destroyed"
    );
    Ok(())
}

/// `driftbridge sinks set-secret SINK FIELD`: the value comes from standard input, never
/// from the command line (where `ps` and shell history would keep it).
pub async fn sinks_set_secret(config: &Config, sink: &str, field: &str) -> Result<()> {
    let Some(spec) = config.sinks.get(sink) else {
        let known: Vec<&String> = config.sinks.keys().collect();
        bail!("no sink named {sink:?} is configured (configured: {known:?})");
    };
    if !spec.secret_fields().contains(&field) {
        bail!(
            "sink {sink:?} has no secret {field:?}; its secrets are {:?}",
            spec.secret_fields()
        );
    }
    let mut value = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)
        .context("while reading the secret from standard input")?;
    let value = value.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        bail!(
            "standard input was empty: pipe the secret in, e.g. `printf %s \"$TOKEN\" | driftbridge sinks set-secret {sink} {field}`"
        );
    }
    let queue = crate::serve::open_queue(config).await?;
    let secrets = crate::serve::sink_secrets_on(queue.store().clone(), config.keyring()?);
    secrets
        .put(sink, field, &drift_types::Secret::new(value))
        .await?;
    println!("sealed {field} of sink {sink} in the vault");
    Ok(())
}

/// `driftbridge sinks list`.
pub async fn sinks_list(config: &Config) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let secrets = crate::serve::sink_secrets_on(queue.store().clone(), config.keyring()?);
    let rows = bridge_store::deliveries::list(queue.store(), None, i64::MAX).await?;
    let signals = bridge_store::signals::counts(queue.store()).await?;
    println!(
        "{:<16} {:<11} {:<40} {:<32} people written by signals",
        "sink", "kind", "secrets", "deliveries"
    );
    for (name, spec) in &config.sinks {
        let mut spec = spec.clone();
        let mut where_from = Vec::new();
        for f in spec.secret_fields() {
            let in_config = spec.secret_mut(f).is_some_and(|s| !s.is_empty());
            let from = if in_config {
                "config"
            } else if secrets.get(name, f).await?.is_some() {
                "vault"
            } else {
                "MISSING"
            };
            where_from.push(format!("{f}={from}"));
        }
        let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in rows.iter().filter(|r| &r.sink == name) {
            *states.entry(r.state.as_str()).or_default() += 1;
        }
        let (people, unrecorded) = signals
            .iter()
            .find(|(sink, ..)| sink == name)
            .map_or((0, 0), |(_, p, u)| (*p, *u));
        let signaled = match unrecorded {
            0 => people.to_string(),
            u => format!("{people} ({u} unrecorded)"),
        };
        println!(
            "{name:<16} {:<11} {:<40} {:<32} {signaled}",
            spec.kind(),
            where_from.join(" "),
            format!("{states:?}")
        );
    }
    Ok(())
}

/// `driftbridge widget secret SITE`: a new signing secret for a signed site, sealed and
/// printed once.
pub async fn widget_secret(config: &Config, site: &str) -> Result<()> {
    let Some(s) = config.widget.site(site) else {
        let known: Vec<&str> = config.widget.sites.iter().map(|s| s.key.as_str()).collect();
        bail!("no widget site {site:?} is configured (configured: {known:?})");
    };
    if s.mode != bridge_core::widget::SiteMode::Signed {
        bail!(
            "widget site {site:?} is public: only a signed site has a secret (set mode = \"signed\")"
        );
    }
    let queue = crate::serve::open_queue(config).await?;
    let secrets = crate::serve::site_secrets_on(queue.store().clone(), config.keyring()?);
    let secret = secrets.rotate(site).await?;
    println!("{}", secret.expose());
    eprintln!(
        "sealed a new secret for widget site {site}; give it to the site's backend (docs/WIDGET.md \
         mints tokens with it). It is not shown again."
    );
    Ok(())
}
