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
//! The file is a plain SQLite 3 database in WAL mode (`PRAGMA user_version = 3`). It holds one
//! row per stored *segment*: the readings of one `send`/`send_batch` call (cut into pieces of
//! at most the sink's batch size), already serialized as the JSON array they are sent as. A
//! request carries consecutive segments whose readings add up to at most the batch size (at
//! least one segment), its body built by joining their arrays: no reading is parsed or
//! serialized again on the way out.
//!
//! ```sql
//! CREATE TABLE segments (
//!     seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order, never reused
//!     readings   INTEGER NOT NULL CHECK (readings > 0), -- readings in its body (1 to 1,000)
//!     state      TEXT    NOT NULL DEFAULT 'waiting' -- 'waiting' or 'sending' (in a request now)
//!                CHECK (state IN ('waiting', 'sending')),
//!     attempts   INTEGER NOT NULL DEFAULT 0,        -- requests that carried it
//!     maybe_sent INTEGER NOT NULL DEFAULT 0         -- 1: an earlier request's outcome is unknown
//! );
//! CREATE TABLE bodies (                             -- one per segment, written and deleted with it
//!     seq  INTEGER PRIMARY KEY,                     -- the segment's seq
//!     body TEXT    NOT NULL                         -- its readings: a JSON array, as sent
//! );
//! CREATE TABLE possibly_duplicated (                -- accepted readings that had maybe_sent = 1
//!     seq INTEGER PRIMARY KEY,                      -- insertion order
//!     device_id TEXT NOT NULL, metric TEXT NOT NULL, ts TEXT NOT NULL, -- ts: RFC 3339, UTC
//!     value REAL NOT NULL, supersedes INTEGER NOT NULL, accepted_at TEXT NOT NULL
//! );
//! ```
//!
//! A segment's body (about 100 KB for 1,000 readings) has a table of its own so that claiming
//! the segment for a request, or queuing it again, rewrites only its small `segments` row:
//! SQLite rewrites a whole row to change one of its columns, and a body spans some 25 pages
//! (version 2 kept it in the `segments` row). A body is exactly what `serde_json` writes for
//! the segment's readings, e.g.
//! `[{"device_id":"dev_1","metric":"power_kw","ts":"2026-06-01T00:00:00Z","value":1.5}]`
//! (`"supersedes":true` only on a correction). The `possibly_duplicated` table keeps the
//! latest [`POSSIBLY_DUPLICATED_KEPT`] readings.
//!
//! Inspect a queue with the `sqlite3` tool, also while the sink runs:
//!
//! ```sh
//! # readings waiting and in a request
//! sqlite3 ingest.db "SELECT state, count(*) AS segments, sum(readings) FROM segments GROUP BY state"
//! # readings whose earlier request's outcome is unknown
//! sqlite3 ingest.db "SELECT sum(readings) FROM segments WHERE maybe_sent = 1"
//! # the oldest 10 readings, one per line
//! sqlite3 ingest.db "SELECT s.seq, json_extract(r.value, '$.device_id', '$.metric', '$.ts', '$.value')
//!   FROM segments s JOIN bodies b USING (seq), json_each(b.body) r ORDER BY s.seq, r.key LIMIT 10"
//! # segments whose count does not match their body (none, unless the file was edited)
//! sqlite3 ingest.db "SELECT seq FROM segments JOIN bodies USING (seq) WHERE json_array_length(body) <> readings"
//! ```
//!
//! # Bounds
//!
//! The file holds at most [`QueueOptions::max_readings`] readings (default
//! [`DEFAULT_MAX_READINGS`]), counted in readings, not segments. When a batch would pass the
//! bound, the [`FullPolicy`] decides: [`FullPolicy::Refuse`] (the default) refuses the whole
//! batch with [`SinkError::QueueFull`], nothing written; [`FullPolicy::DropOldest`] deletes
//! exactly as many of the oldest queued readings (never one in a request) as make room, and
//! counts them in [`Queue::dropped`]: whole segments, and, when only part of the oldest one must
//! go, its first readings.
//!
//! # Migration
//!
//! A file written by an earlier version is converted when it is opened, in one transaction, and
//! `user_version` becomes 3; the `possibly_duplicated` table is kept as it is.
//!
//! - Version 1 (a table `readings` with one row per reading): consecutive readings become
//!   segments of at most 1,000, never mixing readings marked `maybe_sent` with others (readings
//!   left `sending` by a crash become `maybe_sent`, as on every open).
//! - Version 2 (each segment's body in a `body` column of its `segments` row): the bodies move
//!   to `bodies`; the segments keep their `seq` (and the counter of `seq` values), state,
//!   attempts and `maybe_sent`, and those left `sending` by a crash are queued again marked
//!   `maybe_sent`, as on every open.
//!
//! A file with a `user_version` newer than 3 (written by a newer version of this crate) is
//! refused with [`SinkError::Store`], and left as it is.
//!
//! # Durability
//!
//! Commits use `synchronous = NORMAL` by default: a committed reading survives the process
//! being killed; a power loss may lose the last commits. [`QueueOptions::sync_on_commit`] makes
//! every commit wait for the disk (`synchronous = FULL`), at a cost in throughput.
//!
//! A queue runs one thread of its own (`iot-sdk-queue-checkpointer`, with a second connection to
//! the file) that copies the WAL into the file every 20 ms while the queue is written to (less
//! often when it is idle, down to every 640 ms), so that no commit waits for that copy. Once the
//! WAL holds a megabyte, the thread finishes its copy with the queue's writes held for the
//! moment it takes to copy what was written meanwhile and sync the WAL and the file, so that
//! the WAL starts over instead of growing. On slow storage (an SD card) writes therefore wait
//! for two syncs about once per megabyte written; the sink's bound on buffered readings absorbs
//! that pause. It ends when the last clone of the queue is dropped.
//!
//! # Memory
//!
//! Besides SQLite's page cache (16 MiB at most), a queue keeps the request bodies of the
//! segments it wrote and has not sent yet, up to 8 MiB (about 80 segments of 1,000 readings),
//! so that sending them does not read them back from the file; the others are read back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};

