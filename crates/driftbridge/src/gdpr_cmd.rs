//! `driftbridge gdpr delete|log|export`: erasure and subject access from the command line.
//! The work lives in `bridge_core::erasure` and `bridge_store::privacy`.

use anyhow::{Context, Result, bail};
use bridge_core::jobs::{ErasureRequest as Request, SinkRoute, erase_in};
use bridge_store::privacy;
use drift_types::OrgId;
use serde_json::{Value, json};

use crate::config::Config;

fn check_email(email: &str) -> Result<()> {
    if !email.contains('@') || email.trim().len() < 3 {
        bail!("{email:?} is not an email address");
    }
    Ok(())
}

/// The org Drift's GDPR API is called for, and its client.
async fn drift_client(
    config: &Config,
    org: Option<i64>,
    purpose: &str,
) -> Result<(OrgId, std::sync::Arc<drift_client::DriftClient>)> {
    let pool = crate::drift_access::drift_pool(config, purpose).await?;
    let org = crate::drift_access::resolve_org(config, org, &pool).await?;
    Ok((org, pool.client(org).await?))
}

/// `gdpr delete EMAIL [--org ORG] [--local-only]`.
pub async fn delete(
    config: &Config,
    email: &str,
    org: Option<i64>,
    local_only: bool,
) -> Result<()> {
    check_email(email)?;
    let mut drift_org = None;
    if !local_only {
        let (o, client) = drift_client(config, org, "gdpr delete").await?;
        client.gdpr_delete(email).await.with_context(|| {
            format!(
                "Drift did not accept the erasure for org {o}; nothing was erased here. Run \
                 again, or pass --local-only to erase only what driftbridge holds"
            )
        })?;
        println!("Drift accepted the erasure for org {o} (it completes asynchronously)");
        drift_org = Some(o.0);
    }
    let queue = crate::serve::open_queue(config).await?;
    let store = queue.store().clone();
    let orgs = match org.or(drift_org) {
        Some(o) => vec![o],
        None => {
            let mut conn = store.acquire().await?;
            privacy::subject_orgs(&mut conn, email).await?
        }
    };
    if orgs.is_empty() {
        bail!(
            "no stored org holds {email} and no org was given: pass --org ORG to record the \
             erasure (its tombstone keeps later webhooks and exports from writing them)"
        );
    }
    let req = Request {
        email,
        source: "cli",
        event_id: None,
        requested_at: drift_types::now_ms(),
    };
    let routes = SinkRoute::from_specs(&config.sinks);
    let mut tx = store.begin().await?;
    let erased = erase_in(&mut tx, &queue, &routes, &orgs, &req).await?;
    tx.commit().await.context("while committing the erasure")?;
    let truncated = store.checkpoint(50).await?;
    let mut conn = store.acquire().await?;
    for e in &erased {
        let counts: Vec<String> = e.summary.iter().map(|(t, n)| format!("{t} {n}")).collect();
        println!(
            "erasure {} in org {}: {}",
            e.erasure_id,
            e.org,
            if counts.is_empty() {
                "nothing was stored".to_owned()
            } else {
                counts.join(", ")
            }
        );
        for s in privacy::sink_states(&mut conn, e.erasure_id).await? {
            println!("  sink {:<16} {}", s.sink, s.state);
        }
    }
    if erased.iter().any(|e| !e.deliveries.is_empty()) || !routes.is_empty() {
        println!(
            "a running `driftbridge serve` erases from the sinks; `driftbridge gdpr log` shows each one's state"
        );
    }
    if !truncated {
        println!(
            "note: the SQLite WAL could not be truncated now (another process reads the database); the next checkpoint removes the old pages"
        );
    }
    Ok(())
}

/// `gdpr log [--limit N] [--json]`.
pub async fn log(config: &Config, limit: i64, as_json: bool) -> Result<()> {
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let all = privacy::erasures(&mut conn, limit).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("no erasures");
    }
    for e in all {
        let counts: Vec<String> = e.summary.iter().map(|(t, n)| format!("{t} {n}")).collect();
        println!(
            "erasure {} org {} ({}) requested {} erased {} subject {}…",
            e.id,
            e.org_id,
            e.source,
            iso(e.requested_at),
            iso(e.erased_at),
            &e.subject[..12.min(e.subject.len())]
        );
        println!(
            "  store: {}",
            if counts.is_empty() {
                "nothing stored".into()
            } else {
                counts.join(", ")
            }
        );
        for s in e.sinks {
            let err = s.last_error.map(|m| format!(" ({m})")).unwrap_or_default();
            println!(
                "  sink {:<16} {:<8} records {}{err}",
                s.sink, s.state, s.records
            );
        }
    }
    Ok(())
}

