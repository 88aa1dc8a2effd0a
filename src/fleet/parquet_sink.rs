//! Parquet exports (feature `parquet`): parts of whole units, made into one file at the end of
//! each run. See [`Export`](super::Export) for the design.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::FleetReading;
use super::checkpoint::{self, Checkpoint};
use super::export::{COLUMNS, CrashPhase, Sink, io, row_text};
use super::union::Sourced;
use crate::error::{Error, Result};

/// Rows in a row group of the final file (and the most of one part's row groups).
const ROW_GROUP_ROWS: usize = 65_536;
/// Rows read from a part at a time while the final file is built.
const READ_BATCH_ROWS: usize = 8_192;

/// The schema: [`COLUMNS`], typed.
pub(crate) fn schema() -> SchemaRef {
    let [source, vendor, device_id, metric, ts, value, unit, raw] = COLUMNS;
    Arc::new(Schema::new(vec![
        Field::new(source, DataType::Utf8, false),
        Field::new(vendor, DataType::Utf8, false),
        Field::new(device_id, DataType::Utf8, false),
        Field::new(metric, DataType::Utf8, false),
        Field::new(
            ts,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(value, DataType::Float64, true),
        Field::new(unit, DataType::Utf8, true),
        Field::new(raw, DataType::Utf8, true),
    ]))
}

/// Fixed writer properties: the same bytes for the same rows, every run (the default
/// `created_by` names the parquet crate's version, nothing of the time or host).
fn props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

fn pq(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("{what} {}: {e}", path.display()))
}

/// The gathered rows of the next part, column by column.
struct Columns {
    source: StringBuilder,
    vendor: StringBuilder,
    device_id: StringBuilder,
    metric: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    value: Float64Builder,
    unit: StringBuilder,
    raw: StringBuilder,
    rows: usize,
}

impl Columns {
    fn new() -> Self {
        Columns {
            source: StringBuilder::new(),
            vendor: StringBuilder::new(),
            device_id: StringBuilder::new(),
            metric: StringBuilder::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            value: Float64Builder::new(),
            unit: StringBuilder::new(),
            raw: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, r: &Sourced<FleetReading>) {
        let t = row_text(&r.item);
        self.source.append_value(&*r.source);
        self.vendor.append_value(r.item.vendor.as_str());
        self.device_id.append_value(&r.item.device_id);
        self.metric.append_value(&r.item.metric);
        self.ts.append_value(r.item.ts.timestamp_micros());
        self.value.append_option(t.value);
        self.unit.append_option(r.item.unit);
        self.raw.append_option(t.raw);
        self.rows = self.rows.saturating_add(1);
    }

    /// The gathered rows as one batch; the builders are empty again.
    fn take(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.source.finish()),
            Arc::new(self.vendor.finish()),
            Arc::new(self.device_id.finish()),
            Arc::new(self.metric.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.raw.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), columns)
            .map_err(|e| Error::invalid_input(format!("cannot make a Parquet batch: {e}")))
    }
}

/// The directory of the parts of `path`.
fn parts_dir(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".parts");
    path.with_file_name(name)
}

fn part_name(i: u64) -> String {
    format!("part-{i:06}.parquet")
}

fn remove_dir_if_any(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => checkpoint::sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", dir, e)),
    }
}

fn remove_file_if_any(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("cannot remove", path, e)),
    }
}

/// Writes `batches` to `tmp` as one Parquet file, durable; its length.
fn write_file(tmp: &Path, batches: impl Iterator<Item = Result<RecordBatch>>) -> Result<u64> {
    let file = File::create(tmp).map_err(|e| io("cannot create", tmp, e))?;
    let mut w = ArrowWriter::try_new(file, schema(), Some(props()))
        .map_err(|e| pq("cannot write", tmp, e))?;
    for batch in batches {
        w.write(&batch?).map_err(|e| pq("cannot write", tmp, e))?;
    }
    let file = w.into_inner().map_err(|e| pq("cannot write", tmp, e))?;
    file.sync_all().map_err(|e| io("cannot sync", tmp, e))?;
    Ok(file
        .metadata()
        .map_err(|e| io("cannot read", tmp, e))?
        .len())
}

/// Writes a Parquet export: parts, then `readings.parquet`.
pub(crate) struct ParquetSink {
    path: PathBuf,
    parts_dir: PathBuf,
    gathered: Columns,
    part_rows: usize,
    parts: u64,
    parts_len: u64,
}

