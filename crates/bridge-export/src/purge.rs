//! `driftbridge gdpr purge`: removes erased people from a file destination. Files cannot be
//! updated in place, so every committed part holding a row of an erased person is written
//! again without it, to a temporary name, synced, and renamed over the old one; the other
//! rows are written back with the same values (the same writer wrote them), parts without
//! such a row are not touched, and the manifest does not change (except that the open parts
//! of an interrupted export are completed and listed first).
//!
//! A part is read as a stream, twice when it holds such a row: once to find out, once to write
//! the rows that stay, [`BATCH`] at a time. A part holds up to 250,000 rows, and reading one
//! whole took hundreds of megabytes for a part of messages (docs/BENCHMARKS.md).

use std::fs::{self, File};
use std::path::Path;

use bridge_store::privacy::{Scrubber, Tombstones};

use crate::error::Result;
use crate::files::{committed_parts, io};
use crate::part::{PartWriter, each_row};

/// Rows that stay, handed to the part's writer at once.
const BATCH: usize = 1024;

/// What a purge changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    /// Part files read.
    pub files_read: usize,
    /// Part files written again.
    pub files_rewritten: usize,
    /// Rows removed.
    pub rows_removed: usize,
}

/// Removes every row of an erased person (by `tombstones`) from the file destination `dir`.
pub fn purge(dir: &Path, tombstones: &Tombstones) -> Result<Purged> {
    let (format, _) = committed_parts(dir)?;
    // An interrupted export's staging files hold committed rows too: opening the directory
    // completes them into listed parts first.
    drop(crate::files::Files::open(
        format,
        dir,
        drift_types::OrgId(0),
    )?);
    let (format, parts) = committed_parts(dir)?;
    let mut out = Purged::default();
    let mut scrubber = Scrubber::new(tombstones);
    for t in Scrubber::order() {
        for rel in parts.get(t.name).into_iter().flatten() {
            let path = dir.join(rel);
            out.files_read += 1;
            // The scrubber only adds to whom it drops (a contact, then their conversations
            // and messages), so the second pass drops at least what the first found.
            let mut drops = false;
            each_row(format, t, &path, |r| {
                drops |= !scrubber.keep(t, &r);
                Ok(())
            })?;
            if !drops {
                continue;
            }
            let tmp = path.with_extension("purge.tmp");
            let mut w = PartWriter::create(format, t, &tmp)?;
            let mut kept = Vec::with_capacity(BATCH);
            each_row(format, t, &path, |r| {
                if scrubber.keep(t, &r) {
                    kept.push(r);
                    if kept.len() == BATCH {
                        w.write(t, &kept, &tmp)?;
                        kept.clear();
                    }
                } else {
                    out.rows_removed += 1;
                }
                Ok(())
            })?;
            w.write(t, &kept, &tmp)?;
            w.finish(&tmp)?;
            fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
            out.files_rewritten += 1;
        }
    }
    // The renames are durable once the directory entries are.
    for t in Scrubber::order() {
        let d = dir.join(t.name);
        if d.is_dir() {
            File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(io("syncing", &d))?;
        }
    }
    Ok(out)
}

/// Removes the saved attachment files (`export --attachments DIR`) of every conversation an
/// erasure recorded: `DIR/ORG/CONVERSATION/` goes whole. Answers how many files went.
pub fn purge_attachments(dir: &Path, tombstones: &Tombstones) -> Result<usize> {
    let numbered = |d: &Path| -> Result<Vec<(i64, std::path::PathBuf)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(d).map_err(io("reading", d))? {
            let e = e.map_err(io("reading", d))?;
            if let Ok(n) = e.file_name().to_string_lossy().parse::<i64>()
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                out.push((n, e.path()));
            }
        }
        Ok(out)
    };
    let mut removed = 0;
    for (org, org_dir) in numbered(dir)? {
        let mut changed = false;
        for (conversation, conv_dir) in numbered(&org_dir)? {
            if tombstones.conversation(org, conversation) {
                removed += fs::read_dir(&conv_dir)
                    .map_err(io("reading", &conv_dir))?
                    .count();
                fs::remove_dir_all(&conv_dir).map_err(io("removing", &conv_dir))?;
                changed = true;
            }
        }
        if changed {
            File::open(&org_dir)
                .and_then(|f| f.sync_all())
                .map_err(io("syncing", &org_dir))?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge_store::tables::{Batch, table};
    use drift_types::OrgId;

    #[test]
    fn a_purge_reads_the_committed_pages_of_an_interrupted_export_too() {
        let dir = tempfile::tempdir().unwrap();
        let t = table("conversation_tags").unwrap();
        let mut b = Batch::new();
        b.push(t, vec![1.into(), 2.into(), "a".into(), "ff0000".into()]);
        let f = crate::files::Files::open(crate::FileFormat::Jsonl, dir.path(), OrgId(1)).unwrap();
        f.commit(
            &b,
            vec![("conversations".into(), serde_json::json!({"next": "x"}))],
        )
        .unwrap();
        // Killed before the end of the run: the page is committed but its part is still open.
        std::mem::forget(f);
        let purged = purge(dir.path(), &Tombstones::default()).unwrap();
        assert_eq!(purged.files_read, 1, "the open part was completed and read");
        assert_eq!(
            crate::read_table(dir.path(), t).unwrap(),
            b.rows(t).to_vec()
        );
    }
}
