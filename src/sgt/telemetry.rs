//! Telemetry: time-series readings.
//!
//! | call | endpoint | limit the SDK handles |
//! |---|---|---|
//! | [`Telemetry::query`] | `GET /telemetry` | 31 days per call: longer ranges are split into windows and streamed as one ordered sequence |
//! | [`Telemetry::ingest`] | `POST /telemetry/ingest` | 1,000 readings per call: any number is chunked and sent with bounded concurrency |
//! | [`Telemetry::aggregate`] | `GET /telemetry/aggregate` | 366 days per call: split like `query`, on interval boundaries |
//! | [`Telemetry::export`] | `GET /telemetry/export` | none: for long ranges, returns a signed download URL |
//!
//! Ranges are half-open, as the API defines them: `from` inclusive, `to` exclusive. Windows are
//! consecutive half-open ranges too, so a reading exactly on a boundary is fetched once, never
//! twice or not at all.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{Client, DeviceId, SignedUrl, Wire};
use crate::List;
use crate::call::{Call, CallOptions};
use crate::envelope::{self, Envelope};
use crate::error::{Error, Result, TransportErrorKind};
use crate::transport::Request;
use crate::window::{check_range, windows};

/// The longest raw-reading window one `GET /telemetry` accepts.
pub const MAX_QUERY_WINDOW: TimeDelta = TimeDelta::days(31);
/// The longest window one `GET /telemetry/aggregate` accepts.
pub const MAX_AGGREGATE_WINDOW: TimeDelta = TimeDelta::days(366);
/// The most readings one `POST /telemetry/ingest` accepts.
pub const MAX_INGEST_BATCH: usize = 1_000;
/// Chunks in flight at once during an ingest, by default.
pub const DEFAULT_INGEST_CONCURRENCY: usize = 4;

/// One reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reading {
    /// The device that produced it.
    pub device_id: DeviceId,
    /// The metric (`power_kw`).
    pub metric: String,
    /// When it was taken.
    #[serde(
        deserialize_with = "crate::timestamp::required",
        serialize_with = "crate::timestamp::serialize"
    )]
    pub ts: DateTime<Utc>,
    /// The value.
    pub value: f64,
    /// A correction: this reading supersedes an earlier one with the same device, metric and
    /// timestamp (telemetry is append-only; corrections are new readings with this flag).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supersedes: bool,
}

impl Reading {
    /// A reading.
    pub fn new(
        device_id: impl Into<DeviceId>,
        metric: impl Into<String>,
        ts: DateTime<Utc>,
        value: f64,
    ) -> Self {
        Reading {
            device_id: device_id.into(),
            metric: metric.into(),
            ts,
            value,
            supersedes: false,
        }
    }

    /// Marks the reading as a correction of the earlier one at the same timestamp.
    #[must_use]
    pub fn superseding(mut self) -> Self {
        self.supersedes = true;
        self
    }

    /// Why the reading cannot be sent, if it cannot: no device id, no metric, or a value that
    /// is not a finite number.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if is_blank(self.device_id.as_str()) {
            Some("has no device_id")
        } else if is_blank(&self.metric) {
            Some("has no metric")
        } else if !self.value.is_finite() {
            Some("has a value that is not a finite number (JSON cannot carry NaN or infinity)")
        } else {
            None
        }
    }

    /// The error for the first reading that cannot be sent (naming its index), if one cannot:
    /// one pass, and no error is built for a sendable reading.
    pub(crate) fn first_unsendable(readings: &[Reading]) -> Option<Error> {
        readings
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.problem().map(|p| unsendable(i, p)))
    }
}

open_enum!(
    /// A server-side aggregation function.
    AggregateFn {
        /// Mean.
        Avg => "avg",
        /// Minimum.
        Min => "min",
        /// Maximum.
        Max => "max",
        /// Sum.
        Sum => "sum",
        /// 95th percentile.
        P95 => "p95",
        /// 99th percentile.
        P99 => "p99",
    }
);

/// An aggregation bucket width, sent as `30s`, `15m`, `1h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval(i64);

impl Interval {
    /// `n` seconds.
    pub const fn seconds(n: u32) -> Self {
        Interval(n as i64)
    }

    /// `n` minutes.
    pub const fn minutes(n: u32) -> Self {
        Interval((n as i64).saturating_mul(60))
    }

    /// `n` hours.
    pub const fn hours(n: u32) -> Self {
        Interval((n as i64).saturating_mul(3600))
    }

    /// `n` days.
    pub const fn days(n: u32) -> Self {
        Interval((n as i64).saturating_mul(86_400))
    }