use super::DeviceId;
use super::sink::SinkError;
use super::telemetry::{
    IndexedRejection, IngestAnswer, MAX_INGEST_BATCH, READING_BYTES, Reading, RejectedReading,
    ingest_body,
};
use crate::error::Error;

/// The default bound of a queue file: one million readings (about 100 MB).
pub const DEFAULT_MAX_READINGS: u64 = 1_000_000;
/// How many readings the `possibly_duplicated` table keeps (the latest).
pub const POSSIBLY_DUPLICATED_KEPT: u64 = 100_000;

/// The schema this version writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 3;

/// The tables of the current schema (`user_version` is set once they exist and are filled).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS segments (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    readings   INTEGER NOT NULL CHECK (readings > 0),
    state      TEXT    NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'sending')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    maybe_sent INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bodies (
    seq  INTEGER PRIMARY KEY,
    body TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS possibly_duplicated (
    seq         INTEGER PRIMARY KEY,
    device_id   TEXT    NOT NULL,
    metric      TEXT    NOT NULL,
    ts          TEXT    NOT NULL,
    value       REAL    NOT NULL,
    supersedes  INTEGER NOT NULL,
    accepted_at TEXT    NOT NULL
);
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

    /// Opens (or creates) the queue file at `path`, in WAL mode, and resumes it: segments left
    /// `sending` by a crashed process are queued again, marked `maybe_sent`. A file of an
    /// earlier schema (version 1 or 2) is converted first, in one transaction (see the
    /// [module docs](self)); one of a newer schema is refused. This does blocking file I/O;
    /// call it at startup.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Queue, SinkError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(store)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store)?;
        // Checked first, so that a file of a newer version is left exactly as it is.
        refuse_newer(user_version(&conn)?, &path)?;
        // SQLite's default 4 KiB pages: measured against 8, 16 and 32 KiB for inserting, claiming
        // and deleting segments of 1,000 readings (figure 9), they write the fewest WAL bytes for
        // the small changes (a claim, a delete) and came out fastest.
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
        // A page cache of 16 MiB (the default is 2 MiB): the segments written a moment ago are
        // still in it when they are claimed, however far the producer is ahead.
        // Checkpoints (copying the WAL into the file, and with `NORMAL` the only disk syncs) are
        // made by the queue's checkpointer thread, off the producer's and the sender's path; the
        // connection checkpoints by itself only if the WAL grows past 16,384 pages (the
        // checkpointer fell behind).
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA cache_size = -16384; \
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
        ))
        .map_err(store)?;
        // Every statement the queue runs more than once stays prepared, and stays as it is when
        // new values are bound: without the query planner stability guarantee, SQLite plans a
        // statement again for every new value of a `LIMIT ?` (the claim's), which took half of
        // each claim.
        conn.set_prepared_statement_cache_capacity(32);
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(store)?;

        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(store)?;
        // Read again inside the transaction: another process may have migrated the file since.
        let version = user_version(&tx)?;
        refuse_newer(version, &path)?;
        tx.execute_batch(SCHEMA).map_err(store)?;
        let mut migrated = Migrated::default();
        if version == 1 {
            migrated = migrate_v1(&tx)?;
        }
        if version == 2 {
            migrate_v2(&tx)?;
        }
        if version < SCHEMA_VERSION {
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
                .map_err(store)?;
        }
        // A body without its segment (only a file edited by hand has one) would never go.
        tx.execute(
            "DELETE FROM bodies WHERE seq NOT IN (SELECT seq FROM segments)",
            [],
        )
        .map_err(store)?;
        let in_request: i64 = tx
            .query_row(
                "SELECT coalesce(sum(readings), 0) FROM segments WHERE state = 'sending'",
                [],
                |r| r.get(0),
            )
            .map_err(store)?;
        tx.execute(
            "UPDATE segments SET state = 'waiting', maybe_sent = 1 WHERE state = 'sending'",
            [],
        )
        .map_err(store)?;
        tx.commit().map_err(store)?;
        let recovered = count_of(in_request).saturating_add(migrated.recovered);
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "store-and-forward queue: readings whose request's outcome is unknown are queued again and may be duplicated"
            );
        }
        if migrated.unreadable > 0 {
            tracing::warn!(
                readings = migrated.unreadable,
                "store-and-forward queue: unreadable version-1 rows dropped during the migration"
            );
        }
        let count = |sql: &str| -> Result<u64, SinkError> {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(count_of)
                .map_err(store)
        };
        let readings = count("SELECT coalesce(sum(readings), 0) FROM segments")?;
        let oldest = count("SELECT coalesce(min(seq), 0) FROM segments")?;
        let last = count("SELECT coalesce(max(seq), 0) FROM segments")?;
        let db = Arc::new(Mutex::new(Db {
            conn,
            readings,
            recent: Recent::default(),
        }));
        let checkpointer = Checkpointer::start(&path, db.clone())?;
        let inner = Inner {
            checkpointer,
            path,
            max_readings: self.max_readings,
            when_full: self.when_full,
            conn: db,
            queued: AtomicU64::new(readings),
            oldest: AtomicU64::new(oldest),
            last: AtomicU64::new(last),
            written_before: last,
            dropped: AtomicU64::new(migrated.unreadable),
            recovered,
        };
        Ok(Queue {
            inner: Arc::new(inner),
        })
    }
}

/// A durable store-and-forward queue: one SQLite file (see the [module docs](self) for the
/// schema, bounds, migration and the at-least-once promise). Give it to
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
    /// Dropped with the last clone of the queue: stops the thread.
    #[allow(dead_code, reason = "held for its Drop")]
    checkpointer: Checkpointer,
    path: PathBuf,
    max_readings: u64,
    when_full: FullPolicy,
    conn: Arc<Mutex<Db>>,
    /// Readings in segments in state `queued` (changed only with `conn` held).
    queued: AtomicU64,
    /// The smallest `seq` in the file, 0 when empty (changed only with `conn` held).
    oldest: AtomicU64,
    /// The largest `seq` ever committed, 0 before the first.
    last: AtomicU64,
    /// The largest `seq` when the file was opened: segments up to it were written by an earlier
    /// run (or by hand) and are checked reading by reading before they are sent.
    written_before: u64,
    dropped: AtomicU64,
    recovered: u64,
}

