//! The streaming ingest sink: readings one at a time, forever.
//!
//! [`Telemetry::sink`](super::Telemetry::sink) starts a background task that batches readings
//! into `POST /telemetry/ingest` requests by count (at most [`MAX_INGEST_BATCH`]) and by time (a
//! linger, like a message producer's), sends up to `concurrency` batches at once through the
//! client (so the client's retries and its pacing of the `ingest` bucket apply), and reports
//! what became of every batch on an [`IngestReports`] stream, with the three-way accounting of
//! [`Ingest`](super::Ingest): accepted, rejected, and handed back as retryable or unconfirmed.
//!
//! **Backpressure.** Without a queue, the sink holds at most
//! [`capacity`](IngestSinkBuilder::capacity) readings (buffered plus in requests);
//! [`IngestSink::send`] waits while it is full. The report stream has a small buffer too: read
//! it, or drop it (then reports are discarded); a report stream that is kept but never read
//! stops the sink once its buffer is full.
//!
//! **Store-and-forward** (feature `store-forward`): with a `Queue` (`iot_sdk::sgt::store`), every
//! reading is written to its SQLite file before `send` returns and is sent from there; memory
//! holds only the batches in requests (`concurrency` × `batch_size` readings), the file holds
//! the rest up to its bound. Each `send`/`send_batch` call's readings are serialized once, in
//! the call, and stored as the JSON they are sent as (segments of at most `batch_size`); a
//! request joins consecutive segments, so a few large `send_batch` calls are much cheaper than
//! many single `send`s. Retryable and unconfirmed readings stay in the file and are sent
//! again after a pause, so nothing is handed back: see the `store` module for the
//! at-least-once promise.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Sleep;

use super::Client;
#[cfg(feature = "store-forward")]
use super::store::Queue;
#[cfg(feature = "store-forward")]
use super::telemetry::send_ingest;
use super::telemetry::{ChunkOutcome, MAX_INGEST_BATCH, Reading, RejectedReading, send_chunk};
use crate::call::CallOptions;
use crate::error::{Error, Result};

/// Readings per request by default (the spec's maximum).
pub const DEFAULT_SINK_BATCH: usize = MAX_INGEST_BATCH;
/// How long a partial batch waits for more readings by default.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);
/// Readings a sink without a queue holds at most (buffered plus in requests), by default.
pub const DEFAULT_SINK_CAPACITY: usize = 10_000;
/// Reports buffered for the [`IngestReports`] reader.
const REPORT_BUFFER: usize = 16;

/// Why a reading was not taken by the sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink was closed ([`IngestSink::close`]) or its task ended.
    #[error("the ingest sink is closed")]
    Closed,
    /// The reading cannot be sent as it is (no device id, no metric, a value that is not a
    /// finite number).
    #[error(transparent)]
    Invalid(Error),
    /// The store-and-forward queue holds its maximum and its policy is
    /// `FullPolicy::Refuse`: nothing of this batch was written.
    #[error(
        "the store-and-forward queue is full ({max} readings) and refuses new readings; wait for it to drain or raise max_readings"
    )]
    QueueFull {
        /// The queue's bound.
        max: u64,
    },
    /// The store-and-forward queue's file could not be read or written.
    #[error("store-and-forward queue: {0}")]
    Store(String),
}

/// A [`SinkError`] as an [`Error::Vendor`], for `?` in a function returning [`crate::Result`].
impl From<SinkError> for Error {
    fn from(e: SinkError) -> Self {
        Error::Vendor(Box::new(e))
    }
}

