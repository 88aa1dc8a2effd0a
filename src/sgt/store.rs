//! The store-and-forward queue of the ingest sink: one SQLite file (feature `store-forward`).
//!
//! Every reading given to a sink with a [`Queue`] is written to the file before it is sent, and
//! removed only in the transaction that records that the server accepted it or rejected it
//! individually. Readings whose request failed in a way that proves the server did not store
//! them (a connection that never opened, a 429 or 503 after the client's retries) stay queued
//! and are sent again, oldest first, after a pause. Readings whose outcome is unknown (a
//! timeout or reset after the request was sent, a 504, an answer that does not add up) stay
//! queued too, are marked `maybe_sent`, and are sent again: **the promise is at least once**.
//! The API has no idempotency key, so such a reading may be stored twice; every accepted
//! reading that had been marked `maybe_sent` is counted as possibly duplicated and recorded in
//! the `possibly_duplicated` table ([`Queue::possibly_duplicated`]), so it can be checked.
//!
//! After a crash or a kill, [`Queue::open`] on the same file resumes: rows that were being sent
//! (`state = 'sending'`) have an unknown outcome, so they are marked `maybe_sent` and queued
//! again; rows never sent are sent as usual.
//!
//! # Schema
//!
//! The file is a plain SQLite 3 database in WAL mode (`PRAGMA user_version = 1`); inspect it
//! with the `sqlite3` tool while the sink runs (`sqlite3 queue.db 'SELECT state, count(*) FROM
//! readings GROUP BY state'`):
//!
//! ```sql
//! CREATE TABLE readings (
//!     seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order, never reused
//!     device_id  TEXT    NOT NULL,
//!     metric     TEXT    NOT NULL,
//!     ts         TEXT    NOT NULL,                  -- RFC 3339, UTC
//!     value      REAL    NOT NULL,
//!     supersedes INTEGER NOT NULL DEFAULT 0,        -- 1: a correction
//!     state      TEXT    NOT NULL DEFAULT 'queued'  -- 'queued' or 'sending' (in a request now)
//!                CHECK (state IN ('queued', 'sending')),
//!     attempts   INTEGER NOT NULL DEFAULT 0,        -- requests that carried it
//!     maybe_sent INTEGER NOT NULL DEFAULT 0         -- 1: an earlier request's outcome is unknown
//! );
//! CREATE INDEX readings_state ON readings (state, seq);
//! CREATE TABLE possibly_duplicated (                -- accepted readings that had maybe_sent = 1
//!     seq INTEGER PRIMARY KEY, device_id TEXT NOT NULL, metric TEXT NOT NULL, ts TEXT NOT NULL,
//!     value REAL NOT NULL, supersedes INTEGER NOT NULL, accepted_at TEXT NOT NULL
//! );
//! ```
//!
//! The `possibly_duplicated` table keeps the latest [`POSSIBLY_DUPLICATED_KEPT`] rows.
//!
//! # Bounds
//!
//! The file holds at most [`QueueOptions::max_readings`] readings (default
//! [`DEFAULT_MAX_READINGS`]). When a batch would pass the bound, the [`FullPolicy`] decides:
//! [`FullPolicy::Refuse`] (the default) refuses the whole batch with
//! [`SinkError::QueueFull`], nothing written;
//! [`FullPolicy::DropOldest`] deletes the oldest queued readings (never one in a request) to make
//! room and counts them in [`Queue::dropped`].
//!
//! # Durability
//!
//! Commits use `synchronous = NORMAL` by default: a committed reading survives the process
//! being killed; a power loss may lose the last commits. [`QueueOptions::sync_on_commit`] makes
//! every commit wait for the disk (`synchronous = FULL`), at a cost in throughput.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, params};

use super::DeviceId;
use super::sink::SinkError;
use super::telemetry::{ChunkOutcome, Reading, RejectedReading};
use crate::error::Error;

/// The default bound of a queue file: one million readings (about 100 MB).
pub const DEFAULT_MAX_READINGS: u64 = 1_000_000;
/// How many rows the `possibly_duplicated` table keeps (the latest).
pub const POSSIBLY_DUPLICATED_KEPT: u64 = 100_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id  TEXT    NOT NULL,
    metric     TEXT    NOT NULL,
    ts         TEXT    NOT NULL,
    value      REAL    NOT NULL,
    supersedes INTEGER NOT NULL DEFAULT 0,
    state      TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    maybe_sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS readings_state ON readings (state, seq);
