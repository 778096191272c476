//! A run's open part of one table: pages are appended to one staging file, each page synced
//! before the manifest records the file's new committed length. A killed run's staging file
//! is cut back to that length when the directory is opened again, so it holds exactly the
//! committed pages. Completing a part turns the staging file into the part: JSONL and CSV are
//! renamed; Parquet is staged as the rows themselves in a plain binary form (which, unlike
//! Parquet, can be appended to and read back when cut short) and written once as Parquet at
//! the end, each cell going from the file's buffer to its column without a copy of its own.
//!
//! The staged form: the 8 bytes [`ROWS_MAGIC`], then per row its cell count (`u16`) and its
//! cells, each a tag byte and its value: `0` NULL, `1` an `i64`, `2` a `u32` length and that
//! many bytes of UTF-8 (integers little-endian). Builds before it staged a JSON array of
//! cells per line, and before that an Arrow IPC stream; a part either left open is still
//! completed.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use bridge_store::tables::{Row, Table, Value};
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::Result;
use crate::parquet_file;
use crate::parquet_file::{Cell, err};
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
    /// The rows of a Parquet part, in the staged form.
    Rows(BufWriter<File>),
}

/// How a staging file of rows starts.
const ROWS_MAGIC: [u8; 8] = *b"DBROWS1\n";

const NULL: u8 = 0;
const INT: u8 = 1;
const TEXT: u8 = 2;

