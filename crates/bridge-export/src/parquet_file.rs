//! Parquet in arrow-rs' layout: the table's Arrow schema is mapped to Parquet by arrow-rs'
//! own converter and embedded in the file (`ARROW:schema`), so DuckDB, pyarrow, polars and
//! Spark read typed columns without hints. Instants are `TIMESTAMP(MILLIS, UTC)`, flags
//! `BOOLEAN`, ids and counts `INT64`, text and JSON documents UTF-8 strings (JSON as its text:
//! Parquet's JSON logical type is not read alike by every reader). Snappy.
//!
//! The rows are written column by column through the `parquet` crate's column writers, not
//! through `ArrowWriter`: the file is laid out the same (schema, `ARROW:schema`, encodings and
//! statistics; a test compares the two), but the rows never become Arrow arrays, which took
//! about 1 MiB more peak RSS at the end of a Parquet export (docs/BENCHMARKS.md, "Parquet
//! without Arrow arrays"). A row group is buffered as plain columns until it holds
//! [`ROW_GROUP_ROWS`] rows or [`ROW_GROUP_BYTES`] of values, so memory stays bounded however
//! many rows a part holds.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bridge_store::tables::{ColumnType, Row, Table, Value};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowSchemaConverter, ProjectionMask, add_encoded_arrow_schema_to_metadata};
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};

use crate::error::{Error, Result};

/// Rows per row group at most.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// A row group is also written once its buffered values take this much, so a table of long
/// messages does not hold 65,536 of them in memory.
const ROW_GROUP_BYTES: usize = 256 * 1024;
/// Data and dictionary pages (the defaults are 1 MiB).
const PAGE_BYTES: usize = 64 * 1024;
/// Values between two checks of a page's size (the default is 1,024).
const WRITE_BATCH: usize = 256;
/// Text values handed to a column writer at once (each becomes a `ByteArray` for the call).
const TEXT_CHUNK: usize = 1024;

/// A file this module could not write or read, with the library's words.
pub(crate) fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// One cell, borrowed: from a row's [`Value`] or straight from a staging file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell<'a> {
    /// NULL.
    Null,
    /// An integer (an id, a count, an instant in epoch milliseconds or a flag).
    Int(i64),
    /// Text.
    Text(&'a str),
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null => Cell::Null,
            Value::Int(n) => Cell::Int(*n),
            Value::Text(s) => Cell::Text(s),
        }
    }
}

impl From<Cell<'_>> for Value {
    fn from(c: Cell<'_>) -> Self {
        match c {
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::Int(n),
            Cell::Text(s) => Value::Text(s.to_owned()),
        }
    }
}

/// The table's Arrow schema.
pub(crate) fn schema(t: &Table) -> SchemaRef {
    Arc::new(Schema::new(
        t.columns
            .iter()
            .map(|c| {
                let ty = match c.ty {
                    ColumnType::Int => DataType::Int64,
                    ColumnType::Text | ColumnType::Json => DataType::Utf8,
                    ColumnType::Timestamp => {
                        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
                    }
                    ColumnType::Bool => DataType::Boolean,
                };
                Field::new(c.name, ty, c.nullable)
            })
            .collect::<Vec<_>>(),
    ))
}

/// One column of the row group being buffered: its present values and, for a nullable
/// column, a definition level per row (1 present, 0 NULL).
#[derive(Debug)]
enum Column {
    /// INT64: ids, counts and instants (epoch milliseconds).
    Int { values: Vec<i64>, defs: Vec<i16> },
    /// BOOLEAN.
    Bool { values: Vec<bool>, defs: Vec<i16> },
    /// UTF-8 text, end to end in one buffer.
    Text {
        data: Vec<u8>,
        ends: Vec<usize>,
        defs: Vec<i16>,
    },
}

impl Column {
    fn new(ty: ColumnType) -> Self {
        match ty {
            ColumnType::Int | ColumnType::Timestamp => Column::Int {
                values: Vec::new(),
                defs: Vec::new(),
            },
            ColumnType::Bool => Column::Bool {
                values: Vec::new(),
                defs: Vec::new(),
            },
            ColumnType::Text | ColumnType::Json => Column::Text {
                data: Vec::new(),
                ends: Vec::new(),
                defs: Vec::new(),
            },
        }
    }

    fn defs(&mut self) -> &mut Vec<i16> {
        match self {
            Column::Int { defs, .. } | Column::Bool { defs, .. } | Column::Text { defs, .. } => {
                defs
            }
        }
    }

