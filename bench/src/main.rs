//! Benchmarks of the iot-sdk, each side by side with a hand-written `reqwest` + `serde_json`
//! baseline that decodes into the same typed structs, against the same in-process server, in
//! interleaved rounds (sdk, raw, sdk, raw, …). See `bench/README.md`.
//!
//! ```text
//! cargo run -p iot-sdk-bench --release -- [--quick] [FIGURE...]
//! ```
//!
//! Figures: `1` … `9` and `python`; none named runs them all. `--no-request-id`: the server
//! leaves out `X-Request-Id` (which SGT and SiliconWit always send). Internal modes: `--serve`
//! (a server alone, for `callgrind.sh`) and `--child MODE N --port P` (one measurement in a
//! process of its own).

mod measure;
mod server;

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use iot_sdk::Bucket;
use iot_sdk::sgt::{self, RateBucket, Reading};
use iot_sdk::siliconwit;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use measure::Row;
use server::{Server, Vendor};

type R<T> = Result<T, Box<dyn Error>>;

const KEY: &str = "bench-dummy-key";

/// Sizes and rounds of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    rounds: usize,
    get_calls: usize,
    page_calls: usize,
    stream_items: usize,
    rss_small: usize,
    rss_large: usize,
    prefetch_pages: usize,
    sw_total: usize,
    ingest_readings: usize,
    ingest_rounds: usize,
    sink_readings: usize,
    pace_rate: u32,
    pace_burst: u32,
    python_items: usize,
    python_rounds: usize,
}

const FULL: Sizes = Sizes {
    rounds: 7,
    get_calls: 2_000,
    page_calls: 100,
    stream_items: 100_000,
    rss_small: 100_000,
    rss_large: 1_000_000,
    prefetch_pages: 20,
    sw_total: 2_000,
    ingest_readings: 1_000_000,
    ingest_rounds: 3,
    sink_readings: 200_000,
    pace_rate: 50,
    pace_burst: 10,
    python_items: 100_000,
    python_rounds: 3,
};

const QUICK: Sizes = Sizes {
    rounds: 3,
    get_calls: 300,
    page_calls: 20,
    stream_items: 20_000,
    rss_small: 10_000,
    rss_large: 100_000,
    prefetch_pages: 6,
    sw_total: 1_000,
    ingest_readings: 100_000,
    ingest_rounds: 2,
    sink_readings: 20_000,
    pace_rate: 20,
    pace_burst: 5,
    python_items: 20_000,
    python_rounds: 1,
};

// ---------------------------------------------------------------------------------------------
// The baseline: reqwest + serde_json, into the SDK's own structs.

#[derive(Deserialize)]
struct RawOne<T> {
    data: T,
}

#[derive(Deserialize)]
struct RawSgtPage<T> {
    data: Vec<T>,
    meta: RawSgtMeta,
}

#[derive(Deserialize)]
struct RawSgtMeta {
    pagination: RawSgtPagination,
}

#[derive(Deserialize)]
struct RawSgtPagination {
    #[serde(default)]
    next: Option<String>,
    has_more: bool,
}

#[derive(Deserialize)]
struct RawSwPage<T> {
    data: Vec<T>,
    pagination: RawSwPagination,
}

#[derive(Deserialize)]
struct RawSwPagination {
    total: u64,
}

#[derive(Deserialize)]
struct RawIngestData {
    accepted: u64,
}

#[derive(serde::Serialize)]
struct RawIngestBody<'a> {
    readings: &'a [Reading],
}

/// The hand-written client.
struct Raw {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
}

