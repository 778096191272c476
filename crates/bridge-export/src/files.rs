//! File destinations: `DIR/TABLE/part-NNNNNN.EXT` plus `DIR/_manifest.json`.
//!
//! A commit writes each table's new part to a temporary name, syncs it and renames it into
//! place, then replaces the manifest the same way. The manifest lists the committed parts and
//! the checkpoints, so it is the one source of truth: a part that a killed run left behind
//! without a manifest entry is deleted when the directory is opened again, the resumed run
//! starts after the last committed page, and a reader that follows the manifest never sees a
//! row twice.
//!
//! A page's part is small, so the end of a run compacts: each table's parts are merged into
//! files of up to [`PART_ROWS`] rows, written and synced beside them; one manifest write
//! swaps them in, and only then are the small parts deleted. A kill at any point leaves the
//! old list or the new one, never a mix.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use bridge_store::tables::{Batch, Row, TABLES, Table, Value, table};
use drift_types::OrgId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::part::FileFormat;
use crate::part::PartWriter;
pub(crate) use crate::part::{io, read_part, write_part};

const MANIFEST: &str = "_manifest.json";

/// Rows a compacted part holds at most.
pub(crate) const PART_ROWS: u64 = 1_000_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    format: Option<FileFormat>,
    next_part: u64,
    /// Committed part files per table, relative to the directory.
    parts: BTreeMap<String, Vec<String>>,
    /// Checkpoints by `ORG/STREAM`.
    checkpoints: BTreeMap<String, serde_json::Value>,
    /// Rows per committed part, by its path (absent in manifests from before it was kept).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    rows: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
    format: FileFormat,
    org: OrgId,
    manifest: Mutex<Manifest>,
}

