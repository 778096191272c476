//! `driftbridge gdpr purge`: removes erased people from a file destination. Files cannot be
//! updated in place, so every committed part holding a row of an erased person is written
//! again without it, to a temporary name, synced, and renamed over the old one; the other
//! rows are written back with the same values (the same writer wrote them), parts without
//! such a row are not touched, and the manifest does not change.

use std::fs::{self, File};
use std::path::Path;

use bridge_store::privacy::{Scrubber, Tombstones};

use crate::error::Result;
use crate::files::{committed_parts, io, read_part, write_part};

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
    let (format, parts) = committed_parts(dir)?;
    let mut out = Purged::default();
    let mut scrubber = Scrubber::new(tombstones);
    for t in Scrubber::order() {
        for rel in parts.get(t.name).into_iter().flatten() {
            let path = dir.join(rel);
            let rows = read_part(format, t, &path)?;
            out.files_read += 1;
            let before = rows.len();
            let kept: Vec<_> = rows.into_iter().filter(|r| scrubber.keep(t, r)).collect();
            if kept.len() == before {
                continue;
            }
            let tmp = path.with_extension("purge.tmp");
            write_part(format, t, &kept, &tmp)?;
            fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
            out.files_rewritten += 1;
            out.rows_removed += before - kept.len();
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