impl Raw {
    fn new(port: u16) -> R<Self> {
        Ok(Raw {
            http: reqwest::Client::builder().build()?,
            base: format!("http://127.0.0.1:{port}/v1"),
            auth: HeaderValue::from_str(&format!("Bearer {KEY}"))?,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> R<T> {
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .header(AUTHORIZATION, &self.auth)
            .send()
            .await?
            .error_for_status()?;
        let bytes = resp.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A GET that, like the spec's Python, sleeps `Retry-After` on a 429 and tries again.
    async fn get_patient<T: DeserializeOwned>(&self, path: &str) -> R<(T, u64)> {
        let mut throttled = 0;
        loop {
            let resp = self
                .http
                .get(format!("{}{path}", self.base))
                .header(AUTHORIZATION, &self.auth)
                .send()
                .await?;
            if resp.status().as_u16() == 429 {
                throttled += 1;
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let bytes = resp.error_for_status()?.bytes().await?;
            return Ok((serde_json::from_slice(&bytes)?, throttled));
        }
    }

    async fn device(&self) -> R<sgt::Device> {
        Ok(self
            .get::<RawOne<sgt::Device>>("/devices/dev_42")
            .await?
            .data)
    }

    /// Every SGT device, by cursor, `limit` a page; each one handed to `each`.
    async fn sgt_walk(&self, limit: u32, mut each: impl FnMut(sgt::Device)) -> R<()> {
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                None => format!("/devices?limit={limit}"),
                Some(c) => format!("/devices?limit={limit}&cursor={c}"),
            };
            let page: RawSgtPage<sgt::Device> = self.get(&path).await?;
            page.data.into_iter().for_each(&mut each);
            if !page.meta.pagination.has_more {
                return Ok(());
            }
            cursor = Some(
                page.meta
                    .pagination
                    .next
                    .ok_or("has_more without a next cursor")?,
            );
        }
    }

    /// Every SiliconWit device, by offset, sequentially.
    async fn sw_walk(&self, limit: u32) -> R<usize> {
        let (mut offset, mut n) = (0u64, 0usize);
        loop {
            let page: RawSwPage<siliconwit::Device> = self
                .get(&format!("/devices?limit={limit}&offset={offset}"))
                .await?;
            let count = page.data.len() as u64;
            n += page.data.len();
            black_box(page.data);
            offset += count;
            if count == 0 || offset >= page.pagination.total {
                return Ok(n);
            }
        }
    }

    /// Readings in sequential 1,000-reading POSTs. Takes the readings as the SDK does (owned, so
    /// both sides free them inside the timed region).
    async fn ingest(&self, readings: Vec<Reading>) -> R<u64> {
        let mut accepted = 0;
        for chunk in readings.chunks(sgt::telemetry::MAX_INGEST_BATCH) {
            let body = serde_json::to_vec(&RawIngestBody { readings: chunk })?;
            let resp = self
                .http
                .post(format!("{}/telemetry/ingest", self.base))
                .header(AUTHORIZATION, &self.auth)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await?
                .error_for_status()?;
            let bytes = resp.bytes().await?;
            let r: RawOne<RawIngestData> = serde_json::from_slice(&bytes)?;
            accepted += r.data.accepted;
        }
        Ok(accepted)
    }
}

fn sdk_sgt(port: u16) -> R<sgt::Client> {
    Ok(sgt::Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .build()?)
}

fn sdk_sw(port: u16) -> R<siliconwit::Client> {
    Ok(siliconwit::Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .build()?)
}

async fn sdk_stream(sgt: &sgt::Client, limit: u32) -> R<usize> {
    let mut items = sgt.devices().list().limit(limit).items();
    let mut n = 0;
    while let Some(d) = items.try_next().await? {
        black_box(d);
        n += 1;
    }
    Ok(n)
}

/// `n` readings, deterministic, decoded from JSON (the same values every run).
fn readings(n: usize) -> R<Vec<Reading>> {
    let mut json = String::with_capacity(n * 100 + 2);
    json.push('[');
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        let (day, secs) = (1 + (i / 86_400) % 28, i % 86_400);
        json.push_str(&format!(
            r#"{{"device_id":"dev_{}","metric":"power_kw","ts":"2026-05-{day:02}T{:02}:{:02}:{:02}Z","value":{}.{}}}"#,
            i % 1_000,
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            i % 97,
            i % 10
        ));
    }
    json.push(']');
    Ok(serde_json::from_str(&json)?)
}

// ---------------------------------------------------------------------------------------------
// The servers and the figures.

struct Servers {
    sgt: Arc<Server>,
    sgt_port: u16,
    sw: Arc<Server>,
    sw_port: u16,
    paced: Arc<Server>,
    paced_port: u16,
}

impl Servers {
    fn start(sgt_devices: usize, sw_devices: usize) -> Self {
        let sgt = Server::new(Vendor::Sgt, sgt_devices);
        let sw = Server::new(Vendor::SiliconWit, sw_devices);
        let paced = Server::new(Vendor::Sgt, 10);
        Servers {
            sgt_port: server::spawn(sgt.clone()),
            sgt,
            sw_port: server::spawn(sw.clone()),
            sw,
            paced_port: server::spawn(paced.clone()),
            paced,
        }
    }
}

fn per_call(start: Instant, calls: usize) -> f64 {
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

async fn fig1(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let sdk = sdk_sgt(s.sgt_port)?;
    let raw = Raw::new(s.sgt_port)?;
    // Warm both connection pools.
    sdk.devices().get("dev_42").await?;
    raw.device().await?;
    let mut row = Row::new("1 GET one device", "µs/call", "raw");
    for _ in 0..z.rounds {
        let t = Instant::now();
        for _ in 0..z.get_calls {
            black_box(sdk.devices().get("dev_42").await?);
        }
        row.sdk.push(per_call(t, z.get_calls));
        let t = Instant::now();
        for _ in 0..z.get_calls {
            black_box(raw.device().await?);
        }
        row.base.push(per_call(t, z.get_calls));
    }
    Ok(vec![row])
}

async fn fig2(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    s.sgt.set_total(usize::MAX);
    let sdk = sdk_sgt(s.sgt_port)?;
    let raw = Raw::new(s.sgt_port)?;
    sdk.devices().list().limit(500).send().await?;
    raw.get::<RawSgtPage<sgt::Device>>("/devices?limit=500")
        .await?;
    let mut time = Row::new("2 GET one 500-device page", "µs/call", "raw");
    let mut faults = Row::new("2 GET one 500-device page", "minor faults/call", "raw");
    for _ in 0..z.rounds {
        let (t, u) = (Instant::now(), measure::thread());
        for _ in 0..z.page_calls {
            let page = sdk.devices().list().limit(500).send().await?;
            black_box(page.items().len());
        }
        time.sdk.push(per_call(t, z.page_calls));
        faults
            .sdk
            .push((measure::thread() - u).minflt / z.page_calls as f64);
        let (t, u) = (Instant::now(), measure::thread());
        for _ in 0..z.page_calls {
            let page: RawSgtPage<sgt::Device> = raw.get("/devices?limit=500").await?;
            black_box(page.data.len());
        }
        time.base.push(per_call(t, z.page_calls));
        faults
            .base
            .push((measure::thread() - u).minflt / z.page_calls as f64);
    }
    Ok(vec![time, faults])
}

async fn fig3(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    s.sgt.set_total(z.stream_items);
    let sdk = sdk_sgt(s.sgt_port)?;
    let raw = Raw::new(s.sgt_port)?;
    let mut row = Row::new(
        &format!(
            "3 stream {} devices (.items(), pages of 500)",
            z.stream_items
        ),
        "items/s",
        "raw cursor loop",
    );
    for _ in 0..z.rounds {
        let t = Instant::now();
        let n = sdk_stream(&sdk, 500).await?;
        row.sdk.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut m = 0usize;
        raw.sgt_walk(500, |d| {
            black_box(d);
            m += 1;
        })
        .await?;
        row.base.push(m as f64 / t.elapsed().as_secs_f64());
        if n != z.stream_items || m != z.stream_items {
            return Err(format!("streamed {n} (sdk) and {m} (raw) of {}", z.stream_items).into());
        }
    }
    Ok(vec![row])
}

/// Runs this binary as `--child MODE N --port P` and returns the number it prints.
fn child(mode: &str, n: usize, port: u16) -> R<f64> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["--child", mode, &n.to_string(), "--port", &port.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "child {mode} {n} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split_whitespace()
        .last()
        .ok_or("the child printed nothing")?
        .parse()?)
}

async fn fig4(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let mut rows = Vec::new();
    for n in [z.rss_small, z.rss_large] {
        s.sgt.set_total(n);
        let mut row = Row::new(
            &format!("4 peak RSS streaming {n}"),
            "VmHWM MiB",
            "raw cursor loop",
        );
        for _ in 0..2 {
            row.sdk.push(child("rss-sdk", n, s.sgt_port)? / 1024.0);
            row.base.push(child("rss-raw", n, s.sgt_port)? / 1024.0);
        }
        rows.push(row);
    }
    Ok(rows)
}

async fn fig5(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let latency = Duration::from_millis(20);
    let work = Duration::from_millis(20);
    s.sgt.set_total(z.prefetch_pages * 500);
    s.sgt.set_latency(latency);
    let sdk = sdk_sgt(s.sgt_port)?;
    let mut row = Row::new(
        &format!(
            "5 {} pages, 20 ms server latency, 20 ms work/page",
            z.prefetch_pages
        ),
        "ms total",
        "sdk, prefetch off",
    );
    let walk = |prefetch: bool| {
        let sdk = sdk.clone();
        async move {
            let t = Instant::now();
            let mut pages = sdk.devices().list().limit(500).pages().prefetch(prefetch);
            let mut n = 0;
            while let Some(p) = pages.try_next().await? {
                n += p.items().len();
                tokio::time::sleep(work).await;
            }
            black_box(n);
            R::Ok(t.elapsed().as_secs_f64() * 1e3)
        }
    };
    let result = async {
        for _ in 0..z.rounds.min(5) {
            row.sdk.push(walk(true).await?);
            row.base.push(walk(false).await?);
        }
        R::Ok(())
    }
    .await;
    s.sgt.set_latency(Duration::ZERO);
    result?;
    Ok(vec![row])
}

async fn fig6(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    s.sw.set_total(z.sw_total);
    s.sw.set_latency(Duration::from_millis(5));
    let sdk = sdk_sw(s.sw_port)?;
    let raw = Raw::new(s.sw_port)?;
    let label = format!("6 SiliconWit {} devices, pages of 100, 5 ms", z.sw_total);
    let mut conc = Row::new(&label, "ms total, concurrent(4)", "sdk sequential");
    let mut seq = Row::new(&label, "ms total, sdk sequential", "raw sequential");
    let result = async {
        for _ in 0..z.rounds.min(5) {
            let t = Instant::now();
            let a: Vec<siliconwit::Device> = sdk
                .devices()
                .list()
                .limit(100)
                .concurrent(4)
                .items()
                .try_collect()
                .await?;
            let c = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let b: Vec<siliconwit::Device> = sdk
                .devices()
                .list()
                .limit(100)
                .items()
                .try_collect()
                .await?;
            let q = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let m = raw.sw_walk(100).await?;
            let r = t.elapsed().as_secs_f64() * 1e3;
            if a.len() != z.sw_total || b.len() != z.sw_total || m != z.sw_total {
                return Err(
                    format!("got {} / {} / {m} of {}", a.len(), b.len(), z.sw_total).into(),
                );
            }
            conc.sdk.push(c);
            conc.base.push(q);
            seq.sdk.push(q);
            seq.base.push(r);
        }
        R::Ok(())
    }
    .await;
    s.sw.set_latency(Duration::ZERO);
    result?;
    Ok(vec![conc, seq])
}

async fn fig7(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let all = readings(z.ingest_readings)?;
    let sdk = sdk_sgt(s.sgt_port)?;
    let raw = Raw::new(s.sgt_port)?;
    let n = z.ingest_readings;
    let mut rows = Vec::new();
    for latency_ms in [5u64, 0] {
        s.sgt.set_latency(Duration::from_millis(latency_ms));
        let label = format!("7 ingest {n} readings, {latency_ms} ms latency");
        let mut time = Row::new(&label, "ms total", "raw sequential 1,000-chunks");
        let mut cpu = Row::new(&label, "client CPU µs/reading", "raw sequential");
        for _ in 0..z.ingest_rounds {
            let copy = all.clone();
            let (t, u) = (Instant::now(), measure::thread());
            let summary = sdk.telemetry().ingest(copy).send().await?;
            time.sdk.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.sdk.push((measure::thread() - u).cpu * 1e6 / n as f64);
            let copy = all.clone();
            let (t, u) = (Instant::now(), measure::thread());
            let accepted = raw.ingest(copy).await?;
            time.base.push(t.elapsed().as_secs_f64() * 1e3);
            cpu.base.push((measure::thread() - u).cpu * 1e6 / n as f64);
            if summary.accepted != n as u64 || accepted != n as u64 {
                return Err(format!("accepted {} / {accepted} of {n}", summary.accepted).into());
            }
        }
        rows.push(time);
        if latency_ms == 0 {
            rows.push(cpu);
        }
    }
    s.sgt.set_latency(Duration::ZERO);
    Ok(rows)
}

/// Figure 9: the streaming ingest sink (`telemetry().sink()`), readings sent one at a time in
/// batches of 1,000 (from `send_batch` calls of 1,000, as a gateway would hand them over), on a
/// zero-latency server: in memory against the raw sequential loop, and with the durable SQLite
/// queue (`store_forward`, default options: WAL, `synchronous = NORMAL`) against in memory.
async fn fig9(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let n = z.sink_readings;
    let all = readings(n)?;
    let sdk = sdk_sgt(s.sgt_port)?;
    let raw = Raw::new(s.sgt_port)?;
    s.sgt.set_latency(Duration::ZERO);
    let label = format!("9 ingest sink {n} readings, 0 ms latency");
    let mut memory = Row::new(
        &label,
        "readings/s, sink in memory",
        "raw sequential 1,000-chunks",
    );
    let mut durable = Row::new(&label, "readings/s, sink + SQLite queue", "sink in memory");
    let mut file = Row::new(
        &label,
        "ms opening + closing the queue file",
        "the durable run, ms",
    );
    let dir = std::env::temp_dir().join(format!("iot-sdk-bench-sink-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let per_sec = |t: Instant| n as f64 / t.elapsed().as_secs_f64();
    // Each run gets its own copy of the readings, made before its clock starts (as in figure
    // 7): copying 200,000 readings takes about as long as a tenth of a durable run.
    for round in 0..z.ingest_rounds {
        let copy = all.clone();
        let t = Instant::now();
        let accepted = sink_run(&sdk, copy, None).await?;
        let in_memory = per_sec(t);
        check_accepted(accepted, n)?;

        // The queue file is opened before the clock starts and closed (its last checkpoint,
        // its WAL deleted) after it stops: a cost per file, not per reading, reported in a row
        // of its own.
        let path = dir.join(format!("queue-{round}.db"));
        let opened = Instant::now();
        let queue = sgt::Queue::open(&path)?;
        let open_ms = opened.elapsed().as_secs_f64() * 1e3;
        let copy = all.clone();
        let t = Instant::now();
        let accepted = sink_run(&sdk, copy, Some(queue.clone())).await?;
        let run_ms = t.elapsed().as_secs_f64() * 1e3;
        durable.sdk.push(per_sec(t));
        let closed = Instant::now();
        drop(queue);
        file.sdk
            .push(open_ms + closed.elapsed().as_secs_f64() * 1e3);
        file.base.push(run_ms);
        check_accepted(accepted, n)?;
        durable.base.push(in_memory);
        memory.sdk.push(in_memory);

        let copy = all.clone();
        let t = Instant::now();
        let accepted = raw.ingest(copy).await?;
        memory.base.push(per_sec(t));
        check_accepted(accepted, n)?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(vec![memory, durable, file])
}

/// Every reading through one sink, 1,000 per `send_batch`; the accepted count once closed.
async fn sink_run(sdk: &sgt::Client, all: Vec<Reading>, queue: Option<sgt::Queue>) -> R<u64> {
    let mut b = sdk.telemetry().sink();
    if let Some(q) = queue {
        b = b.store_forward(q);
    }
    let (sink, _) = b.start()?;
    let mut it = all.into_iter();
    loop {
        let batch: Vec<Reading> = it.by_ref().take(sgt::telemetry::MAX_INGEST_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        sink.send_batch(batch).await?;
    }
    Ok(sink.close().await.accepted)
}

fn check_accepted(accepted: u64, n: usize) -> R<()> {
    if accepted == n as u64 {
        Ok(())
    } else {
        Err(format!("accepted {accepted} of {n}").into())
    }
}

async fn fig8(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let (rate, burst) = (z.pace_rate, z.pace_burst);
    let calls = 2 * rate as usize;
    // The first `burst` calls go at once; the rest at `rate` a second.
    let minimum = (calls - burst as usize) as f64 / f64::from(rate);
    let label = format!(
        "8 pacing {calls} calls, bucket {rate}/s burst {burst} (min {:.2} s)",
        minimum
    );
    let mut time = Row::new(
        &label,
        "elapsed / theoretical minimum",
        "raw, sleeps Retry-After",
    );
    let mut throttled = Row::new(&label, "429s", "raw");
    for _ in 0..2 {
        let sdk = sgt::Client::builder()
            .api_key(KEY)
            .base_url(format!("http://127.0.0.1:{}/v1", s.paced_port))
            .pacing_buckets(vec![Bucket::new(
                RateBucket::Read,
                rate,
                Duration::from_secs(1),
                burst,
            )])
            .build()?;
        s.paced.set_bucket(Some((f64::from(rate), burst)));
        let t = Instant::now();
        for _ in 0..calls {
            black_box(sdk.devices().get("dev_42").await?);
        }
        time.sdk.push(t.elapsed().as_secs_f64() / minimum);
        throttled
            .sdk
            .push(s.paced.throttled.load(std::sync::atomic::Ordering::SeqCst) as f64);

        let raw = Raw::new(s.paced_port)?;
        s.paced.set_bucket(Some((f64::from(rate), burst)));
        let t = Instant::now();
        let mut n429 = 0;
        for _ in 0..calls {
            let (d, k) = raw
                .get_patient::<RawOne<sgt::Device>>("/devices/dev_42")
                .await?;
            black_box(d.data);
            n429 += k;
        }
        time.base.push(t.elapsed().as_secs_f64() / minimum);
        throttled.base.push(n429 as f64);
    }
    s.paced.set_bucket(None);
    Ok(vec![time, throttled])
}

/// The SGT spec's two Python examples as printed (the one copy, which the simulator's tests also
/// run), base URL from `SGT_API_BASE`. Its aggregate call is one request the bench server
/// answers with an empty series; the rest is "paginate through all devices".
const PYTHON: &str = include_str!("../../sim/tests/python/sgt_spec_examples.py");

async fn fig_python(s: &Servers, z: Sizes) -> R<Vec<Row>> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import requests"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("  python: SKIPPED (python3 with requests is not available)");
        return Ok(Vec::new());
    }
    let n = z.python_items;
    s.sgt.set_total(n);
    let script = std::env::temp_dir().join(format!("iot-sdk-bench-{}.py", std::process::id()));
    let api = format!("http://127.0.0.1:{}/v1", s.sgt_port);
    std::fs::write(&script, PYTHON)?;
    let sdk = sgt::Client::builder()
        .api_key(KEY)
        .tenant("acme-industries")
        .base_url(api.clone())
        .build()?;
    let mut row = Row::new(
        &format!("python: page {n} devices (pages of 200)"),
        "client CPU ms",
        "spec's Python + requests",
    );
    for _ in 0..z.python_rounds {
        let u = measure::thread();
        let got = sdk_stream(&sdk, 200).await?;
        row.sdk.push((measure::thread() - u).cpu * 1e3);
        let before = measure::children();
        let status = std::process::Command::new("python3")
            .arg(&script)
            .env("SGT_API_KEY", KEY)
            .env("SGT_API_BASE", &api)
            .stdout(std::process::Stdio::null())
            .status()?;
        row.base.push((measure::children() - before).cpu * 1e3);
        if !status.success() || got != n {
            return Err(format!("python exited {status}; the SDK streamed {got} of {n}").into());
        }
    }
    let _ = std::fs::remove_file(&script);
    let times = measure::median(&row.base) / measure::median(&row.sdk);
    println!(
        "  python/SDK client CPU: {times:.1}x (medians; the SDK should be at least 10x cheaper: {})",
        if times >= 10.0 { "yes" } else { "NO" }
    );
    Ok(vec![row])
}

// ---------------------------------------------------------------------------------------------
// Child processes and the entry point.

/// One measurement alone in this process, against the server at `port`; prints one number.
async fn run_child(mode: &str, n: usize, port: u16) -> R<()> {
    match mode {
        "rss-sdk" => {
            let got = sdk_stream(&sdk_sgt(port)?, 500).await?;
            if got != n {
                return Err(format!("streamed {got} of {n}").into());
            }
            println!("VmHWM_KiB {}", measure::peak_rss_kib());
        }
        "rss-raw" => {
            let mut got = 0;
            Raw::new(port)?
                .sgt_walk(500, |d| {
                    black_box(d);
                    got += 1;
                })
                .await?;
            if got != n {
                return Err(format!("streamed {got} of {n}").into());
            }
            println!("VmHWM_KiB {}", measure::peak_rss_kib());
        }
        "calls-sdk" => {
            let sdk = sdk_sgt(port)?;
            for _ in 0..n {
                black_box(sdk.devices().get("dev_42").await?);
            }
            println!("calls {n}");
        }
        "calls-raw" => {
            let raw = Raw::new(port)?;
            for _ in 0..n {
                black_box(raw.device().await?);
            }
            println!("calls {n}");
        }
        "page-sdk" => {
            let sdk = sdk_sgt(port)?;
            for _ in 0..n {
                let page = sdk.devices().list().limit(500).send().await?;
                black_box(page.items().len());
            }
            println!("pages {n}");
        }
        "page-raw" => {
            let raw = Raw::new(port)?;
            for _ in 0..n {
                let page: RawSgtPage<sgt::Device> = raw.get("/devices?limit=500").await?;
                black_box(page.data.len());
            }
            println!("pages {n}");
        }
        // `n` readings made and ingested; `ingest-none` only makes them, so that its count can
        // be subtracted from the other two.
        "ingest-sdk" | "ingest-raw" | "ingest-none" => {
            let all = readings(n)?;
            let accepted = match mode {
                "ingest-sdk" => {
                    sdk_sgt(port)?
                        .telemetry()
                        .ingest(all)
                        .send()
                        .await?
                        .accepted
                }
                "ingest-raw" => Raw::new(port)?.ingest(all).await?,
                _ => {
                    black_box(all);
                    n as u64
                }
            };
            if accepted != n as u64 {
                return Err(format!("accepted {accepted} of {n}").into());
            }
            println!("readings {n}");
        }
        other => return Err(format!("unknown child mode {other}").into()),
    }
    Ok(())
}

const USAGE: &str =
    "usage: iot-sdk-bench [--quick] [--no-request-id] [1|2|3|4|5|6|7|8|9|python ...]
       iot-sdk-bench --serve            (a server alone; prints PORT <p>)
       iot-sdk-bench --child MODE N --port P";

fn client_runtime() -> R<tokio::runtime::Runtime> {
    // One thread: every client-side cost (the SDK's tasks included) lands on it.
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("iot-sdk-bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> R<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let mode = args.get(1).ok_or(USAGE)?;
        let n: usize = args.get(2).ok_or(USAGE)?.parse()?;
        let port: u16 = match (args.get(3).map(String::as_str), args.get(4)) {
            (Some("--port"), Some(p)) => p.parse()?,
            _ => return Err(USAGE.into()),
        };
        return client_runtime()?.block_on(run_child(mode, n, port));
    }
    if args.first().map(String::as_str) == Some("--serve") {
        let port = server::spawn(Server::new(Vendor::Sgt, 1_000));
        println!("PORT {port}");
        loop {
            std::thread::park();
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--no-request-id") {
        server::omit_request_id();
    }
    let mut figures: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !matches!(*a, "--quick" | "--no-request-id"))
        .collect();
    const ALL: [&str; 10] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "python"];
    if let Some(bad) = figures.iter().find(|f| !ALL.contains(f)) {
        return Err(format!("unknown figure {bad}\n{USAGE}").into());
    }
    if figures.is_empty() {
        figures = ALL.to_vec();
    }
    let z = if quick { QUICK } else { FULL };
    let most = [
        z.rss_large,
        z.stream_items,
        z.python_items,
        z.prefetch_pages * 500,
    ]
    .into_iter()
    .max()
    .unwrap_or(1);
    println!(
        "iot-sdk-bench ({} mode): generating {most} SGT and {} SiliconWit devices",
        if quick { "quick" } else { "full" },
        z.sw_total
    );
    let servers = Servers::start(most, z.sw_total);
    let rt = client_runtime()?;
    let started = Instant::now();
    let mut rows = Vec::new();
    for f in figures {
        println!("figure {f} …");
        let got = rt.block_on(async {
            match f {
                "1" => fig1(&servers, z).await,
                "2" => fig2(&servers, z).await,
                "3" => fig3(&servers, z).await,
                "4" => fig4(&servers, z).await,
                "5" => fig5(&servers, z).await,
                "6" => fig6(&servers, z).await,
                "7" => fig7(&servers, z).await,
                "8" => fig8(&servers, z).await,
                "9" => fig9(&servers, z).await,
                _ => fig_python(&servers, z).await,
            }
        })?;
        for r in &got {
            println!("{}", r.line());
        }
        rows.extend(got);
    }
    println!(
        "\nall figures in {:.1} s ({} mode, {} CPUs)\n",
        started.elapsed().as_secs_f64(),
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    print!("{}", measure::table(&rows));
    if !server::sends_request_id() {
        println!("(server without X-Request-Id: --no-request-id)");
    }
    Ok(())
}
