//! Resumable exports of a fleet's readings.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};

use super::checkpoint::{self, Checkpoint, SourceSpec, Spec, UnitKey, Unreachable};
use super::union::{Member, Sourced};
use super::{Fleet, FleetReading, MetricFilter, OutOfReach, SourceError, VendorKind};
use crate::error::{Error, Result};
use crate::window::{check_range, windows};

/// The columns of an export (the CSV header, the Parquet schema's fields), in order.
pub(crate) const COLUMNS: [&str; 8] = [
    "source",
    "vendor",
    "device_id",
    "metric",
    "ts",
    "value",
    "unit",
    "raw",
];

/// The output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// CSV (`readings.csv`), a header line then one line per reading.
    Csv,
    /// Parquet (`readings.parquet`), the same columns typed: `source`, `vendor`, `device_id`
    /// and `metric` UTF-8; `ts` a timestamp in microseconds, UTC; `value` a nullable float64;
    /// `unit` and `raw` nullable UTF-8 (null where the CSV has an empty field). Snappy
    /// compression. See [`Export`] for how it is written and resumed.
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    Parquet,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            #[cfg(feature = "parquet")]
            ExportFormat::Parquet => "parquet",
        }
    }

    /// The output file's name in the export's directory.
    fn file_name(self) -> &'static str {
        match self {
            ExportFormat::Csv => "readings.csv",
            #[cfg(feature = "parquet")]
            ExportFormat::Parquet => "readings.parquet",
        }
    }
}

/// Where an export stands, given to the [`Export::progress`] callback after each unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportProgress {
    /// Units (one device of one source over one window) finished, in this run and before.
    pub units_done: u64,
    /// Units in all.
    pub units_total: u64,
    /// Readings in the output.
    pub rows: u64,
    /// Units that failed in this run (to be retried by the next one).
    pub failed: u64,
    /// Units a vendor can never serve, found in this run and before (see
    /// [`ExportReport::unreachable`]).
    pub unreachable: u64,
}

/// A unit of an export that failed: which source, device and window, and why. It is done again
/// by the next run with the same arguments. (A unit the vendor can never serve is not a
/// failure but an [`UnreachableUnit`].)
#[derive(Debug)]
#[non_exhaustive]
pub struct UnitFailure {
    /// The source (and device) and the error.
    pub error: SourceError,
    /// The window, or `None` when the source's device list failed.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl fmt::Display for UnitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            Some((a, b)) => write!(f, "[{a}, {b}) {}", self.error),
            None => write!(f, "device list: {}", self.error),
        }
    }
}

/// A unit of an export that its vendor can never serve: a window out of the vendor's reach
/// (SiliconWit: older than its look-back, or more than 1,000 readings between the window's start
/// and now; see [`OutOfReach`]). It is a final outcome: the unit is done with no rows, recorded
/// in the checkpoint, reported by every later run, and never retried (the window only gets
/// further out of reach). Delete the export's directory to try again from scratch, e.g. after a
/// plan with a longer retention.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnreachableUnit {
    /// The source's label.
    pub source: String,
    /// Its vendor.
    pub vendor: VendorKind,
    /// The device.
    pub device_id: String,
    /// The unit's window, `[from, to)`.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// The oldest instant the vendor's answer covered.
    pub reachable_from: DateTime<Utc>,
}

impl fmt::Display for UnreachableUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.window;
        write!(
            f,
            "[{a}, {b}) source {} ({}), device {}: out of reach (the vendor serves from {} on)",
            self.source, self.vendor, self.device_id, self.reachable_from
        )
    }
}

/// What an export run did.
#[derive(Debug)]
#[non_exhaustive]
pub struct ExportReport {
    /// The output file.
    pub path: PathBuf,
    /// The checkpoint beside it.
    pub checkpoint: PathBuf,
    /// Whether this run continued an earlier one.
    pub resumed: bool,
    /// Readings in the output.
    pub rows: u64,
    /// Units in all.
    pub units_total: u64,
    /// Units written by this run.
    pub units_written: u64,
    /// Units still to do (failed, here or before): a run with the same arguments does them.
    pub pending: u64,
    /// Sources whose device list has never been read (their units are not counted yet).
    pub unlisted_sources: Vec<String>,
    /// What failed in this run (to be retried; not the unreachable units).
    pub failures: Vec<UnitFailure>,
    /// Every unit a vendor can never serve, found by this run or an earlier one (from the
    /// checkpoint), in the order they were found. Final: not retried, not pending.
    pub unreachable: Vec<UnreachableUnit>,
    /// How many of [`ExportReport::unreachable`] this run found (the others were in the
    /// checkpoint already).
    pub unreachable_new: u64,
}