    /// The width.
    pub fn as_delta(&self) -> TimeDelta {
        TimeDelta::try_seconds(self.0).unwrap_or(TimeDelta::MAX)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s != 0 && s % 86_400 == 0 {
            write!(f, "{}d", s / 86_400)
        } else if s != 0 && s % 3600 == 0 {
            write!(f, "{}h", s / 3600)
        } else if s != 0 && s % 60 == 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One aggregated bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AggregatePoint {
    /// The bucket's start.
    #[serde(deserialize_with = "crate::timestamp::required")]
    pub ts: DateTime<Utc>,
    /// The aggregate (`None` for a bucket with no readings, if the server sends `null`).
    #[serde(default)]
    pub value: Option<f64>,
}

open_enum!(
    /// The file format of an export.
    ExportFormat {
        /// Comma-separated values.
        Csv => "csv",
        /// Apache Parquet.
        Parquet => "parquet",
    }
);

/// A signed download location for an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Export {
    /// The signed URL. It grants access by itself: its `Debug` hides the signature.
    pub url: SignedUrl,
    /// When the URL stops working.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The file format.
    #[serde(default)]
    pub format: Option<ExportFormat>,
}

fn unsendable(index: usize, problem: &str) -> Error {
    Error::invalid_input(format!("reading {index} {problem}"))
}

/// Whether `s` is empty or all whitespace (`s.trim().is_empty()`), decided by the first byte when
/// it is ASCII and not whitespace, as nearly every id and metric is: checking a million readings
/// then costs no scan.
fn is_blank(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        // `char::is_whitespace` in ASCII: tab, line feed, vertical tab, form feed, return, space.
        Some(&b) if b.is_ascii() && !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ') => {
            false
        }
        Some(_) => s.trim().is_empty(),
    }
}

fn check_series(device_id: &DeviceId, metric: &str) -> Result<()> {
    if is_blank(device_id.as_str()) {
        return Err(Error::invalid_input("device_id is empty"));
    }
    if is_blank(metric) {
        return Err(Error::invalid_input("metric is empty"));
    }
    Ok(())
}

/// The telemetry of a client. Get one from [`Client::telemetry`].
#[derive(Debug, Clone)]
pub struct Telemetry {
    client: Client,
}

impl Telemetry {
    pub(crate) fn new(client: Client) -> Self {
        Telemetry { client }
    }

    /// Raw readings of one device and metric in `[from, to)`, in time order. Any range length:
    /// over 31 days it is split into windows, fetched one after the other as the stream is read.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use futures::TryStreamExt;
    /// let to = Utc::now();
    /// let readings: Vec<_> = sgt.telemetry()
    ///     .query("dev_42", "power_kw", to - Duration::days(90), to)
    ///     .items()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn query(
        &self,
        device_id: impl Into<DeviceId>,
        metric: impl Into<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> List<Reading, TelemetryFilter> {
        let filter = TelemetryFilter {
            device_id: device_id.into(),
            metric: metric.into(),
        };
        let problem = match check_series(&filter.device_id, &filter.metric) {
            Err(Error::InvalidInput(problem)) => Some(problem),
            _ => None,
        };
        self.client
            .list(&["telemetry"], filter)
            .windowed("from", "to", Some(MAX_QUERY_WINDOW))
            .range(from, to)
            .refuse(problem)
    }

    /// Server-side aggregates of one device and metric in `[from, to)`, one point per
    /// `interval`. Ranges over 366 days are split on interval boundaries (relative to `from`),
    /// so no bucket straddles two requests.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use iot_sdk::sgt::{AggregateFn, Interval};
    /// let to = Utc::now();
    /// let points = sgt.telemetry()
    ///     .aggregate("dev_42", "power_kw", to - Duration::hours(24), to, Interval::minutes(15), AggregateFn::Avg)
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn aggregate(
        &self,
        device_id: impl Into<DeviceId>,
        metric: impl Into<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        interval: Interval,
        func: AggregateFn,
    ) -> AggregateTelemetry {
        AggregateTelemetry {
            client: self.client.clone(),
            device_id: device_id.into(),
            metric: metric.into(),
            from,
            to,
            interval,
            func,
            opts: CallOptions::default(),
        }
    }

