//! One part file of a file destination in each format: written page by page, read back as
//! the rows it was given (docs/SCHEMA.md, "Types", for how each format holds a cell).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bridge_store::tables::{ColumnType, Row, Table, Value};

use crate::cells;
use crate::error::{Error, Result};
use crate::parquet_file;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
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

/// Every row of a part.
pub(crate) fn read_part(format: FileFormat, t: &Table, path: &Path) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    each_row(format, t, path, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok(out)
}

/// Hands every row of a part to `each`, in order, holding one row (or, for Parquet, one
/// record batch) at a time.
pub(crate) fn each_row(
    format: FileFormat,
    t: &Table,
    path: &Path,
    mut each: impl FnMut(Row) -> Result<()>,
) -> Result<()> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_owned(),
        message,
    };
    match format {
        FileFormat::Jsonl => {
            let f = File::open(path).map_err(io("opening", path))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(io("reading", path))?;
                let obj: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&line).map_err(|e| corrupt(e.to_string()))?;
                each(
                    t.columns
                        .iter()
                        .map(|c| cells::from_json(c, obj.get(c.name)))
                        .collect(),
                )?;
            }
            Ok(())
        }
        FileFormat::Csv => each_record(path, |rec| {
            each(
                t.columns
                    .iter()
                    .zip(rec.iter())
                    .map(|(c, s)| cells::from_csv(c, s))
                    .collect(),
            )
        }),
        FileFormat::Parquet => {
            parquet_file::each_batch(t, path, |rows| rows.into_iter().try_for_each(&mut each))
        }
    }
}

/// Hands the integer in column `col` (an id) of every row of a part to `each`, NULLs skipped,
/// reading no more of a row than it must: a resumed or incremental run and the delete sweep
/// need the ids of whole tables, and a part holds up to [`crate::files::PART_ROWS`] rows.
pub(crate) fn each_int(
    format: FileFormat,
    t: &Table,
    col: usize,
    path: &Path,
    mut each: impl FnMut(i64),
) -> Result<()> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_owned(),
        message,
    };
    let name = t.columns[col].name;
    match format {
        FileFormat::Jsonl => {
            let f = File::open(path).map_err(io("opening", path))?;
            for (n, line) in BufReader::new(f).lines().enumerate() {
                let line = line.map_err(io("reading", path))?;
                let mut de = serde_json::Deserializer::from_str(&line);
                IntUnder(name)
                    .deserialize(&mut de)
                    .and_then(|v| de.end().map(|()| v))
                    .map_err(|e| corrupt(format!("line {}: {e}", n + 1)))?
                    .map(&mut each);
            }
            Ok(())
        }
        FileFormat::Csv => each_record(path, |rec| {
            if let Some(n) = rec.get(col).and_then(|s| s.parse().ok()) {
                each(n);
            }
            Ok(())
        }),
        FileFormat::Parquet => parquet_file::each_int(path, name, each),
    }
}

/// Hands every record of a CSV part (its header row aside) to `each`, one at a time.
fn each_record(path: &Path, mut each: impl FnMut(&csv::StringRecord) -> Result<()>) -> Result<()> {
    let corrupt = |e: csv::Error| Error::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut r = csv::Reader::from_path(path).map_err(corrupt)?;
    let mut rec = csv::StringRecord::new();
    while r.read_record(&mut rec).map_err(corrupt)? {
        each(&rec)?;
    }
    Ok(())
}

/// The integer under one key of a JSON object (`None` when absent or null); every other value
/// is skipped without being built.
struct IntUnder<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for IntUnder<'_> {
    type Value = Option<i64>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IntUnder<'_> {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an object with an integer \"{}\"", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(wanted) = m.next_key_seed(IsKey(self.0))? {
            if wanted {
                found = m.next_value()?;
            } else {
                m.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether an object's key is this one (escaped or not), without keeping it.
struct IsKey<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for IsKey<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for IsKey<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<bool, E> {
        Ok(s == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridge_store::tables::table;

    #[test]
    fn ids_are_read_from_their_own_key_and_a_damaged_line_is_named() {
        let t = table("contacts").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.jsonl");
        let ids = |path: &Path| {
            let mut out = Vec::new();
            each_int(FileFormat::Jsonl, t, 1, path, |n| out.push(n)).map(|()| out)
        };
        std::fs::write(
            &path,
            concat!(
                // A nested "id" is not the row's; the row's comes after it.
                r#"{"org_id":7,"attributes":{"id":99,"x":[{"id":98}]},"id":1}"#,
                "\n",
                // An escaped key is still the key.
                r#"{"org_id":7,"\u0069d":2,"name":"a \"quoted\" id"}"#,
                "\n",
                // NULL and absent ids are skipped.
                r#"{"org_id":7,"id":null}"#,
                "\n",
                r#"{"org_id":7}"#,
                "\n",
            ),
        )
        .unwrap();
        assert_eq!(ids(&path).unwrap(), [1, 2]);

        std::fs::write(&path, "{\"id\":1}\n{\"id\":2} trailing\n").unwrap();
        let e = ids(&path).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("part.jsonl"), "{e}");
        std::fs::write(&path, "{\"id\":\"3\"}\n").unwrap();
        let e = ids(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
