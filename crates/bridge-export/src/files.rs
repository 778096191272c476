//! File destinations: `DIR/TABLE/part-NNNNNN.EXT` plus `DIR/_manifest.json`.
//!
//! A run writes one part per table. Each page's rows are appended to the table's staging file
//! (`staging.rs`) and synced; then the manifest is replaced (written to a temporary name,
//! synced, renamed) with the page's checkpoints and each staging file's new committed length.
//! The manifest is the one source of truth:
//! - a run killed after a page's rows were synced but before the manifest named them leaves
//!   bytes past the committed length, which are cut off when the directory is opened again;
//! - the open parts of a killed run are completed then, so the resumed run starts after the
//!   last committed page with every earlier row in a listed part;
//! - a file that no manifest names (a crashed completion's leftover) is removed.
//!
//! The end of a run (`flush`) or a part reaching [`PART_ROWS`] rows completes the open parts:
//! JSONL and CSV staging files are renamed into place, Parquet is written from the staged
//! Arrow stream; the manifest then lists them among `parts`, which is what readers follow.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bridge_store::tables::{Batch, Row, TABLES, Table, table};
use drift_types::OrgId;
use serde::{Deserialize, Serialize};

use crate::dir_lock::DirLock;
use crate::error::{Error, Result};
use crate::part;
pub use crate::part::FileFormat;
pub(crate) use crate::part::{io, read_part};
use crate::staging::{self, Staging, staging_name};

const MANIFEST: &str = "_manifest.json";

/// Rows one part holds at most: a longer run completes the part and begins another. The
/// Parquet writer keeps each row group's metadata until it writes the part's footer, so this
/// also bounds that memory (parts of 1,000,000 rows took 1.6 MiB more at 50,000
/// conversations, docs/BENCHMARKS.md).
pub(crate) const PART_ROWS: u64 = 250_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    format: Option<FileFormat>,
    next_part: u64,
    /// Completed part files per table, relative to the directory: what readers follow.
    parts: BTreeMap<String, Vec<String>>,
    /// Checkpoints by `ORG/STREAM`.
    checkpoints: BTreeMap<String, serde_json::Value>,
    /// The part each table is writing now, by table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    open: BTreeMap<String, OpenPart>,
}

/// A part being written: its staging file holds `bytes` committed bytes with `rows` rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenPart {
    /// The part's path once complete, relative to the directory.
    rel: String,
    bytes: u64,
    rows: u64,
}

#[derive(Debug, Default)]
struct Inner {
    manifest: Manifest,
    /// The staging files this process has open, by table.
    writers: HashMap<String, Staging>,
}

#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
    format: FileFormat,
    org: OrgId,
    inner: Mutex<Inner>,
    /// This run's hold on the directory, taken before anything in it is read.
    _lock: DirLock,
}