    /// A signed CSV or Parquet export of `[from, to)`, for ranges too long to query.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use iot_sdk::sgt::ExportFormat;
    /// let to = Utc::now();
    /// let export = sgt.telemetry()
    ///     .export("dev_42", "power_kw", to - Duration::days(400), to, ExportFormat::Parquet)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn export(
        &self,
        device_id: impl Into<DeviceId>,
        metric: impl Into<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        format: ExportFormat,
    ) -> Call<Export> {
        #[derive(Serialize)]
        struct Q {
            device_id: DeviceId,
            metric: String,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            format: ExportFormat,
        }
        let device_id = device_id.into();
        let metric = metric.into();
        let req = check_series(&device_id, &metric)
            .and_then(|()| check_range(from, to))
            .and_then(|()| {
                Request::new(Method::GET, segments!["telemetry", "export"]).query(&Q {
                    device_id,
                    metric,
                    from,
                    to,
                    format,
                })
            });
        Call::new(self.client.transport.clone(), req, Wire::call)
    }

    /// Ingests any number of readings: chunked to 1,000 a request, sent with bounded
    /// concurrency. Zero readings send nothing. See [`Ingest`] for what happens on failure.
    ///
    /// ```no_run
    /// # async fn demo(sgt: iot_sdk::sgt::Client, readings: Vec<iot_sdk::sgt::Reading>) -> iot_sdk::Result<()> {
    /// match sgt.telemetry().ingest(readings).send().await {
    ///     Ok(summary) => println!("{} accepted", summary.accepted),
    ///     Err(e) => {
    ///         println!("{} accepted; retry {} later", e.accepted(), e.retryable().len());
    ///         for r in e.rejected() {
    ///             println!("refused: {:?} {:?}", r.reading, r.message);
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn ingest<I: IntoIterator<Item = Reading>>(&self, readings: I) -> Ingest {
        Ingest {
            client: self.client.clone(),
            readings: readings.into_iter().collect(),
            chunk_size: MAX_INGEST_BATCH,
            concurrency: DEFAULT_INGEST_CONCURRENCY,
            progress: None,
            opts: CallOptions::default(),
        }
    }
}

impl Telemetry {
    /// A streaming ingest sink: readings one at a time, batched by count and linger, sent with
    /// bounded concurrency and backpressure, outcomes reported as a stream. See
    /// [`IngestSinkBuilder`](super::IngestSinkBuilder).
    pub fn sink(&self) -> super::IngestSinkBuilder {
        super::IngestSinkBuilder::new(self.client.clone())
    }
}

/// The series of [`Telemetry::query`] (`GET /telemetry`): one device and one metric.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TelemetryFilter {
    device_id: DeviceId,
    metric: String,
}

/// `GET /telemetry/aggregate` over any range.
#[derive(Debug, Clone)]
#[must_use = "an aggregate does nothing until sent"]
pub struct AggregateTelemetry {
    client: Client,
    device_id: DeviceId,
    metric: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    func: AggregateFn,
    opts: CallOptions,
}

impl AggregateTelemetry {
    call_options!();

    /// All points of the range, in time order (one request per 366-day window).
    pub async fn send(self) -> Result<Vec<AggregatePoint>> {
        check_series(&self.device_id, &self.metric)?;
        check_range(self.from, self.to)?;
        let width = self.interval.as_delta();
        if width <= TimeDelta::zero() {
            return Err(Error::invalid_input(
                "the aggregation interval must be positive",
            ));
        }
        if width > MAX_AGGREGATE_WINDOW {
            return Err(Error::invalid_input(format!(
                "the aggregation interval {} is longer than the 366-day maximum window",
                self.interval
            )));
        }
        // The largest whole number of intervals that fits in one window.
        let per_window = MAX_AGGREGATE_WINDOW
            .num_seconds()
            .checked_div(width.num_seconds().max(1))
            .unwrap_or(1);
        let window = TimeDelta::try_seconds(per_window.saturating_mul(width.num_seconds()))
            .unwrap_or(MAX_AGGREGATE_WINDOW);

        #[derive(Serialize)]
        struct Q<'a> {
            device_id: &'a DeviceId,
            metric: &'a str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
            interval: Interval,
            #[serde(rename = "fn")]
            func: &'a AggregateFn,
        }
        let mut points = Vec::new();
        for (from, to) in windows(self.from, self.to, window) {
            let req = Request::new(Method::GET, segments!["telemetry", "aggregate"]).query(&Q {
                device_id: &self.device_id,
                metric: &self.metric,
                from,
                to,
                interval: self.interval,
                func: &self.func,
            })?;
            let (mut part, _) = envelope::send_one::<Vec<AggregatePoint>>(
                Wire::ONE,
                &self.client.transport,
                &self.opts.apply(req),
            )
            .await?;
            points.append(&mut part);
        }
        Ok(points)
    }
}

impl std::future::IntoFuture for AggregateTelemetry {
    type Output = Result<Vec<AggregatePoint>>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// Progress of an ingest, reported after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestProgress {
    /// Readings the server accepted so far.
    pub accepted: u64,
    /// Readings in chunks that have finished (accepted, rejected or failed).
    pub done: u64,
    /// Readings in all.
    pub total: u64,
}

