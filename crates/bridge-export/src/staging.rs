//! A run's open part of one table: pages are appended to one staging file, each page synced
//! before the manifest records the file's new committed length. A killed run's staging file
//! is cut back to that length when the directory is opened again, so it holds exactly the
//! committed pages. Completing a part turns the staging file into the part: JSONL and CSV are
//! renamed; Parquet is staged as the rows themselves, a JSON array of cells per line (which,
//! unlike Parquet, can be appended to and read back when cut short), and written once as
//! Parquet at the end.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use bridge_store::tables::{Row, Table, Value};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::Result;
use crate::parquet_file;
use crate::parquet_file::err;
use crate::part::{FileFormat, TextWriter, WRITE_BUFFER, io};

/// The staging file's name beside the part it becomes.
pub(crate) fn staging_name(rel: &str) -> String {
    format!("{rel}.staging")
}

/// An open staging file.
#[derive(Debug)]
pub(crate) enum Staging {
    /// JSONL or CSV, as the part will hold it.
    Text(TextWriter),
    /// The rows of a Parquet part, one JSON array of cells per line.
    Rows(BufWriter<File>),
}

/// Rows handed to the Parquet writer at once when a part is completed (it buffers them as
/// columns, so the chunk only needs to spare calls).
const COMPLETE_CHUNK: usize = 64;

impl Staging {
    /// Creates the staging file for `t` and writes what precedes the rows (a CSV header);
    /// answers it with its length so far, synced.
    pub(crate) fn create(format: FileFormat, t: &Table, path: &Path) -> Result<(Self, u64)> {
        let mut s = match TextWriter::create(format, t, path)? {
            Some(w) => Staging::Text(w),
            None => {
                let file = File::create(path).map_err(io("creating", path))?;
                Staging::Rows(BufWriter::with_capacity(WRITE_BUFFER, file))
            }
        };
        let len = s.sync(path)?;
        Ok((s, len))
    }

    /// Appends one page's rows (not yet synced).
    pub(crate) fn append(&mut self, t: &Table, rows: &[Row], path: &Path) -> Result<()> {
        match self {
            Staging::Text(w) => w.write(t, rows, path),
            Staging::Rows(w) => rows
                .iter()
                .try_for_each(|r| write_staged(w, r))
                .map_err(io("writing", path)),
        }
    }

    /// Writes out what is buffered and syncs the file; answers its length.
    pub(crate) fn sync(&mut self, path: &Path) -> Result<u64> {
        let file = match self {
            Staging::Text(w) => w.flush(path)?,
            Staging::Rows(w) => {
                w.flush().map_err(io("writing", path))?;
                w.get_ref()
            }
        };
        file.sync_data().map_err(io("syncing", path))?;
        Ok(file.metadata().map_err(io("reading", path))?.len())
    }
}

/// Cuts a staging file back to its committed length (a killed run's unrecorded page).
pub(crate) fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(io("opening", path))?;
    if f.metadata().map_err(io("reading", path))?.len() > len {
        f.set_len(len).map_err(io("truncating", path))?;
        f.sync_all().map_err(io("syncing", path))?;
    }
    Ok(())
}

/// Writes one staged row: a JSON array of its cells and a newline.
fn write_staged(w: &mut impl Write, r: &Row) -> std::io::Result<()> {
    w.write_all(b"[")?;
    for (i, v) in r.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        match v {
            Value::Null => w.write_all(b"null")?,
            Value::Int(n) => write!(w, "{n}")?,
            Value::Text(s) => serde_json::to_writer(&mut *w, s)?,
        }
    }
    w.write_all(b"]\n")
}

