//! Store-and-forward (feature `store-forward`): the SQLite queue behind the ingest sink. A
//! property test of readings through the file into the request body; the full policies; an
//! outage of the whole API in the middle of a run; and a producer process killed with SIGKILL
//! at random points, restarted on the same file, until everything is delivered.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::sgt::KEY;
use futures::StreamExt;
use iot_sdk::sgt::{Client, FullPolicy, Queue, Reading, SinkError};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::SgtSimulator;
use proptest::prelude::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A fresh path for a queue file (and its `-wal`, `-shm` companions), removed first.
fn queue_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "iot-sdk-sf-{}-{name}-{}.db",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    remove(&p);
    p
}

fn remove(p: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
}

fn origin() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn reading(devices: usize, i: usize) -> Reading {
    Reading::new(
        format!("dev_{}", 1 + i % devices),
        "power_kw",
        origin() + chrono::Duration::seconds((i / devices) as i64),
        i as f64,
    )
}

fn client(base_url: &str, key: &str, tenant: &str) -> Client {
    Client::builder()
        .api_key(key)
        .tenant(tenant)
        .base_url(base_url)
        .retry_policy(
            iot_sdk::RetryPolicy::default()
                .with_max_attempts(3)
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(20)),
        )
        .retry_budget(iot_sdk::RetryBudget::unlimited())
        .build()
        .unwrap()
}

async fn sim(devices: usize, faults: Faults) -> SgtSimulator {
    common::started(
        SgtSimulator::builder()
            .api_key(KEY)
            .fleet_size(devices)
            .rate_limit_scale(1000.0)
            .faults(faults)
            .start()
            .await,
    )
}

