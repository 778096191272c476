//! Parquet parts through parquet's column writer (no Arrow): one row group per part, INT64
//! and UTF-8 `BYTE_ARRAY` columns, nullable columns `OPTIONAL` with definition levels.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bridge_store::tables::{ColumnType, Row, Table, Value};
use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;

use crate::error::{Error, Result};

/// The table's Parquet message type.
pub(crate) fn schema(t: &Table) -> String {
    let mut s = format!("message {} {{\n", t.name);
    for c in t.columns {
        let rep = if c.nullable { "OPTIONAL" } else { "REQUIRED" };
        let ty = match c.ty {
            ColumnType::Int => "INT64",
            ColumnType::Text => "BYTE_ARRAY",
        };
        let ann = if c.ty == ColumnType::Text {
            " (UTF8)"
        } else {
            ""
        };
        s.push_str(&format!("  {rep} {ty} {}{ann};\n", c.name));
    }
    s.push('}');
    s
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

pub(crate) fn write(t: &Table, rows: &[Row], file: File, path: &Path) -> Result<()> {
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(&schema(t)).map_err(|e| err(path, e))?,
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut w = SerializedFileWriter::new(file, schema, props).map_err(|e| err(path, e))?;
    let mut rg = w.next_row_group().map_err(|e| err(path, e))?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column().map_err(|e| err(path, e))? {
        let c = &t.columns[i];
        let defs: Vec<i16> = rows
            .iter()
            .map(|r| i16::from(r[i] != Value::Null))
            .collect();
        let defs = c.nullable.then_some(defs.as_slice());
        match col.untyped() {
            ColumnWriter::Int64ColumnWriter(cw) => {
                let vals: Vec<i64> = rows.iter().filter_map(|r| r[i].as_i64()).collect();
                cw.write_batch(&vals, defs, None)
                    .map_err(|e| err(path, e))?;
            }
            ColumnWriter::ByteArrayColumnWriter(cw) => {
                let vals: Vec<ByteArray> = rows
                    .iter()
                    .filter_map(|r| {
                        r[i].as_str()
                            .map(|s| ByteArray::from(s.as_bytes().to_vec()))
                    })
                    .collect();
                cw.write_batch(&vals, defs, None)
                    .map_err(|e| err(path, e))?;
            }
            _ => return Err(err(path, "unexpected column type")),
        }
        col.close().map_err(|e| err(path, e))?;
        i += 1;
    }
    rg.close().map_err(|e| err(path, e))?;
    let file = w.into_inner().map_err(|e| err(path, e))?;
    file.sync_all().map_err(|source| Error::Io {
        op: "syncing",
        path: path.to_owned(),
        source,
    })
}

pub(crate) fn read(t: &Table, path: &Path) -> Result<Vec<Row>> {
    let f = File::open(path).map_err(|source| Error::Io {
        op: "opening",
        path: path.to_owned(),
        source,
    })?;
    let reader = SerializedFileReader::new(f).map_err(|e| err(path, e))?;
    let mut out = Vec::new();
    for row in reader.get_row_iter(None).map_err(|e| err(path, e))? {
        let row = row.map_err(|e| err(path, e))?;
        let mut r: Row = vec![Value::Null; t.columns.len()];
        for (name, field) in row.get_column_iter() {
            if let Some(i) = t.index(name) {
                r[i] = match field {
                    Field::Long(v) => Value::Int(*v),
                    Field::Str(s) => Value::Text(s.clone()),
                    _ => Value::Null,
                };
            }
        }
        out.push(r);
    }
    Ok(out)
}