impl Files {
    pub(crate) fn open(format: FileFormat, dir: &Path, org: OrgId) -> Result<Self> {
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
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
            manifest: Mutex::new(manifest),
        };
        files.remove_orphans(&files.manifest.lock())?;
        Ok(files)
    }

    /// Deletes part files that no committed manifest lists (a run killed mid-commit or
    /// mid-compaction).
    fn remove_orphans(&self, m: &Manifest) -> Result<()> {
        for t in TABLES.iter() {
            let tdir = self.dir.join(t.name);
            let Ok(entries) = fs::read_dir(&tdir) else {
                continue;
            };
            let listed: HashSet<&str> = m
                .parts
                .get(t.name)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            for e in entries.flatten() {
                let rel = format!("{}/{}", t.name, e.file_name().to_string_lossy());
                if !listed.contains(rel.as_str()) {
                    tracing::info!(file = %e.path().display(), "removing an uncommitted part");
                    fs::remove_file(e.path()).map_err(io("removing", &e.path()))?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn checkpoint(&self, stream: &str) -> Option<serde_json::Value> {
        self.manifest
            .lock()
            .checkpoints
            .get(&format!("{}/{stream}", self.org))
            .filter(|v| !v.is_null())
            .cloned()
    }

    /// A new part's path, relative to the directory.
    fn next_rel(&self, m: &mut Manifest, t: &Table) -> Result<String> {
        m.next_part += 1;
        fs::create_dir_all(self.dir.join(t.name)).map_err(io("creating", &self.dir))?;
        Ok(format!(
            "{}/part-{:06}.{}",
            t.name,
            m.next_part,
            self.format.name()
        ))
    }

    pub(crate) fn commit(
        &self,
        batch: &Batch,
        states: Vec<(String, serde_json::Value)>,
    ) -> Result<u64> {
        let mut m = self.manifest.lock();
        let mut written = 0;
        for (t, rows) in batch.tables() {
            let rel = self.next_rel(&mut m, t)?;
            let path = self.dir.join(&rel);
            let tmp = path.with_extension("tmp");
            write_part(self.format, t, rows, &tmp)?;
            fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
            written += rows.len() as u64;
            m.rows.insert(rel.clone(), rows.len() as u64);
            m.parts.entry(t.name.to_owned()).or_default().push(rel);
        }
        for (stream, state) in states {
            m.checkpoints
                .insert(format!("{}/{stream}", self.org), state);
        }
        m.format = Some(self.format);
        self.save(&m)?;
        Ok(written)
    }

    /// Compacts every table's parts into as few files of up to [`PART_ROWS`] rows as they
    /// fill (the end of a run).
    pub(crate) fn flush(&self) -> Result<()> {
        let mut m = self.manifest.lock();
        let mut replaced = Vec::new();
        let names: Vec<String> = m.parts.keys().cloned().collect();
        for name in names {
            let Some(t) = table(&name) else { continue };
            let parts = m.parts[&name].clone();
            let mut merged: Vec<String> = Vec::new();
            let mut group: Vec<String> = Vec::new();
            let mut group_rows = 0;
            for rel in parts.into_iter().chain(std::iter::once(String::new())) {
                let rows = m.rows.get(&rel).copied().unwrap_or(0);
                let end = rel.is_empty();
                if !group.is_empty() && (end || group_rows + rows > PART_ROWS) {
                    if group.len() == 1 {
                        merged.append(&mut group);
                    } else {
                        let rel = self.next_rel(&mut m, t)?;
                        let n = self.merge(t, &group, &rel)?;
                        m.rows.insert(rel.clone(), n);
                        merged.push(rel);
                        replaced.append(&mut group);
                    }
                    group_rows = 0;
                }
                if !end {
                    group.push(rel);
                    group_rows += rows;
                }
            }
            m.parts.insert(name, merged);
        }
        if replaced.is_empty() {
            return Ok(());
        }
        for rel in &replaced {
            m.rows.remove(rel);
        }
        self.save(&m)?;
        for rel in replaced {
            let path = self.dir.join(rel);
            fs::remove_file(&path).map_err(io("removing", &path))?;
        }
        Ok(())
    }

    /// Writes the rows of `parts`, in order, into the new part `rel`; answers how many.
    fn merge(&self, t: &'static Table, parts: &[String], rel: &str) -> Result<u64> {
        let path = self.dir.join(rel);
        let tmp = path.with_extension("tmp");
        let mut w = PartWriter::create(self.format, t, &tmp)?;
        let mut n = 0;
        for p in parts {
            let rows = read_part(self.format, t, &self.dir.join(p))?;
            w.write(t, &rows, &tmp)?;
            n += rows.len() as u64;
        }
        w.finish(&tmp)?;
        fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
        Ok(n)
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

    pub(crate) fn reset(&self) -> Result<()> {
        let mut m = self.manifest.lock();
        *m = Manifest::default();
        self.save(&m)?;
        self.remove_orphans(&m)
    }

    pub(crate) fn stored_ids(&self, table: &Table) -> Result<HashSet<i64>> {
        let parts = self
            .manifest
            .lock()
            .parts
            .get(table.name)
            .cloned()
            .unwrap_or_default();
        let mut out = HashSet::new();
        for rel in parts {
            for row in read_part(self.format, table, &self.dir.join(rel))? {
                if let Some(id) = row.get(1).and_then(Value::as_i64) {
                    out.insert(id);
                }
            }
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
    use bridge_store::tables::table;

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

    #[test]
    fn every_format_reads_back_what_it_wrote_and_a_killed_commit_leaves_nothing() {
        for format in [FileFormat::Jsonl, FileFormat::Csv, FileFormat::Parquet] {
            let dir = tempfile::tempdir().unwrap();
            let b = batch();
            let t = table("conversation_tags").unwrap();
            let f = Files::open(format, dir.path(), OrgId(1)).unwrap();
            // Two pages, a part each, become one part per table at the end of the run.
            let (first, second) = b.rows(t).split_at(1);
            for (rows, next) in [(first, "x0"), (second, "x")] {
                let mut page = Batch::new();
                for r in rows {
                    page.push(t, r.clone());
                }
                f.commit(
                    &page,
                    vec![("conversations".into(), serde_json::json!({"next": next}))],
                )
                .unwrap();
            }
            assert_eq!(
                f.checkpoint("conversations"),
                Some(serde_json::json!({"next": "x"}))
            );
            let parts = || {
                fs::read_dir(dir.path().join("conversation_tags"))
                    .unwrap()
                    .count()
            };
            assert_eq!(parts(), 2, "{format:?}: a part per page");
            f.flush().unwrap();
            assert_eq!(
                fs::read_dir(dir.path().join("conversation_tags"))
                    .unwrap()
                    .count(),
                1,
                "{format:?}: one part for the run"
            );
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
            let e = Files::open(
                if format == FileFormat::Csv {
                    FileFormat::Jsonl
                } else {
                    FileFormat::Csv
                },
                dir.path(),
                OrgId(1),
            )
            .unwrap_err();
            assert!(e.to_string().contains("export, not"), "{e}");
        }
    }
}
