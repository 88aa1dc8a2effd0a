//! The in-process HTTP server the SDK and the baselines are measured against.
//!
//! It serves pre-serialized bodies from memory: the devices are generated deterministically
//! once, serialized into one buffer, and a page is one copy of a slice of it between a fixed
//! prefix and the page's `meta`. It runs on its own thread with its own runtime, so the
//! client's thread (where the measurements are taken) does none of its work.
//!
//! - SGT: `GET /v1/devices/{id}` (`{data, meta}`), `GET /v1/devices?limit&cursor`
//!   (`{data, meta:{pagination:{limit,next,has_more}}}`), `POST /v1/telemetry/ingest`
//!   (`{data:{accepted,rejected}, meta}`).
//! - SiliconWit: `GET /v1/devices?limit&offset` (`{data, pagination:{total,limit,offset}}`).
//!
//! Knobs, changed by the driver between figures: the number of devices listed, a latency added
//! to every response, and a token bucket that answers 429 with `Retry-After` when empty.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// Which vendor's wire format a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Sgt,
    SiliconWit,
}

/// A server-side token bucket (the same shape as the SDK's pacing bucket).
#[derive(Debug)]
struct Bucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

/// Devices serialized once: `buf` holds `d0,d1,…` and `starts[i]` where device `i` begins.
struct Devices {
    buf: Vec<u8>,
    starts: Vec<usize>,
}

impl Devices {
    fn generate(vendor: Vendor, n: usize) -> Self {
        let mut buf = Vec::with_capacity(n * 300);
        let mut starts = Vec::with_capacity(n + 1);
        for i in 0..n {
            starts.push(buf.len());
            let d = device_json(vendor, i);
            let text = serde_json::to_vec(&d).expect("a device serializes");
            buf.extend_from_slice(&text);
            buf.push(b',');
        }
        starts.push(buf.len());
        Devices { buf, starts }
    }

    fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Devices `from..to` as a JSON array body fragment (without the brackets).
    fn slice(&self, from: usize, to: usize) -> &[u8] {
        if from >= to {
            return &[];
        }
        // Drop the trailing comma of the last device.
        &self.buf[self.starts[from]..self.starts[to] - 1]
    }
}

/// Device `i`, deterministic.
pub fn device_json(vendor: Vendor, i: usize) -> serde_json::Value {
    let day = 1 + i % 28;
    let hour = i % 24;
    match vendor {
        Vendor::Sgt => serde_json::json!({
            "id": format!("dev_{i}"),
            "name": format!("Energy meter {i}"),
            "type": if i % 3 == 0 { "energy_meter" } else { "environmental_sensor" },
            "site": format!("site_{}", i % 17),
            "status": if i % 5 == 0 { "offline" } else { "online" },
            "tags": ["power", format!("building-{}", i % 7)],
            "created_at": format!("2026-01-{day:02}T{hour:02}:15:00Z"),
            "updated_at": format!("2026-05-{day:02}T{hour:02}:58:12Z"),
            "etag": format!("\"{:08x}\"", i.wrapping_mul(2_654_435_761) & 0xffff_ffff),
        }),
        Vendor::SiliconWit => serde_json::json!({
            "id": format!("dev_{i:08x}"),
            "name": format!("Temperature Sensor {i}"),
            "type": "sensor",
            "description": "Office temperature monitor",
            "status": if i % 4 == 0 { "paused" } else { "active" },
            "settings": {},
            "last_seen": format!("2025-01-{day:02}T{hour:02}:30:00Z"),
            "created_at": "2025-01-01T00:00:00Z",
            "updated_at": format!("2025-01-{day:02}T{hour:02}:30:00Z"),
        }),
    }
}

/// One server's state.
pub struct Server {
    vendor: Vendor,
    devices: Devices,
    one: Bytes,
    /// Devices a list walks (at most the generated number).
    total: AtomicU64,
    latency_us: AtomicU64,
    bucket: Mutex<Option<Bucket>>,
    /// 429s answered since the last reset of the bucket.
    pub throttled: AtomicU64,
}

impl Server {
    /// A server of `vendor` with `n` generated devices.
    pub fn new(vendor: Vendor, n: usize) -> Arc<Self> {
        let devices = Devices::generate(vendor, n.max(1));
        let one = serde_json::to_vec(&serde_json::json!({
            "data": device_json(vendor, 42),
            "meta": {"request_id": "req_bench_one", "served_by": "bench", "took_ms": 1},
        }))
        .expect("a device serializes");
        Arc::new(Server {
            vendor,
            total: AtomicU64::new(devices.len() as u64),
            devices,
            one: Bytes::from(one),
            latency_us: AtomicU64::new(0),
            bucket: Mutex::new(None),
            throttled: AtomicU64::new(0),
        })
    }

    /// Lists walk `n` devices (capped at the generated number).
    pub fn set_total(&self, n: usize) {
        let n = n.min(self.devices.len());
        self.total.store(n as u64, Ordering::SeqCst);
    }

    /// Every response waits this long first.
    pub fn set_latency(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::SeqCst);
    }

    /// A full token bucket of `limit` per `per` with `burst` (or none), and the 429 count reset.
    pub fn set_bucket(&self, limit_per_sec: Option<(f64, u32)>) {
        let mut b = self.bucket.lock().expect("the bucket lock is not poisoned");
        *b = limit_per_sec.map(|(rate, burst)| Bucket {
            rate_per_sec: rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        });
        self.throttled.store(0, Ordering::SeqCst);
    }

    /// Whether the bucket lets this request through; the seconds to wait if not.
    fn take_token(&self) -> Result<(), u64> {
        let mut guard = self.bucket.lock().expect("the bucket lock is not poisoned");
        let Some(b) = guard.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * b.rate_per_sec).min(b.burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / b.rate_per_sec;
            // Retry-After is whole seconds.
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    async fn before(&self) -> Result<(), Response> {
        let us = self.latency_us.load(Ordering::Relaxed);
        if us > 0 {
            tokio::time::sleep(Duration::from_micros(us)).await;
        }
        if let Err(secs) = self.take_token() {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            let body = r#"{"error":{"code":"rate_limited","message":"Too many requests","request_id":"req_bench_429"}}"#;
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, json_headers(), body).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Err(resp);
        }
        Ok(())
    }
}

