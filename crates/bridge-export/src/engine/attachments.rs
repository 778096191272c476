//! `--attachments DIR`: the bytes of each message attachment a page brought, saved as
//! `DIR/ORG/DOCUMENT-FILE_NAME` beside the `attachments` table's metadata rows.
//!
//! A file is written under a temporary name, synced and renamed, so a file that exists is
//! whole; one that exists already is not fetched again (a resumed or repeated export).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use bridge_store::tables::{Batch, table};

use super::context::Ctx;
use super::output::ExportDestination;

/// Saves the attachments of the batch's messages that are not saved yet.
pub(crate) async fn save<S: ExportDestination>(ctx: &Ctx<S>, dir: &Path, b: &Batch) -> Result<()> {
    let Some(t) = table("attachments") else {
        return Ok(());
    };
    let (doc, name) = (t.index("document_id"), t.index("file_name"));
    for row in b.rows(t) {
        let Some(id) = doc.and_then(|i| row[i].as_i64()) else {
            continue;
        };
        let file_name = name.and_then(|i| row[i].as_str()).unwrap_or_default();
        let path = path_for(dir, ctx.org.0, id, file_name);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        let bytes = match ctx.client.attachment_data(id).await {
            Ok(b) => b,
            // Deleted since the message was read: its metadata row says what it was.
            Err(e) if e.is_not_found() => {
                tracing::warn!(attachment.id = id, "attachment gone from Drift; not saved");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("while fetching attachment {id}")),
        };
        write_atomically(&path, bytes)
            .await
            .with_context(|| format!("while saving attachment {id} to {}", path.display()))?;
        ctx.progress
            .attachments_saved
            .fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// `DIR/ORG/DOCUMENT-NAME`, the name reduced to letters, digits, `.`, `-` and `_` (at most
/// 100 of them), so nothing Drift sends can leave the directory.
fn path_for(dir: &Path, org: i64, id: i64, file_name: &str) -> PathBuf {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let safe = safe.trim_start_matches('.');
    let name = if safe.is_empty() {
        id.to_string()
    } else {
        format!("{id}-{safe}")
    };
    dir.join(org.to_string()).join(name)
}

async fn write_atomically(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("part");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_file_name_stays_inside_the_directory() {
        let dir = Path::new("/x");
        assert_eq!(
            path_for(dir, 7, 42, "../../etc/passwd"),
            Path::new("/x/7/42-_.._etc_passwd")
        );
        assert_eq!(path_for(dir, 7, 42, "..."), Path::new("/x/7/42"));
        assert_eq!(
            path_for(dir, 7, 42, "report (final).pdf"),
            Path::new("/x/7/42-report__final_.pdf")
        );
    }
}
