//! A run's open part of one table: pages are appended to one staging file, each page synced
//! before the manifest records the file's new committed length. A killed run's staging file
//! is cut back to that length when the directory is opened again, so it holds exactly the
//! committed pages. Completing a part turns the staging file into the part: JSONL and CSV are
//! renamed; Parquet is staged as an Arrow IPC stream (which, unlike Parquet, can be appended
//! to and read back when cut short) and written once as Parquet at the end.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::Path;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use bridge_store::tables::{Row, Table};

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
    /// Arrow record batches, an IPC stream, and their schema.
    Arrow(Box<ArrowStaging>),
}

/// The IPC stream a Parquet part is staged in.
pub(crate) struct ArrowStaging {
    writer: StreamWriter<BufWriter<File>>,
    schema: arrow_schema::SchemaRef,
}

impl std::fmt::Debug for ArrowStaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowStaging").finish_non_exhaustive()
    }
}

impl Staging {
    /// Creates the staging file for `t` and writes what precedes the rows (a CSV header, the
    /// IPC schema); answers it with its length so far, synced.
    pub(crate) fn create(format: FileFormat, t: &Table, path: &Path) -> Result<(Self, u64)> {
        let mut s = match TextWriter::create(format, t, path)? {
            Some(w) => Staging::Text(w),
            None => {
                let file = File::create(path).map_err(io("creating", path))?;
                let schema = parquet_file::schema(t);
                let writer =
                    StreamWriter::try_new(BufWriter::with_capacity(WRITE_BUFFER, file), &schema)
                        .map_err(|e| err(path, e))?;
                Staging::Arrow(Box::new(ArrowStaging { writer, schema }))
            }
        };
        let len = s.sync(path)?;
        Ok((s, len))
    }

    /// Appends one page's rows (not yet synced).
    pub(crate) fn append(&mut self, t: &Table, rows: &[Row], path: &Path) -> Result<()> {
        match self {
            Staging::Text(w) => w.write(t, rows, path),
            Staging::Arrow(a) => {
                let batch =
                    parquet_file::record_batch(t, &a.schema, rows).map_err(|e| err(path, e))?;
                a.writer.write(&batch).map_err(|e| err(path, e))
            }
        }
    }

    /// Writes out what is buffered and syncs the file; answers its length.
    pub(crate) fn sync(&mut self, path: &Path) -> Result<u64> {
        let file = match self {
            Staging::Text(w) => w.flush(path)?,
            Staging::Arrow(a) => {
                a.writer.flush().map_err(|e| err(path, e))?;
                a.writer.get_ref().get_ref()
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

/// The record batches of a Parquet part's staged Arrow IPC stream, as far as it was synced.
fn batches(path: &Path) -> Result<impl Iterator<Item = Result<arrow_array::RecordBatch>>> {
    let file = File::open(path).map_err(io("opening", path))?;
    let reader =
        StreamReader::try_new(std::io::BufReader::new(file), None).map_err(|e| err(path, e))?;
    Ok(reader.map(move |b| b.map_err(|e| err(path, e))))
}

/// The committed rows of a synced staging file.
pub(crate) fn read(format: FileFormat, t: &Table, path: &Path) -> Result<Vec<Row>> {
    match format {
        FileFormat::Jsonl | FileFormat::Csv => crate::part::read_part(format, t, path),
        FileFormat::Parquet => {
            let mut out = Vec::new();
            for batch in batches(path)? {
                out.extend(parquet_file::batch_rows(t, &batch?, path)?);
            }
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
            let staged = batches(staging)?;
            let mut w = parquet_file::Writer::create(
                t,
                File::create(&tmp).map_err(io("creating", &tmp))?,
                &tmp,
            )?;
            for batch in staged {
                w.write_batch(&batch?, &tmp)?;
            }
            w.finish(&tmp)?.sync_all().map_err(io("syncing", &tmp))?;
            fs::rename(&tmp, final_path).map_err(io("renaming", &tmp))
        }
    }
}