/// What became of one batch.
#[derive(Debug)]
#[non_exhaustive]
pub struct IngestReport {
    /// Readings in the batch.
    pub readings: u64,
    /// Readings the server accepted.
    pub accepted: u64,
    /// Of `accepted`, readings resent after an earlier request's outcome was unknown (queue
    /// only): the server may hold them twice.
    pub possibly_duplicated: u64,
    /// Readings the server refused individually; sending them again will not help.
    pub rejected: Vec<RejectedReading>,
    /// Handed back (no queue): the request failed in a way that proves the server did not
    /// store them. Safe to send again.
    pub retryable: Vec<Reading>,
    /// Handed back (no queue): the request may have reached the server (timeout, reset, 504,
    /// counts that do not add up). Sending them again may duplicate them.
    pub unconfirmed: Vec<Reading>,
    /// Queued again for another request (queue only: the retryable and unconfirmed ones).
    pub requeued: u64,
    /// The error that failed the request, if one did.
    pub error: Option<Error>,
}

/// Counters of a sink since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SinkStats {
    /// Readings taken by [`IngestSink::send`] and its variants.
    pub produced: u64,
    /// Readings the server accepted.
    pub accepted: u64,
    /// Of `accepted`, readings resent after an unknown outcome (queue only).
    pub possibly_duplicated: u64,
    /// Readings the server refused individually.
    pub rejected: u64,
    /// Readings handed back as retryable (no queue).
    pub retryable: u64,
    /// Readings handed back as unconfirmed (no queue).
    pub unconfirmed: u64,
    /// Readings queued again after a failed request (queue only; one reading may count more
    /// than once).
    pub requeued: u64,
    /// Requests sent (batches; the client's retries not counted).
    pub requests: u64,
    /// Readings held in memory now: buffered plus in requests.
    pub held: u64,
    /// The most readings held in memory at once.
    pub peak_held: u64,
}

#[derive(Default)]
struct Counters {
    produced: AtomicU64,
    accepted: AtomicU64,
    possibly_duplicated: AtomicU64,
    rejected: AtomicU64,
    retryable: AtomicU64,
    unconfirmed: AtomicU64,
    requeued: AtomicU64,
    requests: AtomicU64,
    held: AtomicU64,
    peak_held: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SinkStats {
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        SinkStats {
            produced: get(&self.produced),
            accepted: get(&self.accepted),
            possibly_duplicated: get(&self.possibly_duplicated),
            rejected: get(&self.rejected),
            retryable: get(&self.retryable),
            unconfirmed: get(&self.unconfirmed),
            requeued: get(&self.requeued),
            requests: get(&self.requests),
            held: get(&self.held),
            peak_held: get(&self.peak_held),
        }
    }

    fn set_held(&self, held: u64) {
        self.held.store(held, Ordering::SeqCst);
        self.peak_held.fetch_max(held, Ordering::SeqCst);
    }

    fn count(&self, r: &IngestReport) {
        let add = |a: &AtomicU64, n: u64| a.fetch_add(n, Ordering::SeqCst);
        add(&self.accepted, r.accepted);
        add(&self.possibly_duplicated, r.possibly_duplicated);
        add(&self.rejected, r.rejected.len() as u64);
        add(&self.retryable, r.retryable.len() as u64);
        add(&self.unconfirmed, r.unconfirmed.len() as u64);
        add(&self.requeued, r.requeued);
    }
}

struct Shared {
    counters: Counters,
    closed: AtomicBool,
    /// Free places for readings (no queue).
    room: Semaphore,
}

enum Cmd {
    /// Readings to buffer (no queue).
    Readings(Vec<Reading>),
    /// Rows were committed to the queue.
    #[cfg(feature = "store-forward")]
    Stored,
    /// Completes when every reading given before it is resolved; `target` is the queue's last
    /// `seq` then (queue only).
    Flush {
        target: u64,
        done: oneshot::Sender<()>,
    },
    /// Stops taking readings, drains, ends the task.
    Close(oneshot::Sender<()>),
}

/// Builds an ingest sink. Get one from [`Telemetry::sink`](super::Telemetry::sink).
#[must_use = "a sink does nothing until started"]
pub struct IngestSinkBuilder {
    client: Client,
    batch_size: usize,
    linger: Duration,
    concurrency: usize,
    capacity: usize,
    backoff: (Duration, Duration),
    opts: CallOptions,
    #[cfg(feature = "store-forward")]
    queue: Option<Queue>,
}