impl Staging {
    /// Creates the staging file for `t` and writes what precedes the rows (a CSV header);
    /// answers it with its length so far, synced.
    pub(crate) fn create(format: FileFormat, t: &Table, path: &Path) -> Result<(Self, u64)> {
        let mut s = match TextWriter::create(format, t, path)? {
            Some(w) => Staging::Text(w),
            None => {
                let file = File::create(path).map_err(io("creating", path))?;
                let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
                w.write_all(&ROWS_MAGIC).map_err(io("writing", path))?;
                Staging::Rows(w)
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

/// Writes one staged row.
fn write_staged(w: &mut impl Write, r: &Row) -> std::io::Result<()> {
    let count = u16::try_from(r.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a row of 65,536 cells or more",
        )
    })?;
    w.write_all(&count.to_le_bytes())?;
    for v in r {
        match v {
            Value::Null => w.write_all(&[NULL])?,
            Value::Int(n) => {
                w.write_all(&[INT])?;
                w.write_all(&n.to_le_bytes())?;
            }
            Value::Text(s) => {
                let len = u32::try_from(s.len()).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "a text cell of 4 GiB or more",
                    )
                })?;
                w.write_all(&[TEXT])?;
                w.write_all(&len.to_le_bytes())?;
                w.write_all(s.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Hands every committed row of a Parquet part's staging file to `each`, as far as it was
/// synced, whichever build staged it.
fn each_staged_row(
    t: &Table,
    path: &Path,
    mut each: impl FnMut(&[Cell<'_>]) -> Result<()>,
) -> Result<()> {
    let mut file = BufReader::new(File::open(path).map_err(io("opening", path))?);
    let start = file.fill_buf().map_err(io("reading", path))?;
    if start.starts_with(&ROWS_MAGIC) {
        file.consume(ROWS_MAGIC.len());
        return staged(t, path, file, each);
    }
    let whole_rows = |rows: &[Row], each: &mut dyn FnMut(&[Cell<'_>]) -> Result<()>| {
        let mut cells = Vec::with_capacity(t.columns.len());
        for r in rows {
            cells.clear();
            cells.extend(r.iter().map(Cell::from));
            each(&cells)?;
        }
        Ok(())
    };
    if start.starts_with(&ARROW_IPC_CONTINUATION) {
        earlier_arrow_stream(t, path, file, |rows| whole_rows(&rows, &mut each))
    } else {
        earlier_json_lines(t, path, file, |row| {
            whole_rows(std::slice::from_ref(&row), &mut each)
        })
    }
}

/// The rows of the staged form, after its magic.
fn staged(
    t: &Table,
    path: &Path,
    mut file: BufReader<File>,
    mut each: impl FnMut(&[Cell<'_>]) -> Result<()>,
) -> Result<()> {
    /// Where a cell's value is: text as a range of the row's text buffer.
    enum At {
        Null,
        Int(i64),
        Text(usize, usize),
    }
    let mut offset = ROWS_MAGIC.len() as u64;
    let mut text: Vec<u8> = Vec::new();
    let mut at: Vec<At> = Vec::with_capacity(t.columns.len());
    let mut cells: Vec<Cell<'_>> = Vec::with_capacity(t.columns.len());
    loop {
        let row_at = offset;
        let corrupt = |what: String| err(path, format!("byte {row_at}: {what}"));
        if file.fill_buf().map_err(io("reading", path))?.is_empty() {
            return Ok(());
        }
        let read = |file: &mut BufReader<File>, offset: &mut u64, buf: &mut [u8]| -> Result<()> {
            file.read_exact(buf)
                .map_err(|_| corrupt("the file ends inside a row".into()))?;
            *offset += buf.len() as u64;
            Ok(())
        };
        let mut count = [0; 2];
        read(&mut file, &mut offset, &mut count)?;
        let count = usize::from(u16::from_le_bytes(count));
        if count != t.columns.len() {
            return Err(corrupt(format!(
                "a row of {count} cells, but {} has {} columns",
                t.name,
                t.columns.len()
            )));
        }
        text.clear();
        at.clear();
        for _ in 0..count {
            let mut tag = [0; 1];
            read(&mut file, &mut offset, &mut tag)?;
            at.push(match tag[0] {
                NULL => At::Null,
                INT => {
                    let mut n = [0; 8];
                    read(&mut file, &mut offset, &mut n)?;
                    At::Int(i64::from_le_bytes(n))
                }
                TEXT => {
                    let mut len = [0; 4];
                    read(&mut file, &mut offset, &mut len)?;
                    let len = u32::from_le_bytes(len);
                    // Read as it comes rather than sized by the length first: a damaged
                    // length is an error, not a 4 GiB allocation.
                    let from = text.len();
                    let got = file
                        .by_ref()
                        .take(u64::from(len))
                        .read_to_end(&mut text)
                        .map_err(io("reading", path))?;
                    if got != len as usize {
                        return Err(corrupt("the file ends inside a row".into()));
                    }
                    offset += u64::from(len);
                    At::Text(from, from + got)
                }
                other => return Err(corrupt(format!("a cell tagged {other}"))),
            });
        }
        let mut row = std::mem::take(&mut cells);
        for a in &at {
            row.push(match *a {
                At::Null => Cell::Null,
                At::Int(n) => Cell::Int(n),
                At::Text(from, to) => Cell::Text(
                    std::str::from_utf8(&text[from..to])
                        .map_err(|_| corrupt("text that is not UTF-8".into()))?,
                ),
            });
        }
        each(&row)?;
        // The row's cells borrow this row's text only: the vector is kept, emptied.
        row.clear();
        cells = row.into_iter().map(|_| Cell::Null).collect();
    }
}

/// A staged cell of an earlier build's JSON lines, read back.
struct JsonCell(Value);

impl<'de> Deserialize<'de> for JsonCell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JsonCell;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer, a string or null")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<JsonCell, E> {
                Ok(JsonCell(Value::Int(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<JsonCell, E> {
                i64::try_from(n)
                    .map(|n| JsonCell(Value::Int(n)))
                    .map_err(|_| E::custom(format!("{n} is out of range")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<JsonCell, E> {
                Ok(JsonCell(Value::Text(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> std::result::Result<JsonCell, E> {
                Ok(JsonCell(Value::Text(s)))
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<JsonCell, E> {
                Ok(JsonCell(Value::Null))
            }
        }
        d.deserialize_any(V)
    }
}

/// The rows of a Parquet part that a build up to 78401ef staged as a JSON array of cells
/// per line, so an export interrupted before an upgrade completes its part after it.
fn earlier_json_lines(
    t: &Table,
    path: &Path,
    file: BufReader<File>,
    mut each: impl FnMut(Row) -> Result<()>,
) -> Result<()> {
    for (n, line) in file.lines().enumerate() {
        let line = line.map_err(io("reading", path))?;
        let corrupt = |what: String| err(path, format!("line {}: {what}", n + 1));
        let cells: Vec<JsonCell> =
            serde_json::from_str(&line).map_err(|e| corrupt(format!("not a staged row: {e}")))?;
        if cells.len() != t.columns.len() {
            return Err(corrupt(format!(
                "{} cells, but {} has {} columns",
                cells.len(),
                t.name,
                t.columns.len()
            )));
        }
        each(cells.into_iter().map(|c| c.0).collect())?;
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

/// Hands the integer in column `col` (an id) of every committed row of a synced staging file
/// to `each`, NULLs skipped.
pub(crate) fn each_int(
    format: FileFormat,
    t: &Table,
    col: usize,
    path: &Path,
    mut each: impl FnMut(i64),
) -> Result<()> {
    match format {
        FileFormat::Jsonl | FileFormat::Csv => crate::part::each_int(format, t, col, path, each),
        FileFormat::Parquet => each_staged_row(t, path, |cells| {
            if let Cell::Int(n) = cells[col] {
                each(n);
            }
            Ok(())
        }),
    }
}

/// The committed rows of a synced staging file.
#[cfg(test)]
pub(crate) fn read(format: FileFormat, t: &Table, path: &Path) -> Result<Vec<Row>> {
    match format {
        FileFormat::Jsonl | FileFormat::Csv => crate::part::read_part(format, t, path),
        FileFormat::Parquet => {
            let mut out = Vec::new();
            each_staged_row(t, path, |cells| {
                out.push(cells.iter().map(|c| Value::from(*c)).collect());
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
            each_staged_row(t, staging, |cells| w.write_row(cells, &tmp))?;
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
    fn staged_rows_read_back_exactly_and_a_damaged_row_is_named() {
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
                r[2] = Value::Text(String::new());
                r
            })
            .collect();
        let (mut s, _) = Staging::create(FileFormat::Parquet, t, &path).unwrap();
        s.append(t, &rows, &path).unwrap();
        let len = s.sync(&path).unwrap();
        assert_eq!(read(FileFormat::Parquet, t, &path).unwrap(), rows);

        let damaged = |tail: &[u8]| {
            let mut bytes = fs::read(&path).unwrap();
            bytes.truncate(len as usize);
            bytes.extend_from_slice(tail);
            fs::write(&path, bytes).unwrap();
            read(FileFormat::Parquet, t, &path).unwrap_err().to_string()
        };
        let e = damaged(&[2, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(
            e.contains(&format!(
                "byte {len}: a row of 2 cells, but conversation_tags has"
            )),
            "{e}"
        );
        assert!(e.contains(&path.display().to_string()), "{e}");
        let columns = u16::try_from(t.columns.len()).unwrap().to_le_bytes();
        let e = damaged(&[columns[0], columns[1], INT, 1, 2]);
        assert!(
            e.contains(&format!("byte {len}: the file ends inside a row")),
            "{e}"
        );
        // A damaged length is reported, not allocated.
        let e = damaged(&[columns[0], columns[1], TEXT, 0xFF, 0xFF, 0xFF, 0xFF, b'a']);
        assert!(
            e.contains(&format!("byte {len}: the file ends inside a row")),
            "{e}"
        );
        let e = damaged(&[columns[0], columns[1], 9]);
        assert!(e.contains(&format!("byte {len}: a cell tagged 9")), "{e}");
        let mut bad_text = vec![columns[0], columns[1], TEXT, 2, 0, 0, 0, 0xC3, 0x28];
        bad_text.resize(bad_text.len() + t.columns.len() - 1, NULL);
        let e = damaged(&bad_text);
        assert!(
            e.contains(&format!("byte {len}: text that is not UTF-8")),
            "{e}"
        );
    }

    #[test]
    fn a_part_an_earlier_build_staged_as_json_lines_is_completed_with_its_rows() {
        let t = messages();
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<Row> = (0..3)
            .map(|n| message_row(n, "a \"quoted\" body\n"))
            .collect();
        // The staging file as 78401ef wrote it: a JSON array of cells per line.
        let staged = dir.path().join("part-000001.parquet.staging");
        let mut text = String::new();
        for r in &rows {
            let cells: Vec<serde_json::Value> = r.iter().map(Value::to_json).collect();
            text.push_str(&serde_json::to_string(&cells).unwrap());
            text.push('\n');
        }
        fs::write(&staged, &text).unwrap();

        assert_eq!(read(FileFormat::Parquet, t, &staged).unwrap(), rows);
        let done = dir.path().join("part-000001.parquet");
        complete(FileFormat::Parquet, t, &staged, &done).unwrap();
        assert_eq!(parquet_file::read(t, &done).unwrap(), rows);

        fs::write(&staged, b"[1.5]\n").unwrap();
        let e = read(FileFormat::Parquet, t, &staged)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: not a staged row"), "{e}");
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