fn key(r: &Reading) -> (String, String, DateTime<Utc>) {
    (r.device_id.to_string(), r.metric.clone(), r.ts)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..common::proptest_config() })]

    /// Any valid reading goes through the file and arrives in the request body unchanged and in
    /// order, whatever the `send_batch` calls (segments) and the requests they are joined into.
    #[test]
    fn readings_reach_the_request_through_the_file_unchanged(
        raw in proptest::collection::vec(
            ("[a-z0-9_\\-é ]{1,12}", "[a-zA-Z0-9_.\\-]{1,12}", -4_000_000_000i64..4_000_000_000i64,
             0u32..1_000_000_000, -1.0e300f64..1.0e300, any::<bool>()),
            1..40,
        ),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        batch_size in 1usize..16,
    ) {
        let readings: Vec<Reading> = raw
            .into_iter()
            .filter(|(d, m, ..)| !d.trim().is_empty() && !m.trim().is_empty())
            .map(|(d, m, secs, nanos, value, sup)| {
                let ts = DateTime::from_timestamp(secs, nanos).unwrap();
                let r = Reading::new(format!("dev_{d}"), m, ts, value);
                if sup { r.superseding() } else { r }
            })
            .collect();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let bodies = rt.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .and(path("/v1/telemetry/ingest"))
                .respond_with(|req: &wiremock::Request| {
                    let b: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    let n = b["readings"].as_array().unwrap().len();
                    ResponseTemplate::new(200).set_body_json(serde_json::json!({
                        "data": {"accepted": n, "rejected": 0, "errors": []}, "meta": {}
                    }))
                })
                .mount(&server)
                .await;
            let file = queue_path("prop");
            let queue = Queue::open(&file).unwrap();
            let sgt = client(&format!("{}/v1", server.uri()), KEY, "acme-industries");
            // Several `send_batch` calls (segments, cut again at the batch size), joined into
            // requests of at most `batch_size` readings.
            // `_`: the reports are discarded (a stream kept unread would stop the sink).
            let (sink, _) = sgt
                .telemetry()
                .sink()
                .store_forward(queue.clone())
                .batch_size(batch_size)
                // One request at a time: they reach the server in the order they were built.
                .concurrency(1)
                .linger(Duration::from_millis(20))
                .start()
                .unwrap();
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(readings.len() + 1)).collect();
            at.push(readings.len());
            at.sort_unstable();
            let mut start = 0;
            for end in at {
                if end > start {
                    sink.send_batch(readings[start..end].to_vec()).await.unwrap();
                    start = end;
                }
            }
            sink.flush().await.unwrap();
            let stats = sink.close().await;
            assert_eq!(stats.accepted, readings.len() as u64);
            assert!(queue.is_empty());
            drop(queue);
            remove(&file);
            server.received_requests().await.unwrap()
        });
        // Compared as JSON text: the SDK writes shortest round-trip floats, which a default
        // serde_json parse would not read back exactly.
        let sent: Vec<String> = bodies
            .iter()
            .map(|r| {
                let b = String::from_utf8(r.body.clone()).unwrap();
                b.strip_prefix("{\"readings\":[").and_then(|b| b.strip_suffix("]}")).unwrap().to_owned()
            })
            .collect();
        let expected: Vec<String> = readings.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        prop_assert_eq!(sent.join(","), expected.join(","));
        let within = bodies.iter().all(|r| {
            let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            b["readings"].as_array().unwrap().len() <= batch_size
        });
        prop_assert!(within, "a request of more than the batch size");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_policies_refuse_or_drop_the_oldest() {
    let sim = sim(2, Faults::none().unavailable(true)).await;
    let sgt = client(sim.base_url(), sim.api_key(), sim.tenant());

    // Refuse: the batch that would pass the bound is refused whole.
    let file = queue_path("refuse");
    let queue = Queue::options().max_readings(100).open(&file).unwrap();
    let (sink, _r) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .start()
        .unwrap();
    sink.send_batch((0..90).map(|i| reading(2, i)).collect())
        .await
        .unwrap();
    match sink
        .send_batch((90..120).map(|i| reading(2, i)).collect())
        .await
    {
        Err(SinkError::QueueFull { max: 100 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!((queue.len(), sink.stats().produced), (90, 90));
    drop(sink);

    // Drop oldest: room is made by deleting the oldest queued readings.
    let file2 = queue_path("drop");
    let queue2 = Queue::options()
        .max_readings(100)
        .when_full(FullPolicy::DropOldest)
        .open(&file2)
        .unwrap();
    let (sink2, _r2) = sgt
        .telemetry()
        .sink()
        .store_forward(queue2.clone())
        .linger(Duration::from_secs(3600))
        .start()
        .unwrap();
    sink2
        .send_batch((0..100).map(|i| reading(2, i)).collect())
        .await
        .unwrap();
    sink2
        .send_batch((100..130).map(|i| reading(2, i)).collect())
        .await
        .unwrap();
    assert_eq!((queue2.len(), queue2.dropped()), (100, 30));
    // The API comes back: the 100 newest are delivered, the 30 oldest were dropped.
    sim.set_faults(Faults::none());
    sink2.flush().await.unwrap();
    let counts = sim.stored_counts();
    assert_eq!(counts.len(), 100);
    for i in 0..130 {
        assert_eq!(
            counts.contains_key(&key(&reading(2, i))),
            i >= 30,
            "reading {i}"
        );
    }
    sink2.close().await;
    drop((queue, queue2));
    remove(&file);
    remove(&file2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_whole_api_loses_nothing_and_delivers_in_order() {
    const N: usize = 30_000;
    const DEVICES: usize = 10;
    let sim = sim(DEVICES, Faults::none()).await;
    let sgt = client(sim.base_url(), sim.api_key(), sim.tenant());
    let file = queue_path("outage");
    let queue = Queue::open(&file).unwrap();
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .concurrency(1)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .start()
        .unwrap();
    let reader = tokio::spawn(reports.collect::<Vec<_>>());
    let producer = {
        let sink = sink.clone();
        tokio::spawn(async move {
            for g in 0..(N / 100) {
                let batch = (g * 100..(g + 1) * 100)
                    .map(|i| reading(DEVICES, i))
                    .collect();
                sink.send_batch(batch).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // The API goes down for a while in the middle of the run.
    while sink.stats().accepted < 5_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.set_faults(Faults::none().unavailable(true));
    let down = Instant::now();
    let mut peak_queued = 0;
    while down.elapsed() < Duration::from_millis(1500) {
        peak_queued = peak_queued.max(queue.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted_while_down = sink.stats().accepted;
    sim.set_faults(Faults::none());
    producer.await.unwrap();
    let stats = sink.close().await;
    let reports = reader.await.unwrap();
    eprintln!(
        "outage: {} accepted, {} requeued, peak queued on disk {peak_queued}, 503s {}",
        stats.accepted,
        stats.requeued,
        sim.stats().status(503)
    );
    assert!(sim.stats().status(503) > 0, "the outage was seen");
    assert!(
        peak_queued > 1_000,
        "readings accumulated on disk: {peak_queued}"
    );
    assert!(accepted_while_down < N as u64);
    assert_eq!((stats.produced, stats.accepted), (N as u64, N as u64));
    assert_eq!(
        stats.possibly_duplicated, 0,
        "a 503 proves nothing was stored"
    );
    assert_eq!(reports.iter().map(|r| r.accepted).sum::<u64>(), N as u64);
    assert!(queue.is_empty());
    let counts = sim.stored_counts();
    assert_eq!(counts.len(), N);
    assert!(counts.values().all(|&c| c == 1));
    // In order: one request at a time, oldest first, so each device's readings arrived in the
    // order they were produced.
    for d in 1..=DEVICES {
        let stored = sim.stored_readings(&format!("dev_{d}"), "power_kw");
        assert!(
            stored.windows(2).all(|w| w[0].0 < w[1].0),
            "dev_{d} out of order"
        );
    }
    drop(queue);
    remove(&file);
}

// ---------------------------------------------------------------------------------------------
// SIGKILL: a producer process killed at random points, restarted on the same queue file.
// ---------------------------------------------------------------------------------------------

const CHILD: &str = "IOT_SDK_SF_CHILD";
const KILL_TEST: &str = "a_producer_killed_at_random_points_loses_nothing";
const DEVICES: usize = 10;
const PER_RUN: usize = 20_000;
const GROUP: usize = 50;

/// The child: produces readings `from..to` into the queue at `SF_PATH` against the simulator
/// at `SF_URL`, appending the last index of each committed group to `SF_PROGRESS`.
async fn child() {
    let var = |k: &str| std::env::var(k).unwrap();
    let from: usize = var("SF_FROM").parse().unwrap();
    let to: usize = var("SF_TO").parse().unwrap();
    let queue = Queue::open(var("SF_PATH")).unwrap();
    let sgt = client(&var("SF_URL"), &var("SF_KEY"), &var("SF_TENANT"));
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue)
        .batch_size(200)
        .linger(Duration::from_millis(5))
        .backoff(Duration::from_millis(5), Duration::from_millis(50))
        .start()
        .unwrap();
    drop(reports);
    let mut progress = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(var("SF_PROGRESS"))
        .unwrap();
    let mut i = from;
    while i < to {
        let end = (i + GROUP).min(to);
        sink.send_batch((i..end).map(|j| reading(DEVICES, j)).collect())
            .await
            .unwrap();
        // One write call, so a kill cannot leave half a line.
        progress
            .write_all(format!("{}\n", end - 1).as_bytes())
            .unwrap();
        i = end;
    }
    sink.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_killed_at_random_points_loses_nothing() {
    if std::env::var_os(CHILD).is_some() {
        child().await;
        return;
    }
    const RUNS: usize = 12;
    // Lost responses (processed, answer dropped) add unconfirmed requests to the kills.
    let sim = sim(DEVICES, Faults::none().lost_response_rate(0.05)).await;
    let file = queue_path("sigkill");
    let progress = PathBuf::from(format!("{}.progress", file.display()));
    let _ = std::fs::remove_file(&progress);
    let mut rng: u64 = 0x5167_4b11;
    let exe = std::env::current_exe().unwrap();
    let mut killed = 0;
    for run in 0..RUNS {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", KILL_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("SF_PATH", &file)
            .env("SF_URL", sim.base_url())
            .env("SF_KEY", sim.api_key())
            .env("SF_TENANT", sim.tenant())
            .env("SF_FROM", (run * PER_RUN).to_string())
            .env("SF_TO", ((run + 1) * PER_RUN).to_string())
            .env("SF_PROGRESS", &progress)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(50 + next(&mut rng) % 900);
        tokio::time::sleep(delay).await;
        // `kill` is SIGKILL on Unix; a child that already finished is simply reaped.
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
    }

    // Which readings were produced: every index of a committed group (the progress file lags
    // the commit by at most one group, so a few more may be in the file).
    let text = std::fs::read_to_string(&progress).unwrap_or_default();
    let mut produced: HashSet<usize> = HashSet::new();
    let mut ends: Vec<usize> = text.lines().filter_map(|l| l.parse().ok()).collect();
    ends.sort_unstable();
    for end in ends {
        // Groups start on multiples of GROUP (PER_RUN is one too).
        let start = end - end % GROUP;
        produced.extend(start..=end);
    }

    // The last run, here: reopen the same file and drain it.
    let queue = Queue::open(&file).unwrap();
    let recovered = queue.recovered();
    sim.set_faults(Faults::none());
    let sgt = client(sim.base_url(), sim.api_key(), sim.tenant());
    let (sink, _reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .start()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(300), sink.flush())
        .await
        .expect("the queue drained")
        .unwrap();
    sink.close().await;
    assert!(queue.is_empty());
    let journal: HashSet<_> = queue
        .possibly_duplicated(usize::MAX)
        .unwrap()
        .iter()
        .map(key)
        .collect();

    let counts = sim.stored_counts();
    let duplicated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    eprintln!(
        "sigkill: {RUNS} runs, {killed} killed, {} produced, {} stored, {recovered} recovered as unconfirmed at the last open, {} possibly duplicated (journal), {} duplicated on the server",
        produced.len(),
        counts.len(),
        journal.len(),
        duplicated.len()
    );
    assert!(killed >= 1, "no run was killed");
    assert!(produced.len() > PER_RUN, "the children produced too little");
    // Every produced reading was accepted.
    for i in &produced {
        assert!(
            counts.contains_key(&key(&reading(DEVICES, *i))),
            "reading {i} lost"
        );
    }
    // Nothing stored that no child produced.
    for k in counts.keys() {
        let i = (k.2 - origin()).num_seconds() as usize * DEVICES
            + k.0.trim_start_matches("dev_").parse::<usize>().unwrap()
            - 1;
        assert!(i < RUNS * PER_RUN, "unexpected reading {i}");
    }
    // Duplicates only among readings the queue counted as possibly duplicated.
    for (k, c) in &duplicated {
        assert!(
            journal.contains(*k),
            "{k:?} stored {c} times but never counted unconfirmed"
        );
        assert!(**c <= 1 + RUNS as u64);
    }
    drop(queue);
    remove(&file);
    let _ = std::fs::remove_file(&progress);
}

/// A small seeded generator (xorshift), so the kill points are the same on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

// ---------------------------------------------------------------------------------------------
// Schema versions: a version-1 file (one row per reading) is migrated on open.
// ---------------------------------------------------------------------------------------------

/// The schema of version 1 of the queue file, as that version wrote it.
const V1_SCHEMA: &str = "
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

fn ts_text(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_migrated_and_every_reading_delivered_once() {
    const N: usize = 2_500;
    // Readings 100..200 were in a request when the version-1 process was killed; 500..800 had
    // an unknown outcome earlier (maybe_sent); 1_000 is a correction.
    let sending = 100..200;
    let maybe = 500..800;
    let sim = sim(DEVICES, Faults::none()).await;
    let file = queue_path("v1");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch(V1_SCHEMA).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO readings (device_id, metric, ts, value, supersedes, state, attempts, maybe_sent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .unwrap();
        for i in 0..N {
            let r = reading(DEVICES, i);
            let state = if sending.contains(&i) {
                "sending"
            } else {
                "queued"
            };
            let attempts = i32::from(sending.contains(&i) || maybe.contains(&i));
            insert
                .execute(rusqlite::params![
                    r.device_id.as_str(),
                    r.metric,
                    ts_text(&r.ts),
                    r.value,
                    i == 1_000,
                    state,
                    attempts,
                    maybe.contains(&i)
                ])
                .unwrap();
        }
        // One reading the earlier version journaled as possibly duplicated: kept.
        conn.execute(
            "INSERT INTO possibly_duplicated VALUES (7, 'dev_9', 'power_kw', '2026-05-01T00:00:00Z', 1.5, 0, '2026-05-01T00:00:01Z')",
            [],
        )
        .unwrap();
    }

    let queue = Queue::open(&file).unwrap();
    assert_eq!(queue.len(), N as u64);
    assert_eq!(queue.recovered(), sending.len() as u64);
    {
        // The file is version 3 now: segments of at most 1,000 readings, none mixing
        // maybe_sent and not, their bodies in `bodies`.
        let conn = rusqlite::Connection::open(&file).unwrap();
        assert_eq!(user_version(&conn), 3);
        assert!(!has_table(&conn, "readings"));
        let mut stmt = conn
            .prepare(
                "SELECT readings, maybe_sent, json_array_length(body), body
                 FROM segments JOIN bodies USING (seq) ORDER BY seq",
            )
            .unwrap();
        let segments: Vec<(i64, bool, i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut i = 0;
        for (count, maybe_sent, len, body) in &segments {
            assert_eq!(count, len);
            assert!((1..=1_000).contains(count));
            let readings: Vec<Reading> = serde_json::from_str(body).unwrap();
            for r in &readings {
                assert_eq!(key(r), key(&reading(DEVICES, i)));
                assert_eq!(r.supersedes, i == 1_000);
                assert_eq!(
                    *maybe_sent,
                    sending.contains(&i) || maybe.contains(&i),
                    "reading {i}"
                );
                i += 1;
            }
        }
        assert_eq!(i, N);
        assert_eq!(
            segments.iter().filter(|s| s.1).map(|s| s.0).sum::<i64>(),
            (sending.len() + maybe.len()) as i64
        );
    }

    deliver_migrated(&sim, queue, &file, N, [sending, maybe]).await;
}

/// Sends all that a migrated queue holds through a sink, then checks: each of the `n` readings
/// stored once; those of the `unknown` ranges counted as possibly duplicated and journaled,
/// after the one row the old file's journal had (`dev_9`); and the file, opened again, empty and
/// with nothing left to migrate or recover.
async fn deliver_migrated(
    sim: &SgtSimulator,
    queue: Queue,
    file: &Path,
    n: usize,
    unknown: [std::ops::Range<usize>; 2],
) {
    let unknown: Vec<usize> = unknown.into_iter().flatten().collect();
    let sgt = client(sim.base_url(), sim.api_key(), sim.tenant());
    let (sink, _reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .start()
        .unwrap();
    sink.flush().await.unwrap();
    let stats = sink.close().await;
    assert_eq!(stats.accepted, n as u64);
    assert_eq!(stats.possibly_duplicated, unknown.len() as u64);
    assert!(queue.is_empty());
    let counts = sim.stored_counts();
    assert_eq!(counts.len(), n);
    for i in 0..n {
        assert_eq!(
            counts.get(&key(&reading(DEVICES, i))),
            Some(&1),
            "reading {i}"
        );
    }
    let journal = queue.possibly_duplicated(usize::MAX).unwrap();
    assert_eq!(journal.len(), 1 + unknown.len());
    assert_eq!(
        journal[0].device_id.as_str(),
        "dev_9",
        "the old journal is kept, first"
    );
    let journaled: HashSet<_> = journal[1..].iter().map(key).collect();
    let expected: HashSet<_> = unknown.iter().map(|&i| key(&reading(DEVICES, i))).collect();
    assert_eq!(journaled, expected);
    drop(queue);

    // Opened again: already version 3, nothing to do.
    let queue = Queue::open(file).unwrap();
    assert!(queue.is_empty());
    assert_eq!(queue.recovered(), 0);
    drop(queue);
    remove(file);
}

/// The schema of version 2 of the queue file, as that version wrote it (each segment's body in
/// its row).
const V2_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS segments (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    readings   INTEGER NOT NULL CHECK (readings > 0),
    state      TEXT    NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'sending')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    maybe_sent INTEGER NOT NULL DEFAULT 0,
    body       TEXT    NOT NULL
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
PRAGMA user_version = 2;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_file_is_migrated_and_every_reading_delivered_once() {
    // Ten segments of 250 readings: the third was in a request when the version-2 process was
    // killed; the fifth had an unknown outcome earlier (maybe_sent). Segments 1 to 40 were
    // sent and deleted before, so the first left is 41.
    const N: usize = 2_500;
    const SEGMENT: usize = 250;
    let sending = 2 * SEGMENT..3 * SEGMENT;
    let maybe = 4 * SEGMENT..5 * SEGMENT;
    let sim = sim(DEVICES, Faults::none()).await;
    let file = queue_path("v2");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch(V2_SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO segments (seq, readings, body) VALUES (40, 1, '[]');
             DELETE FROM segments;",
        )
        .unwrap();
        let all: Vec<Reading> = (0..N).map(|i| reading(DEVICES, i)).collect();
        for (k, chunk) in all.chunks(SEGMENT).enumerate() {
            let first = k * SEGMENT;
            let state = if sending.contains(&first) {
                "sending"
            } else {
                "waiting"
            };
            let maybe_sent = maybe.contains(&first);
            conn.execute(
                "INSERT INTO segments (readings, state, attempts, maybe_sent, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    chunk.len() as i64,
                    state,
                    i32::from(state == "sending" || maybe_sent),
                    maybe_sent,
                    serde_json::to_string(chunk).unwrap()
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO possibly_duplicated VALUES (7, 'dev_9', 'power_kw', '2026-05-01T00:00:00Z', 1.5, 0, '2026-05-01T00:00:01Z')",
            [],
        )
        .unwrap();
    }

    let queue = Queue::open(&file).unwrap();
    assert_eq!(queue.len(), N as u64);
    assert_eq!(queue.recovered(), sending.len() as u64);
    {
        // The file is version 3 now: the same segments (seq, counts, attempts), the one that was
        // in a request marked maybe_sent, their bodies moved to `bodies`, byte for byte.
        let conn = rusqlite::Connection::open(&file).unwrap();
        assert_eq!(user_version(&conn), 3);
        assert!(has_table(&conn, "bodies"));
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('segments') ORDER BY cid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            columns,
            ["seq", "readings", "state", "attempts", "maybe_sent"]
        );
        let mut stmt = conn
            .prepare(
                "SELECT seq, readings, state, attempts, maybe_sent, body
                 FROM segments JOIN bodies USING (seq) ORDER BY seq",
            )
            .unwrap();
        let rows: Vec<(i64, i64, String, i64, bool, String)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), N / SEGMENT);
        for (k, (seq, count, state, attempts, maybe_sent, body)) in rows.iter().enumerate() {
            let first = k * SEGMENT;
            let unknown = sending.contains(&first) || maybe.contains(&first);
            assert_eq!(*seq, 41 + k as i64);
            assert_eq!(*count, SEGMENT as i64);
            assert_eq!(state, "waiting");
            assert_eq!(*attempts, i64::from(unknown));
            assert_eq!(*maybe_sent, unknown, "segment {k}");
            let chunk: Vec<Reading> = (first..first + SEGMENT)
                .map(|i| reading(DEVICES, i))
                .collect();
            assert_eq!(body, &serde_json::to_string(&chunk).unwrap());
        }
        let next: i64 = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'segments'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(next, 50, "seq values are never reused");
    }

    deliver_migrated(&sim, queue, &file, N, [sending, maybe]).await;
}

#[test]
fn a_file_of_a_newer_schema_is_refused_and_left_alone() {
    let file = queue_path("v4");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 4;")
            .unwrap();
    }
    match Queue::open(&file) {
        Err(SinkError::Store(msg)) => {
            assert!(msg.contains("schema version 4"), "{msg}");
            assert!(msg.contains("newer version of iot-sdk"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let conn = rusqlite::Connection::open(&file).unwrap();
    assert_eq!(user_version(&conn), 4);
    assert!(!has_table(&conn, "segments"), "nothing was created");
    drop(conn);
    remove(&file);
}

/// Rejections named by index in a request that joined several segments are mapped back to
/// their readings; an answer whose counts do not add up keeps the unnamed readings (the
/// segment cut to them), marked maybe_sent, and they are counted as possibly duplicated once
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_by_index_map_back_to_readings_across_segments() {
    let server = MockServer::start().await;
    let answers = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = answers.clone();
    Mock::given(method("POST"))
        .and(path("/v1/telemetry/ingest"))
        .respond_with(move |req: &wiremock::Request| {
            let b: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let n = b["readings"].as_array().unwrap().len();
            let data = match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                // Indices 1 and 4: the second reading of the first segment, the third of the
                // second; 7 is out of range and ignored.
                0 => serde_json::json!({"accepted": n - 2, "rejected": 2, "errors": [
                    {"index": 4, "code": "device_not_found", "message": "no such device"},
                    {"index": 1, "code": "bad_metric"},
                    {"index": 7, "code": "ignored"},
                ]}),
                // Counts that do not add up, index 2 named.
                1 => {
                    serde_json::json!({"accepted": n + 5, "errors": [{"index": 2, "code": "late"}]})
                }
                _ => serde_json::json!({"accepted": n, "rejected": 0, "errors": []}),
            };
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": data, "meta": {}}))
        })
        .mount(&server)
        .await;
    let file = queue_path("rejections");
    let queue = Queue::open(&file).unwrap();
    let sgt = client(&format!("{}/v1", server.uri()), KEY, "acme-industries");
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .concurrency(1)
        .linger(Duration::from_secs(3600))
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .start()
        .unwrap();
    let reader = tokio::spawn(reports.collect::<Vec<_>>());
    // Segments of 2, 3 and 2 readings, sent as one request at the flush.
    for range in [0..2, 2..5, 5..7] {
        sink.send_batch(range.map(|i| reading(2, i)).collect())
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    // Segments of 3 and 2: the answer does not add up and names index 2 (the last of the
    // first segment).
    for range in [7..10, 10..12] {
        sink.send_batch(range.map(|i| reading(2, i)).collect())
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    let stats = sink.close().await;
    let reports = reader.await.unwrap();

    let rejected: Vec<(Reading, Option<String>, Option<String>)> = reports
        .iter()
        .flat_map(|r| r.rejected.iter())
        .map(|r| (r.reading.clone(), r.code.clone(), r.message.clone()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (reading(2, 1), Some("bad_metric".into()), None),
            (
                reading(2, 4),
                Some("device_not_found".into()),
                Some("no such device".into())
            ),
            (reading(2, 9), Some("late".into()), None),
        ]
    );
    assert_eq!((stats.produced, stats.accepted, stats.rejected), (12, 9, 3));
    // The 4 unnamed readings of the answer that did not add up were resent.
    assert_eq!((stats.requeued, stats.possibly_duplicated), (4, 4));
    let journal: Vec<_> = queue
        .possibly_duplicated(usize::MAX)
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let expected: Vec<_> = [7, 8, 10, 11]
        .iter()
        .map(|&i| key(&reading(2, i)))
        .collect();
    assert_eq!(journal, expected);
    assert!(queue.is_empty());
    assert_eq!(queue.dropped(), 0);
    drop(queue);
    remove(&file);
}

/// A file's `PRAGMA user_version`.
fn user_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Whether the file has a table (or index) of this name.
fn has_table(conn: &rusqlite::Connection, name: &str) -> bool {
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    n > 0
}
