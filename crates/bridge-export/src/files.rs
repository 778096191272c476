//! File destinations: `DIR/TABLE/part-NNNNNN.EXT` plus `DIR/_manifest.json`.
//!
//! A commit writes each table's new part to a temporary name, syncs it and renames it into
//! place, then replaces the manifest the same way. The manifest lists the committed parts and
//! the checkpoints, so it is the one source of truth: a part that a killed run left behind
//! without a manifest entry is deleted when the directory is opened again, and a reader that
//! follows the manifest never sees a row twice.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use bridge_store::tables::{Batch, ColumnType, Row, TABLES, Table, Value};
use drift_types::OrgId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line, keys in column order, NULL as `null`.
    Jsonl,
    /// RFC 4180 CSV with a header row; NULL is an empty field.
    Csv,
    /// Parquet, one row group per part, snappy-compressed; INT64 and UTF-8 columns.
    Parquet,
}

impl FileFormat {
    /// The scheme in `--to` and the file extension.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }
}

const MANIFEST: &str = "_manifest.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    format: Option<FileFormat>,
    next_part: u64,
    /// Committed part files per table, relative to the directory.
    parts: BTreeMap<String, Vec<String>>,
    /// Checkpoints by `ORG/STREAM`.
    checkpoints: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug)]
pub(crate) struct Files {
    dir: PathBuf,
    format: FileFormat,
    org: OrgId,
    manifest: Mutex<Manifest>,
}

pub(crate) fn io<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
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
        files.remove_orphans()?;
        Ok(files)
    }

    /// Deletes part files that no committed manifest lists (a run killed mid-commit).
    fn remove_orphans(&self) -> Result<()> {
        let m = self.manifest.lock();
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

    pub(crate) fn commit(
        &self,
        batch: &Batch,
        states: Vec<(String, serde_json::Value)>,
    ) -> Result<u64> {
        let mut m = self.manifest.lock();
        let mut written = 0;
        let mut new_parts = Vec::new();
        for (t, rows) in batch.tables() {
            let n = m.next_part + new_parts.len() as u64 + 1;
            let rel = format!("{}/part-{n:06}.{}", t.name, self.format.name());
            let path = self.dir.join(&rel);
            fs::create_dir_all(self.dir.join(t.name)).map_err(io("creating", &path))?;
            let tmp = path.with_extension("tmp");
            write_part(self.format, t, rows, &tmp)?;
            fs::rename(&tmp, &path).map_err(io("renaming", &tmp))?;
            written += rows.len() as u64;
            new_parts.push((t.name, rel));
        }
        m.next_part += new_parts.len() as u64;
        for (t, rel) in new_parts {
            m.parts.entry(t.to_owned()).or_default().push(rel);
        }
        for (stream, state) in states {
            m.checkpoints
                .insert(format!("{}/{stream}", self.org), state);
        }
        m.format = Some(self.format);
        self.save(&m)?;
        Ok(written)
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
        drop(m);
        self.remove_orphans()
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

pub(crate) fn write_part(format: FileFormat, t: &Table, rows: &[Row], path: &Path) -> Result<()> {
    let file = File::create(path).map_err(io("creating", path))?;
    match format {
        FileFormat::Jsonl => {
            let mut w = BufWriter::new(file);
            for r in rows {
                let mut line = String::with_capacity(256);
                line.push('{');
                for (i, (c, v)) in t.columns.iter().zip(r).enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push('"');
                    line.push_str(c.name);
                    line.push_str("\":");
                    line.push_str(&v.to_json().to_string());
                }
                line.push_str("}\n");
                w.write_all(line.as_bytes()).map_err(io("writing", path))?;
            }
            let file = w
                .into_inner()
                .map_err(|e| io("writing", path)(e.into_error()))?;
            file.sync_all().map_err(io("syncing", path))
        }
        FileFormat::Csv => {
            let mut w = csv::Writer::from_writer(BufWriter::new(file));
            let err = |e: csv::Error| io("writing", path)(e.into());
            w.write_record(t.columns.iter().map(|c| c.name))
                .map_err(err)?;
            for r in rows {
                w.write_record(r.iter().map(|v| match v {
                    Value::Null => String::new(),
                    Value::Int(i) => i.to_string(),
                    Value::Text(s) => s.clone(),
                }))
                .map_err(err)?;
            }
            let file = w
                .into_inner()
                .map_err(|e| io("writing", path)(e.into_error()))?
                .into_inner()
                .map_err(|e| io("writing", path)(e.into_error()))?;
            file.sync_all().map_err(io("syncing", path))
        }
        FileFormat::Parquet => crate::parquet_file::write(t, rows, file, path),
    }
}

pub(crate) fn read_part(format: FileFormat, t: &Table, path: &Path) -> Result<Vec<Row>> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_owned(),
        message,
    };
    match format {
        FileFormat::Jsonl => {
            let f = File::open(path).map_err(io("opening", path))?;
            let mut out = Vec::new();
            for line in BufReader::new(f).lines() {
                let line = line.map_err(io("reading", path))?;
                let obj: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&line).map_err(|e| corrupt(e.to_string()))?;
                out.push(
                    t.columns
                        .iter()
                        .map(|c| match obj.get(c.name) {
                            Some(serde_json::Value::Number(n)) => {
                                n.as_i64().map_or(Value::Null, Value::Int)
                            }
                            Some(serde_json::Value::String(s)) => Value::Text(s.clone()),
                            _ => Value::Null,
                        })
                        .collect(),
                );
            }
            Ok(out)
        }
        FileFormat::Csv => {
            let mut r = csv::Reader::from_path(path).map_err(|e| corrupt(e.to_string()))?;
            let mut out = Vec::new();
            for rec in r.records() {
                let rec = rec.map_err(|e| corrupt(e.to_string()))?;
                out.push(
                    t.columns
                        .iter()
                        .zip(rec.iter())
                        .map(|(c, s)| match (c.ty, s) {
                            (_, "") => Value::Null,
                            (ColumnType::Int, s) => s.parse().map_or(Value::Null, Value::Int),
                            (ColumnType::Text, s) => Value::Text(s.to_owned()),
                        })
                        .collect(),
                );
            }
            Ok(out)
        }
        FileFormat::Parquet => crate::parquet_file::read(t, path),
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
            let f = Files::open(format, dir.path(), OrgId(1)).unwrap();
            f.commit(
                &batch(),
                vec![("conversations".into(), serde_json::json!({"next": "x"}))],
            )
            .unwrap();
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
            let t = table("conversation_tags").unwrap();
            let rows = read_table(dir.path(), t).unwrap();
            assert_eq!(rows, batch().rows(t).to_vec(), "{format:?}");
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
