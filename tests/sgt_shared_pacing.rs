//! One SGT key's read bucket shared by four worker processes through Redis (`RedisLimiter`),
//! against one simulator enforcing that bucket per key across connections.
//!
//! Needs the `redis` feature and a `redis-server` binary (on `PATH`, or named by
//! `REDIS_SERVER`); each test starts its own on a free loopback port and stops it:
//!
//! ```sh
//! apt-get install redis-server          # Debian, Ubuntu
//! cargo test --features redis --test sgt_shared_pacing
//! ```
//!
//! The workers are real child processes: this test binary run again with
//! `--exact worker_process` and its settings in `IOT_SDK_PACING_*` variables. Each prints one
//! `WORKER_RESULT {json}` line to stdout and its `tracing` output to stderr.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use iot_sdk::limiter::PaceBucket;
use iot_sdk::sgt::{Client, RateBucket};
use iot_sdk::{Bucket, Limiter, LimiterFallback, RedisLimiter, RetryPolicy};
use iot_sdk_sim::sgt::SgtSimulator;
use serde_json::{Value, json};

/// The simulator's scale: SGT reads 600/min burst 120 become 20 a second, burst 240.
const SCALE: f64 = 2.0;
const RATE: u32 = 1_200; // per minute
const BURST: u32 = 240;
const WORKERS: usize = 4;

// ---------------------------------------------------------------------------------------------
// A real redis-server, on a free loopback port, stopped on drop
// ---------------------------------------------------------------------------------------------

/// A free loopback port that this test process has not handed out before: a worker whose
/// Redis was stopped must not reconnect to another test's, and a port meant to be dead must
/// stay so.
fn free_port() -> u16 {
    static USED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut used = USED.lock().unwrap();
        if !used.contains(&port) {
            used.push(port);
            return port;
        }
    }
}

struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// On a free port no other server of this test process had (see [`free_port`]).
    fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    fn start_on(port: u16) -> RedisServer {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{bin}` ({e}): these tests need a Redis server. Install it \
                     (`apt-get install redis-server` on Debian/Ubuntu) or set REDIS_SERVER to \
                     its path, then run `cargo test --features redis --test sgt_shared_pacing`"
                )
            });
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !server.pong() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends one raw command, returns the reply's first line.
    fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(cmd.as_bytes()).ok()?;
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    fn pong(&self) -> bool {
        self.command("PING\r\n")
            .is_some_and(|r| r.starts_with("+PONG"))
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The worker process
// ---------------------------------------------------------------------------------------------

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// The entry point of a worker process, not a test of its own: without `IOT_SDK_PACING_WORKER`
/// it returns at once. With it, it makes `IOT_SDK_PACING_CALLS` reads of the simulator at
/// `IOT_SDK_PACING_SIM`, paced by the Redis at `IOT_SDK_PACING_REDIS` (or in process alone when
/// that is `none`), and reports the outcome of every call.
#[tokio::test]
async fn worker_process() {
    if std::env::var("IOT_SDK_PACING_WORKER").is_err() {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let var = |k: &str| std::env::var(k).unwrap();
    let calls: usize = var("IOT_SDK_PACING_CALLS").parse().unwrap();
    let workers: u32 = var("IOT_SDK_PACING_WORKERS").parse().unwrap();
    let bucket = Bucket::new(RateBucket::Read, RATE, Duration::from_secs(60), BURST);
    let mut b = Client::builder()
        .api_key(var("IOT_SDK_PACING_KEY"))
        .base_url(var("IOT_SDK_PACING_SIM"))
        .retry_policy(RetryPolicy::none())
        .pacing_buckets(vec![bucket]);
    let redis = var("IOT_SDK_PACING_REDIS");
    if redis != "none" {
        let limiter = RedisLimiter::builder(redis, var("IOT_SDK_PACING_NAMESPACE"))
            .fallback(LimiterFallback::local(workers))
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        b = b.limiter(limiter);
    }
    let sgt = b.build().unwrap();
    let (mut ok, mut limited, mut other) = (0u64, 0u64, Vec::new());
    let mut done_ms = Vec::with_capacity(calls);
    let start = epoch_ms();
    for _ in 0..calls {
        match sgt.devices().count().await {
            Ok(_) => ok += 1,
            Err(e) if e.api().is_some_and(|a| a.is_rate_limited()) => limited += 1,
            Err(e) => other.push(e.to_string()),
        }
        done_ms.push(epoch_ms());
    }
    let out = json!({
        "ok": ok, "limited": limited, "other": other,
        "start_ms": start, "done_ms": done_ms,
    });
    println!("\nWORKER_RESULT {out}");
}

struct Outcome {
    results: Vec<Value>,
    stderr: Vec<String>,
}

impl Outcome {
    fn sum(&self, field: &str) -> u64 {
        self.results
            .iter()
            .map(|r| r[field].as_u64().unwrap())
            .sum()
    }
    fn start_ms(&self) -> f64 {
        self.results
            .iter()
            .map(|r| r["start_ms"].as_f64().unwrap())
            .fold(f64::INFINITY, f64::min)
    }
    fn end_ms(&self) -> f64 {
        self.results
            .iter()
            .flat_map(|r| r["done_ms"].as_array().unwrap().iter())
            .map(|v| v.as_f64().unwrap())
            .fold(0.0, f64::max)
    }
}

/// Runs `WORKERS` worker processes of `calls` each and waits for them (at most `deadline`;
/// a worker still running then is a hang and fails the test).
async fn run_workers(
    sim: &iot_sdk_sim::sgt::SgtSimulator,
    redis: Option<&str>,
    namespace: &str,
    calls: usize,
    deadline: Duration,
) -> Outcome {
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!(
        "iot-sdk-shared-pacing-{}-{namespace}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut children: Vec<(Child, PathBuf, PathBuf)> = Vec::new();
    for i in 0..WORKERS {
        let (out, err) = (dir.join(format!("{i}.out")), dir.join(format!("{i}.err")));
        let child = Command::new(&exe)
            .args([
                "--exact",
                "worker_process",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("IOT_SDK_PACING_WORKER", "1")
            .env("IOT_SDK_PACING_CALLS", calls.to_string())
            .env("IOT_SDK_PACING_WORKERS", WORKERS.to_string())
            .env("IOT_SDK_PACING_KEY", sim.api_key())
            .env("IOT_SDK_PACING_SIM", sim.base_url())
            .env("IOT_SDK_PACING_REDIS", redis.unwrap_or("none"))
            .env("IOT_SDK_PACING_NAMESPACE", namespace)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        children.push((child, out, err));
    }
    tokio::task::spawn_blocking(move || {
        let until = Instant::now() + deadline;
        let mut results = Vec::new();
        let mut stderr = Vec::new();
        for (mut child, out, err) in children {
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if Instant::now() > until {
                    let _ = child.kill();
                    panic!("a worker did not finish within {deadline:?}: a hang");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let text = std::fs::read_to_string(&out).unwrap();
            let log = std::fs::read_to_string(&err).unwrap();
            assert!(status.success(), "worker failed: {status}\n{text}\n{log}");
            let line = text
                .lines()
                .find_map(|l| l.split_once("WORKER_RESULT ").map(|(_, json)| json))
                .unwrap_or_else(|| panic!("no result from a worker:\n{text}\n{log}"));
            results.push(serde_json::from_str(line).unwrap());
            stderr.push(log);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Outcome { results, stderr }
    })
    .await
    .unwrap()
}

async fn simulator() -> iot_sdk_sim::sgt::SgtSimulator {
    SgtSimulator::builder()
        .rate_limit_scale(SCALE)
        .start()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// 4 × 100 reads against 20 a second, burst 240: the minimum is (400 − 240) / 20 = 8 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_sharing_redis_get_no_429_near_the_minimum_time() {
    let redis = RedisServer::start();
    let sim = simulator().await;
    let calls = 100;
    let out = run_workers(
        &sim,
        Some(&redis.url()),
        "shared",
        calls,
        Duration::from_secs(120),
    )
    .await;
    let total = (WORKERS * calls) as f64;
    let rate = f64::from(RATE) / 60.0;
    let minimum = (total - f64::from(BURST)) / rate;
    let elapsed = (out.end_ms() - out.start_ms()) / 1000.0;
    let ratio = elapsed / minimum;
    eprintln!(
        "shared: {} ok, {} 429s (simulator: {}), elapsed {elapsed:.3} s, minimum {minimum:.3} s, ratio {ratio:.4}",
        out.sum("ok"),
        out.sum("limited"),
        sim.stats().rate_limited,
    );
    assert_eq!(out.sum("limited"), 0);
    assert_eq!(sim.stats().rate_limited, 0);
    assert_eq!(out.sum("ok"), total as u64);
    // Never faster than the bucket allows (the budget is shared, not multiplied)...
    assert!(ratio >= 0.99, "ratio {ratio}");
    // ...and not much slower.
    assert!(ratio <= 1.05, "ratio {ratio}");
}

/// The control: the same four, each pacing alone with the whole bucket, overrun the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_pacing_alone_get_429s() {
    let sim = simulator().await;
    let calls = 100;
    let out = run_workers(&sim, None, "alone", calls, Duration::from_secs(120)).await;
    eprintln!(
        "alone: {} ok, {} 429s (simulator: {})",
        out.sum("ok"),
        out.sum("limited"),
        sim.stats().rate_limited,
    );
    assert!(out.sum("limited") > 0);
    assert_eq!(out.sum("limited"), sim.stats().rate_limited);
    assert_eq!(out.sum("ok") + out.sum("limited"), (WORKERS * calls) as u64);
}

/// Redis stopped 3 s into a run: every worker says so once through `tracing`, goes on at a
/// quarter of the bucket (starting empty), and finishes; nothing panics or hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_falls_back_to_a_quarter_each() {
    let mut redis = RedisServer::start();
    let sim = simulator().await;
    let calls = 100;
    let url = redis.url();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let at = epoch_ms();
        redis.stop();
        at
    });
    let out = run_workers(&sim, Some(&url), "outage", calls, Duration::from_secs(120)).await;
    let stopped_ms = stopper.await.unwrap();
    for (r, log) in out.results.iter().zip(&out.stderr) {
        assert_eq!(r["other"].as_array().unwrap().len(), 0, "{r}");
        assert_eq!(
            log.matches("pacing in process at 1/4 of each bucket")
                .count(),
            1,
            "{log}"
        );
        assert!(log.contains("WARN"), "{log}");
    }
    let total = (WORKERS * calls) as u64;
    assert_eq!(out.sum("ok") + out.sum("limited"), total);
    // After the stop (and a second for the calls then in flight), the four together go at no
    // more than the bucket's rate: each at a quarter.
    let from = stopped_ms + 1000.0;
    let after: Vec<f64> = out
        .results
        .iter()
        .flat_map(|r| r["done_ms"].as_array().unwrap().iter())
        .map(|v| v.as_f64().unwrap())
        .filter(|t| *t > from)
        .collect();
    let span = (out.end_ms() - from) / 1000.0;
    let rate = after.len() as f64 / span;
    eprintln!(
        "outage: redis stopped at +{:.1} s; {} ok, {} 429s (simulator: {}); after the stop {} calls in {span:.2} s = {rate:.2}/s (bucket {:.1}/s)",
        (stopped_ms - out.start_ms()) / 1000.0,
        out.sum("ok"),
        out.sum("limited"),
        sim.stats().rate_limited,
        after.len(),
        f64::from(RATE) / 60.0,
    );
    assert!(after.len() > 20, "the fallback did not carry the run");
    // At most the bucket's rate over the span, plus one call per worker whose interval began
    // before the span did.
    let most = f64::from(RATE) / 60.0 * span + WORKERS as f64;
    assert!(
        after.len() as f64 <= most,
        "{} calls after the stop, at most {most}",
        after.len()
    );
}

/// One process, one Redis: the script's decisions are the in-process bucket's (a burst at
/// once, then one interval per unit, debt queued), keyed `<namespace>:<bucket>`, shared by two
/// limiters of one namespace and separate across namespaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_decides_like_the_in_process_bucket() {
    let redis = RedisServer::start();
    let b = PaceBucket::new("read", 10, Duration::from_secs(1), 3);
    let a = RedisLimiter::builder(redis.url(), "ns-a").build().unwrap();
    let a2 = RedisLimiter::builder(redis.url(), "ns-a").build().unwrap();
    let other = RedisLimiter::builder(redis.url(), "ns-b").build().unwrap();
    assert_eq!(a.key(&b), "ns-a:read");
    // The capacity is the burst less the arrival margin (20 ms, 0.2 units): two go at once,
    // the third 20 ms later, the fourth (asked through the other limiter) 120 ms, the fifth 220.
    let started = Instant::now();
    let mut waits = Vec::new();
    for l in [&a, &a, &a, &a2, &a] {
        waits.push(l.acquire(&b, 1).await.unwrap());
    }
    // A cost of 5 after that queues behind them: 5 more intervals.
    waits.push(a.acquire(&b, 5).await.unwrap());
    let spent = started.elapsed();
    for (w, due_ms) in waits.iter().zip([0u64, 0, 20, 120, 220, 720]) {
        let due = Duration::from_millis(due_ms);
        // Decided on the Redis clock, some microseconds apart: due less the time spent asking.
        assert!(*w <= due && *w + spent >= due, "{waits:?}");
    }
    // Another namespace has its own full bucket (2.8 units: two go at once).
    assert_eq!(other.acquire(&b, 2).await.unwrap(), Duration::ZERO);
    // The state expires when the bucket would be full again (plus a second).
    let ttl = redis.command("PTTL ns-a:read\r\n").unwrap();
    let ms: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!((1_000..=2_000).contains(&ms), "{ttl}");
    // A zero window never waits; a limit of 0 counts as 1.
    let free = PaceBucket::new("free", 5, Duration::ZERO, 1);
    assert_eq!(a.acquire(&free, 100).await.unwrap(), Duration::ZERO);
}

/// Unreachable Redis: an error at once (no hang), then the fallback; the Debug output and
/// errors never show the URL's password.
#[tokio::test]
async fn an_unreachable_redis_is_an_error_without_the_password() {
    let port = free_port();
    let limiter = RedisLimiter::builder(format!("redis://:hunter2secret@127.0.0.1:{port}"), "ns")
        .fallback(LimiterFallback::wait(
            Duration::from_millis(50),
            Duration::from_millis(300),
        ))
        .reconnect_every(Duration::from_millis(100))
        .build()
        .unwrap();
    let b = PaceBucket::new("read", 10, Duration::from_secs(1), 3);
    let err = limiter.acquire(&b, 1).await.unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    // Within `reconnect_every`, the next decision fails without trying again.
    let again = limiter.acquire(&b, 1).await.unwrap_err().to_string();
    assert!(again.contains("next connection attempt"), "{again}");
    let debug = format!("{limiter:?}");
    for text in [&err, &again, &debug] {
        assert!(!text.contains("hunter2"), "{text}");
    }
    // Through a client: the Wait fallback gives up with Error::Limiter, nothing sent.
    let sim = simulator().await;
    let sgt = Client::builder()
        .api_key(sim.api_key())
        .base_url(sim.base_url())
        .limiter(Arc::new(limiter))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = sgt.devices().count().await.unwrap_err();
    assert!(matches!(e, iot_sdk::Error::Limiter(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!e.to_string().contains("hunter2"));
    assert!(!format!("{sgt:?}").contains("hunter2"));
    assert_eq!(sim.stats().requests, 0);
    // A bad URL or an empty namespace is a configuration error.
    assert!(matches!(
        RedisLimiter::builder("http://x:hunter2@h", "ns").build(),
        Err(iot_sdk::Error::Config(m)) if !m.contains("hunter2")
    ));
    assert!(
        RedisLimiter::builder("redis://127.0.0.1", " ")
            .build()
            .is_err()
    );
}