impl fmt::Debug for IngestSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestSinkBuilder")
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("concurrency", &self.concurrency)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl IngestSinkBuilder {
    pub(crate) fn new(client: Client) -> Self {
        IngestSinkBuilder {
            client,
            batch_size: DEFAULT_SINK_BATCH,
            linger: DEFAULT_LINGER,
            concurrency: super::telemetry::DEFAULT_INGEST_CONCURRENCY,
            capacity: DEFAULT_SINK_CAPACITY,
            backoff: (Duration::from_millis(100), Duration::from_secs(10)),
            opts: CallOptions::default(),
            #[cfg(feature = "store-forward")]
            queue: None,
        }
    }

    /// Readings per request, 1 to 1,000 (default 1,000). A batch is sent as soon as it is full.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// How long a partial batch waits for more readings before it is sent (default 100 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Requests in flight at once, at least 1 (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Without a queue: the most readings held at once, buffered plus in requests, at least
    /// the batch size (default 10,000). [`IngestSink::send`] waits while the sink is full.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// The pause after a request that failed (doubling from `min` up to `max`, back to none
    /// after a success) before the next batch is sent (default 100 ms to 10 s). The client's
    /// own retries run first, inside each request.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max.max(min));
        self
    }

    call_options!();

    /// Store-and-forward: readings are written to `queue` before `send` returns, sent from
    /// there, and deleted only once accepted or rejected (see [the queue](super::store)).
    /// Readings left in the file by an earlier run are sent first.
    #[cfg(feature = "store-forward")]
    #[cfg_attr(docsrs, doc(cfg(feature = "store-forward")))]
    pub fn store_forward(mut self, queue: Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Starts the sink's task on the current Tokio runtime. Returns the handle to send
    /// readings with and the stream of reports. Read the reports or drop them (`let (sink, _)
    /// = …`): a report stream kept but never read stops the sink once 16 reports wait.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a batch size outside 1..=1,000 or a capacity below the batch
    /// size; [`Error::Config`] outside a Tokio runtime.
    pub fn start(self) -> Result<(IngestSink, IngestReports)> {
        if self.batch_size == 0 || self.batch_size > MAX_INGEST_BATCH {
            return Err(Error::invalid_input(format!(
                "batch size {} is outside 1..={MAX_INGEST_BATCH}",
                self.batch_size
            )));
        }
        if self.capacity < self.batch_size {
            return Err(Error::invalid_input(format!(
                "sink capacity {} is below the batch size {}",
                self.capacity, self.batch_size
            )));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::config("an ingest sink must be started inside a Tokio runtime"))?;
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            room: Semaphore::new(self.capacity),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (report_tx, report_rx) = futures::channel::mpsc::channel(REPORT_BUFFER);
        #[cfg(feature = "store-forward")]
        let backlog = match &self.queue {
            Some(q) => Backlog::Durable {
                queue: q.clone(),
                claiming: None,
            },
            None => Backlog::Memory(VecDeque::new()),
        };
        #[cfg(not(feature = "store-forward"))]
        let backlog = Backlog::Memory(VecDeque::new());
        let worker = Worker {
            client: self.client,
            opts: self.opts,
            batch_size: self.batch_size,
            linger: self.linger,
            concurrency: self.concurrency,
            backoff: self.backoff,
            pause: Duration::ZERO,
            rx,
            rx_done: false,
            reports: report_tx,
            pending_report: None,
            shared: shared.clone(),
            backlog,
            next_seq: 1,
            inflight: FuturesUnordered::new(),
            inflight_first: BTreeMap::new(),
            inflight_readings: 0,
            linger_timer: None,
            linger_due: false,
            pause_timer: None,
            flushes: Vec::new(),
            closers: Vec::new(),
            closing: false,
        };
        runtime.spawn(worker.run());
        let sink = IngestSink {
            tx,
            shared,
            batch_size: self.batch_size,
            capacity: self.capacity,
            #[cfg(feature = "store-forward")]
            queue: self.queue,
        };
        Ok((sink, IngestReports { rx: report_rx }))
    }
}