impl ExportReport {
    /// Whether the export is finished: every unit of every source is done (its readings are in
    /// the output) or unreachable (its vendor can never serve it: see
    /// [`ExportReport::unreachable`]), so another run with the same arguments would write
    /// nothing. Nothing is pending and every source's device list was read. A complete export
    /// holds every reading its vendors can serve, not necessarily every reading of the range:
    /// check that [`ExportReport::unreachable`] is empty for that.
    pub fn is_complete(&self) -> bool {
        self.pending == 0 && self.unlisted_sources.is_empty()
    }
}

/// Where the test crash hook aborts the process. Not part of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPhase {
    /// Before the unit's rows are written.
    BeforeData,
    /// After the rows are durable, before the checkpoint.
    AfterData,
    /// After the new checkpoint's temporary file is durable, before the rename.
    CheckpointTemp,
    /// After the checkpoint.
    AfterCheckpoint,
    /// Parquet: after the final file's temporary is durable, before the rename (any unit).
    AssembleTemp,
    /// Parquet: after the final file's rename, before the checkpoint records it (any unit).
    Assembled,
}

/// A unit (in the main order) and a phase. Not part of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPoint {
    /// The unit's number in the main order.
    pub unit: u64,
    /// The phase.
    pub phase: CrashPhase,
}

type Progress = Arc<dyn Fn(&ExportProgress) + Send + Sync>;

/// An export of a fleet's readings in `[from, to)` to a directory: CSV (`readings.csv`) or,
/// with the feature `parquet`, Parquet (`readings.parquet`), with a checkpoint
/// (`….checkpoint.json`) beside it. Get one from [`Fleet::export`].
///
/// The work is split into units (one device of one source over one window of
/// [`Export::unit`], one day by default), done in a fixed order (window after window; in each,
/// source after source; in each, device after device by id), [`Fleet::concurrency`] units in
/// flight and written in order. After each unit the rows are made durable (`fsync`), then the
/// checkpoint is replaced atomically (temporary file in the same directory, `fsync`, rename,
/// `fsync` of the directory). Run again with the same arguments after a crash or Ctrl-C, the
/// export truncates the output to the length the checkpoint recorded and continues with the
/// next unit: every reading is in the output exactly once, and when no unit failed the file is
/// byte for byte the one an uninterrupted run writes.
///
/// A unit that fails (a vendor down, a device gone) does not stop the export: it is reported in
/// [`ExportReport::failures`], kept in the checkpoint, and done by the next run, after the rest
/// (its rows then come after the others). A source whose device list fails is listed again by
/// the next run. A unit its vendor can never serve ([`OutOfReach`]: a SiliconWit window
/// beyond its look-back) is not a failure but a final outcome: done with no rows, recorded in
/// the checkpoint, listed in [`ExportReport::unreachable`] by this run and every later one, and
/// never retried; it does not keep the export from being
/// [complete](ExportReport::is_complete). A finished export keeps its checkpoint, so running it
/// again writes nothing; delete the directory to start over. Arguments that differ from the
/// checkpoint's are refused.
///
/// # Parquet
///
/// A Parquet file ends in a footer, so it cannot be truncated back to a checkpoint and
/// appended to like the CSV. Rows are gathered instead into parts of at least
/// [`Export::parquet_part_rows`] rows (65,536 by default), each written whole to
/// `readings.parquet.parts/part-NNNNNN.parquet` (temporary file, `fsync`, rename, `fsync` of
/// the directory) when a unit brings the gathered rows to that size; the checkpoint (which
/// records how many parts are durable) is replaced only when no gathered row waits, so a crash
/// costs at most one part's units, which the next run fetches again. A re-run deletes any part
/// beyond the checkpoint's count and goes on from there. At the end of every run the final
/// `readings.parquet` is built from the parts in order (their rows re-read in batches and
/// written as row groups of at most 65,536 rows, to a temporary file, `fsync`, rename, so it
/// is always whole); when the export is [complete](ExportReport::is_complete) the checkpoint
/// records it and the parts are deleted. Writer properties are fixed (no time or host in the
/// metadata), so a killed and resumed export writes the same bytes as an uninterrupted one.
/// Timestamps are stored in microseconds: a sub-microsecond part (none of the three vendors
/// sends one) is dropped.
///
/// Memory: the readings of at most [`Fleet::concurrency`] units, plus each source's device ids;
/// for Parquet also the gathered rows of one part and, while the final file is built, one row
/// group. File writes are blocking calls on the task that drives the export.
///
/// ```no_run
/// # async fn demo(fleet: iot_sdk::fleet::Fleet) -> iot_sdk::Result<()> {
/// use chrono::{Duration, Utc};
/// let to = Utc::now();
/// let report = fleet
///     .export(to - Duration::days(365), to)
///     .progress(|p| eprintln!("{}/{} units, {} readings", p.units_done, p.units_total, p.rows))
///     .csv("fleet-export")
///     .await?;
/// for failure in &report.failures {
///     eprintln!("{failure}");
/// }
/// # Ok(()) }
/// ```
#[must_use = "an export does nothing until run"]
pub struct Export {
    fleet: Fleet,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    unit: TimeDelta,
    metrics: MetricFilter,
    progress: Option<Progress>,
    crash: Option<CrashPoint>,
    #[cfg_attr(
        not(feature = "parquet"),
        allow(dead_code, reason = "read by the Parquet sink only")
    )]
    part_rows: usize,
}