/// The file's `PRAGMA user_version`.
fn user_version(conn: &Connection) -> Result<i64, SinkError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(store)
}

/// Refuses a file whose schema is newer than this version reads, leaving it as it is.
fn refuse_newer(version: i64, path: &Path) -> Result<(), SinkError> {
    if version > SCHEMA_VERSION {
        return Err(SinkError::Store(format!(
            "{}: the queue file has schema version {version}, written by a newer version of \
             iot-sdk; this version reads versions 1 to {SCHEMA_VERSION} only (the file is left \
             as it is)",
            path.display()
        )));
    }
    Ok(())
}

/// The pages the WAL may grow to before the queue's own connection checkpoints it itself.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;

/// How often the checkpointer thread checkpoints the WAL while the queue is written to.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// How often, at the least, the checkpointer looks at an idle queue (its pause doubles from
/// [`CHECKPOINT_EVERY`] up to this while nothing is written).
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_millis(640);

/// The WAL length (in frames of one page: 1 MiB) from which the checkpointer finishes a
/// checkpoint that writes overtook with the queue's writes held, so that the WAL starts over.
const RESTART_FRAMES: i64 = 256;

/// A thread with a connection of its own that checkpoints the WAL every [`CHECKPOINT_EVERY`]
/// (`PRAGMA wal_checkpoint(PASSIVE)`: it never waits for, nor blocks, the queue's writes), so
/// that neither a producer's commit nor the sender's pays for copying the WAL into the file and
/// syncing it.
///
/// The next write starts the WAL over (writing it from its beginning again, not making it
/// longer) only when a checkpoint has copied all of it; under a steady stream of writes none
/// does, as writes go on during the copy. So when the WAL holds [`RESTART_FRAMES`] or more, the
/// thread copies the rest (what was written during the first copy: little) with the queue's
/// connection held. Measured on figure 9, this keeps the
/// WAL at about a megabyte instead of growing through the whole run, and takes a tenth off the
/// time: writing over pages of the WAL costs the file system less than adding pages, and
/// closing the queue (a last checkpoint, the WAL deleted) takes a few milliseconds instead of
/// tens.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, db: Arc<Mutex<Db>>) -> Result<Checkpointer, SinkError> {
        let conn = Connection::open(path).map_err(store)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(store)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("iot-sdk-queue-checkpointer".into())
            .spawn(move || {
                let mut pause = CHECKPOINT_EVERY;
                let mut last = None;
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(pause)
                {
                    let (frames, copied) = match checkpoint(&conn) {
                        Ok(done) => done,
                        Err(e) => {
                            tracing::debug!(error = %e, "store-and-forward queue: checkpoint failed");
                            continue;
                        }
                    };
                    if frames >= RESTART_FRAMES {
                        // The frames written during the copy (the count above is from before
                        // it) are copied with the queue's writes held: then all of the WAL is
                        // in the file, and the next write starts it over.
                        let held = db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if let Err(e) = checkpoint(&conn) {
                            tracing::debug!(error = %e, "store-and-forward queue: checkpoint failed");
                        }
                        drop(held);
                    }
                    pause = if last == Some((frames, copied)) {
                        pause.saturating_mul(2).min(CHECKPOINT_IDLE)
                    } else {
                        CHECKPOINT_EVERY
                    };
                    last = Some((frames, copied));
                }
            })
            .map_err(|e| SinkError::Store(format!("the checkpointer thread did not start: {e}")))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Copies the WAL into the file as far as no reader needs it (`PASSIVE`: never waits for, nor
/// blocks, a writer). Returns the frames in the WAL and how many of them are in the file, both
/// as they were when the copy began.
fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(1)?, r.get(2)?))
    })
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's wait at once.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Db {
    conn: Connection,
    /// Readings in the file.
    readings: u64,
    /// The request bodies of segments written by this run and not yet claimed.
    recent: Recent,
}

/// At most this many bytes of request bodies are kept in [`Recent`] (about 80 segments of
/// 1,000 readings).
const RECENT_BYTES: usize = 8 << 20;

/// The request bodies (`{"readings":[…]}`) of segments this run wrote and has not claimed yet,
/// up to [`RECENT_BYTES`], so that claiming them needs no read back from the file: only
/// segments committed by [`Queue::insert`] are put here, and a segment leaves when it is
/// claimed, cut or deleted. A segment that is not here is read from the file.
#[derive(Default)]
struct Recent {
    bodies: std::collections::HashMap<u64, Bytes>,
    bytes: usize,
}

impl Recent {
    /// Keeps `body` if there is room.
    fn put(&mut self, seq: u64, body: Bytes) {
        let bytes = self.bytes.saturating_add(body.len());
        if bytes <= RECENT_BYTES {
            self.bytes = bytes;
            self.bodies.insert(seq, body);
        }
    }