/// The handle of a running ingest sink. Cloning it gives another handle to the same sink; the
/// sink's task ends after [`close`](IngestSink::close), or once every handle is dropped and
/// what it holds is resolved.
///
/// ```no_run
/// # async fn demo(sgt: iot_sdk::sgt::Client, readings: Vec<iot_sdk::sgt::Reading>) -> iot_sdk::Result<()> {
/// use futures::StreamExt;
/// use std::time::Duration;
///
/// let (sink, mut reports) = sgt.telemetry().sink().linger(Duration::from_millis(200)).start()?;
/// tokio::spawn(async move {
///     while let Some(report) = reports.next().await {
///         for r in &report.rejected {
///             eprintln!("refused: {:?} {:?}", r.reading, r.message);
///         }
///     }
/// });
/// for r in readings {
///     sink.send(r).await?; // waits while the sink is full
/// }
/// let stats = sink.close().await; // flushes, then ends the task
/// println!("{} accepted of {}", stats.accepted, stats.produced);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct IngestSink {
    tx: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Shared>,
    batch_size: usize,
    capacity: usize,
    #[cfg(feature = "store-forward")]
    queue: Option<Queue>,
}

impl fmt::Debug for IngestSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestSink")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl IngestSink {
    /// Takes one reading. Without a queue, waits while the sink is full; with one, returns once
    /// the reading is committed to the file.
    pub async fn send(&self, reading: Reading) -> std::result::Result<(), SinkError> {
        self.send_batch(vec![reading]).await
    }

    /// Takes several readings at once (all checked first; none is taken if one is invalid).
    /// With a queue, they are written in one transaction: the fast way to produce.
    pub async fn send_batch(&self, readings: Vec<Reading>) -> std::result::Result<(), SinkError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(SinkError::Closed);
        }
        if let Some(e) = Reading::first_unsendable(&readings) {
            return Err(SinkError::Invalid(e));
        }
        if readings.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "store-forward")]
        if let Some(queue) = &self.queue {
            let n = readings.len() as u64;
            let q = queue.clone();
            let piece = self.batch_size;
            tokio::task::spawn_blocking(move || q.insert(&readings, piece))
                .await
                .map_err(|e| SinkError::Store(format!("the queue writer failed: {e}")))??;
            self.shared.counters.produced.fetch_add(n, Ordering::SeqCst);
            // The rows are committed: the worker learns of them (or, gone, finds them on the
            // next open).
            let _ = self.tx.send(Cmd::Stored);
            return Ok(());
        }
        let mut rest = readings;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.capacity));
            let n = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            let permit = self
                .shared
                .room
                .acquire_many(n)
                .await
                .map_err(|_| SinkError::Closed)?;
            permit.forget();
            let count = rest.len() as u64;
            if self.tx.send(Cmd::Readings(rest)).is_err() {
                return Err(SinkError::Closed);
            }
            self.shared
                .counters
                .produced
                .fetch_add(count, Ordering::SeqCst);
            rest = tail;
        }
        Ok(())
    }

    /// Drains a stream of readings into the sink, taking whatever is ready at once in groups
    /// of up to a batch (one transaction each with a queue). Returns how many were taken; on an
    /// error, those taken before it stay taken.
    pub async fn send_all<S>(&self, stream: S) -> std::result::Result<u64, SinkError>
    where
        S: Stream<Item = Reading>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut taken: u64 = 0;
        let mut ended = false;
        while !ended {
            let Some(first) = stream.next().await else {
                break;
            };
            let mut group = Vec::with_capacity(self.batch_size);
            group.push(first);
            while group.len() < self.batch_size {
                match stream.next().now_or_never() {
                    Some(Some(r)) => group.push(r),
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            let n = group.len() as u64;
            self.send_batch(group).await?;
            taken = taken.saturating_add(n);
        }
        Ok(taken)
    }

    /// Waits until every reading taken before this call is resolved: accepted, rejected or
    /// handed back (no queue), or accepted or rejected (with a queue: during an outage, this
    /// waits until the API is back).
    pub async fn flush(&self) -> std::result::Result<(), SinkError> {
        #[cfg(feature = "store-forward")]
        let target = self.queue.as_ref().map_or(0, Queue::last);
        #[cfg(not(feature = "store-forward"))]
        let target = 0;
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Cmd::Flush { target, done })
            .map_err(|_| SinkError::Closed)?;
        wait.await.map_err(|_| SinkError::Closed)
    }

    /// Stops taking readings (for every handle), sends what is held, waits until all is
    /// resolved (as [`flush`](Self::flush)), ends the task and returns the final counters. With
    /// a queue, it is safe to give up waiting (a timeout): what is left stays in the file.
    pub async fn close(&self) -> SinkStats {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.room.close();
        let (done, wait) = oneshot::channel();
        if self.tx.send(Cmd::Close(done)).is_ok() {
            let _ = wait.await;
        }
        self.stats()
    }

    /// The counters now.
    pub fn stats(&self) -> SinkStats {
        self.shared.counters.snapshot()
    }
}