    /// Buffers one cell; answers the bytes it took, or `None` for a NULL.
    fn push(&mut self, v: Cell<'_>, nullable: bool) -> Option<usize> {
        let size = match (&mut *self, v) {
            (Column::Int { values, .. }, Cell::Int(n)) => {
                values.push(n);
                Some(8)
            }
            (Column::Bool { values, .. }, Cell::Int(n)) => {
                values.push(n != 0);
                Some(1)
            }
            (Column::Text { data, ends, .. }, Cell::Text(s)) => {
                data.extend_from_slice(s.as_bytes());
                ends.push(data.len());
                Some(s.len() + 8)
            }
            _ => None,
        };
        if nullable {
            self.defs().push(i16::from(size.is_some()));
        }
        size
    }

    /// The definition levels to hand over: none for a column that cannot be NULL.
    fn levels(defs: &[i16]) -> Option<&[i16]> {
        (!defs.is_empty()).then_some(defs)
    }

    /// Writes the buffered values through `w` and empties the column (keeping its capacity
    /// for the next row group).
    fn write(&mut self, w: &mut SerializedColumnWriter<'_>) -> parquet::errors::Result<()> {
        match self {
            Column::Int { values, defs } => {
                w.typed::<parquet::data_type::Int64Type>().write_batch(
                    values,
                    Self::levels(defs),
                    None,
                )?;
                values.clear();
                defs.clear();
            }
            Column::Bool { values, defs } => {
                w.typed::<BoolType>()
                    .write_batch(values, Self::levels(defs), None)?;
                values.clear();
                defs.clear();
            }
            Column::Text { data, ends, defs } => {
                let used = data.len();
                let bytes = Bytes::from(std::mem::replace(data, Vec::with_capacity(used)));
                let w = w.typed::<ByteArrayType>();
                let rows = if defs.is_empty() {
                    ends.len()
                } else {
                    defs.len()
                };
                let (mut start, mut next) = (0, ends.iter());
                let mut values = Vec::with_capacity(TEXT_CHUNK.min(ends.len()));
                for from in (0..rows).step_by(TEXT_CHUNK) {
                    let to = (from + TEXT_CHUNK).min(rows);
                    let chunk = Self::levels(defs).map(|d| &d[from..to]);
                    let present =
                        chunk.map_or(to - from, |d| d.iter().filter(|&&l| l == 1).count());
                    values.clear();
                    for &end in next.by_ref().take(present) {
                        values.push(ByteArray::from(bytes.slice(start..end)));
                        start = end;
                    }
                    w.write_batch(&values, chunk, None)?;
                }
                ends.clear();
                defs.clear();
            }
        }
        Ok(())
    }
}

/// How the column writers encode: snappy; pages of about [`PAGE_BYTES`] (the size is checked
/// every [`WRITE_BATCH`] values, so a page of long texts overshoots by at most that many).
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(ROW_GROUP_ROWS)
        .set_data_page_size_limit(PAGE_BYTES)
        .set_dictionary_page_size_limit(PAGE_BYTES)
        .set_write_batch_size(WRITE_BATCH)
        .set_created_by(concat!("driftbridge ", env!("CARGO_PKG_VERSION")).into())
        .build()
}

/// An open Parquet part: rows are buffered into columns and written a row group at a time;
/// [`Writer::finish`] writes the last row group and the footer.
pub(crate) struct Writer {
    inner: SerializedFileWriter<File>,
    table: &'static Table,
    columns: Vec<Column>,
    rows: usize,
    bytes: usize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("parquet::Writer")
            .field("table", &self.table.name)
            .field("buffered_rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn create(table: &'static Table, file: File, path: &Path) -> Result<Self> {
        let schema = schema(table);
        let parquet_schema = ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(|e| err(path, e))?;
        let mut props = properties();
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let inner =
            SerializedFileWriter::new(file, parquet_schema.root_schema_ptr(), Arc::new(props))
                .map_err(|e| err(path, e))?;
        Ok(Writer {
            inner,
            table,
            columns: table.columns.iter().map(|c| Column::new(c.ty)).collect(),
            rows: 0,
            bytes: 0,
        })
    }

    /// Appends rows, writing a row group whenever one is full.
    pub(crate) fn write(&mut self, rows: &[Row], path: &Path) -> Result<()> {
        let mut cells = Vec::with_capacity(self.table.columns.len());
        for r in rows {
            cells.clear();
            cells.extend(r.iter().map(Cell::from));
            self.write_row(&cells, path)?;
        }
        Ok(())
    }