/// The outcome of an ingest in which every reading was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestSummary {
    /// Readings accepted (all of them).
    pub accepted: u64,
    /// Requests sent (chunks; retries not counted).
    pub requests: u64,
}

/// A reading the server refused individually; sending it again will not help.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RejectedReading {
    /// The reading, as given.
    pub reading: Reading,
    /// The server's code (`device_not_found`).
    pub code: Option<String>,
    /// The server's message.
    pub message: Option<String>,
}

/// An ingest in which not every reading was accepted. Every reading given to
/// [`Telemetry::ingest`] is either counted in [`IngestError::accepted`] or handed back in exactly
/// one of [`rejected`](IngestError::rejected), [`retryable`](IngestError::retryable) or
/// [`unconfirmed`](IngestError::unconfirmed): none is lost, and none the server confirmed is
/// handed back.
///
/// As an [`Error`] (through `?`), it is an [`Error::Vendor`].
#[derive(Debug)]
pub struct IngestError {
    accepted: u64,
    rejected: Vec<RejectedReading>,
    retryable: Vec<Reading>,
    unconfirmed: Vec<Reading>,
    error: Option<Error>,
}

impl IngestError {
    /// Readings the server accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Readings the server refused individually (an unknown device, …).
    pub fn rejected(&self) -> &[RejectedReading] {
        &self.rejected
    }

    /// Readings the server did not accept: their chunk failed in a way that proves it was not
    /// processed (a 4xx, a 429/503 after the last retry, a connection that never opened), or
    /// was never sent after an earlier chunk failed. Safe to send again.
    pub fn retryable(&self) -> &[Reading] {
        &self.retryable
    }

    /// Readings whose request may have reached the server (a timeout, a reset, a 504, an
    /// undecodable success): they may or may not be stored. Sending them again may duplicate
    /// them; check with a query first, or send them again marked as corrections.
    pub fn unconfirmed(&self) -> &[Reading] {
        &self.unconfirmed
    }