/// The reports of a sink, one per batch, as a `Stream`. It ends when the sink's task ends.
#[derive(Debug)]
pub struct IngestReports {
    rx: futures::channel::mpsc::Receiver<IngestReport>,
}

impl Stream for IngestReports {
    type Item = IngestReport;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IngestReport>> {
        self.rx.poll_next_unpin(cx)
    }
}

/// Where the readings wait to be sent.
enum Backlog {
    /// In memory, with their sequence numbers.
    Memory(VecDeque<(u64, Reading)>),
    /// In the queue file; at most one claim at a time.
    #[cfg(feature = "store-forward")]
    Durable {
        queue: Queue,
        claiming: Option<
            tokio::task::JoinHandle<std::result::Result<Option<super::store::Claimed>, SinkError>>,
        >,
    },
}

/// A finished request.
struct Done {
    /// The first sequence number of the batch (no queue).
    first: u64,
    readings: u64,
    report: IngestReport,
    /// With a queue: the next full batch, claimed in the same trip to the file as this one's
    /// resolution (it is `sending` now, so it is sent next).
    #[cfg(feature = "store-forward")]
    next: Option<super::store::Claimed>,
}

struct Worker {
    client: Client,
    opts: CallOptions,
    batch_size: usize,
    linger: Duration,
    concurrency: usize,
    backoff: (Duration, Duration),
    pause: Duration,
    rx: mpsc::UnboundedReceiver<Cmd>,
    rx_done: bool,
    reports: futures::channel::mpsc::Sender<IngestReport>,
    pending_report: Option<IngestReport>,
    shared: Arc<Shared>,
    backlog: Backlog,
    next_seq: u64,
    inflight: FuturesUnordered<BoxFuture<'static, Done>>,
    /// First sequence number of each batch in flight (no queue), for `flush`.
    inflight_first: BTreeMap<u64, ()>,
    inflight_readings: u64,
    linger_timer: Option<Pin<Box<Sleep>>>,
    linger_due: bool,
    pause_timer: Option<Pin<Box<Sleep>>>,
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    closers: Vec<oneshot::Sender<()>>,
    closing: bool,
}