impl fmt::Debug for Export {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("fleet", &self.fleet)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("unit", &self.unit)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Export {
    pub(crate) fn new(fleet: Fleet, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        Export {
            fleet,
            from,
            to,
            unit: TimeDelta::days(1),
            metrics: MetricFilter::all(),
            progress: None,
            crash: None,
            part_rows: DEFAULT_PART_ROWS,
        }
    }

    /// The window of one unit of work (default one day; at least one second): the unit of
    /// what a crash can cost.
    pub fn unit(mut self, unit: TimeDelta) -> Self {
        self.unit = unit;
        self
    }

    /// The metrics of every source (default: each source's own [`Source::metrics`](super::Source::metrics)).
    pub fn metrics(mut self, metrics: MetricFilter) -> Self {
        self.metrics = metrics;
        self
    }

    /// Called after each unit.
    pub fn progress(mut self, f: impl Fn(&ExportProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Aborts the process at a point: for the crash tests only.
    #[doc(hidden)]
    pub fn crash_at(mut self, point: CrashPoint) -> Self {
        self.crash = Some(point);
        self
    }

    /// Parquet: the rows gathered before a part is written (default 65,536; at least 1): the
    /// most a crash costs, and the memory the gathered rows take. It changes how the parts are
    /// cut, not the final file's rows (nor, in the tests, its bytes; byte identity is promised
    /// only between runs with the same value). One row means a part (and a checkpoint) after
    /// every unit that has readings.
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub fn parquet_part_rows(mut self, rows: usize) -> Self {
        self.part_rows = rows.max(1);
        self
    }

    /// Runs the export to CSV: `dir/readings.csv`, checkpoint `dir/readings.csv.checkpoint.json`.
    pub async fn csv(self, dir: impl AsRef<Path>) -> Result<ExportReport> {
        self.run(dir.as_ref(), ExportFormat::Csv).await
    }

    /// Runs the export to Parquet: `dir/readings.parquet`, checkpoint
    /// `dir/readings.parquet.checkpoint.json`, parts in `dir/readings.parquet.parts/` until
    /// the export is complete (see [`Export`]).
    #[cfg(feature = "parquet")]
    #[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
    pub async fn parquet(self, dir: impl AsRef<Path>) -> Result<ExportReport> {
        self.run(dir.as_ref(), ExportFormat::Parquet).await
    }

    /// Runs the export in `format`.
    pub async fn run(self, dir: &Path, format: ExportFormat) -> Result<ExportReport> {
        check_range(self.from, self.to)?;
        if self.unit < TimeDelta::seconds(1) {
            return Err(Error::invalid_input(
                "an export's unit must be at least one second",
            ));
        }
        if self.fleet.members.is_empty() {
            return Err(Error::invalid_input("the fleet has no sources"));
        }
        fs::create_dir_all(dir)
            .map_err(|e| Error::invalid_input(format!("cannot create {}: {e}", dir.display())))?;
        let data_path = dir.join(format.file_name());
        let cp_path = dir.join(format!("{}.checkpoint.json", format.file_name()));
        let spec = self.spec(format);
        let mut failures = Vec::new();
        let (mut cp, resumed) = match checkpoint::load(&cp_path)? {
            Some(cp) => {
                if cp.spec != spec {
                    return Err(Error::invalid_input(format!(
                        "{} is the checkpoint of another export (range, unit, format, metrics \
                         or sources differ): use another directory, or delete it to start over",
                        cp_path.display()
                    )));
                }
                (cp, true)
            }
            None => (self.plan(spec, &mut failures).await, false),
        };
        let mut sink = open_sink(format, &data_path, resumed.then_some(&cp), self.part_rows)?;
        if !resumed {
            sink.save(&mut cp);
            checkpoint::store(&cp_path, &cp, || {})?;
        } else {
            self.list_late(&mut cp, &mut failures).await;
        }
        let mut run = Run {
            export: &self,
            cp,
            cp_path: &cp_path,
            sink: sink.as_mut(),
            failures,
            written: 0,
            unreachable_new: 0,
        };
        // Units that failed before this run are done again after the main order; those
        // failing in this run wait for the next one.
        let retry = run.cp.pending.len();
        run.main_pass().await?;
        run.pending_pass(retry).await?;
        run.sink.finish()?;
        run.checkpoint(None)?;
        run.publish()?;
        let Run {
            cp,
            failures,
            written,
            unreachable_new,
            ..
        } = run;
        let unlisted_sources = unlisted(&cp);
        let windows = self.windows();
        let unreachable = cp
            .unreachable
            .iter()
            .filter_map(|u| {
                let member = self
                    .fleet
                    .members
                    .iter()
                    .find(|m| *m.label == *u.unit.source)?;
                let window = *windows.get(usize::try_from(u.unit.window).ok()?)?;
                Some(UnreachableUnit {
                    source: u.unit.source.clone(),
                    vendor: member.vendor(),
                    device_id: u.unit.device.clone(),
                    window,
                    reachable_from: u.reachable_from,
                })
            })
            .collect();
        Ok(ExportReport {
            path: data_path,
            checkpoint: cp_path,
            resumed,
            rows: cp.rows,
            units_total: units_total(&cp, self.window_count()),
            units_written: written,
            pending: cp.pending.len() as u64,
            unlisted_sources,
            failures,
            unreachable,
            unreachable_new,
        })
    }

    fn windows(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        windows(self.from, self.to, self.unit).collect()
    }

    fn window_count(&self) -> u64 {
        self.windows().len() as u64
    }

    fn spec(&self, format: ExportFormat) -> Spec {
        Spec {
            from: self.from,
            to: self.to,
            unit_secs: self.unit.num_seconds(),
            format: format.as_str().to_owned(),
            metrics: self.metrics.names().map(<[String]>::to_vec),
            sources: self
                .fleet
                .members
                .iter()
                .map(|m| SourceSpec {
                    label: m.label.to_string(),
                    vendor: m.vendor().as_str().to_owned(),
                    metrics: m.source.metrics.names().map(<[String]>::to_vec),
                })
                .collect(),
        }
    }

    /// The first run's plan: every source's devices, sorted by id.
    async fn plan(&self, spec: Spec, failures: &mut Vec<UnitFailure>) -> Checkpoint {
        let lists = futures::stream::iter(self.fleet.members.iter().map(list_devices))
            .buffered(self.fleet.concurrency)
            .collect::<Vec<_>>()
            .await;
        let mut devices = BTreeMap::new();
        for (m, list) in self.fleet.members.iter().zip(lists) {
            let ids = match list {
                Ok(ids) => Some(ids),
                Err(error) => {
                    failures.push(UnitFailure {
                        error,
                        window: None,
                    });
                    None
                }
            };
            devices.insert(m.label.to_string(), ids);
        }
        Checkpoint {
            version: checkpoint::VERSION,
            spec,
            devices,
            late: BTreeMap::new(),
            next_unit: 0,
            pending: Vec::new(),
            unreachable: Vec::new(),
            data_len: 0,
            rows: 0,
            parts: 0,
            assembled: false,
        }
    }

    /// Lists the sources whose list failed before; their units join the pending ones.
    async fn list_late(&self, cp: &mut Checkpoint, failures: &mut Vec<UnitFailure>) {
        let windows = self.window_count();
        for m in &self.fleet.members {
            let label = m.label.to_string();
            let unlisted =
                matches!(cp.devices.get(&label), Some(None)) && !cp.late.contains_key(&label);
            if !unlisted {
                continue;
            }
            match list_devices(m).await {
                Ok(ids) => {
                    for window in 0..windows {
                        cp.pending.extend(ids.iter().map(|d| UnitKey {
                            window,
                            source: label.clone(),
                            device: d.clone(),
                        }));
                    }
                    cp.late.insert(label, ids);
                }
                Err(error) => failures.push(UnitFailure {
                    error,
                    window: None,
                }),
            }
        }
    }

    fn hook(&self, unit: u64, phase: CrashPhase) {
        let hit = match phase {
            CrashPhase::AssembleTemp | CrashPhase::Assembled => {
                self.crash.is_some_and(|c| c.phase == phase)
            }
            _ => self.crash == Some(CrashPoint { unit, phase }),
        };
        if hit {
            std::process::abort();
        }
    }
}

/// The default of [`Export::parquet_part_rows`].
const DEFAULT_PART_ROWS: usize = 65_536;

/// The sources whose device list was never read.
fn unlisted(cp: &Checkpoint) -> Vec<String> {
    cp.devices
        .iter()
        .filter(|(label, d)| d.is_none() && !cp.late.contains_key(*label))
        .map(|(label, _)| label.clone())
        .collect()
}

/// The units of the main order plus those of late sources.
fn units_total(cp: &Checkpoint, windows: u64) -> u64 {
    let devices: u64 = cp
        .devices
        .values()
        .map(|d| d.as_ref().map_or(0, |d| d.len() as u64))
        .chain(cp.late.values().map(|d| d.len() as u64))
        .fold(0, u64::saturating_add);
    devices.saturating_mul(windows)
}

async fn list_devices(m: &Member) -> std::result::Result<Vec<String>, SourceError> {
    let mut ids: Vec<String> = m
        .source
        .client
        .fleet_devices()
        .map_ok(|d| d.id)
        .try_collect()
        .await
        .map_err(|e| m.fail(None, e))?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The readings of one unit.
async fn fetch_unit(
    member: Member,
    device: String,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    metrics: MetricFilter,
) -> std::result::Result<Vec<Sourced<FleetReading>>, SourceError> {
    member
        .source
        .client
        .fleet_readings(&device, from, to, &metrics)
        .map_ok(|r| member.sourced(r))
        .try_collect()
        .await
        .map_err(|e| member.fail(Some(&device), e))
}

/// One run of an export.
struct Run<'a> {
    export: &'a Export,
    cp: Checkpoint,
    cp_path: &'a Path,
    sink: &'a mut dyn Sink,
    failures: Vec<UnitFailure>,
    written: u64,
    unreachable_new: u64,
}

impl Run<'_> {
    fn member(&self, label: &str) -> Option<&Member> {
        self.export
            .fleet
            .members
            .iter()
            .find(|m| &*m.label == label)
    }

    fn metrics_of(&self, m: &Member) -> MetricFilter {
        self.export.metrics.or(&m.source.metrics)
    }

    /// The main order: for each window, each source's devices of the plan.
    async fn main_pass(&mut self) -> Result<()> {
        let windows = self.export.windows();
        let order: Vec<(Member, String)> = self
            .export
            .fleet
            .members
            .iter()
            .filter_map(|m| {
                let ids = self.cp.devices.get(&*m.label)?.as_ref()?;
                Some(ids.iter().map(move |d| (m.clone(), d.clone())))
            })
            .flatten()
            .collect();
        let per_window = order.len() as u64;
        let total = per_window.saturating_mul(windows.len() as u64);
        if per_window == 0 || self.cp.next_unit >= total {
            return Ok(());
        }
        let export = self.export;
        let jobs = (self.cp.next_unit..total).filter_map(|i| {
            let w = usize::try_from(i.checked_div(per_window)?).ok()?;
            let j = usize::try_from(i.checked_rem(per_window)?).ok()?;
            let (member, device) = order.get(j)?.clone();
            let window = *windows.get(w)?;
            let metrics = export.metrics.or(&member.source.metrics);
            let key = UnitKey {
                window: w as u64,
                source: member.label.to_string(),
                device: device.clone(),
            };
            Some(async move {
                (
                    i,
                    key,
                    window,
                    fetch_unit(member, device, window, metrics).await,
                )
            })
        });
        let mut results = futures::stream::iter(jobs).buffered(self.export.fleet.concurrency);
        while let Some((i, key, window, result)) = results.next().await {
            self.export.hook(i, CrashPhase::BeforeData);
            let durable = self.record(key, window, result)?;
            self.cp.next_unit = i.saturating_add(1);
            self.export.hook(i, CrashPhase::AfterData);
            if durable {
                self.checkpoint(Some(i))?;
            }
            self.export.hook(i, CrashPhase::AfterCheckpoint);
            self.report(total);
        }
        Ok(())
    }

    /// The first `count` pending units (those pending when the run started), once each, in
    /// order.
    async fn pending_pass(&mut self, count: usize) -> Result<()> {
        let windows = self.export.windows();
        let total = units_total(&self.cp, windows.len() as u64);
        for _ in 0..count {
            if self.cp.pending.is_empty() {
                break;
            }
            let key = self.cp.pending.remove(0);
            let (Some(member), Some(window)) = (
                self.member(&key.source).cloned(),
                usize::try_from(key.window)
                    .ok()
                    .and_then(|w| windows.get(w).copied()),
            ) else {
                continue;
            };
            let metrics = self.metrics_of(&member);
            let result = fetch_unit(member, key.device.clone(), window, metrics).await;
            if self.record(key, window, result)? {
                self.checkpoint(None)?;
            }
            self.report(total);
        }
        Ok(())
    }

    /// Writes a unit's rows, or records its failure; whether the output is durable now.
    fn record(
        &mut self,
        key: UnitKey,
        window: (DateTime<Utc>, DateTime<Utc>),
        result: std::result::Result<Vec<Sourced<FleetReading>>, SourceError>,
    ) -> Result<bool> {
        match result {
            Ok(rows) => {
                let durable = self.sink.write_unit(&rows)?;
                self.cp.rows = self.cp.rows.saturating_add(rows.len() as u64);
                self.written = self.written.saturating_add(1);
                Ok(durable)
            }
            Err(error) => {
                // Out of the vendor's reach: final, never retried (the window only gets further
                // out of reach).
                if let Some(oor) = error.error.vendor::<OutOfReach>() {
                    self.cp.unreachable.push(Unreachable {
                        unit: key,
                        reachable_from: oor.reachable_from,
                    });
                    self.unreachable_new = self.unreachable_new.saturating_add(1);
                } else {
                    self.cp.pending.push(key);
                    self.failures.push(UnitFailure {
                        error,
                        window: Some(window),
                    });
                }
                self.sink.write_unit(&[])
            }
        }
    }

    /// After the run's last checkpoint: the final file (Parquet: built from the parts); when
    /// the export is complete, the checkpoint records it and the parts go.
    fn publish(&mut self) -> Result<()> {
        let complete = self.cp.pending.is_empty() && unlisted(&self.cp).is_empty();
        let export = self.export;
        let hook = |phase| export.hook(0, phase);
        if self.sink.publish(&mut self.cp, complete, &hook)? {
            self.checkpoint(None)?;
            self.sink.cleanup()?;
        }
        Ok(())
    }

    fn checkpoint(&mut self, unit: Option<u64>) -> Result<()> {
        self.sink.save(&mut self.cp);
        let export = self.export;
        checkpoint::store(self.cp_path, &self.cp, || {
            if let Some(i) = unit {
                export.hook(i, CrashPhase::CheckpointTemp);
            }
        })
    }

    fn report(&self, main_total: u64) {
        if let Some(progress) = &self.export.progress {
            let total = units_total(&self.cp, self.export.window_count()).max(main_total);
            let pending = self.cp.pending.len() as u64;
            let done = self
                .cp
                .next_unit
                .saturating_sub(pending.min(self.cp.next_unit));
            progress(&ExportProgress {
                units_done: done,
                units_total: total,
                rows: self.cp.rows,
                failed: self.failures.len() as u64,
                unreachable: self.cp.unreachable.len() as u64,
            });
        }
    }
}

/// Where the rows go.
pub(crate) trait Sink {
    /// Appends a unit's rows; whether everything written so far is durable now (and
    /// [`Sink::position`] says where it ends).
    fn write_unit(&mut self, rows: &[Sourced<FleetReading>]) -> Result<bool>;
    /// Makes everything durable.
    fn finish(&mut self) -> Result<()>;
    /// Records where the durable output ends in the checkpoint (`data_len`, `parts`).
    fn save(&self, cp: &mut Checkpoint);
    /// After the run's last checkpoint: makes the final file. Whether the checkpoint changed
    /// (and must be stored, then [`Sink::cleanup`] called). `hook` is the crash hook.
    fn publish(
        &mut self,
        cp: &mut Checkpoint,
        complete: bool,
        hook: &dyn Fn(CrashPhase),
    ) -> Result<bool> {
        let _ = (cp, complete, hook);
        Ok(false)
    }
    /// After the checkpoint [`Sink::publish`] changed is stored: removes what is not needed.
    fn cleanup(&mut self) -> Result<()> {
        Ok(())
    }
}

fn open_sink(
    format: ExportFormat,
    path: &Path,
    resume: Option<&Checkpoint>,
    part_rows: usize,
) -> Result<Box<dyn Sink>> {
    let _ = part_rows;
    match format {
        ExportFormat::Csv => Ok(Box::new(CsvSink::open(path, resume.map(|c| c.data_len))?)),
        #[cfg(feature = "parquet")]
        ExportFormat::Parquet => Ok(Box::new(super::parquet_sink::ParquetSink::open(
            path, part_rows, resume,
        )?)),
    }
}

pub(crate) fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::invalid_input(format!("{what} {}: {e}", path.display()))
}

/// The text of each column of a reading, as both formats write it.
pub(crate) struct RowText {
    pub(crate) ts: String,
    pub(crate) value: Option<f64>,
    pub(crate) raw: Option<String>,
}

pub(crate) fn row_text(r: &FleetReading) -> RowText {
    RowText {
        ts: r.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        value: r.value,
        raw: r.raw.as_ref().map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

/// Appends rows to one CSV file.
struct CsvSink {
    path: PathBuf,
    file: File,
    len: u64,
}

impl CsvSink {
    fn open(path: &Path, resume: Option<u64>) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io("cannot open", path, e))?;
        let len = match resume {
            Some(len) => {
                let actual = file
                    .metadata()
                    .map_err(|e| io("cannot read", path, e))?
                    .len();
                if actual < len {
                    return Err(Error::invalid_input(format!(
                        "{} is {actual} bytes, shorter than the {len} its checkpoint recorded: \
                         it was changed outside the export; delete the directory to start over",
                        path.display()
                    )));
                }
                file.set_len(len)
                    .map_err(|e| io("cannot truncate", path, e))?;
                len
            }
            None => {
                file.set_len(0)
                    .map_err(|e| io("cannot truncate", path, e))?;
                0
            }
        };
        file.seek(SeekFrom::Start(len))
            .map_err(|e| io("cannot seek", path, e))?;
        let mut sink = CsvSink {
            path: path.to_owned(),
            file,
            len,
        };
        if resume.is_none() {
            let header = encode(std::iter::once(COLUMNS.map(str::to_owned).to_vec()))?;
            sink.append(&header)?;
            checkpoint::sync_dir(path)?;
        } else {
            sink.file
                .sync_all()
                .map_err(|e| io("cannot sync", path, e))?;
        }
        Ok(sink)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io("cannot write", &self.path, e))?;
        self.len = self.len.saturating_add(bytes.len() as u64);
        Ok(())
    }
}

