//! One part file of a file destination in each format: written page by page, read back as
//! the rows it was given (docs/SCHEMA.md, "Types", for how each format holds a cell).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bridge_store::tables::{ColumnType, Row, Table, Value};

use crate::cells;
use crate::error::{Error, Result};
use crate::parquet_file;
use serde::{Deserialize, Serialize};

/// The file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line, keys in column order, NULL as `null`.
    Jsonl,
    /// RFC 4180 CSV with a header row; NULL is an empty field.
    Csv,
    /// Parquet with the Arrow schema embedded, snappy-compressed.
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

/// An open JSONL or CSV file: the same writer serves a whole part ([`PartWriter`]) and a
/// run's staging file (`staging.rs`), which is synced after every page.
#[derive(Debug)]
pub(crate) enum TextWriter {
    /// One JSON object per line.
    Jsonl(BufWriter<File>),
    /// CSV with a header row.
    Csv(Box<csv::Writer<BufWriter<File>>>),
}

/// The write buffer of an open part or staging file. Every table keeps one open for the whole
/// run and a page is flushed and synced at its commit anyway, so it is small (64 KiB each
/// held 1.1 MB of a 5,000-conversation export's 4.8 MB heap peak).
pub(crate) const WRITE_BUFFER: usize = 8 * 1024;

impl TextWriter {
    /// Creates the file at `path` (replacing one left there), for CSV with its header row;
    /// `None` for Parquet.
    pub(crate) fn create(format: FileFormat, t: &Table, path: &Path) -> Result<Option<Self>> {
        let open = || -> Result<BufWriter<File>> {
            let file = File::create(path).map_err(io("creating", path))?;
            Ok(BufWriter::with_capacity(WRITE_BUFFER, file))
        };
        Ok(match format {
            FileFormat::Jsonl => Some(TextWriter::Jsonl(open()?)),
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(open()?);
                w.write_record(t.columns.iter().map(|c| c.name))
                    .map_err(|e| io("writing", path)(e.into()))?;
                Some(TextWriter::Csv(Box::new(w)))
            }
            FileFormat::Parquet => None,
        })
    }

    /// Appends rows.
    pub(crate) fn write(&mut self, t: &Table, rows: &[Row], path: &Path) -> Result<()> {
        match self {
            TextWriter::Jsonl(w) => {
                let mut line = String::with_capacity(512);
                for r in rows {
                    line.clear();
                    jsonl_line(t, r, &mut line);
                    w.write_all(line.as_bytes()).map_err(io("writing", path))?;
                }
            }
            TextWriter::Csv(w) => {
                for r in rows {
                    w.write_record(t.columns.iter().zip(r).map(|(c, v)| cells::to_csv(c, v)))
                        .map_err(|e| io("writing", path)(e.into()))?;
                }
            }
        }
        Ok(())
    }

    /// Writes out what is buffered; answers the file, to be synced.
    pub(crate) fn flush(&mut self, path: &Path) -> Result<&File> {
        match self {
            TextWriter::Jsonl(w) => {
                w.flush().map_err(io("writing", path))?;
                Ok(w.get_ref())
            }
            TextWriter::Csv(w) => {
                w.flush().map_err(io("writing", path))?;
                Ok(w.get_ref().get_ref())
            }
        }
    }
}

/// An open part being written.
#[derive(Debug)]
pub(crate) enum PartWriter {
    /// JSONL or CSV.
    Text(TextWriter),
    /// Parquet through Arrow.
    Parquet(Box<parquet_file::Writer>),
}

impl PartWriter {
    /// Creates the file at `path` (replacing one left there).
    pub(crate) fn create(format: FileFormat, t: &'static Table, path: &Path) -> Result<Self> {
        Ok(match TextWriter::create(format, t, path)? {
            Some(w) => PartWriter::Text(w),
            None => {
                let file = File::create(path).map_err(io("creating", path))?;
                PartWriter::Parquet(Box::new(parquet_file::Writer::create(t, file, path)?))
            }
        })
    }

    /// Appends rows.
    pub(crate) fn write(&mut self, t: &Table, rows: &[Row], path: &Path) -> Result<()> {
        match self {
            PartWriter::Text(w) => w.write(t, rows, path),
            PartWriter::Parquet(w) => w.write(rows, path),
        }
    }

    /// Completes the file and syncs it to disk.
    pub(crate) fn finish(self, path: &Path) -> Result<()> {
        match self {
            PartWriter::Text(mut w) => w.flush(path)?.sync_all(),
            PartWriter::Parquet(w) => w.finish(path)?.sync_all(),
        }
        .map_err(io("syncing", path))
    }
}

/// One JSONL line: keys in column order, instants as ISO-8601 text, flags as booleans, JSON
/// documents nested.
fn jsonl_line(t: &Table, r: &Row, line: &mut String) {
    line.push('{');
    for (i, (c, v)) in t.columns.iter().zip(r).enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('"');
        line.push_str(c.name);
        line.push_str("\":");
        match (c.ty, v) {
            (_, Value::Null) => line.push_str("null"),
            (ColumnType::Int, Value::Int(n)) => line.push_str(&n.to_string()),
            // A document is written as it is (no second serialization) once it parses.
            (ColumnType::Json, Value::Text(s))
                if serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok() =>
            {
                line.push_str(s)
            }
            _ => line.push_str(&cells::to_json(c, v).to_string()),
        }
    }
    line.push_str("}\n");
}

/// Writes a whole part at `path`.
pub(crate) fn write_part(
    format: FileFormat,
    t: &'static Table,
    rows: &[Row],
    path: &Path,
) -> Result<()> {
    let mut w = PartWriter::create(format, t, path)?;
    w.write(t, rows, path)?;
    w.finish(path)
}

/// Every row of a part.
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
                        .map(|c| cells::from_json(c, obj.get(c.name)))
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
                        .map(|(c, s)| cells::from_csv(c, s))
                        .collect(),
                );
            }
            Ok(out)
        }
        FileFormat::Parquet => parquet_file::read(t, path),
    }
}
