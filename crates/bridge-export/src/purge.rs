//! `driftbridge gdpr purge`: removes erased people from a file destination. Files cannot be
//! updated in place, so every committed part holding a row of an erased person is written
//! again without it, to a temporary name, synced, and renamed over the old one; the other
//! rows are written back with the same values (the same writer wrote them), parts without
//! such a row are not touched, and the manifest does not change (except that the open parts
//! of an interrupted export are completed and listed first).
//!
//! A part is read as a stream, twice when it holds such a row: once to find which rows go,
//! once to copy the rest (JSONL lines and CSV records as they are, Parquet rows through its
//! writer [`BATCH`] at a time). A part holds up to 250,000 rows, and reading one whole took
//! hundreds of megabytes for a part of messages (docs/BENCHMARKS.md).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bridge_store::privacy::{Scrubber, Tombstones};
use bridge_store::tables::Table;

use crate::error::{Error, Result};
use crate::files::{committed_parts, io};
use crate::part::{FileFormat, PartWriter, WRITE_BUFFER, each_row};

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
    // The handle also holds the directory until the purge ends, so no export writes it
    // meanwhile.
    let _held = crate::files::Files::open(format, dir, drift_types::OrgId(0))?;
    let (format, parts) = committed_parts(dir)?;
    let mut out = Purged::default();
    let mut scrubber = Scrubber::new(tombstones);
    for t in Scrubber::order() {
        for rel in parts.get(t.name).into_iter().flatten() {
            let path = dir.join(rel);
            out.files_read += 1;
            let (mut n, mut dropped) = (0_u64, Vec::new());
            each_row(format, t, &path, |r| {
                if !scrubber.keep(t, &r) {
                    dropped.push(n);
                }
                n += 1;
                Ok(())
            })?;
            if dropped.is_empty() {
                continue;
            }
            let tmp = path.with_extension("purge.tmp");
            copy_without(format, t, &path, &tmp, &dropped)?;
            out.rows_removed += dropped.len();
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

/// Writes the part at `path` again at `tmp`, synced, without the rows numbered in `dropped`
/// (from 0, ascending).
fn copy_without(
    format: FileFormat,
    t: &'static Table,
    path: &Path,
    tmp: &Path,
    dropped: &[u64],
) -> Result<()> {
    let mut dropped = dropped.iter().copied().peekable();
    let mut n = 0;
    let mut stays = move || {
        let gone = dropped.next_if_eq(&n).is_some();
        n += 1;
        !gone
    };
    let corrupt = |e: csv::Error| Error::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let create = || -> Result<BufWriter<File>> {
        let f = File::create(tmp).map_err(io("creating", tmp))?;
        Ok(BufWriter::with_capacity(WRITE_BUFFER, f))
    };
    let written = |w: BufWriter<File>| -> Result<()> {
        let f = w
            .into_inner()
            .map_err(|e| io("writing", tmp)(e.into_error()))?;
        f.sync_all().map_err(io("syncing", tmp))
    };
    match format {
        // The lines that stay, byte for byte.
        FileFormat::Jsonl => {
            let mut r = BufReader::new(File::open(path).map_err(io("opening", path))?);
            let mut w = create()?;
            let mut line = Vec::new();
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line)
                    .map_err(io("reading", path))?
                    == 0
                {
                    break;
                }
                if stays() {
                    w.write_all(&line).map_err(io("writing", tmp))?;
                }
            }
            written(w)
        }
        // The header and the records that stay, quoted as the part's writer quoted them.
        FileFormat::Csv => {
            let mut r = csv::Reader::from_path(path).map_err(corrupt)?;
            let mut w = csv::Writer::from_writer(create()?);
            let header = r.byte_headers().map_err(corrupt)?.clone();
            let failed = |e: csv::Error| io("writing", tmp)(e.into());
            w.write_byte_record(&header).map_err(failed)?;
            let mut rec = csv::ByteRecord::new();
            while r.read_byte_record(&mut rec).map_err(corrupt)? {
                if stays() {
                    w.write_byte_record(&rec).map_err(failed)?;
                }
            }
            written(
                w.into_inner()
                    .map_err(|e| io("writing", tmp)(e.into_error()))?,
            )
        }
        FileFormat::Parquet => {
            let mut w = PartWriter::create(format, t, tmp)?;
            let mut kept = Vec::with_capacity(BATCH);
            each_row(format, t, path, |r| {
                if stays() {
                    kept.push(r);
                    if kept.len() == BATCH {
                        w.write(t, &kept, tmp)?;
                        kept.clear();
                    }
                }
                Ok(())
            })?;
            w.write(t, &kept, tmp)?;
            w.finish(tmp)
        }
    }
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
        f.killed();
        let purged = purge(dir.path(), &Tombstones::default()).unwrap();
        assert_eq!(purged.files_read, 1, "the open part was completed and read");
        assert_eq!(
            crate::read_table(dir.path(), t).unwrap(),
            b.rows(t).to_vec()
        );
    }
}