CREATE TABLE IF NOT EXISTS possibly_duplicated (
    seq         INTEGER PRIMARY KEY,
    device_id   TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    ts          TEXT    NOT NULL,
    value       REAL    NOT NULL,
    supersedes  INTEGER NOT NULL,
    accepted_at TEXT    NOT NULL
);
PRAGMA user_version = 1;
";

/// What to do when a batch would take the queue past its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Refuse the new readings with [`SinkError::QueueFull`]; nothing is written.
    #[default]
    Refuse,
    /// Delete the oldest queued readings (never those in a request) to make room; they are
    /// counted in [`Queue::dropped`] and lost.
    DropOldest,
}

/// How to open a [`Queue`]. Get one from [`Queue::options`].
#[derive(Debug, Clone)]
#[must_use]
pub struct QueueOptions {
    max_readings: u64,
    when_full: FullPolicy,
    sync_on_commit: bool,
}

impl QueueOptions {
    /// The most readings the file holds, at least 1 (default [`DEFAULT_MAX_READINGS`]).
    pub fn max_readings(mut self, n: u64) -> Self {
        self.max_readings = n.max(1);
        self
    }

    /// What to do when the bound is reached (default [`FullPolicy::Refuse`]).
    pub fn when_full(mut self, policy: FullPolicy) -> Self {
        self.when_full = policy;
        self
    }

    /// Makes every commit wait for the disk (`synchronous = FULL`), so a power loss loses no
    /// committed reading (default off: `NORMAL`, which survives a process kill).
    pub fn sync_on_commit(mut self, on: bool) -> Self {
        self.sync_on_commit = on;
        self
    }

    /// Opens (or creates) the queue file at `path`, in WAL mode, and resumes it: rows left
    /// `sending` by a crashed process are queued again, marked `maybe_sent`. This does blocking
    /// file I/O; call it at startup.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Queue, SinkError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(store)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store)?;
        // `journal_mode` answers with the mode in force; anything but WAL is a refusal.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(store)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SinkError::Store(format!(
                "{}: the file does not accept WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        let sync = if self.sync_on_commit {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
            .map_err(store)?;
        conn.execute_batch(SCHEMA).map_err(store)?;
        let recovered = conn
            .execute(
                "UPDATE readings SET state = 'queued', maybe_sent = 1 WHERE state = 'sending'",
                [],
            )
            .map_err(store)? as u64;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "store-and-forward queue: readings whose request's outcome is unknown are queued again and may be duplicated"
            );
        }
        let count = |sql: &str| -> Result<u64, SinkError> {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(store)
        };
        let rows = count("SELECT count(*) FROM readings")?;
        let oldest = count("SELECT coalesce(min(seq), 0) FROM readings")?;
        let last = count("SELECT coalesce(max(seq), 0) FROM readings")?;
        let inner = Inner {
            path,
            max_readings: self.max_readings,
            when_full: self.when_full,
            conn: Mutex::new(Db { conn, rows }),
            queued: AtomicU64::new(rows),
            oldest: AtomicU64::new(oldest),
            last: AtomicU64::new(last),
            dropped: AtomicU64::new(0),
            recovered,
        };
        Ok(Queue {
            inner: Arc::new(inner),
        })
    }
}

/// A durable store-and-forward queue: one SQLite file (see the [module docs](self) for the
/// schema, bounds and the at-least-once promise). Give it to
/// [`IngestSinkBuilder::store_forward`](super::IngestSinkBuilder::store_forward). Cloning is
/// cheap (one shared connection).
///
/// ```no_run
/// # fn demo() -> Result<(), iot_sdk::sgt::SinkError> {
/// use iot_sdk::sgt::{FullPolicy, Queue};
///
/// let queue = Queue::options()
///     .max_readings(5_000_000)
///     .when_full(FullPolicy::DropOldest)
///     .open("/var/lib/gateway/ingest.db")?;
/// println!("{} readings waiting from the last run", queue.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    max_readings: u64,
    when_full: FullPolicy,
    conn: Mutex<Db>,
    /// Rows in state `queued` (changed only with `conn` held).
    queued: AtomicU64,
    /// The smallest `seq` in the file, 0 when empty (changed only with `conn` held).
    oldest: AtomicU64,
    /// The largest `seq` ever committed, 0 before the first.
    last: AtomicU64,
    dropped: AtomicU64,
    recovered: u64,
}

struct Db {
    conn: Connection,
    /// Rows in the file.
    rows: u64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.inner.path)
            .field("max_readings", &self.inner.max_readings)
            .field("when_full", &self.inner.when_full)
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