    /// The error that stopped the ingest (`None` when the only problem is individual
    /// rejections).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The readings handed back, in three groups: rejected, retryable, unconfirmed.
    pub fn into_parts(self) -> (Vec<RejectedReading>, Vec<Reading>, Vec<Reading>) {
        (self.rejected, self.retryable, self.unconfirmed)
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ingest incomplete: {} accepted, {} rejected, {} not sent or failed (retryable), {} unconfirmed",
            self.accepted,
            self.rejected.len(),
            self.retryable.len(),
            self.unconfirmed.len()
        )?;
        if let Some(e) = &self.error {
            write!(f, ": {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IngestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An [`IngestError`] as an [`Error::Vendor`], for `?` in a function returning
/// [`crate::Result`]; [`Error::vendor`] gets it back:
///
/// ```
/// use iot_sdk::sgt::IngestError;
///
/// fn handed_back(err: &iot_sdk::Error) -> usize {
///     err.vendor::<IngestError>()
///         .map_or(0, |e| e.rejected().len() + e.retryable().len() + e.unconfirmed().len())
/// }
/// ```
impl From<IngestError> for Error {
    fn from(e: IngestError) -> Self {
        Error::Vendor(Box::new(e))
    }
}

type ProgressFn = Arc<dyn Fn(IngestProgress) + Send + Sync>;

/// `POST /telemetry/ingest` for any number of readings.
///
/// Readings are sent in chunks (1,000 by default) with up to 4 chunks in flight. Chunks are
/// retried per the client's policy: a 429, 503, 500 or 502 is retried (the server did not
/// store the chunk), a timeout or 504 is not (it may have), so no chunk the server accepted is
/// sent twice by the SDK. When a chunk fails for good, no further chunks are started; those in
/// flight finish. With client-side pacing on, each chunk costs one unit of the `ingest` bucket
/// per reading. Chunks may complete out of order.
#[must_use = "an ingest does nothing until sent"]
pub struct Ingest {
    client: Client,
    readings: Vec<Reading>,
    chunk_size: usize,
    concurrency: usize,
    progress: Option<ProgressFn>,
    opts: CallOptions,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("readings", &self.readings.len())
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IngestResponse {
    #[serde(default)]
    accepted: Option<u64>,
    #[serde(default)]
    rejected: Option<u64>,
    #[serde(default)]
    errors: Vec<IngestResponseError>,
}

#[derive(Deserialize)]
struct IngestResponseError {
    index: usize,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// What became of one chunk of readings (shared by [`Ingest`] and the streaming sink without a
/// queue, `super::sink`).
pub(crate) enum ChunkOutcome {
    Done {
        accepted: u64,
        rejected: Vec<RejectedReading>,
        unconfirmed: Vec<Reading>,
    },
    Failed {
        readings: Vec<Reading>,
        error: Error,
        maybe_stored: bool,
    },
}

/// One reading the server refused, by its index in the request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IndexedRejection {
    pub(crate) index: usize,
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

/// What the server said about one `POST /telemetry/ingest` of `n` readings, by index into the
/// request: what [`send_ingest`] returns.
pub(crate) enum IngestAnswer {
    /// The server answered with a success.
    Answered {
        /// Readings accepted; 0 when the counts do not add up.
        accepted: u64,
        /// The readings the server named as rejected: each index below `n`, once, ascending.
        rejected: Vec<IndexedRejection>,
        /// Whether the counts add up. When they do not, which of the unnamed readings were
        /// stored is unknown: they are unconfirmed.
        consistent: bool,
    },
    /// The request failed; `maybe_stored` when it may nevertheless have been stored.
    Failed { error: Error, maybe_stored: bool },
}

impl Ingest {
    /// Readings per request, 1 to 1,000 (default 1,000).
    pub fn chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size;
        self
    }

    /// Chunks in flight at once, at least 1 (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Called after each chunk, for a progress bar.
    pub fn on_progress(mut self, f: impl Fn(IngestProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    call_options!();

    /// Sends every reading. `Ok` only when every reading was accepted.
    pub async fn send(self) -> std::result::Result<IngestSummary, IngestError> {
        let Ingest {
            client,
            readings,
            chunk_size,
            concurrency,
            progress,
            opts,
        } = self;
        let refuse = |readings: Vec<Reading>, e: Error| IngestError {
            accepted: 0,
            rejected: Vec::new(),
            retryable: readings,
            unconfirmed: Vec::new(),
            error: Some(e),
        };
        if chunk_size == 0 || chunk_size > MAX_INGEST_BATCH {
            let e = Error::invalid_input(format!(
                "chunk size {chunk_size} is outside 1..={MAX_INGEST_BATCH}"
            ));
            return Err(refuse(readings, e));
        }
        if let Some(e) = Reading::first_unsendable(&readings) {
            return Err(refuse(readings, e));
        }
        if readings.is_empty() {
            return Ok(IngestSummary {
                accepted: 0,
                requests: 0,
            });
        }

        let total = readings.len() as u64;
        let stop = AtomicBool::new(false);
        let accepted_so_far = AtomicU64::new(0);
        let done_so_far = AtomicU64::new(0);
        let requests = AtomicUsize::new(0);
        // Each chunk is serialized straight from the caller's vector (no reading is moved into a
        // chunk of its own); what became of each reading is settled by index afterwards. `None`:
        // not sent, because an earlier chunk failed for good.
        let (client, opts, progress) = (&client, &opts, &progress);
        let (stop, accepted_so_far, done_so_far, requests) =
            (&stop, &accepted_so_far, &done_so_far, &requests);
        let mut answers: Vec<(usize, Option<IngestAnswer>)> =
            futures::stream::iter(readings.chunks(chunk_size).enumerate())
                .map(|(i, chunk)| async move {
                    if stop.load(Ordering::SeqCst) {
                        return (i, None);
                    }
                    requests.fetch_add(1, Ordering::SeqCst);
                    let answer = match ingest_body(chunk) {
                        Ok(body) => send_ingest(client, body, chunk.len(), opts).await,
                        Err(error) => IngestAnswer::Failed {
                            error,
                            maybe_stored: false,
                        },
                    };
                    match &answer {
                        IngestAnswer::Answered { accepted, .. } => {
                            accepted_so_far.fetch_add(*accepted, Ordering::SeqCst);
                        }
                        IngestAnswer::Failed { .. } => stop.store(true, Ordering::SeqCst),
                    }
                    let n = chunk.len() as u64;
                    let done = done_so_far.fetch_add(n, Ordering::SeqCst).saturating_add(n);
                    if let Some(p) = progress {
                        p(IngestProgress {
                            accepted: accepted_so_far.load(Ordering::SeqCst),
                            done,
                            total,
                        });
                    }
                    (i, Some(answer))
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        answers.sort_by_key(|(i, _)| *i);

        let mut err = IngestError {
            accepted: 0,
            rejected: Vec::new(),
            retryable: Vec::new(),
            unconfirmed: Vec::new(),
            error: None,
        };
        // One answer per chunk, in order: each settles the next `chunk_size` readings.
        let mut rest = readings.into_iter();
        for (_, answer) in answers {
            let chunk = rest.by_ref().take(chunk_size);
            let Some(answer) = answer else {
                err.retryable.extend(chunk);
                continue;
            };
            match settle(chunk, answer) {
                ChunkOutcome::Done {
                    accepted,
                    mut rejected,
                    mut unconfirmed,
                } => {
                    err.accepted = err.accepted.saturating_add(accepted);
                    err.rejected.append(&mut rejected);
                    err.unconfirmed.append(&mut unconfirmed);
                }
                ChunkOutcome::Failed {
                    mut readings,
                    error,
                    maybe_stored,
                } => {
                    if maybe_stored {
                        err.unconfirmed.append(&mut readings);
                    } else {
                        err.retryable.append(&mut readings);
                    }
                    err.error.get_or_insert(error);
                }
            }
        }
        let requests = requests.load(Ordering::SeqCst) as u64;
        if err.rejected.is_empty() && err.retryable.is_empty() && err.unconfirmed.is_empty() {
            Ok(IngestSummary {
                accepted: err.accepted,
                requests,
            })
        } else {
            tracing::warn!(
                accepted = err.accepted,
                rejected = err.rejected.len(),
                retryable = err.retryable.len(),
                unconfirmed = err.unconfirmed.len(),
                "ingest incomplete"
            );
            Err(err)
        }
    }
}

/// Whether a failed chunk may nevertheless have been stored.
pub(crate) fn maybe_stored(e: &Error) -> bool {
    match e {
        Error::Transport(t) => t.kind() != TransportErrorKind::Connect,
        Error::Api(a) => a.status() == 504,
        // A success that did not decode: the server answered 2xx.
        Error::Decode(_) => true,
        _ => false,
    }
}

/// The body of `POST /telemetry/ingest` carrying `readings`: `{"readings":[…]}`.
/// Written into a buffer sized once for the usual reading, not grown by doubling.
pub(crate) fn ingest_body(readings: &[Reading]) -> Result<bytes::Bytes> {
    let mut out = Vec::with_capacity(
        readings
            .len()
            .saturating_mul(READING_BYTES)
            .saturating_add(16),
    );
    out.extend_from_slice(b"{\"readings\":");
    write_readings(&mut out, readings)
        .map_err(|e| Error::invalid_input(format!("request body: {e}")))?;
    out.push(b'}');
    Ok(out.into())
}

/// Appends `readings` to `out` as the JSON array `serde_json` writes for them (the same bytes,
/// property-tested), without serde's field-by-field machinery: the keys are written as the
/// constants they are, and only the values (strings escaped, the timestamp, the number) go
/// through `serde_json`. The one serializer of readings on the way to the API: the ingest
/// request body, and the store-and-forward queue's segments.
pub(crate) fn write_readings(out: &mut Vec<u8>, readings: &[Reading]) -> serde_json::Result<()> {
    out.push(b'[');
    for (i, r) in readings.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"device_id\":");
        r.device_id
            .as_str()
            .serialize(&mut serde_json::Serializer::new(&mut *out))?;
        out.extend_from_slice(b",\"metric\":");
        r.metric
            .serialize(&mut serde_json::Serializer::new(&mut *out))?;
        out.extend_from_slice(b",\"ts\":");
        crate::timestamp::serialize(&r.ts, &mut serde_json::Serializer::new(&mut *out))?;
        out.extend_from_slice(b",\"value\":");
        r.value
            .serialize(&mut serde_json::Serializer::new(&mut *out))?;
        if r.supersedes {
            out.extend_from_slice(b",\"supersedes\":true");
        }
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// About the bytes of one serialized reading (`{"device_id":"dev_0042","metric":"power_kw",
/// "ts":"2026-05-01T10:00:00Z","value":21.5}` is 82), to size buffers once.
pub(crate) const READING_BYTES: usize = 96;

/// Sends one chunk of at most [`MAX_INGEST_BATCH`] readings (paced against the `ingest` bucket)
/// and classifies what became of each reading: [`Ingest`]'s and the in-memory sink's way to
/// [`send_ingest`].
pub(crate) async fn send_chunk(
    client: &Client,
    chunk: Vec<Reading>,
    opts: &CallOptions,
) -> ChunkOutcome {
    let body = match ingest_body(&chunk) {
        Ok(body) => body,
        Err(error) => {
            return ChunkOutcome::Failed {
                readings: chunk,
                error,
                maybe_stored: false,
            };
        }
    };
    let n = chunk.len();
    settle(chunk.into_iter(), send_ingest(client, body, n, opts).await)
}

/// What became of each of the readings of one request, given the answer: the readings come in
/// the order they were sent and are all taken (those accepted are dropped), so that a caller
/// settling chunk after chunk from one iterator stays in step.
fn settle(chunk: impl Iterator<Item = Reading>, answer: IngestAnswer) -> ChunkOutcome {
    let (accepted, named, consistent) = match answer {
        IngestAnswer::Answered {
            accepted,
            rejected,
            consistent,
        } => (accepted, rejected, consistent),
        IngestAnswer::Failed {
            error,
            maybe_stored,
        } => {
            return ChunkOutcome::Failed {
                readings: chunk.collect(),
                error,
                maybe_stored,
            };
        }
    };
    if consistent && named.is_empty() {
        // Every reading accepted: nothing to hand back.
        chunk.for_each(drop);
        return ChunkOutcome::Done {
            accepted,
            rejected: Vec::new(),
            unconfirmed: Vec::new(),
        };
    }
    let mut rejected = Vec::with_capacity(named.len());
    let mut unconfirmed = Vec::new();
    // `named` is ascending, like the enumeration.
    let mut named = named.into_iter().peekable();
    for (i, reading) in chunk.enumerate() {
        match named.next_if(|r| r.index == i) {
            Some(r) => rejected.push(RejectedReading {
                reading,
                code: r.code,
                message: r.message,
            }),
            None if !consistent => unconfirmed.push(reading),
            None => {}
        }
    }
    ChunkOutcome::Done {
        accepted,
        rejected,
        unconfirmed,
    }
}

/// Sends one ingest request whose body (`{"readings":[…]}` with `n` readings) is already
/// built, paced as `n` units of the `ingest` bucket, and classifies the answer by index: the
/// one ingest sender of [`Ingest`] and of the streaming sink (with or without a queue).
pub(crate) async fn send_ingest(
    client: &Client,
    body: bytes::Bytes,
    n: usize,
    opts: &CallOptions,
) -> IngestAnswer {
    let req = Request::new(Method::POST, segments!["telemetry", "ingest"])
        .json_bytes(body)
        .pacing(
            super::RateBucket::Ingest,
            u32::try_from(n).unwrap_or(u32::MAX),
        );
    let resp =
        envelope::send_one::<IngestResponse>(Wire::ONE, &client.transport, &opts.apply(req)).await;
    let resp = match resp {
        Ok((data, _)) => data,
        Err(error) => {
            return IngestAnswer::Failed {
                maybe_stored: maybe_stored(&error),
                error,
            };
        }
    };
    // Readings the server names as rejected, with the first detail given for each;
    // out-of-range or repeated indices are ignored.
    let mut named: BTreeMap<usize, IndexedRejection> = BTreeMap::new();
    for e in resp.errors {
        if e.index < n {
            named.entry(e.index).or_insert(IndexedRejection {
                index: e.index,
                code: e.code,
                message: e.message,
            });
        }
    }
    let named_count = named.len() as u64;
    let sent = n as u64;
    let accepted = resp
        .accepted
        .unwrap_or_else(|| sent.saturating_sub(named_count));
    // A count the server cannot have meant (more than was sent) makes the outcome unconfirmed.
    let consistent = accepted.checked_add(named_count) == Some(sent)
        && resp.rejected.is_none_or(|r| r == named_count);
    if !consistent {
        // The counts do not add up: which readings were stored is unknown, so none of the
        // unnamed ones is reported as accepted or as safe to resend.
        tracing::warn!(
            chunk = n,
            accepted,
            named = named_count,
            "ingest response counts do not add up; readings reported as unconfirmed"
        );
    }
    IngestAnswer::Answered {
        accepted: if consistent { accepted } else { 0 },
        rejected: named.into_values().collect(),
        consistent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_print_in_the_largest_unit() {
        assert_eq!(Interval::minutes(15).to_string(), "15m");
        assert_eq!(Interval::minutes(60).to_string(), "1h");
        assert_eq!(Interval::hours(48).to_string(), "2d");
        assert_eq!(Interval::seconds(90).to_string(), "90s");
        assert_eq!(Interval::days(1).to_string(), "1d");
    }

    #[test]
    fn reading_checks() {
        let ok = Reading::new("dev_1", "m", instant("2026-01-01T00:00:00Z"), 1.0);
        let first_bad = |bad: Reading| {
            let batch = [ok.clone(), ok.clone(), ok.clone(), bad, ok.clone()];
            Reading::first_unsendable(&batch).map(|e| e.to_string())
        };
        assert!(Reading::first_unsendable(std::slice::from_ref(&ok)).is_none());
        let no_device = first_bad(Reading {
            device_id: "".into(),
            ..ok.clone()
        });
        assert!(
            no_device
                .as_deref()
                .is_some_and(|m| m.contains("reading 3 has no device_id")),
            "{no_device:?}"
        );
        let no_metric = first_bad(Reading {
            metric: " ".into(),
            ..ok.clone()
        });
        assert!(no_metric.is_some_and(|m| m.contains("reading 3 has no metric")));
        for value in [f64::NAN, f64::INFINITY] {
            let bad = first_bad(Reading {
                value,
                ..ok.clone()
            });
            assert!(bad.is_some_and(|m| m.contains("reading 3 has a value that is not a finite number")));
        }
    }

    proptest::proptest! {
        /// The readings' writer writes exactly what serde_json writes for them: any text
        /// (escapes, control characters, non-ASCII), any number (NaN and the infinities
        /// included: `null`), any timestamp chrono can hold, corrections or not.
        #[test]
        fn write_readings_writes_what_serde_json_writes(
            rows in proptest::collection::vec(
                (
                    proptest::prelude::any::<String>(),
                    "[a-z_\"\\\u{0}-\u{1f}\u{7f}\u{e9}\u{1F600}]{0,12}",
                    proptest::prop_oneof![
                        proptest::strategy::Strategy::prop_map(
                            proptest::prelude::any::<i64>(),
                            |s| s / 1_000,
                        ),
                        -62_135_596_800i64..253_402_300_800,
                    ],
                    0u32..2_000_000_000,
                    proptest::prop_oneof![
                        proptest::prelude::any::<f64>(),
                        proptest::strategy::Just(f64::NAN),
                        proptest::strategy::Just(f64::NEG_INFINITY),
                        proptest::strategy::Just(-0.0),
                        -1e3f64..1e3,
                    ],
                    proptest::prelude::any::<bool>(),
                ),
                0..6,
            )
        ) {
            let readings: Vec<Reading> = rows
                .into_iter()
                .filter_map(|(device, metric, secs, nanos, value, supersedes)| {
                    let ts = DateTime::<Utc>::from_timestamp(secs, nanos)?;
                    Some(Reading {
                        device_id: device.into(),
                        metric,
                        ts,
                        value,
                        supersedes,
                    })
                })
                .collect();
            let mut ours = Vec::new();
            write_readings(&mut ours, &readings).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&readings).unwrap()
            );
            #[derive(Serialize)]
            struct Body<'a> {
                readings: &'a [Reading],
            }
            let body = ingest_body(&readings).unwrap();
            let want = serde_json::to_vec(&Body { readings: &readings }).unwrap();
            proptest::prop_assert_eq!(body.as_ref(), want.as_slice());
        }

        /// The batch check names the first reading that trimming finds blank or whose value is
        /// not finite.
        #[test]
        fn first_unsendable_names_the_first_bad_reading(
            rows in proptest::collection::vec(
                (
                    "[ \t\u{a0}d]{0,2}",
                    "[ \u{3000}m]{0,2}",
                    proptest::prop_oneof![
                        proptest::strategy::Just(f64::NAN),
                        proptest::strategy::Just(f64::INFINITY),
                        -1e3f64..1e3,
                    ],
                ),
                0..8,
            )
        ) {
            let readings: Vec<Reading> = rows
                .into_iter()
                .map(|(d, m, v)| Reading::new(d, m, instant("2026-01-01T00:00:00Z"), v))
                .collect();
            let expected = readings
                .iter()
                .position(|r| {
                    r.device_id.as_str().trim().is_empty()
                        || r.metric.trim().is_empty()
                        || !r.value.is_finite()
                })
                .map(|i| i.to_string());
            // The first bad reading (by trimming, not the first-byte shortcut) is the one named.
            let named = Reading::first_unsendable(&readings).map(|e| {
                e.to_string()
                    .split_whitespace()
                    .skip_while(|w| *w != "reading")
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned()
            });
            proptest::prop_assert_eq!(named, expected);
        }

        /// The first-byte shortcut of `is_blank` agrees with trimming, whitespace of every kind
        /// included.
        #[test]
        fn is_blank_is_trim_is_empty(s in "[ \t\n\u{b}\u{c}\r\u{85}\u{a0}\u{2003}\u{3000}a-z0-9_\u{e9}]{0,6}") {
            proptest::prop_assert_eq!(is_blank(&s), s.trim().is_empty());
        }
    }

    #[test]
    fn supersedes_is_only_sent_when_set() {
        let r = Reading::new("dev_1", "m", instant("2026-01-01T00:00:00Z"), 1.5);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"device_id":"dev_1","metric":"m","ts":"2026-01-01T00:00:00Z","value":1.5}"#
        );
        assert!(
            serde_json::to_string(&r.superseding())
                .unwrap()
                .ends_with(r#""supersedes":true}"#)
        );
    }
}