impl ParquetSink {
    pub(crate) fn open(path: &Path, part_rows: usize, resume: Option<&Checkpoint>) -> Result<Self> {
        let parts_dir = parts_dir(path);
        let (parts, parts_len) = match resume {
            None => {
                // A new export: nothing of an earlier one (whose checkpoint is gone) stays.
                remove_dir_if_any(&parts_dir)?;
                remove_file_if_any(path)?;
                remove_file_if_any(&checkpoint::temp_path(path))?;
                (0, 0)
            }
            // Complete: the final file is made; parts left by a crash while they were being
            // removed go now.
            Some(cp) if cp.assembled => {
                remove_dir_if_any(&parts_dir)?;
                (cp.parts, cp.data_len)
            }
            Some(cp) => {
                let keep: Vec<String> = (0..cp.parts).map(part_name).collect();
                for name in &keep {
                    if !parts_dir.join(name).is_file() {
                        return Err(Error::invalid_input(format!(
                            "{} is missing though its checkpoint recorded it: it was changed \
                             outside the export; delete the directory to start over",
                            parts_dir.join(name).display()
                        )));
                    }
                }
                // A part written after the last checkpoint (a crash before it) or a
                // temporary file: the units are done again.
                let entries =
                    fs::read_dir(&parts_dir).map_err(|e| io("cannot read", &parts_dir, e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| io("cannot read", &parts_dir, e))?;
                    let name = entry.file_name();
                    if !keep.iter().any(|k| name.to_str() == Some(k.as_str())) {
                        let p = entry.path();
                        fs::remove_file(&p).map_err(|e| io("cannot remove", &p, e))?;
                    }
                }
                (cp.parts, cp.data_len)
            }
        };
        if resume.is_none_or(|cp| !cp.assembled) {
            fs::create_dir_all(&parts_dir).map_err(|e| io("cannot create", &parts_dir, e))?;
            checkpoint::sync_dir(&parts_dir)?;
            // The parts directory itself (`sync_dir` syncs the parent of the path it is given).
            checkpoint::sync_dir(&parts_dir.join(part_name(0)))?;
        }
        Ok(ParquetSink {
            path: path.to_owned(),
            parts_dir,
            gathered: Columns::new(),
            part_rows: part_rows.max(1),
            parts,
            parts_len,
        })
    }

    /// Writes the gathered rows as the next part, durable.
    fn flush(&mut self) -> Result<()> {
        if self.gathered.rows == 0 {
            return Ok(());
        }
        let batch = self.gathered.take()?;
        let part = self.parts_dir.join(part_name(self.parts));
        let tmp = checkpoint::temp_path(&part);
        let len = write_file(&tmp, std::iter::once(Ok(batch)))?;
        fs::rename(&tmp, &part).map_err(|e| io("cannot rename", &tmp, e))?;
        checkpoint::sync_dir(&part)?;
        self.parts = self.parts.saturating_add(1);
        self.parts_len = self.parts_len.saturating_add(len);
        Ok(())
    }

    /// The batches of every part, in order.
    fn part_batches(&self) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        (0..self.parts).flat_map(move |i| {
            let part = self.parts_dir.join(part_name(i));
            let reader = File::open(&part)
                .map_err(|e| io("cannot open", &part, e))
                .and_then(|f| {
                    ParquetRecordBatchReaderBuilder::try_new(f)
                        .and_then(|b| b.with_batch_size(READ_BATCH_ROWS).build())
                        .map_err(|e| pq("cannot read", &part, e))
                });
            let batches: Box<dyn Iterator<Item = Result<RecordBatch>>> = match reader {
                Ok(r) => Box::new(r.map(move |b| b.map_err(|e| pq("cannot read", &part, e)))),
                Err(e) => Box::new(std::iter::once(Err(e))),
            };
            batches
        })
    }
}

impl Sink for ParquetSink {
    fn write_unit(&mut self, rows: &[Sourced<FleetReading>]) -> Result<bool> {
        for r in rows {
            self.gathered.push(r);
        }
        if self.gathered.rows >= self.part_rows {
            self.flush()?;
        }
        // Durable when no gathered row waits for its part.
        Ok(self.gathered.rows == 0)
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()
    }

    fn save(&self, cp: &mut Checkpoint) {
        cp.parts = self.parts;
        cp.data_len = self.parts_len;
    }

    fn publish(
        &mut self,
        cp: &mut Checkpoint,
        complete: bool,
        hook: &dyn Fn(CrashPhase),
    ) -> Result<bool> {
        if cp.assembled {
            return Ok(false);
        }
        let tmp = checkpoint::temp_path(&self.path);
        write_file(&tmp, self.part_batches())?;
        hook(CrashPhase::AssembleTemp);
        fs::rename(&tmp, &self.path).map_err(|e| io("cannot rename", &tmp, e))?;
        checkpoint::sync_dir(&self.path)?;
        hook(CrashPhase::Assembled);
        if complete {
            cp.assembled = true;
        }
        Ok(complete)
    }

    fn cleanup(&mut self) -> Result<()> {
        remove_dir_if_any(&self.parts_dir)
    }
}