    /// The body of segment `seq`, which leaves.
    fn take(&mut self, seq: u64) -> Option<Bytes> {
        let body = self.bodies.remove(&seq)?;
        self.bytes = self.bytes.saturating_sub(body.len());
        Some(body)
    }
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

/// A write transaction begun and ended through cached statements (rusqlite's `Transaction`
/// parses and prepares `BEGIN` and `COMMIT` again for every transaction, with the queue's lock
/// held). Rolled back when dropped without [`Tx::commit`].
struct Tx<'c> {
    conn: &'c mut Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c mut Connection) -> Result<Tx<'c>, SinkError> {
        run_cached(conn, "BEGIN")?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> Result<(), SinkError> {
        run_cached(self.conn, "COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // Fails only when SQLite already rolled the transaction back itself (after an error).
        if self.open && !self.conn.is_autocommit() {
            let _ = run_cached(self.conn, "ROLLBACK");
        }
    }
}

/// Runs a statement without parameters or rows, prepared once per connection.
fn run_cached(conn: &Connection, sql: &str) -> Result<(), SinkError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(store)
}

fn store(e: rusqlite::Error) -> SinkError {
    SinkError::Store(e.to_string())
}

fn ts_text(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A count read from the file; a negative one (a file edited by hand) is 0.
fn count_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// One segment of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentSegment {
    pub(crate) seq: u64,
    pub(crate) readings: u64,
    pub(crate) maybe_sent: bool,
}

/// Segments claimed for one request, and its body.
pub(crate) struct Claimed {
    /// In `seq` order, as they are in the body.
    pub(crate) segments: Vec<SentSegment>,
    /// Readings in all.
    pub(crate) readings: u64,
    /// `{"readings":[…]}`: the segments' arrays joined.
    pub(crate) body: Bytes,
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

/// The start of an ingest body, before the array of readings.
const BODY_KEY: &[u8] = b"{\"readings\":";
/// The start of an ingest body, before the readings.
const BODY_START: &[u8] = b"{\"readings\":[";
/// The end of an ingest body, after the readings.
const BODY_END: &[u8] = b"]}";

/// What is between the brackets of a segment's JSON array; `None` unless `array` is `[…]` with
/// something inside.
fn array_items(array: &[u8]) -> Option<&[u8]> {
    let inner = array.strip_prefix(b"[")?.strip_suffix(b"]")?;
    (!inner.is_empty()).then_some(inner)
}

/// Appends one segment's readings to a body under construction (started with [`BODY_START`]).
fn push_items(body: &mut Vec<u8>, items: &[u8]) {
    if body.len() > BODY_START.len() {
        body.push(b',');
    }
    body.extend_from_slice(items);
}

/// The ingest body carrying the readings of `arrays` (JSON arrays of readings, as stored in
/// segments), in order: the same bytes as serializing all the readings at once. `None` when one
/// of them is not a non-empty array.
#[cfg(test)]
fn join_arrays<'a>(arrays: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut body = BODY_START.to_vec();
    for a in arrays {
        push_items(&mut body, array_items(a)?);
    }
    body.extend_from_slice(BODY_END);
    Some(body)
}

/// A reading as stored, its value as written: serde_json's default float parsing may be one
/// unit in the last place off for a long literal, Rust's is exact.
#[derive(serde::Deserialize)]
struct StoredReading<'a> {
    device_id: String,
    metric: String,
    #[serde(deserialize_with = "crate::timestamp::required")]
    ts: DateTime<Utc>,
    #[serde(borrow)]
    value: &'a serde_json::value::RawValue,
    #[serde(default)]
    supersedes: bool,
}

/// The readings of a segment's body; `None` when it does not decode, does not hold `count`
/// readings, or holds one that cannot be sent.
fn decode_segment(body: &str, count: u64) -> Option<Vec<Reading>> {
    let stored: Vec<StoredReading<'_>> = serde_json::from_str(body).ok()?;
    if stored.len() as u64 != count {
        return None;
    }
    let mut readings = Vec::with_capacity(stored.len());
    for s in stored {
        let value: f64 = s.value.get().parse().ok()?;
        let mut r = Reading::new(DeviceId::from(s.device_id), s.metric, s.ts, value);
        r.supersedes = s.supersedes;
        if r.problem().is_some() {
            return None;
        }
        readings.push(r);
    }
    Some(readings)
}

/// The request body (`{"readings":[…]}`) carrying `readings`, serialized once (by the same
/// function that builds every ingest request): the segment stored in the file is the array
/// inside it ([`stored_array`]).
fn encode_body(readings: &[Reading]) -> Result<Bytes, SinkError> {
    ingest_body(readings)
        .map_err(|e| SinkError::Store(format!("a segment could not be serialized: {e}")))
}

/// The JSON array of readings inside a request body made by [`encode_body`] or
/// [`full_body`]: what is stored as a segment's `body`.
fn stored_array(body: &[u8]) -> &[u8] {
    body.get(BODY_KEY.len()..body.len().saturating_sub(1))
        .unwrap_or_default()
}

/// The request body carrying one stored segment's readings (`items`, from [`array_items`]).
fn full_body(items: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(
        items
            .len()
            .saturating_add(BODY_START.len())
            .saturating_add(BODY_END.len()),
    );
    body.extend_from_slice(BODY_START);
    body.extend_from_slice(items);
    body.extend_from_slice(BODY_END);
    body.into()
}

/// A segment's body for `readings`: the array of their request body.
fn encode_segment(readings: &[Reading]) -> Result<String, SinkError> {
    let body = encode_body(readings)?;
    // serde_json writes UTF-8.
    String::from_utf8(stored_array(&body).to_vec())
        .map_err(|e| SinkError::Store(format!("a segment could not be serialized: {e}")))
}

/// Deletes a segment and its body.
fn delete_segment(tx: &Connection, seq: u64) -> Result<(), SinkError> {
    for sql in [
        "DELETE FROM segments WHERE seq = ?1",
        "DELETE FROM bodies WHERE seq = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([seq_param(seq)]))
            .map_err(store)?;
    }
    Ok(())
}

/// Replaces a segment's body (after some of its readings went).
fn set_body(tx: &Connection, seq: u64, body: &str) -> Result<(), SinkError> {
    tx.execute(
        "UPDATE bodies SET body = ?2 WHERE seq = ?1",
        params![seq_param(seq), body],
    )
    .map(|_| ())
    .map_err(store)
}