fn store(e: rusqlite::Error) -> SinkError {
    SinkError::Store(e.to_string())
}

fn ts_text(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A row claimed for a request.
pub(crate) struct Claimed {
    pub(crate) seq: u64,
    pub(crate) reading: Reading,
    pub(crate) maybe_sent: bool,
}

/// What [`Queue::resolve`] recorded for one request.
pub(crate) struct Resolved {
    pub(crate) accepted: u64,
    pub(crate) possibly_duplicated: u64,
    pub(crate) rejected: Vec<RejectedReading>,
    /// Queued again (retryable or unconfirmed).
    pub(crate) requeued: u64,
    pub(crate) error: Option<Error>,
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Queue {
    /// Options with the defaults: [`DEFAULT_MAX_READINGS`], [`FullPolicy::Refuse`], no sync on
    /// commit.
    pub fn options() -> QueueOptions {
        QueueOptions {
            max_readings: DEFAULT_MAX_READINGS,
            when_full: FullPolicy::Refuse,
            sync_on_commit: false,
        }
    }

    /// Opens the queue file at `path` with the default options (see [`QueueOptions::open`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Queue, SinkError> {
        Queue::options().open(path)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Readings in the file (queued, or in a request now).
    pub fn len(&self) -> u64 {
        self.lock().rows
    }

    /// Whether the file holds no reading.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Readings waiting to be sent (not in a request now).
    pub fn queued(&self) -> u64 {
        self.inner.queued.load(Ordering::SeqCst)
    }

    /// Readings deleted by [`FullPolicy::DropOldest`] since the queue was opened.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::SeqCst)
    }

    /// Readings found in a request when the queue was opened (a crash or kill left their
    /// outcome unknown): queued again, marked `maybe_sent`.
    pub fn recovered(&self) -> u64 {
        self.inner.recovered
    }

    /// The latest accepted readings that had been marked `maybe_sent` (their first request's
    /// outcome was unknown, so the server may hold them twice), oldest first, at most `limit`.
    pub fn possibly_duplicated(&self, limit: usize) -> Result<Vec<Reading>, SinkError> {
        let db = self.lock();
        let mut stmt = db
            .conn
            .prepare(
                "SELECT seq, device_id, metric, ts, value, supersedes FROM possibly_duplicated
                 ORDER BY seq LIMIT ?1",
            )
            .map_err(store)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map([limit], row_reading).map_err(store)?;
        let mut out = Vec::new();
        for row in rows {
            match row.map_err(store)? {
                (_, Some(r)) => out.push(r),
                (seq, None) => tracing::warn!(seq, "possibly_duplicated row unreadable; skipped"),
            }
        }
        Ok(out)
    }

    /// Empties the `possibly_duplicated` table (after the caller checked those readings).
    pub fn clear_possibly_duplicated(&self) -> Result<(), SinkError> {
        self.lock()
            .conn
            .execute("DELETE FROM possibly_duplicated", [])
            .map(|_| ())
            .map_err(store)
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        // A panic elsewhere while the lock was held leaves the connection itself sound (every
        // change is in a transaction that rolled back).
        self.inner
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The smallest `seq` in the file, `None` when it is empty.
    pub(crate) fn oldest(&self) -> Option<u64> {
        Some(self.inner.oldest.load(Ordering::SeqCst)).filter(|&s| s != 0)
    }

    /// The largest `seq` committed so far (0 before the first).
    pub(crate) fn last(&self) -> u64 {
        self.inner.last.load(Ordering::SeqCst)
    }

    fn refresh_oldest(&self, db: &Db) -> Result<(), SinkError> {
        let oldest: i64 = db
            .conn
            .query_row("SELECT coalesce(min(seq), 0) FROM readings", [], |r| {
                r.get(0)
            })
            .map_err(store)?;
        self.inner
            .oldest
            .store(u64::try_from(oldest).unwrap_or(0), Ordering::SeqCst);
        Ok(())
    }

    /// Writes `readings` in one transaction (all or none), applying the full policy. Returns the
    /// number of readings dropped to make room. Blocking.
    pub(crate) fn insert(&self, readings: &[Reading]) -> Result<u64, SinkError> {
        let n = readings.len() as u64;
        if n == 0 {
            return Ok(0);
        }
        let max = self.inner.max_readings;
        let mut db = self.lock();
        let over = db.rows.saturating_add(n).saturating_sub(max);
        if over > 0 && (self.inner.when_full == FullPolicy::Refuse || n > max) {
            return Err(SinkError::QueueFull { max });
        }
        let tx = db.conn.transaction().map_err(store)?;
        let mut dropped = 0;
        if over > 0 {
            dropped = tx
                .execute(
                    "DELETE FROM readings WHERE seq IN (SELECT seq FROM readings
                     WHERE state = 'queued' ORDER BY seq LIMIT ?1)",
                    [seq_param(over)],
                )
                .map_err(store)? as u64;
            if dropped < over {
                // Everything else is in a request: nothing may be dropped, so refuse.
                return Err(SinkError::QueueFull { max });
            }
        }
        let mut last = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO readings (device_id, metric, ts, value, supersedes)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(store)?;
            for r in readings {
                stmt.execute(params![
                    r.device_id.as_str(),
                    r.metric,
                    ts_text(&r.ts),
                    r.value,
                    r.supersedes
                ])
                .map_err(store)?;
                last = tx.last_insert_rowid();
            }
        }
        tx.commit().map_err(store)?;
        db.rows = db.rows.saturating_add(n).saturating_sub(dropped);
        self.inner
            .queued
            .fetch_add(n.saturating_sub(dropped), Ordering::SeqCst);
        self.inner
            .last
            .store(u64::try_from(last).unwrap_or(0), Ordering::SeqCst);
        if dropped > 0 {
            self.inner.dropped.fetch_add(dropped, Ordering::SeqCst);
            tracing::warn!(
                dropped,
                "store-and-forward queue full: oldest readings dropped"
            );
            self.refresh_oldest(&db)?;
        } else if self.inner.oldest.load(Ordering::SeqCst) == 0 {
            self.refresh_oldest(&db)?;
        }
        Ok(dropped)
    }

    /// Marks the oldest `n` queued rows `sending` and returns them, in `seq` order. Rows that no
    /// longer parse (a file edited by hand) are deleted and counted as dropped. Blocking.
    pub(crate) fn claim(&self, n: usize) -> Result<Vec<Claimed>, SinkError> {
        let mut db = self.lock();
        let tx = db.conn.transaction().map_err(store)?;
        let mut rows = Vec::with_capacity(n);
        let mut unreadable = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, device_id, metric, ts, value, supersedes, maybe_sent
                     FROM readings WHERE state = 'queued' ORDER BY seq LIMIT ?1",
                )
                .map_err(store)?;
            let limit = i64::try_from(n).unwrap_or(i64::MAX);
            let found = stmt
                .query_map([limit], |row| {
                    let (seq, reading) = row_reading(row)?;
                    Ok((seq, reading, row.get::<_, bool>(6)?))
                })
                .map_err(store)?;
            for row in found {
                let (seq, reading, maybe_sent) = row.map_err(store)?;
                match reading {
                    Some(reading) => rows.push(Claimed {
                        seq,
                        reading,
                        maybe_sent,
                    }),
                    None => unreadable.push(seq),
                }
            }
        }
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            tx.execute(
                "UPDATE readings SET state = 'sending', attempts = attempts + 1
                 WHERE state = 'queued' AND seq BETWEEN ?1 AND ?2",
                [seq_param(first.seq), seq_param(last.seq)],
            )
            .map_err(store)?;
        }
        for seq in &unreadable {
            tx.execute("DELETE FROM readings WHERE seq = ?1", [seq_param(*seq)])
                .map_err(store)?;
        }
        tx.commit().map_err(store)?;
        let bad = unreadable.len() as u64;
        if bad > 0 {
            tracing::warn!(
                rows = bad,
                "store-and-forward queue: unreadable rows deleted"
            );
            db.rows = db.rows.saturating_sub(bad);
            self.inner.dropped.fetch_add(bad, Ordering::SeqCst);
            self.refresh_oldest(&db)?;
        }
        let taken = (rows.len() as u64).saturating_add(bad);
        let _ = self
            .inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(taken))
            });
        Ok(rows)
    }

    /// Records what became of a request that carried the rows `sent` (in the order they were
    /// sent), in one transaction: accepted and rejected rows are deleted (accepted rows marked
    /// `maybe_sent` are copied to `possibly_duplicated`), the others queued again (marked
    /// `maybe_sent` when the request may have been stored). Blocking.
    pub(crate) fn resolve(
        &self,
        sent: &[(u64, bool)],
        outcome: ChunkOutcome,
    ) -> Result<Resolved, SinkError> {
        // Which rows (by index into `sent`) end how.
        let mut delete: Vec<usize> = Vec::new();
        let mut requeue: Vec<usize> = Vec::new();
        let mut maybe = false;
        let mut accepted_rows: Vec<usize> = Vec::new();
        let mut resolved = Resolved {
            accepted: 0,
            possibly_duplicated: 0,
            rejected: Vec::new(),
            requeued: 0,
            error: None,
        };
        match outcome {
            ChunkOutcome::Done {
                rejected,
                rejected_at,
                unconfirmed,
                accepted: _,
            } => {
                let named: std::collections::BTreeSet<usize> =
                    rejected_at.iter().copied().collect();
                if unconfirmed.is_empty() {
                    for i in 0..sent.len() {
                        if named.contains(&i) {
                            delete.push(i);
                        } else {
                            accepted_rows.push(i);
                        }
                    }
                } else {
                    // The answer's counts did not add up: every unnamed reading is unconfirmed.
                    maybe = true;
                    for i in 0..sent.len() {
                        if named.contains(&i) {
                            delete.push(i);
                        } else {
                            requeue.push(i);
                        }
                    }
                }
                resolved.rejected = rejected;
            }
            ChunkOutcome::Failed {
                error,
                maybe_stored,
                readings: _,
            } => {
                maybe = maybe_stored;
                requeue.extend(0..sent.len());
                resolved.error = Some(error);
            }
            ChunkOutcome::NotSent(_) => requeue.extend(0..sent.len()),
        }
        let mut db = self.lock();
        let tx = db.conn.transaction().map_err(store)?;
        let now = ts_text(&Utc::now());
        {
            let mut del = tx
                .prepare_cached("DELETE FROM readings WHERE seq = ?1")
                .map_err(store)?;
            let mut dup = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO possibly_duplicated
                     SELECT seq, device_id, metric, ts, value, supersedes, ?2
                     FROM readings WHERE seq = ?1",
                )
                .map_err(store)?;
            for i in &accepted_rows {
                let Some(&(seq, maybe_sent)) = sent.get(*i) else {
                    continue;
                };
                if maybe_sent {
                    dup.execute(params![seq_param(seq), now]).map_err(store)?;
                    resolved.possibly_duplicated = resolved.possibly_duplicated.saturating_add(1);
                }
                del.execute([seq_param(seq)]).map_err(store)?;
                resolved.accepted = resolved.accepted.saturating_add(1);
            }
            for i in &delete {
                if let Some(&(seq, _)) = sent.get(*i) {
                    del.execute([seq_param(seq)]).map_err(store)?;
                }
            }
            let mut back = tx
                .prepare_cached(
                    "UPDATE readings SET state = 'queued', maybe_sent = max(maybe_sent, ?2)
                     WHERE seq = ?1",
                )
                .map_err(store)?;
            for i in &requeue {
                if let Some(&(seq, _)) = sent.get(*i) {
                    back.execute(params![seq_param(seq), maybe])
                        .map_err(store)?;
                }
            }
            if resolved.possibly_duplicated > 0 {
                tx.execute(
                    // Keep the latest rows: delete those older than the KEPT-th newest (none
                    // while there are fewer).
                    "DELETE FROM possibly_duplicated WHERE seq < (SELECT seq FROM possibly_duplicated
                     ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                    [seq_param(POSSIBLY_DUPLICATED_KEPT.saturating_sub(1))],
                )
                .map_err(store)?;
            }
        }
        tx.commit().map_err(store)?;
        let deleted = (accepted_rows.len() as u64).saturating_add(delete.len() as u64);
        db.rows = db.rows.saturating_sub(deleted);
        resolved.requeued = requeue.len() as u64;
        self.inner
            .queued
            .fetch_add(resolved.requeued, Ordering::SeqCst);
        self.refresh_oldest(&db)?;
        Ok(resolved)
    }
}

/// A row's `seq` and reading (`None` when a column does not parse).
fn row_reading(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, Option<Reading>)> {
    let seq = u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0);
    let device: String = row.get(1)?;
    let metric: String = row.get(2)?;
    let ts: String = row.get(3)?;
    let value: Option<f64> = row.get::<_, f64>(4).ok();
    let supersedes: bool = row.get(5)?;
    let ts = DateTime::parse_from_rfc3339(&ts)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let reading = match (ts, value) {
        (Some(ts), Some(value)) if value.is_finite() => {
            let mut r = Reading::new(DeviceId::from(device), metric, ts, value);
            r.supersedes = supersedes;
            Some(r)
        }
        _ => None,
    };
    Ok((seq, reading))
}