fn memory_report(readings: u64, outcome: ChunkOutcome) -> IngestReport {
    let mut report = IngestReport {
        readings,
        accepted: 0,
        possibly_duplicated: 0,
        rejected: Vec::new(),
        retryable: Vec::new(),
        unconfirmed: Vec::new(),
        requeued: 0,
        error: None,
    };
    match outcome {
        ChunkOutcome::Done {
            accepted,
            rejected,
            unconfirmed,
        } => {
            report.accepted = accepted;
            report.rejected = rejected;
            report.unconfirmed = unconfirmed;
        }
        ChunkOutcome::Failed {
            readings,
            error,
            maybe_stored,
        } => {
            if maybe_stored {
                report.unconfirmed = readings;
            } else {
                report.retryable = readings;
            }
            report.error = Some(error);
        }
    }
    report
}

impl Worker {
    async fn run(mut self) {
        futures::future::poll_fn(|cx| self.poll_run(cx)).await;
        tracing::debug!("ingest sink ended");
    }

    /// Readings waiting to be sent (not in a request).
    fn waiting(&self) -> usize {
        match &self.backlog {
            Backlog::Memory(b) => b.len(),
            #[cfg(feature = "store-forward")]
            Backlog::Durable { queue, .. } => usize::try_from(queue.queued()).unwrap_or(usize::MAX),
        }
    }

    /// The oldest unresolved reading's sequence number, if any.
    fn oldest(&self) -> Option<u64> {
        match &self.backlog {
            Backlog::Memory(b) => {
                let buffered = b.front().map(|(s, _)| *s);
                let sending = self.inflight_first.keys().next().copied();
                match (buffered, sending) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            #[cfg(feature = "store-forward")]
            Backlog::Durable { queue, .. } => queue.oldest(),
        }
    }

    fn claiming(&self) -> bool {
        match &self.backlog {
            Backlog::Memory(_) => false,
            #[cfg(feature = "store-forward")]
            Backlog::Durable { claiming, .. } => claiming.is_some(),
        }
    }

    fn update_held(&self) {
        let buffered = match &self.backlog {
            Backlog::Memory(b) => b.len() as u64,
            #[cfg(feature = "store-forward")]
            Backlog::Durable { .. } => 0,
        };
        self.shared
            .counters
            .set_held(buffered.saturating_add(self.inflight_readings));
    }

    #[cfg_attr(not(feature = "store-forward"), allow(irrefutable_let_patterns))]
    fn command(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Readings(readings) => {
                if let Backlog::Memory(b) = &mut self.backlog {
                    for r in readings {
                        b.push_back((self.next_seq, r));
                        self.next_seq = self.next_seq.saturating_add(1);
                    }
                }
                self.update_held();
            }
            #[cfg(feature = "store-forward")]
            Cmd::Stored => {}
            Cmd::Flush { target, done } => {
                let target = match &self.backlog {
                    Backlog::Memory(_) => {
                        let _ = target;
                        self.next_seq.saturating_sub(1)
                    }
                    #[cfg(feature = "store-forward")]
                    Backlog::Durable { .. } => target,
                };
                self.flushes.push((target, done));
            }
            Cmd::Close(done) => {
                self.closing = true;
                self.closers.push(done);
            }
        }
    }

    /// Starts a request (or, with a queue, a claim) for up to one batch.
    fn start_batch(&mut self) {
        let n = self.batch_size.min(self.waiting());
        match &mut self.backlog {
            Backlog::Memory(b) => {
                let batch: Vec<(u64, Reading)> = b.drain(..n.min(b.len())).collect();
                let Some(first) = batch.first().map(|(s, _)| *s) else {
                    return;
                };
                let readings: Vec<Reading> = batch.into_iter().map(|(_, r)| r).collect();
                let count = readings.len() as u64;
                self.inflight_first.insert(first, ());
                self.inflight_readings = self.inflight_readings.saturating_add(count);
                self.shared.counters.requests.fetch_add(1, Ordering::SeqCst);
                let client = self.client.clone();
                let opts = self.opts.clone();
                self.inflight.push(Box::pin(async move {
                    let outcome = send_chunk(&client, readings, &opts).await;
                    Done {
                        first,
                        readings: count,
                        report: memory_report(count, outcome),
                        #[cfg(feature = "store-forward")]
                        next: None,
                    }
                }));
            }
            #[cfg(feature = "store-forward")]
            Backlog::Durable { queue, claiming } => {
                let q = queue.clone();
                let n = self.batch_size;
                *claiming = Some(tokio::task::spawn_blocking(move || q.claim(n)));
            }
        }
        self.update_held();
    }

