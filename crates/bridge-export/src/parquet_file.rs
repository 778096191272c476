//! Parquet through arrow-rs: the table's Arrow schema is embedded in the file, so DuckDB,
//! pyarrow, polars and Spark read typed columns without hints. Instants are
//! `TIMESTAMP(MILLIS, UTC)`, flags `BOOLEAN`, ids and counts `INT64`, text and JSON documents
//! UTF-8 strings (JSON as its text: Parquet's JSON logical type is not read alike by every
//! reader). Snappy; a row group per [`ROW_GROUP_ROWS`] rows or `ROW_GROUP_BYTES` of buffered
//! pages, whichever comes first, so memory stays bounded however many rows a part holds.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bridge_store::tables::{ColumnType, Row, Table, Value};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

/// Rows per row group at most.
pub(crate) const ROW_GROUP_ROWS: usize = 64 * 1024;
/// A row group is also closed once its buffers hold this much, so a table of long messages
/// does not hold 65,536 of them in memory (1 MiB: 2 MiB more peak RSS in `bench export`).
const ROW_GROUP_BYTES: usize = 256 * 1024;
/// Data and dictionary pages (the defaults are 1 MiB): the writer buffers a page per column.
const PAGE_BYTES: usize = 64 * 1024;

/// A file this module could not write or read, with the library's words.
pub(crate) fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
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

/// The rows as one Arrow record batch.
pub(crate) fn record_batch(
    t: &Table,
    schema: &SchemaRef,
    rows: &[Row],
) -> std::result::Result<RecordBatch, arrow_schema::ArrowError> {
    let columns: Vec<ArrayRef> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| -> ArrayRef {
            let ints = rows.iter().map(|r| r[i].as_i64());
            match c.ty {
                ColumnType::Int => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    ints.for_each(|v| b.append_option(v));
                    Arc::new(b.finish())
                }
                ColumnType::Timestamp => {
                    let mut b =
                        TimestampMillisecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
                    ints.for_each(|v| b.append_option(v));
                    Arc::new(b.finish())
                }
                ColumnType::Bool => {
                    let mut b = BooleanBuilder::with_capacity(rows.len());
                    ints.for_each(|v| b.append_option(v.map(|i| i != 0)));
                    Arc::new(b.finish())
                }
                ColumnType::Text | ColumnType::Json => {
                    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
                    rows.iter().for_each(|r| b.append_option(r[i].as_str()));
                    Arc::new(b.finish())
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
}

/// An open Parquet part: rows are appended page by page; [`Writer::finish`] writes the footer.
pub(crate) struct Writer {
    inner: ArrowWriter<File>,
    schema: SchemaRef,
    table: &'static Table,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("parquet::Writer")
            .field("table", &self.table.name)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn create(table: &'static Table, file: File, path: &Path) -> Result<Self> {
        let schema = schema(table);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(ROW_GROUP_ROWS)
            .set_data_page_size_limit(PAGE_BYTES)
            .set_dictionary_page_size_limit(PAGE_BYTES)
            .set_created_by(concat!("driftbridge ", env!("CARGO_PKG_VERSION")).into())
            .build();
        let inner =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| err(path, e))?;
        Ok(Writer {
            inner,
            schema,
            table,
        })
    }

    pub(crate) fn write(&mut self, rows: &[Row], path: &Path) -> Result<()> {
        let batch = record_batch(self.table, &self.schema, rows).map_err(|e| err(path, e))?;
        self.write_batch(&batch, path)
    }

    pub(crate) fn write_batch(&mut self, batch: &RecordBatch, path: &Path) -> Result<()> {
        self.inner.write(batch).map_err(|e| err(path, e))?;
        if self.inner.memory_size() > ROW_GROUP_BYTES {
            self.inner.flush().map_err(|e| err(path, e))?;
        }
        Ok(())
    }

    /// Writes the footer and answers the file, to be synced.
    pub(crate) fn finish(self, path: &Path) -> Result<File> {
        self.inner.into_inner().map_err(|e| err(path, e))
    }
}

/// Every row of a part, as the rows carried them.
pub(crate) fn read(t: &Table, path: &Path) -> Result<Vec<Row>> {
    let f = File::open(path).map_err(|source| Error::Io {
        op: "opening",
        path: path.to_owned(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .and_then(|b| b.build())
        .map_err(|e| err(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        out.extend(batch_rows(t, &batch.map_err(|e| err(path, e))?, path)?);
    }
    Ok(out)
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