fn segment_body(tx: &Connection, seq: u64) -> Result<Option<String>, SinkError> {
    tx.query_row(
        "SELECT body FROM bodies WHERE seq = ?1",
        [seq_param(seq)],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .map_err(store)
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
        self.lock().readings
    }

    /// Whether the file holds no reading.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Readings waiting to be sent (not in a request now).
    pub fn queued(&self) -> u64 {
        self.inner.queued.load(Ordering::SeqCst)
    }

    /// Readings deleted since the queue was opened: by [`FullPolicy::DropOldest`], or found
    /// unreadable (a file edited by hand).
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
            .prepare_cached("SELECT coalesce(min(seq), 0) FROM segments")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(store)?;
        self.inner.oldest.store(count_of(oldest), Ordering::SeqCst);
        Ok(())
    }

    /// Writes `readings` in one transaction (all or none), as segments of at most `piece`
    /// readings, applying the full policy. Returns the number of readings dropped to make room.
    /// Blocking (it serializes the readings, then writes).
    pub(crate) fn insert(&self, readings: &[Reading], piece: usize) -> Result<u64, SinkError> {
        let n = readings.len() as u64;
        if n == 0 {
            return Ok(0);
        }
        let max = self.inner.max_readings;
        if n > max {
            return Err(SinkError::QueueFull { max });
        }
        // Serialized before the lock is taken: the worker's claims and resolutions go on.
        let segments = readings
            .chunks(piece.clamp(1, MAX_INGEST_BATCH))
            .map(|c| Ok((c.len() as i64, encode_body(c)?)))
            .collect::<Result<Vec<_>, SinkError>>()?;
        let mut db = self.lock();
        let over = db.readings.saturating_add(n).saturating_sub(max);
        if over > 0 && self.inner.when_full == FullPolicy::Refuse {
            return Err(SinkError::QueueFull { max });
        }
        let db = &mut *db;
        let tx = Tx::begin(&mut db.conn)?;
        let dropped = if over > 0 {
            drop_oldest(&tx, over, &mut db.recent)?.ok_or(SinkError::QueueFull { max })?
        } else {
            0
        };
        let mut last = 0;
        let mut written = Vec::with_capacity(segments.len());
        {
            let mut segment = tx
                .prepare_cached("INSERT INTO segments (readings) VALUES (?1)")
                .map_err(store)?;
            let mut text = tx
                .prepare_cached("INSERT INTO bodies (seq, body) VALUES (?1, ?2)")
                .map_err(store)?;
            for (count, body) in segments {
                last = segment.insert([count]).map_err(store)?;
                // Bound as text (serde_json writes UTF-8), without checking it again.
                let array = ToSqlOutput::Borrowed(ValueRef::Text(stored_array(&body)));
                text.execute(params![last, array]).map_err(store)?;
                written.push((count_of(last), body));
            }
        }
        tx.commit()?;
        for (seq, body) in written {
            db.recent.put(seq, body);
        }
        db.readings = db.readings.saturating_add(n).saturating_sub(dropped);
        let _ = self
            .inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_add(n).saturating_sub(dropped))
            });
        self.inner.last.store(count_of(last), Ordering::SeqCst);
        if dropped > 0 {
            self.inner.dropped.fetch_add(dropped, Ordering::SeqCst);
            tracing::warn!(
                dropped,
                "store-and-forward queue full: oldest readings dropped"
            );
            self.refresh_oldest(db)?;
        } else if self.inner.oldest.load(Ordering::SeqCst) == 0 {
            self.refresh_oldest(db)?;
        }
        Ok(dropped)
    }

    /// Marks the oldest queued segments `sending`, as many consecutive ones as hold at most
    /// `limit` readings (at least one segment, whatever its size), and returns them with the
    /// request body built from them. `None` when nothing is queued. Segments that do not read
    /// (a file edited by hand) are deleted and counted as dropped. Blocking.
    pub(crate) fn claim(&self, limit: usize) -> Result<Option<Claimed>, SinkError> {
        let limit = limit as u64;
        let mut db = self.lock();
        let db = &mut *db;
        let tx = Tx::begin(&mut db.conn)?;
        let mut segments: Vec<SentSegment> = Vec::new();
        let mut unreadable: Vec<(u64, u64)> = Vec::new();
        let mut readings: u64 = 0;
        // Each segment's request body: kept from `insert`, or read from the file.
        let mut bodies: Vec<Bytes> = Vec::new();
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT seq, readings, maybe_sent FROM segments
                     WHERE state = 'waiting' ORDER BY seq LIMIT ?1",
                )
                .map_err(store)?;
            let mut rows = stmt
                .query([i64::try_from(limit.max(1)).unwrap_or(i64::MAX)])
                .map_err(store)?;
            while let Some(row) = rows.next().map_err(store)? {
                let seq = count_of(row.get(0).map_err(store)?);
                let count = count_of(row.get(1).map_err(store)?);
                if !segments.is_empty() && readings.saturating_add(count) > limit {
                    break;
                }
                let maybe_sent: bool = row.get(2).map_err(store)?;
                let body = match db.recent.take(seq) {
                    Some(body) => Some(body),
                    None => {
                        let text = segment_body(&tx, seq)?;
                        // Segments of an earlier run (or a file edited by hand) are checked
                        // reading by reading; this run's own were written by `insert`.
                        text.filter(|t| {
                            seq > self.inner.written_before || decode_segment(t, count).is_some()
                        })
                        .and_then(|t| array_items(t.as_bytes()).map(full_body))
                    }
                };
                match body {
                    Some(body)
                        if count > 0
                            && count <= MAX_INGEST_BATCH as u64
                            && array_items(stored_array(&body)).is_some() =>
                    {
                        bodies.push(body);
                        readings = readings.saturating_add(count);
                        segments.push(SentSegment {
                            seq,
                            readings: count,
                            maybe_sent,
                        });
                    }
                    _ => unreadable.push((seq, count)),
                }
            }
        }
        let body = match bodies.as_slice() {
            [one] => one.clone(),
            many => {
                let mut body = Vec::with_capacity(
                    usize::try_from(readings)
                        .unwrap_or(MAX_INGEST_BATCH)
                        .saturating_mul(READING_BYTES),
                );
                body.extend_from_slice(BODY_START);
                for b in many {
                    if let Some(items) = array_items(stored_array(b)) {
                        push_items(&mut body, items);
                    }
                }
                body.extend_from_slice(BODY_END);
                Bytes::from(body)
            }
        };
        if let (Some(first), Some(last)) = (segments.first(), segments.last()) {
            tx.prepare_cached(
                "UPDATE segments SET state = 'sending', attempts = attempts + 1
                 WHERE state = 'waiting' AND seq BETWEEN ?1 AND ?2",
            )
            .and_then(|mut stmt| stmt.execute([seq_param(first.seq), seq_param(last.seq)]))
            .map_err(store)?;
        }
        for (seq, _) in &unreadable {
            delete_segment(&tx, *seq)?;
        }
        tx.commit()?;
        let bad: u64 = unreadable.iter().map(|(_, c)| *c).sum();
        if !unreadable.is_empty() {
            tracing::warn!(
                segments = unreadable.len(),
                readings = bad,
                "store-and-forward queue: unreadable segments deleted"
            );
            db.readings = db.readings.saturating_sub(bad);
            self.inner.dropped.fetch_add(bad, Ordering::SeqCst);
            self.refresh_oldest(db)?;
        }
        let taken = readings.saturating_add(bad);
        let _ = self
            .inner
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                Some(q.saturating_sub(taken))
            });
        if segments.is_empty() {
            return Ok(None);
        }
        Ok(Some(Claimed {
            segments,
            readings,
            body,
        }))
    }

    /// Records what became of a request that carried the segments `sent` (in the order they
    /// were sent), in one transaction: segments all of whose readings were accepted or rejected
    /// are deleted (accepted readings of a segment marked `maybe_sent` are copied to
    /// `possibly_duplicated`), the others queued again (marked `maybe_sent` when the request
    /// may have been stored; a segment part of which was rejected in an answer that does not
    /// add up keeps only its unconfirmed readings). Blocking.
    pub(crate) fn resolve(
        &self,
        sent: &[SentSegment],
        answer: IngestAnswer,
    ) -> Result<Resolved, SinkError> {
        let mut resolved = Resolved {
            accepted: 0,
            possibly_duplicated: 0,
            rejected: Vec::new(),
            requeued: 0,
            error: None,
        };
        let (named, consistent) = match answer {
            IngestAnswer::Answered {
                rejected,
                consistent,
                accepted: _,
            } => (rejected, consistent),
            IngestAnswer::Failed {
                error,
                maybe_stored,
            } => {
                resolved.error = Some(error);
                return self.requeue_all(sent, maybe_stored, resolved);
            }
        };
        let mut db = self.lock();
        let tx = Tx::begin(&mut db.conn)?;
        let now = ts_text(&Utc::now());
        // Readings deleted from the file, and of those the ones that could not be read back.
        let mut deleted: u64 = 0;
        let mut unreadable: u64 = 0;
        {
            let mut dup = tx
                .prepare_cached(
                    "INSERT INTO possibly_duplicated
                     (device_id, metric, ts, value, supersedes, accepted_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(store)?;
            let mut named = named.into_iter().peekable();
            let mut start: u64 = 0;
            for seg in sent {
                let end = start.saturating_add(seg.readings);
                // This segment's rejected readings, by offset in it (`named` is ascending).
                let mut mine: Vec<(usize, IndexedRejection)> = Vec::new();
                while let Some(r) = named.next_if(|r| (r.index as u64) < end) {
                    if let Some(offset) = (r.index as u64)
                        .checked_sub(start)
                        .and_then(|o| usize::try_from(o).ok())
                    {
                        mine.push((offset, r));
                    }
                }
                start = end;
                let others = seg.readings.saturating_sub(mine.len() as u64);
                let needs_readings = !mine.is_empty() || (consistent && seg.maybe_sent);
                let decoded = if needs_readings {
                    let body = segment_body(&tx, seg.seq)?;
                    let decoded = body
                        .as_deref()
                        .and_then(|b| decode_segment(b, seg.readings));
                    if decoded.is_none() {
                        tracing::warn!(
                            seq = seg.seq,
                            "store-and-forward queue: a segment does not read back; its rejected readings are dropped"
                        );
                    }
                    decoded
                } else {
                    None
                };
                let rejected_here = mine.iter().map(|(o, _)| *o).collect::<Vec<usize>>();
                if let Some(readings) = &decoded {
                    for (offset, r) in mine {
                        if let Some(reading) = readings.get(offset) {
                            resolved.rejected.push(RejectedReading {
                                reading: reading.clone(),
                                code: r.code,
                                message: r.message,
                            });
                        }
                    }
                }
                if consistent {
                    // Every unnamed reading was accepted.
                    if seg.maybe_sent && others > 0 {
                        resolved.possibly_duplicated =
                            resolved.possibly_duplicated.saturating_add(others);
                        for (i, r) in decoded.iter().flatten().enumerate() {
                            if !rejected_here.contains(&i) {
                                dup.execute(params![
                                    r.device_id.as_str(),
                                    r.metric,
                                    ts_text(&r.ts),
                                    r.value,
                                    r.supersedes,
                                    now
                                ])
                                .map_err(store)?;
                            }
                        }
                    }
                    resolved.accepted = resolved.accepted.saturating_add(others);
                    delete_segment(&tx, seg.seq)?;
                    deleted = deleted.saturating_add(seg.readings);
                    if decoded.is_none() && !rejected_here.is_empty() {
                        unreadable = unreadable.saturating_add(rejected_here.len() as u64);
                    }
                } else if rejected_here.is_empty() {
                    // The answer does not add up: every unnamed reading is unconfirmed.
                    tx.execute(
                        "UPDATE segments SET state = 'waiting', maybe_sent = 1 WHERE seq = ?1",
                        [seq_param(seg.seq)],
                    )
                    .map_err(store)?;
                    resolved.requeued = resolved.requeued.saturating_add(seg.readings);
                } else {
                    let keep: Option<Vec<Reading>> = decoded.map(|readings| {
                        readings
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| !rejected_here.contains(i))
                            .map(|(_, r)| r)
                            .collect()
                    });
                    match keep {
                        Some(keep) if !keep.is_empty() => {
                            // Rare: the segment keeps its unconfirmed readings only.
                            tx.execute(
                                "UPDATE segments SET state = 'waiting', maybe_sent = 1,
                                 readings = ?2 WHERE seq = ?1",
                                params![seq_param(seg.seq), keep.len() as i64],
                            )
                            .map_err(store)?;
                            set_body(&tx, seg.seq, &encode_segment(&keep)?)?;
                            deleted = deleted.saturating_add(rejected_here.len() as u64);
                            resolved.requeued = resolved.requeued.saturating_add(keep.len() as u64);
                        }
                        Some(_) => {
                            delete_segment(&tx, seg.seq)?;
                            deleted = deleted.saturating_add(seg.readings);
                        }
                        None => {
                            delete_segment(&tx, seg.seq)?;
                            deleted = deleted.saturating_add(seg.readings);
                            unreadable = unreadable.saturating_add(seg.readings);
                        }
                    }
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
        tx.commit()?;
        db.readings = db.readings.saturating_sub(deleted);
        if unreadable > 0 {
            self.inner.dropped.fetch_add(unreadable, Ordering::SeqCst);
        }
        self.inner
            .queued
            .fetch_add(resolved.requeued, Ordering::SeqCst);
        self.refresh_oldest(&db)?;
        Ok(resolved)
    }

    /// A request failed whole: its segments are queued again (`maybe_sent` when it may have
    /// been stored).
    fn requeue_all(
        &self,
        sent: &[SentSegment],
        maybe_stored: bool,
        mut resolved: Resolved,
    ) -> Result<Resolved, SinkError> {
        let mut db = self.lock();
        let tx = Tx::begin(&mut db.conn)?;
        {
            let mut back = tx
                .prepare_cached(
                    "UPDATE segments SET state = 'waiting', maybe_sent = max(maybe_sent, ?2)
                     WHERE seq = ?1",
                )
                .map_err(store)?;
            for seg in sent {
                back.execute(params![seq_param(seg.seq), maybe_stored])
                    .map_err(store)?;
                resolved.requeued = resolved.requeued.saturating_add(seg.readings);
            }
        }
        tx.commit()?;
        self.inner
            .queued
            .fetch_add(resolved.requeued, Ordering::SeqCst);
        self.refresh_oldest(&db)?;
        Ok(resolved)
    }
}

/// Deletes the oldest `need` queued readings (never one in a request): whole segments, and the
/// first readings of the next one when only part of it must go. Returns the readings deleted
/// (more than `need` only when a segment to cut did not read: it is deleted whole), or `None`
/// when the queued readings are too few (the rest is in requests).
fn drop_oldest(tx: &Connection, need: u64, recent: &mut Recent) -> Result<Option<u64>, SinkError> {
    let mut victims: Vec<(u64, u64)> = Vec::new();
    let mut found: u64 = 0;
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, readings FROM segments WHERE state = 'waiting' ORDER BY seq",
            )
            .map_err(store)?;
        let mut rows = stmt.query([]).map_err(store)?;
        while found < need {
            let Some(row) = rows.next().map_err(store)? else {
                break;
            };
            let seq = count_of(row.get(0).map_err(store)?);
            let count = count_of(row.get(1).map_err(store)?);
            victims.push((seq, count));
            found = found.saturating_add(count);
        }
    }
    if found < need {
        return Ok(None);
    }
    let mut dropped: u64 = 0;
    for (seq, count) in victims {
        recent.take(seq);
        let left = need.saturating_sub(dropped);
        if count > left {
            // Only the first `left` readings of this segment go (rare): rewrite it.
            let rest = segment_body(tx, seq)?
                .as_deref()
                .and_then(|b| decode_segment(b, count))
                .and_then(|r| {
                    r.get(usize::try_from(left).ok()?..)
                        .map(<[Reading]>::to_vec)
                });
            if let Some(rest) = rest.filter(|r| !r.is_empty()) {
                tx.execute(
                    "UPDATE segments SET readings = ?2 WHERE seq = ?1",
                    params![seq_param(seq), rest.len() as i64],
                )
                .map_err(store)?;
                set_body(tx, seq, &encode_segment(&rest)?)?;
                dropped = dropped.saturating_add(left);
                break;
            }
            tracing::warn!(
                seq,
                "store-and-forward queue: a segment to cut does not read back; dropped whole"
            );
        }
        delete_segment(tx, seq)?;
        dropped = dropped.saturating_add(count);
    }
    Ok(Some(dropped))
}

/// What [`migrate_v1`] did.
#[derive(Default)]
struct Migrated {
    /// Readings that were in a request (`sending`): now `maybe_sent`.
    recovered: u64,
    /// Rows that did not read: dropped.
    unreadable: u64,
}

/// Converts a version-1 file (one row per reading in `readings`) to segments, inside the
/// caller's transaction: consecutive rows in `seq` order, at most [`MAX_INGEST_BATCH`] a
/// segment, never mixing `maybe_sent` values (a row left `sending` counts as `maybe_sent`).
/// `possibly_duplicated` is kept as it is.
fn migrate_v1(tx: &Connection) -> Result<Migrated, SinkError> {
    let mut migrated = Migrated::default();
    let has_table: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'readings'",
            [],
            |r| r.get(0),
        )
        .map_err(store)?;
    if has_table {
        let mut insert = tx
            .prepare("INSERT INTO segments (readings, attempts, maybe_sent) VALUES (?1, ?2, ?3)")
            .map_err(store)?;
        let mut text = tx
            .prepare("INSERT INTO bodies (seq, body) VALUES (?1, ?2)")
            .map_err(store)?;
        let mut flush = |group: &mut Vec<Reading>, attempts: i64, maybe: bool| {
            if group.is_empty() {
                return Ok::<(), SinkError>(());
            }
            let seq = insert
                .insert(params![group.len() as i64, attempts, maybe])
                .map_err(store)?;
            text.execute(params![seq, encode_segment(group)?])
                .map_err(store)?;
            group.clear();
            Ok(())
        };
        let mut stmt = tx
            .prepare(
                "SELECT seq, device_id, metric, ts, value, supersedes, state, attempts, maybe_sent
                 FROM readings ORDER BY seq",
            )
            .map_err(store)?;
        let mut rows = stmt.query([]).map_err(store)?;
        let mut group: Vec<Reading> = Vec::new();
        let (mut attempts, mut maybe) = (0_i64, false);
        while let Some(row) = rows.next().map_err(store)? {
            let (_, reading) = row_reading(row).map_err(store)?;
            let sending = row.get::<_, String>(6).map_err(store)? == "sending";
            let row_attempts: i64 = row.get(7).map_err(store)?;
            let row_maybe = sending || row.get::<_, bool>(8).map_err(store)?;
            let Some(reading) = reading.filter(|r| r.problem().is_none()) else {
                migrated.unreadable = migrated.unreadable.saturating_add(1);
                continue;
            };
            if sending {
                migrated.recovered = migrated.recovered.saturating_add(1);
            }
            if row_maybe != maybe || group.len() >= MAX_INGEST_BATCH {
                flush(&mut group, attempts, maybe)?;
                attempts = 0;
            }
            maybe = row_maybe;
            attempts = attempts.max(row_attempts);
            group.push(reading);
        }
        flush(&mut group, attempts, maybe)?;
        drop(rows);
        drop(stmt);
        tx.execute_batch("DROP TABLE readings;").map_err(store)?;
    }
    Ok(migrated)
}