/// A staged cell read back.
struct Cell(Value);

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cell;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer, a string or null")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Cell, E> {
                Ok(Cell(Value::Int(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Cell, E> {
                i64::try_from(n)
                    .map(|n| Cell(Value::Int(n)))
                    .map_err(|_| E::custom(format!("{n} is out of range")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Cell, E> {
                Ok(Cell(Value::Text(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> std::result::Result<Cell, E> {
                Ok(Cell(Value::Text(s)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Cell, E> {
                Ok(Cell(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a Parquet part's staged rows, as far as they were synced, handing them to `each` a
/// chunk at a time.
fn staged_rows(t: &Table, path: &Path, mut each: impl FnMut(Vec<Row>) -> Result<()>) -> Result<()> {
    let mut file = BufReader::new(File::open(path).map_err(io("opening", path))?);
    if file
        .fill_buf()
        .map_err(io("reading", path))?
        .starts_with(&ARROW_IPC_CONTINUATION)
    {
        return earlier_arrow_stream(t, path, file, each);
    }
    let mut chunk = Vec::with_capacity(COMPLETE_CHUNK);
    for (n, line) in file.lines().enumerate() {
        let line = line.map_err(io("reading", path))?;
        let corrupt = |what: String| err(path, format!("line {}: {what}", n + 1));
        let cells: Vec<Cell> =
            serde_json::from_str(&line).map_err(|e| corrupt(format!("not a staged row: {e}")))?;
        if cells.len() != t.columns.len() {
            return Err(corrupt(format!(
                "{} cells, but {} has {} columns",
                cells.len(),
                t.name,
                t.columns.len()
            )));
        }
        chunk.push(cells.into_iter().map(|c| c.0).collect());
        if chunk.len() == COMPLETE_CHUNK {
            each(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(COMPLETE_CHUNK),
            ))?;
        }
    }
    if !chunk.is_empty() {
        each(chunk)?;
    }
    Ok(())
}

/// How an Arrow IPC stream starts: builds up to 9ffd8f7 staged a Parquet part's rows as one.
const ARROW_IPC_CONTINUATION: [u8; 4] = [0xFF; 4];

/// The rows of a Parquet part that an earlier build staged as an Arrow IPC stream, so an
/// export interrupted before an upgrade completes its part after it.
fn earlier_arrow_stream(
    t: &Table,
    path: &Path,
    file: BufReader<File>,
    mut each: impl FnMut(Vec<Row>) -> Result<()>,
) -> Result<()> {
    let reader = arrow_ipc::reader::StreamReader::try_new(file, None).map_err(|e| err(path, e))?;
    for batch in reader {
        each(parquet_file::batch_rows(
            t,
            &batch.map_err(|e| err(path, e))?,
            path,
        )?)?;
    }
    Ok(())
}

/// The committed rows of a synced staging file.
pub(crate) fn read(format: FileFormat, t: &Table, path: &Path) -> Result<Vec<Row>> {
    match format {
        FileFormat::Jsonl | FileFormat::Csv => crate::part::read_part(format, t, path),
        FileFormat::Parquet => {
            let mut out = Vec::new();
            staged_rows(t, path, |rows| {
                out.extend(rows);
                Ok(())
            })?;
            Ok(out)
        }
    }
}

/// Makes the part `final_path` of a synced staging file, which stays in place for Parquet
/// (the caller removes it once the manifest lists the part) and is renamed otherwise.
pub(crate) fn complete(
    format: FileFormat,
    t: &'static Table,
    staging: &Path,
    final_path: &Path,
) -> Result<()> {
    match format {
        FileFormat::Jsonl | FileFormat::Csv => {
            fs::rename(staging, final_path).map_err(io("renaming", staging))
        }
        FileFormat::Parquet => {
            let tmp = final_path.with_extension("tmp");
            let mut w = parquet_file::Writer::create(
                t,
                File::create(&tmp).map_err(io("creating", &tmp))?,
                &tmp,
            )?;
            staged_rows(t, staging, |rows| w.write(&rows, &tmp))?;
            w.finish(&tmp)?.sync_all().map_err(io("syncing", &tmp))?;
            fs::rename(&tmp, final_path).map_err(io("renaming", &tmp))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::{message_row, messages};
    use bridge_store::tables::table;

    #[test]
    fn staged_rows_read_back_exactly_and_a_damaged_line_is_named() {
        let t = table("conversation_tags").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.parquet.staging");
        let odd = "quote \" backslash \\ newline \n tab \t nul \0 emoji 🎉";
        let rows: Vec<Row> = [i64::MIN, 0, i64::MAX]
            .iter()
            .map(|&n| {
                let mut r = vec![Value::Null; t.columns.len()];
                r[0] = Value::Int(n);
                r[1] = Value::Text(odd.into());
                r
            })
            .collect();
        let (mut s, _) = Staging::create(FileFormat::Parquet, t, &path).unwrap();
        s.append(t, &rows, &path).unwrap();
        s.sync(&path).unwrap();
        assert_eq!(read(FileFormat::Parquet, t, &path).unwrap(), rows);

        let mut f = File::options().append(true).open(&path).unwrap();
        f.write_all(b"[1,\"two\"]\n").unwrap();
        let e = read(FileFormat::Parquet, t, &path).unwrap_err().to_string();
        assert!(
            e.contains("line 4: 2 cells, but conversation_tags has"),
            "{e}"
        );
        fs::write(&path, b"[1.5]\n").unwrap();
        let e = read(FileFormat::Parquet, t, &path).unwrap_err().to_string();
        assert!(e.contains("line 1: not a staged row"), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
    }

    #[test]
    fn a_part_an_earlier_build_staged_as_an_arrow_stream_is_completed_with_its_rows() {
        let t = messages();
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<Row> = (0..3)
            .map(|n| message_row(n, "a \"quoted\" body"))
            .collect();
        // The stream as 9ffd8f7 wrote it: the Arrow schema, then a batch per page.
        let parquet = dir.path().join("p.parquet");
        let mut w =
            parquet_file::Writer::create(t, File::create(&parquet).unwrap(), &parquet).unwrap();
        w.write(&rows, &parquet).unwrap();
        w.finish(&parquet).unwrap();
        let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            File::open(&parquet).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
        let staged = dir.path().join("part-000001.parquet.staging");
        let mut s = arrow_ipc::writer::StreamWriter::try_new(
            File::create(&staged).unwrap(),
            &parquet_file::schema(t),
        )
        .unwrap();
        s.write(&batch.slice(0, 2)).unwrap();
        s.write(&batch.slice(2, 1)).unwrap();
        s.finish().unwrap();

        assert_eq!(read(FileFormat::Parquet, t, &staged).unwrap(), rows);
        let done = dir.path().join("part-000001.parquet");
        complete(FileFormat::Parquet, t, &staged, &done).unwrap();
        assert_eq!(parquet_file::read(t, &done).unwrap(), rows);
    }
}