/// Whether responses carry `X-Request-Id` (on by default; off with `--no-request-id`).
static SEND_REQUEST_ID: AtomicBool = AtomicBool::new(true);

/// Responses without `X-Request-Id`, to measure the SDK's fallback of finding the request id
/// in the body.
pub fn omit_request_id() {
    SEND_REQUEST_ID.store(false, Ordering::SeqCst);
}

/// Whether responses carry `X-Request-Id`.
pub fn sends_request_id() -> bool {
    SEND_REQUEST_ID.load(Ordering::Relaxed)
}

/// `Content-Type`, and the `X-Request-Id` both SGT ("every response, success or error") and
/// SiliconWit send. Without it the SDK looks for the id in the body (see the README).
fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::with_capacity(2);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if SEND_REQUEST_ID.load(Ordering::Relaxed) {
        h.insert(
            header::HeaderName::from_static("x-request-id"),
            HeaderValue::from_static("req_bench"),
        );
    }
    h
}

/// `limit`, `cursor` and `offset` of a query string (the values the SDK sends need no
/// percent-decoding: numbers and `o123` cursors).
fn params(query: Option<&str>) -> (Option<usize>, Option<&str>, Option<usize>) {
    let (mut limit, mut cursor, mut offset) = (None, None, None);
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => limit = v.parse().ok(),
            "cursor" => cursor = Some(v),
            "offset" => offset = v.parse().ok(),
            _ => {}
        }
    }
    (limit, cursor, offset)
}

async fn get_one(State(s): State<Arc<Server>>, Path(_id): Path<String>) -> Response {
    if let Err(r) = s.before().await {
        return r;
    }
    (json_headers(), s.one.clone()).into_response()
}

async fn list(State(s): State<Arc<Server>>, RawQuery(q): RawQuery) -> Response {
    if let Err(r) = s.before().await {
        return r;
    }
    let total = usize::try_from(s.total.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
    let (limit, cursor, offset) = params(q.as_deref());
    let start = match s.vendor {
        Vendor::Sgt => match cursor {
            None => 0,
            Some(c) => match c.strip_prefix('o').and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => {
                    let body = r#"{"error":{"code":"invalid_cursor","message":"bad cursor"}}"#;
                    return (StatusCode::BAD_REQUEST, json_headers(), body).into_response();
                }
            },
        },
        Vendor::SiliconWit => offset.unwrap_or(0),
    };
    let limit = limit.unwrap_or(100).max(1);
    let start = start.min(total);
    let end = start.saturating_add(limit).min(total);
    let items = s.devices.slice(start, end);
    let mut body = Vec::with_capacity(items.len() + 160);
    body.extend_from_slice(b"{\"data\":[");
    body.extend_from_slice(items);
    let tail = match s.vendor {
        Vendor::Sgt => {
            let next = if end < total {
                format!("\"o{end}\"")
            } else {
                "null".to_owned()
            };
            format!(
                "],\"meta\":{{\"request_id\":\"req_bench_list\",\"took_ms\":1,\"pagination\":{{\"limit\":{limit},\"next\":{next},\"has_more\":{}}}}}}}",
                end < total
            )
        }
        Vendor::SiliconWit => {
            format!("],\"pagination\":{{\"total\":{total},\"limit\":{limit},\"offset\":{start}}}}}")
        }
    };
    body.extend_from_slice(tail.as_bytes());
    (json_headers(), body).into_response()
}

/// `GET /v1/telemetry/aggregate`: an empty series (the spec's Python example asks for one
/// before it pages the devices).
async fn aggregate() -> Response {
    let out = "{\"data\":[],\"meta\":{\"request_id\":\"req_bench_aggregate\"}}";
    (json_headers(), out).into_response()
}

async fn ingest(State(s): State<Arc<Server>>, body: Bytes) -> Response {
    if let Err(r) = s.before().await {
        return r;
    }
    // `{"readings":[{…},{…}]}`: a reading is a flat object, so readings = braces - 1.
    let n = body
        .iter()
        .filter(|&&b| b == b'{')
        .count()
        .saturating_sub(1);
    let out = format!(
        "{{\"data\":{{\"accepted\":{n},\"rejected\":0}},\"meta\":{{\"request_id\":\"req_bench_ingest\",\"took_ms\":1}}}}"
    );
    (json_headers(), out).into_response()
}

/// Starts `server` on 127.0.0.1 (an ephemeral port) on its own thread; returns the port.
pub fn spawn(server: Arc<Server>) -> u16 {
    let std_listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port on 127.0.0.1");
    std_listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let port = std_listener
        .local_addr()
        .expect("the listener's address")
        .port();
    std::thread::Builder::new()
        .name(format!("bench-server-{port}"))
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the server's runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)
                    .expect("a tokio listener from the std one");
                let app = Router::new()
                    .route("/v1/devices", get(list))
                    .route("/v1/devices/{id}", get(get_one))
                    .route("/v1/telemetry/ingest", post(ingest))
                    .route("/v1/telemetry/aggregate", get(aggregate))
                    .with_state(server);
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("bench server on port {port} stopped: {e}");
                }
            });
        })
        .expect("spawn the server thread");
    port
}