/// Converts a version-2 file (each segment's body in its `segments` row) to version 3, inside
/// the caller's transaction, once [`SCHEMA`] has created `bodies`: the bodies move to `bodies`,
/// the rest of each row stays as it is (`seq` included, and the AUTOINCREMENT counter).
fn migrate_v2(tx: &Connection) -> Result<(), SinkError> {
    tx.execute_batch(
        "INSERT INTO bodies (seq, body) SELECT seq, body FROM segments;
         ALTER TABLE segments DROP COLUMN body;",
    )
    .map_err(store)
}

/// A row's `seq` and reading (`None` when a column does not parse): the columns `seq,
/// device_id, metric, ts, value, supersedes` of `possibly_duplicated` or of a version-1
/// `readings` table.
fn row_reading(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, Option<Reading>)> {
    let seq = count_of(row.get::<_, i64>(0)?);
    let device: Option<String> = row.get(1).ok();
    let metric: Option<String> = row.get(2).ok();
    let ts: Option<String> = row.get(3).ok();
    let value: Option<f64> = row.get::<_, f64>(4).ok();
    let supersedes: bool = row.get(5).unwrap_or(false);
    let ts = ts
        .and_then(|ts| DateTime::parse_from_rfc3339(&ts).ok())
        .map(|t| t.with_timezone(&Utc));
    let reading = match (device, metric, ts, value) {
        (Some(device), Some(metric), Some(ts), Some(value)) if value.is_finite() => {
            let mut r = Reading::new(DeviceId::from(device), metric, ts, value);
            r.supersedes = supersedes;
            Some(r)
        }
        _ => None,
    };
    Ok((seq, reading))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reading_strategy() -> impl Strategy<Value = Reading> {
        (
            "[a-z0-9_\\-é\"\\\\ ]{1,12}",
            "[a-zA-Z0-9_.\\-\u{1F600}]{1,12}",
            -4_000_000_000i64..4_000_000_000i64,
            0u32..1_000_000_000,
            -1.0e300f64..1.0e300,
            any::<bool>(),
        )
            .prop_map(|(d, m, secs, nanos, value, sup)| {
                let ts = DateTime::from_timestamp(secs, nanos).unwrap();
                let r = Reading::new(format!("dev_{d}"), format!("m{m}"), ts, value);
                if sup { r.superseding() } else { r }
            })
    }

    proptest! {
        /// Readings cut into segments anywhere: the joined body is the body of all of them
        /// serialized at once, and every segment decodes back to its readings.
        #[test]
        fn joined_segments_are_the_body_of_all_the_readings(
            all in proptest::collection::vec(reading_strategy(), 1..60),
            cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
        ) {
            let mut at: Vec<usize> = cuts.iter().map(|c| 1 + c.index(all.len())).collect();
            at.push(all.len());
            at.sort_unstable();
            at.dedup();
            let mut segments = Vec::new();
            let mut start = 0;
            for end in at {
                if end > start {
                    segments.push(&all[start..end]);
                    start = end;
                }
            }
            let stored: Vec<String> = segments.iter().map(|s| encode_segment(s).unwrap()).collect();
            let body = join_arrays(stored.iter().map(|s| s.as_bytes())).unwrap();
            #[derive(serde::Serialize)]
            struct Body<'a> {
                readings: &'a [Reading],
            }
            let expected = serde_json::to_vec(&Body { readings: &all }).unwrap();
            prop_assert_eq!(&body, &expected);
            prop_assert_eq!(
                body,
                super::super::telemetry::ingest_body(&all).unwrap().to_vec()
            );
            for (s, text) in segments.iter().zip(&stored) {
                let back = decode_segment(text, s.len() as u64);
                prop_assert_eq!(back.as_deref(), Some(*s));
            }
        }
    }

    fn temp_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("iot-sdk-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
        file
    }

    fn readings(from: usize, n: usize) -> Vec<Reading> {
        let t0 = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        (from..from + n)
            .map(|i| {
                let ts = t0 + chrono::Duration::seconds(i as i64);
                Reading::new(format!("dev_{}", i % 7), "power_kw", ts, i as f64 / 8.0)
            })
            .collect()
    }

    /// A request joining segments kept in memory and segments read back from the file carries
    /// the same bytes as serializing all their readings at once.
    #[test]
    fn a_claim_joins_kept_and_read_back_segments() {
        let file = temp_file("join.db");
        let queue = Queue::open(&file).unwrap();
        queue.insert(&readings(0, 3), 1_000).unwrap();
        // Forgotten: read back from the file.
        queue.lock().recent = Recent::default();
        queue.insert(&readings(3, 4), 1_000).unwrap();
        queue.insert(&readings(7, 2), 1_000).unwrap();
        queue.lock().recent.take(3);
        let claimed = queue.claim(1_000).unwrap().unwrap();
        assert_eq!(claimed.readings, 9);
        assert_eq!(claimed.segments.len(), 3);
        let all = readings(0, 9);
        assert_eq!(
            claimed.body,
            super::super::telemetry::ingest_body(&all).unwrap()
        );
        // One segment alone: its body as kept.
        queue.insert(&readings(9, 5), 1_000).unwrap();
        let claimed = queue.claim(1_000).unwrap().unwrap();
        assert_eq!(
            claimed.body,
            super::super::telemetry::ingest_body(&readings(9, 5)).unwrap()
        );
        drop(queue);
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn segments_that_are_not_arrays_of_sound_readings_do_not_join_or_decode() {
        assert!(join_arrays([b"[]".as_slice()]).is_none());
        assert!(join_arrays([b"{}".as_slice()]).is_none());
        assert!(decode_segment("[{\"device_id\":\"d\"}]", 1).is_none());
        let r = Reading::new("dev_1", "m", Utc::now(), 1.0);
        let text = encode_segment(std::slice::from_ref(&r)).unwrap();
        assert!(decode_segment(&text, 2).is_none(), "the count must match");
        assert!(decode_segment(&text.replace("dev_1", " "), 1).is_none());
    }
}