impl Files {
    pub(crate) fn open(format: FileFormat, dir: &Path, org: OrgId) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let lock = DirLock::take(dir)?;
        let path = dir.join(MANIFEST);
        let manifest: Manifest = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        if let Some(f) = manifest.format
            && f != format
        {
            return Err(Error::Corrupt {
                path,
                message: format!("it holds a {} export, not {}", f.name(), format.name()),
            });
        }
        let files = Files {
            dir: dir.to_owned(),
            format,
            org,
            inner: Mutex::new(Inner {
                manifest,
                ..Inner::default()
            }),
            _lock: lock,
        };
        {
            let mut inner = files.inner.lock();
            if !inner.manifest.open.is_empty() {
                // A killed run's parts: cut back to what the manifest committed, then complete.
                let open = inner.manifest.open.clone();
                for (name, o) in &open {
                    let staging = files.dir.join(staging_name(&o.rel));
                    if staging.exists() {
                        staging::truncate(&staging, o.bytes)?;
                    } else if !files.dir.join(&o.rel).exists() {
                        return Err(Error::Corrupt {
                            path: staging,
                            message: format!("the open part of {name} is missing"),
                        });
                    }
                }
                files.complete_open(&mut inner)?;
            }
            files.remove_orphans(&inner.manifest)?;
        }
        Ok(files)
    }

    /// Ends this handle as a killed process would: nothing is flushed or completed, and the
    /// directory is free again (the system drops a dead process's lock).
    #[cfg(test)]
    pub(crate) fn killed(self) {
        let Files { inner, _lock, .. } = self;
        std::mem::forget(inner);
        drop(_lock);
    }

    /// Deletes files in the table directories that the manifest does not name (a run killed
    /// while completing its parts).
    fn remove_orphans(&self, m: &Manifest) -> Result<()> {
        for t in TABLES.iter() {
            let tdir = self.dir.join(t.name);
            let Ok(entries) = fs::read_dir(&tdir) else {
                continue;
            };
            let mut listed: HashSet<String> =
                m.parts.get(t.name).into_iter().flatten().cloned().collect();
            if let Some(o) = m.open.get(t.name) {
                listed.insert(staging_name(&o.rel));
            }
            for e in entries.flatten() {
                let rel = format!("{}/{}", t.name, e.file_name().to_string_lossy());
                if !listed.contains(&rel) {
                    tracing::info!(file = %e.path().display(), "removing an uncommitted part");
                    fs::remove_file(e.path()).map_err(io("removing", &e.path()))?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn checkpoint(&self, stream: &str) -> Option<serde_json::Value> {
        self.inner
            .lock()
            .manifest
            .checkpoints
            .get(&format!("{}/{stream}", self.org))
            .filter(|v| !v.is_null())
            .cloned()
    }

    /// Appends the batch to the tables' open parts and commits it with the checkpoints;
    /// answers the rows written.
    pub(crate) fn commit(
        &self,
        batch: &Batch,
        states: Vec<(String, serde_json::Value)>,
    ) -> Result<u64> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let mut written = 0;
        let mut full = false;
        for (t, rows) in batch.tables() {
            let staging = self.staging_of(inner, t)?;
            let w = inner.writers.get_mut(t.name).expect("opened above");
            w.append(t, rows, &staging)?;
            let len = w.sync(&staging)?;
            let o = inner.manifest.open.get_mut(t.name).expect("opened above");
            o.bytes = len;
            o.rows += rows.len() as u64;
            full |= o.rows >= PART_ROWS;
            written += rows.len() as u64;
        }
        for (stream, state) in states {
            inner
                .manifest
                .checkpoints
                .insert(format!("{}/{stream}", self.org), state);
        }
        inner.manifest.format = Some(self.format);
        self.save(&inner.manifest)?;
        if full {
            self.complete_open(inner)?;
        }
        Ok(written)
    }

    /// The staging file of `t`'s open part, begun (and recorded) when there is none.
    fn staging_of(&self, inner: &mut Inner, t: &'static Table) -> Result<PathBuf> {
        if let Some(o) = inner.manifest.open.get(t.name)
            && inner.writers.contains_key(t.name)
        {
            return Ok(self.dir.join(staging_name(&o.rel)));
        }
        let m = &mut inner.manifest;
        m.next_part += 1;
        let rel = format!("{}/part-{:06}.{}", t.name, m.next_part, self.format.name());
        let path = self.dir.join(staging_name(&rel));
        fs::create_dir_all(self.dir.join(t.name)).map_err(io("creating", &path))?;
        let (w, bytes) = Staging::create(self.format, t, &path)?;
        inner.writers.insert(t.name.to_owned(), w);
        m.open.insert(
            t.name.to_owned(),
            OpenPart {
                rel,
                bytes,
                rows: 0,
            },
        );
        Ok(path)
    }

    /// Completes every open part and lists it (the end of a run).
    pub(crate) fn flush(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        if inner.manifest.open.is_empty() {
            return Ok(());
        }
        self.complete_open(&mut inner)
    }

    fn complete_open(&self, inner: &mut Inner) -> Result<()> {
        inner.writers.clear();
        let open = std::mem::take(&mut inner.manifest.open);
        let mut leftovers = Vec::new();
        for (name, o) in open {
            let staging = self.dir.join(staging_name(&o.rel));
            let done = self.dir.join(&o.rel);
            if staging.exists() {
                let t = table(&name).ok_or_else(|| Error::Corrupt {
                    path: staging.clone(),
                    message: format!("no table {name}"),
                })?;
                staging::complete(self.format, t, &staging, &done)?;
                if staging.exists() {
                    leftovers.push(staging);
                }
            }
            let m = &mut inner.manifest;
            m.parts.entry(name).or_default().push(o.rel);
        }
        self.save(&inner.manifest)?;
        for path in leftovers {
            fs::remove_file(&path).map_err(io("removing", &path))?;
        }
        Ok(())
    }

    fn save(&self, m: &Manifest) -> Result<()> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        let bytes = serde_json::to_vec_pretty(m).map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(&bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
        // The rename is durable once the directory entry is.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing", &self.dir))?;
        Ok(())
    }

    /// Forgets every row and checkpoint, open parts included.
    pub(crate) fn reset(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        inner.writers.clear();
        inner.manifest = Manifest::default();
        self.save(&inner.manifest)?;
        self.remove_orphans(&inner.manifest)
    }

    /// The ids (second column) of every committed row of `table`: its completed parts and
    /// the committed pages of its open part, read back from disk rather than kept in memory
    /// (a run's ids grew with the dataset), the id column alone (whole rows took the table's
    /// size in memory). The lock is held, so no page is half-read.
    pub(crate) fn stored_ids(&self, table: &Table) -> Result<HashSet<i64>> {
        let inner = self.inner.lock();
        let mut out = HashSet::new();
        for rel in inner.manifest.parts.get(table.name).into_iter().flatten() {
            part::each_int(self.format, table, 1, &self.dir.join(rel), |id| {
                out.insert(id);
            })?;
        }
        if let Some(o) = inner.manifest.open.get(table.name) {
            let staged = self.dir.join(staging_name(&o.rel));
            staging::each_int(self.format, table, 1, &staged, |id| {
                out.insert(id);
            })?;
        }
        Ok(out)
    }
}

/// The format of a file destination and its committed part files by table, as its manifest
/// lists them.
pub(crate) fn committed_parts(dir: &Path) -> Result<(FileFormat, BTreeMap<String, Vec<String>>)> {
    let path = dir.join(MANIFEST);
    let m: Manifest = serde_json::from_slice(&fs::read(&path).map_err(io("reading", &path))?)
        .map_err(|e| Error::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let format = m.format.ok_or_else(|| Error::Corrupt {
        path,
        message: "no format recorded".into(),
    })?;
    Ok((format, m.parts))
}

/// Every committed row of `table` in a file destination, in commit order: what a reader
/// following the manifest sees.
pub fn read_table(dir: &Path, table: &Table) -> Result<Vec<Row>> {
    let (format, parts) = committed_parts(dir)?;
    let mut out = Vec::new();
    for rel in parts.get(table.name).into_iter().flatten() {
        out.extend(read_part(format, table, &dir.join(rel))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge_store::tables::{Value, table};

    fn batch() -> Batch {
        let mut b = Batch::new();
        let t = table("conversation_tags").unwrap();
        b.push(
            t,
            vec![1.into(), 2.into(), "a,\"quoted\"\nline".into(), Value::Null],
        );
        b.push(t, vec![1.into(), 3.into(), "b".into(), "ff0000".into()]);
        b
    }

    fn page(t: &'static Table, rows: &[Row]) -> Batch {
        let mut page = Batch::new();
        for r in rows {
            page.push(t, r.clone());
        }
        page
    }

    /// An empty directory of `format`, the test batch and its `conversation_tags` table.
    fn fresh(format: FileFormat) -> (tempfile::TempDir, Batch, &'static Table, Files) {
        let dir = tempfile::tempdir().unwrap();
        let f = Files::open(format, dir.path(), OrgId(1)).unwrap();
        (dir, batch(), table("conversation_tags").unwrap(), f)
    }

    fn state(next: &str) -> Vec<(String, serde_json::Value)> {
        vec![("conversations".into(), serde_json::json!({"next": next}))]
    }

    #[test]
    fn every_format_reads_back_what_it_wrote_in_one_part_per_run() {
        for format in [FileFormat::Jsonl, FileFormat::Csv, FileFormat::Parquet] {
            let (dir, b, t, f) = fresh(format);
            let (first, second) = b.rows(t).split_at(1);
            f.commit(&page(t, first), state("x0")).unwrap();
            f.commit(&page(t, second), state("x")).unwrap();
            assert_eq!(
                f.checkpoint("conversations"),
                Some(serde_json::json!({"next": "x"}))
            );
            // Mid-run, from the open part's committed pages on disk.
            assert_eq!(
                f.stored_ids(t).unwrap(),
                HashSet::from([2, 3]),
                "{format:?}"
            );
            f.flush().unwrap();
            let files = || {
                fs::read_dir(dir.path().join("conversation_tags"))
                    .unwrap()
                    .count()
            };
            assert_eq!(files(), 1, "{format:?}: one part for the run");
            // a part written by a commit that never reached its manifest
            fs::write(
                dir.path().join("conversation_tags/part-000009.jsonl"),
                "junk",
            )
            .unwrap();
            drop(f);
            let f = Files::open(format, dir.path(), OrgId(1)).unwrap();
            assert!(
                !dir.path()
                    .join("conversation_tags/part-000009.jsonl")
                    .exists()
            );
            assert_eq!(
                f.checkpoint("conversations"),
                Some(serde_json::json!({"next": "x"}))
            );
            let rows = read_table(dir.path(), t).unwrap();
            assert_eq!(rows, b.rows(t).to_vec(), "{format:?}");
            assert_eq!(f.stored_ids(t).unwrap(), HashSet::from([2, 3]));
            let other = if format == FileFormat::Csv {
                FileFormat::Jsonl
            } else {
                FileFormat::Csv
            };
            drop(f);
            let e = Files::open(other, dir.path(), OrgId(1)).unwrap_err();
            assert!(e.to_string().contains("export, not"), "{e}");
        }
    }

    #[test]
    fn a_run_killed_mid_page_resumes_with_exactly_the_committed_pages() {
        for format in [FileFormat::Jsonl, FileFormat::Csv, FileFormat::Parquet] {
            let (dir, b, t, f) = fresh(format);
            let (first, second) = b.rows(t).split_at(1);
            f.commit(&page(t, first), state("x0")).unwrap();
            // The next page's rows reach the staging file but the process dies before the
            // manifest records them: simulated by appending them behind the manifest's back.
            let staging = {
                let inner = f.inner.lock();
                dir.path()
                    .join(staging_name(&inner.manifest.open["conversation_tags"].rel))
            };
            let committed = fs::metadata(&staging).unwrap().len();
            {
                let mut inner = f.inner.lock();
                let w = inner.writers.get_mut("conversation_tags").unwrap();
                w.append(t, second, &staging).unwrap();
                w.sync(&staging).unwrap();
            }
            assert!(fs::metadata(&staging).unwrap().len() > committed);
            f.killed();
            let f = Files::open(format, dir.path(), OrgId(1)).unwrap();
            assert_eq!(
                f.checkpoint("conversations"),
                Some(serde_json::json!({"next": "x0"})),
                "{format:?}"
            );
            assert!(!staging.exists(), "{format:?}: completed on open");
            assert_eq!(
                read_table(dir.path(), t).unwrap(),
                first.to_vec(),
                "{format:?}"
            );
            // The resumed run writes the page again, into a part of its own.
            f.commit(&page(t, second), state("x")).unwrap();
            f.flush().unwrap();
            assert_eq!(
                read_table(dir.path(), t).unwrap(),
                b.rows(t).to_vec(),
                "{format:?}"
            );
        }
    }
}