    /// Appends one row, writing a row group if it fills one. A row that does not fit the
    /// table is refused whole: nothing of it is buffered.
    pub(crate) fn write_row(&mut self, r: &[Cell<'_>], path: &Path) -> Result<()> {
        let t = self.table;
        if r.len() != t.columns.len() {
            return Err(err(
                path,
                format!(
                    "a row of {} with {} cells, the table has {} columns",
                    t.name,
                    r.len(),
                    t.columns.len()
                ),
            ));
        }
        if let Some(c) = t.columns.iter().zip(r).find_map(|(c, v)| {
            let fits = matches!(
                (c.ty, v),
                (ColumnType::Text | ColumnType::Json, Cell::Text(_))
                    | (
                        ColumnType::Int | ColumnType::Timestamp | ColumnType::Bool,
                        Cell::Int(_)
                    )
            );
            (!c.nullable && !fits).then_some(c)
        }) {
            return Err(err(
                path,
                format!(
                    "{}.{} cannot be NULL (or {:?} of another type)",
                    t.name, c.name, c.ty
                ),
            ));
        }
        for ((c, col), v) in t.columns.iter().zip(&mut self.columns).zip(r) {
            self.bytes += col.push(*v, c.nullable).unwrap_or(0);
        }
        self.rows += 1;
        if self.rows >= ROW_GROUP_ROWS || self.bytes >= ROW_GROUP_BYTES {
            self.flush(path)?;
        }
        Ok(())
    }

    /// Writes the buffered rows as one row group.
    fn flush(&mut self, path: &Path) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let write = |w: &mut Self| -> parquet::errors::Result<()> {
            let mut group = w.inner.next_row_group()?;
            for col in &mut w.columns {
                let Some(mut c) = group.next_column()? else {
                    return Err(parquet::errors::ParquetError::General(
                        "the schema has fewer columns than the table".into(),
                    ));
                };
                col.write(&mut c)?;
                c.close()?;
            }
            group.close()?;
            Ok(())
        };
        write(self).map_err(|e| err(path, e))?;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }

    /// Writes the last row group and the footer; answers the file, to be synced.
    pub(crate) fn finish(mut self, path: &Path) -> Result<File> {
        self.flush(path)?;
        self.inner.into_inner().map_err(|e| err(path, e))
    }
}

/// Every row of a part, as the rows carried them.
#[cfg(test)]
pub(crate) fn read(t: &Table, path: &Path) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    each_batch(t, path, |rows| {
        out.extend(rows);
        Ok(())
    })?;
    Ok(out)
}