    /// With a queue: a claim finished; start its request.
    #[cfg(feature = "store-forward")]
    fn poll_claim(&mut self, cx: &mut Context<'_>) -> bool {
        let Backlog::Durable { claiming, .. } = &mut self.backlog else {
            return false;
        };
        let Some(handle) = claiming.as_mut() else {
            return false;
        };
        let Poll::Ready(joined) = handle.poll_unpin(cx) else {
            return false;
        };
        *claiming = None;
        let claimed = match joined {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "store-and-forward queue: claim failed");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "store-and-forward queue: claim task failed");
                None
            }
        };
        if let Some(claimed) = claimed {
            self.send_claimed(claimed);
        }
        true
    }

    /// With a queue: starts the request of a claimed batch. When it went through and a full
    /// batch is waiting, the same blocking call that records its outcome claims the next one,
    /// so that a busy queue takes one trip to the file per request instead of two.
    #[cfg(feature = "store-forward")]
    fn send_claimed(&mut self, claimed: super::store::Claimed) {
        let Backlog::Durable { queue, .. } = &self.backlog else {
            return;
        };
        let super::store::Claimed {
            segments,
            readings: count,
            body,
        } = claimed;
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        self.inflight_readings = self.inflight_readings.saturating_add(count);
        self.shared.counters.requests.fetch_add(1, Ordering::SeqCst);
        let client = self.client.clone();
        let opts = self.opts.clone();
        let queue = queue.clone();
        let batch_size = self.batch_size;
        self.inflight.push(Box::pin(async move {
            let answer = send_ingest(&client, body, n, &opts).await;
            let resolved = tokio::task::spawn_blocking(move || {
                let resolved = queue.resolve(&segments, answer);
                let went_through =
                    matches!(&resolved, Ok(r) if r.error.is_none() && r.requeued == 0);
                let next = if went_through && queue.queued() >= batch_size as u64 {
                    queue.claim(batch_size).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "store-and-forward queue: claim failed");
                        None
                    })
                } else {
                    None
                };
                (resolved, next)
            })
            .await;
            let mut report = IngestReport {
                readings: count,
                accepted: 0,
                possibly_duplicated: 0,
                rejected: Vec::new(),
                retryable: Vec::new(),
                unconfirmed: Vec::new(),
                requeued: 0,
                error: None,
            };
            let mut next = None;
            match resolved {
                Ok((Ok(r), claimed)) => {
                    report.accepted = r.accepted;
                    report.possibly_duplicated = r.possibly_duplicated;
                    report.rejected = r.rejected;
                    report.requeued = r.requeued;
                    report.error = r.error;
                    next = claimed;
                }
                // The outcome could not be recorded: the rows stay `sending` until the queue is
                // opened again, when they are resent as possibly duplicated.
                Ok((Err(e), claimed)) => {
                    report.error = Some(e.into());
                    next = claimed;
                }
                Err(e) => {
                    report.error =
                        Some(SinkError::Store(format!("the queue writer failed: {e}")).into());
                }
            }
            Done {
                first: 0,
                readings: count,
                report,
                next,
            }
        }));
        self.update_held();
    }

    fn finish(&mut self, done: Done) {
        let Done {
            first,
            readings,
            report,
            #[cfg(feature = "store-forward")]
            next,
        } = done;
        #[cfg(feature = "store-forward")]
        if let Some(claimed) = next {
            self.send_claimed(claimed);
        }
        self.inflight_first.remove(&first);
        self.inflight_readings = self.inflight_readings.saturating_sub(readings);
        if matches!(self.backlog, Backlog::Memory(_)) {
            self.shared
                .room
                .add_permits(usize::try_from(readings).unwrap_or(usize::MAX));
        }
        self.update_held();
        self.shared.counters.count(&report);
        let failed = report.error.is_some()
            || report.requeued > 0
            || !report.retryable.is_empty()
            || !report.unconfirmed.is_empty();
        if failed {
            self.pause = if self.pause.is_zero() {
                self.backoff.0
            } else {
                self.pause.saturating_mul(2).min(self.backoff.1)
            };
            if !self.pause.is_zero() {
                self.pause_timer = Some(Box::pin(tokio::time::sleep(self.pause)));
            }
        } else {
            self.pause = Duration::ZERO;
        }
        self.pending_report = Some(report);
    }

    fn draining(&self) -> bool {
        self.closing || self.rx_done || !self.flushes.is_empty()
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let mut progress = false;

            // Deliver the last report first: a full report stream holds completions back.
            if let Some(report) = self.pending_report.take() {
                match self.reports.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let _ = self.reports.start_send(report);
                        progress = true;
                    }
                    // The reader is gone: reports are discarded (the counters keep counting).
                    Poll::Ready(Err(_)) => progress = true,
                    Poll::Pending => self.pending_report = Some(report),
                }
            }
            if self.pending_report.is_none() {
                if let Poll::Ready(Some(done)) = self.inflight.poll_next_unpin(cx) {
                    self.finish(done);
                    progress = true;
                }
            }
            #[cfg(feature = "store-forward")]
            if self.poll_claim(cx) {
                progress = true;
            }

            while !self.rx_done {
                match self.rx.poll_recv(cx) {
                    Poll::Ready(Some(cmd)) => {
                        self.command(cmd);
                        progress = true;
                    }
                    Poll::Ready(None) => {
                        self.rx_done = true;
                        progress = true;
                    }
                    Poll::Pending => break,
                }
            }

            if let Some(t) = self.linger_timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    self.linger_timer = None;
                    self.linger_due = true;
                    progress = true;
                }
            }
            if let Some(t) = self.pause_timer.as_mut() {
                if t.as_mut().poll(cx).is_ready() {
                    self.pause_timer = None;
                    progress = true;
                }
            }

            // Start requests.
            while self.pause_timer.is_none()
                && !self.claiming()
                && self.inflight.len() < self.concurrency
                && self.waiting() > 0
                && (self.waiting() >= self.batch_size || self.linger_due || self.draining())
            {
                self.start_batch();
                progress = true;
                // What is left is a new partial batch: its linger starts now.
                self.linger_due = false;
                self.linger_timer = None;
            }
            if self.waiting() == 0 {
                self.linger_timer = None;
                self.linger_due = false;
            } else if self.linger_timer.is_none() && !self.linger_due {
                self.linger_timer = Some(Box::pin(tokio::time::sleep(self.linger)));
                progress = true;
            }

            // Flushes whose readings are all resolved.
            if !self.flushes.is_empty() {
                let oldest = self.oldest();
                let (waiting, done): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
                    .into_iter()
                    .partition(|(target, _)| oldest.is_some_and(|o| o <= *target));
                self.flushes = waiting;
                for (_, tx) in done {
                    let _ = tx.send(());
                }
            }

            if (self.closing || self.rx_done)
                && self.waiting() == 0
                && self.inflight.is_empty()
                && !self.claiming()
                && self.pending_report.is_none()
            {
                for (_, tx) in self.flushes.drain(..) {
                    let _ = tx.send(());
                }
                for c in self.closers.drain(..) {
                    let _ = c.send(());
                }
                self.reports.close_channel();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }
}
