//! `--attachments DIR`: the bytes of each message attachment a page brought, saved as
//! `DIR/ORG/CONVERSATION/DOCUMENT-FILE_NAME` beside the `attachments` table's metadata rows.
//! A conversation's files share its directory, so `gdpr purge --attachments DIR` removes an
//! erased person's by the conversation ids their erasure recorded ([`crate::purge`]).
//!
//! A file is written under a temporary name, synced and renamed, so a file that exists is
//! whole; one that exists already is not fetched again (a resumed or repeated export).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{Context, Result};
use bridge_store::tables::{Batch, table};

use drift_client::DriftClient;
use drift_types::OrgId;

use super::progress::Progress;

/// Saves the attachments of the batch's messages that are not saved yet, as many at a time
/// as the export fetches conversations.
pub(crate) async fn save(
    client: &DriftClient,
    org: OrgId,
    progress: &Progress,
    concurrency: usize,
    dir: &Path,
    b: &Batch,
) -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    let Some(t) = table("attachments") else {
        return Ok(());
    };
    let (doc, name, conv) = (
        t.index("document_id"),
        t.index("file_name"),
        t.index("conversation_id"),
    );
    let wanted: Vec<(i64, PathBuf)> = b
        .rows(t)
        .iter()
        .filter_map(|row| {
            let id = doc.and_then(|i| row[i].as_i64())?;
            let file_name = name.and_then(|i| row[i].as_str()).unwrap_or_default();
            let conversation = conv.and_then(|i| row[i].as_i64()).unwrap_or_default();
            Some((id, path_for(dir, org.0, conversation, id, file_name)))
        })
        .collect();
    futures::stream::iter(wanted)
        .map(|(id, path)| save_one(client, progress, id, path))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

async fn save_one(client: &DriftClient, progress: &Progress, id: i64, path: PathBuf) -> Result<()> {
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(());
    }
    let bytes = match client.attachment_data(id).await {
        Ok(b) => b,
        // Deleted since the message was read: its metadata row says what it was.
        Err(e) if e.is_not_found() => {
            tracing::warn!(attachment.id = id, "attachment gone from Drift; not saved");
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("while fetching attachment {id}")),
    };
    write_atomically(&path, bytes)
        .await
        .with_context(|| format!("while saving attachment {id} to {}", path.display()))?;
    progress.attachments_saved.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// `DIR/ORG/CONVERSATION/DOCUMENT-NAME`, the name reduced to letters, digits, `.`, `-` and `_` (at most
/// 100 of them), so nothing Drift sends can leave the directory.
fn path_for(dir: &Path, org: i64, conversation: i64, id: i64, file_name: &str) -> PathBuf {
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
    dir.join(org.to_string())
        .join(conversation.to_string())
        .join(name)
}

/// The name a file is written under before it is renamed into place: the whole name plus
/// `.partial`, so it is never the file's own name. (Replacing the extension instead made a
/// file named `x.part` its own temporary: a run killed while writing it left a cut file that
/// the next run took as saved.)
fn temp_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

async fn write_atomically(path: &Path, bytes: Vec<u8>) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = temp_for(&path);
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
    fn a_file_is_never_written_under_its_own_name() {
        for name in ["notes.part", "notes.partial", "notes", "a.b.c"] {
            let path = path_for(Path::new("/x"), 7, 9, 42, name);
            let tmp = temp_for(&path);
            assert_ne!(tmp, path, "{name}");
            assert_eq!(
                tmp.parent(),
                path.parent(),
                "{name}: renamed within its directory"
            );
        }
    }

    #[test]
    fn a_hostile_file_name_stays_inside_the_directory() {
        let dir = Path::new("/x");
        assert_eq!(
            path_for(dir, 7, 9, 42, "../../etc/passwd"),
            Path::new("/x/7/9/42-_.._etc_passwd")
        );
        assert_eq!(path_for(dir, 7, 9, 42, "..."), Path::new("/x/7/9/42"));
        assert_eq!(
            path_for(dir, 7, 9, 42, "report (final).pdf"),
            Path::new("/x/7/9/42-report__final_.pdf")
        );
    }
}