fn iso(ms: i64) -> String {
    drift_types::EpochMillis(ms).to_iso8601()
}

/// `gdpr export EMAIL [--org ORG] [--local-only] [--out FILE]`.
pub async fn export(
    config: &Config,
    email: &str,
    org: Option<i64>,
    local_only: bool,
    out: Option<&std::path::Path>,
) -> Result<()> {
    check_email(email)?;
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let orgs = match org {
        Some(o) => vec![o],
        None => privacy::subject_orgs(&mut conn, email).await?,
    };
    let mut held = Vec::new();
    for o in &orgs {
        held.push(json!({"org_id": o, "rows": privacy::held_about(&mut conn, *o, email).await?}));
    }
    drop(conn);
    let drift = if local_only {
        Value::Null
    } else {
        let (o, client) =
            drift_client(config, org.or(orgs.first().copied()), "gdpr export").await?;
        let v = client.gdpr_retrieve(email).await.with_context(|| {
            format!("while asking Drift (org {o}) for what it holds; pass --local-only to skip")
        })?;
        json!({"org_id": o.0, "retrieved": v})
    };
    let doc = json!({
        "email": privacy::normalize_email(email),
        "generated_at": iso(drift_types::now_ms()),
        "driftbridge": held,
        "drift": drift,
    });
    let text = serde_json::to_string_pretty(&doc)?;
    match out {
        Some(path) => {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("while writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// Runs one directory's purge on a blocking thread.
async fn on_dir<T: Send + 'static>(
    dir: &std::path::Path,
    tombstones: &privacy::Tombstones,
    what: &str,
    purge: fn(&std::path::Path, &privacy::Tombstones) -> bridge_export::Result<T>,
) -> Result<T> {
    let (d, t) = (dir.to_owned(), tombstones.clone());
    tokio::task::spawn_blocking(move || purge(&d, &t))
        .await
        .context("the purge task failed")?
        .with_context(|| format!("while purging {what}{}", dir.display()))
}

/// `gdpr purge --dir jsonl:DIR|csv:DIR|parquet:DIR ... --attachments DIR ...`: removes every
/// erased person (by the configured database's tombstones) from export directories and
/// their conversations' saved attachment files.
pub async fn purge(
    config: &Config,
    dirs: &[String],
    attachments: &[std::path::PathBuf],
) -> Result<()> {
    if dirs.is_empty() && attachments.is_empty() {
        bail!("nothing to purge: give --dir jsonl:DIR|csv:DIR|parquet:DIR or --attachments DIR");
    }
    let mut targets = Vec::new();
    for d in dirs {
        match d.parse::<bridge_export::Target>()? {
            bridge_export::Target::Files { dir, .. } => targets.push(dir),
            bridge_export::Target::Sql(_) => bail!(
                "--dir {d}: a database destination is erased by `gdpr delete` (run it with \
                 --database-url pointing there); purge takes jsonl:DIR, csv:DIR or parquet:DIR"
            ),
        }
    }
    let queue = crate::serve::open_existing_queue(config).await?;
    let mut conn = queue.store().acquire().await?;
    let tombstones = privacy::Tombstones::load(&mut conn, &[]).await?;
    drop(conn);
    if tombstones.is_empty() {
        println!("no erasure is recorded in the configured database: nothing to purge");
        return Ok(());
    }
    for dir in targets {
        let p = on_dir(&dir, &tombstones, "", bridge_export::purge).await?;
        println!(
            "{}: {} rows removed, {} of {} part files written again",
            dir.display(),
            p.rows_removed,
            p.files_rewritten,
            p.files_read
        );
    }
    for dir in attachments {
        let n = on_dir(
            dir,
            &tombstones,
            "attachments in ",
            bridge_export::purge_attachments,
        )
        .await?;
        println!("{}: {n} attachment files removed", dir.display());
    }
    Ok(())
}