/// A part opened for reading, its footer read.
fn opened(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let f = File::open(path).map_err(|source| Error::Io {
        op: "opening",
        path: path.to_owned(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| err(path, e))
}

/// Hands the rows of a part to `each`, one record batch (1,024 rows) at a time.
pub(crate) fn each_batch(
    t: &Table,
    path: &Path,
    mut each: impl FnMut(Vec<Row>) -> Result<()>,
) -> Result<()> {
    let reader = opened(path)?.build().map_err(|e| err(path, e))?;
    for batch in reader {
        each(batch_rows(t, &batch.map_err(|e| err(path, e))?, path)?)?;
    }
    Ok(())
}

/// Hands the integer column `name` of every row of a part to `each`, NULLs skipped, reading
/// that column only.
pub(crate) fn each_int(path: &Path, name: &str, mut each: impl FnMut(i64)) -> Result<()> {
    let b = opened(path)?;
    let Some(i) = b.schema().fields().iter().position(|f| f.name() == name) else {
        return Err(err(path, format!("it has no column {name}")));
    };
    let only = ProjectionMask::roots(b.parquet_schema(), [i]);
    for batch in b.with_projection(only).build().map_err(|e| err(path, e))? {
        let batch = batch.map_err(|e| err(path, e))?;
        let col = batch.column(0);
        let ints = col.as_primitive_opt::<Int64Type>().ok_or_else(|| {
            err(
                path,
                format!("its column {name} is {}, not INT64", col.data_type()),
            )
        })?;
        ints.iter().flatten().for_each(&mut each);
    }
    Ok(())
}

/// The rows of one record batch of `t` (read from `path`, for errors).
pub(crate) fn batch_rows(t: &Table, batch: &RecordBatch, path: &Path) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = vec![vec![Value::Null; t.columns.len()]; batch.num_rows()];
    for (i, c) in t.columns.iter().enumerate() {
        let Some(col) = batch.column_by_name(c.name) else {
            continue;
        };
        for (r, row) in rows.iter_mut().enumerate() {
            if col.is_null(r) {
                continue;
            }
            row[i] = match col.data_type() {
                DataType::Int64 => Value::Int(col.as_primitive::<Int64Type>().value(r)),
                DataType::Timestamp(..) => {
                    Value::Int(col.as_primitive::<TimestampMillisecondType>().value(r))
                }
                DataType::Boolean => Value::from(col.as_boolean().value(r)),
                DataType::Utf8 => Value::Text(col.as_string::<i32>().value(r).to_owned()),
                other => return Err(err(path, format!("unexpected column type {other}"))),
            };
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rows::{message_row as row, messages};
    use parquet::arrow::ArrowWriter;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn write(path: &Path, rows: &[Row]) -> Result<()> {
        let mut w = Writer::create(messages(), File::create(path).unwrap(), path)?;
        w.write(rows, path)?;
        w.finish(path)?.sync_all().unwrap();
        Ok(())
    }

    /// The file's footer, as a plain Parquet reader sees it.
    fn metadata(path: &Path) -> parquet::file::metadata::ParquetMetaData {
        SerializedFileReader::new(File::open(path).unwrap())
            .unwrap()
            .metadata()
            .clone()
    }

    #[test]
    fn the_file_is_laid_out_as_arrow_writer_lays_it_out() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours.parquet");
        let rows: Vec<Row> = (0..50).map(|n| row(n, "hello ✓")).collect();
        write(&ours, &rows).unwrap();
        assert_eq!(read(messages(), &ours).unwrap(), rows);

        // The same batch, as arrow-rs' ArrowWriter writes it with the same properties.
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&ours).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batch = reader.next().unwrap().unwrap();
        assert_eq!(
            batch.schema(),
            schema(messages()),
            "the Arrow schema read back"
        );
        let theirs = dir.path().join("theirs.parquet");
        let mut w = ArrowWriter::try_new(
            File::create(&theirs).unwrap(),
            batch.schema(),
            Some(properties()),
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let (ours, theirs) = (metadata(&ours), metadata(&theirs));
        assert_eq!(
            ours.file_metadata().schema_descr().columns(),
            theirs.file_metadata().schema_descr().columns(),
            "physical and logical types, repetition"
        );
        let arrow_schema = |m: &parquet::file::metadata::ParquetMetaData| {
            m.file_metadata()
                .key_value_metadata()
                .and_then(|kv| kv.iter().find(|kv| kv.key == "ARROW:schema"))
                .and_then(|kv| kv.value.clone())
        };
        assert!(arrow_schema(&ours).is_some());
        assert_eq!(arrow_schema(&ours), arrow_schema(&theirs));
        for (a, b) in ours
            .row_group(0)
            .columns()
            .iter()
            .zip(theirs.row_group(0).columns())
        {
            assert_eq!(
                a.encodings_mask(),
                b.encodings_mask(),
                "{}",
                a.column_path()
            );
            assert_eq!(a.statistics(), b.statistics(), "{}", a.column_path());
            assert_eq!(a.compression(), b.compression());
        }
    }

    #[test]
    fn row_groups_close_at_the_byte_budget_and_keep_the_rows_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.parquet");
        let body = "x".repeat(10_000);
        let rows: Vec<Row> = (0..600).map(|n| row(n, &body)).collect();
        write(&path, &rows).unwrap();
        let meta = metadata(&path);
        // 300 bodies (the even rows') of 10 kB are 3 MB: at least three groups of at most
        // ROW_GROUP_BYTES, so at most one body over it each (two rows per body).
        assert!(meta.num_row_groups() >= 3, "{}", meta.num_row_groups());
        assert!(
            meta.row_groups()
                .iter()
                .all(|g| (g.num_rows() as usize) <= 2 * (ROW_GROUP_BYTES / 10_000 + 1))
        );
        assert_eq!(read(messages(), &path).unwrap(), rows);

        // Short rows: a row group of several thousand, handed over TEXT_CHUNK at a time with
        // every other cell of the nullable columns NULL.
        let rows: Vec<Row> = (0..3 * TEXT_CHUNK as i64 + 5)
            .map(|n| row(n, "b"))
            .collect();
        write(&path, &rows).unwrap();
        let meta = metadata(&path);
        assert!(meta.row_group(0).num_rows() as usize > TEXT_CHUNK);
        assert_eq!(read(messages(), &path).unwrap(), rows);
    }

    #[test]
    fn a_null_where_the_schema_forbids_one_is_refused_and_nothing_of_it_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        let mut w = Writer::create(messages(), File::create(&path).unwrap(), &path).unwrap();
        let mut bad = row(2, "b");
        let author_type = messages()
            .columns
            .iter()
            .position(|c| c.name == "author_type");
        bad[author_type.unwrap()] = Value::Null;
        let e = w.write(&[row(0, "a"), bad], &path).unwrap_err().to_string();
        assert!(e.contains("messages.author_type cannot be NULL"), "{e}");
        // A cell of the wrong kind in a NOT NULL column is refused the same way.
        let mut bad = row(4, "c");
        bad[1] = Value::Text("seven".into());
        let e = w.write(&[bad], &path).unwrap_err().to_string();
        assert!(e.contains("messages.id cannot be NULL"), "{e}");
        w.write(&[row(6, "d")], &path).unwrap();
        w.finish(&path).unwrap();
        assert_eq!(
            read(messages(), &path).unwrap(),
            vec![row(0, "a"), row(6, "d")]
        );
    }
}