/// CSV lines of records.
fn encode(records: impl Iterator<Item = Vec<String>>) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in records {
        w.write_record(&r)
            .map_err(|e| Error::invalid_input(format!("cannot encode a CSV row: {e}")))?;
    }
    w.into_inner()
        .map_err(|e| Error::invalid_input(format!("cannot encode CSV rows: {e}")))
}

/// A reading as the CSV columns.
pub(crate) fn csv_record(r: &Sourced<FleetReading>) -> Vec<String> {
    let t = row_text(&r.item);
    vec![
        r.source.to_string(),
        r.item.vendor.as_str().to_owned(),
        r.item.device_id.clone(),
        r.item.metric.clone(),
        t.ts,
        t.value.map(|v| v.to_string()).unwrap_or_default(),
        r.item.unit.unwrap_or_default().to_owned(),
        t.raw.unwrap_or_default(),
    ]
}

impl Sink for CsvSink {
    fn write_unit(&mut self, rows: &[Sourced<FleetReading>]) -> Result<bool> {
        if !rows.is_empty() {
            let bytes = encode(rows.iter().map(csv_record))?;
            self.append(&bytes)?;
        }
        Ok(true)
    }

    fn finish(&mut self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| io("cannot sync", &self.path, e))
    }

    fn save(&self, cp: &mut Checkpoint) {
        cp.data_len = self.len;
    }
}
