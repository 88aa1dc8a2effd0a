//! Many workers, one key: N worker processes share one SGT key's read bucket through Redis.
//!
//! ```sh
//! redis-server --port 6379 --save "" --appendonly no &     # or any Redis you have
//! cargo run --example shared_pacing --features redis -- 4 100
//! ```
//!
//! Arguments: the number of workers (default 4) and the calls each makes (default 100).
//! `REDIS_URL` names the Redis (default `redis://127.0.0.1:6379`). The example starts an SGT
//! simulator whose read bucket is scaled to 20 a second, burst 240, runs the workers as child
//! processes (this program started again with `IOT_SDK_EXAMPLE_WORKER` set), and prints each
//! worker's rate, the total and the 429s the simulator counted. Add `--alone` to see the same
//! workers each pacing in process alone.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iot_sdk::sgt::{Client, RateBucket};
use iot_sdk::{Bucket, LimiterFallback, RedisLimiter, RetryPolicy};
use iot_sdk_sim::sgt::SgtSimulator;

const SCALE: f64 = 2.0;
const RATE: u32 = 1_200; // a minute: 600 × SCALE
const BURST: u32 = 240; // 120 × SCALE

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Res<()> {
    if std::env::var("IOT_SDK_EXAMPLE_WORKER").is_ok() {
        return worker().await;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let alone = args.iter().any(|a| a == "--alone");
    let mut numbers = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let workers = numbers.next().unwrap_or(4).max(1);
    let calls = numbers.next().unwrap_or(100);
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());

    let sim = SgtSimulator::builder()
        .rate_limit_scale(SCALE)
        .start()
        .await?;
    let namespace = format!("iot-sdk-example-{}", std::process::id());
    println!(
        "{workers} workers x {calls} reads, bucket {}/s burst {BURST}, {}",
        RATE / 60,
        if alone {
            "each pacing alone".to_owned()
        } else {
            format!("sharing {namespace} on the Redis at REDIS_URL")
        }
    );
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let children = (0..workers)
        .map(|i| {
            Command::new(&exe)
                .env("IOT_SDK_EXAMPLE_WORKER", i.to_string())
                .env("IOT_SDK_EXAMPLE_WORKERS", workers.to_string())
                .env("IOT_SDK_EXAMPLE_CALLS", calls.to_string())
                .env("IOT_SDK_EXAMPLE_KEY", sim.api_key())
                .env("IOT_SDK_EXAMPLE_SIM", sim.base_url())
                .env("IOT_SDK_EXAMPLE_REDIS", if alone { "none" } else { &redis })
                .env("IOT_SDK_EXAMPLE_NAMESPACE", &namespace)
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Waiting blocks this thread; the simulator serves from the runtime's other threads.
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output())
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let elapsed = started.elapsed().as_secs_f64();
    for out in &outputs {
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let total = workers * calls;
    let minimum = (total as f64 - f64::from(BURST)).max(0.0) / (f64::from(RATE) / 60.0);
    println!(
        "total: {total} calls in {elapsed:.2} s ({:.1}/s; the minimum is {minimum:.2} s), 429s: {}",
        total as f64 / elapsed,
        sim.stats().rate_limited
    );
    Ok(())
}

async fn worker() -> Res<()> {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let calls: usize = var("IOT_SDK_EXAMPLE_CALLS").parse()?;
    let workers: u32 = var("IOT_SDK_EXAMPLE_WORKERS").parse()?;
    let mut builder = Client::builder()
        .api_key(var("IOT_SDK_EXAMPLE_KEY"))
        .base_url(var("IOT_SDK_EXAMPLE_SIM"))
        .retry_policy(RetryPolicy::none())
        .pacing_buckets(vec![Bucket::new(
            RateBucket::Read,
            RATE,
            Duration::from_secs(60),
            BURST,
        )]);
    let redis = var("IOT_SDK_EXAMPLE_REDIS");
    if redis != "none" {
        let limiter = RedisLimiter::builder(redis, var("IOT_SDK_EXAMPLE_NAMESPACE"))
            .fallback(LimiterFallback::local(workers))
            .build()?;
        builder = builder.limiter(limiter);
    }
    let sgt = builder.build()?;
    let (mut ok, mut limited) = (0u32, 0u32);
    let started = Instant::now();
    for _ in 0..calls {
        match sgt.devices().count().await {
            Ok(_) => ok += 1,
            Err(e) if e.api().is_some_and(|a| a.is_rate_limited()) => limited += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "worker {}: {ok} ok, {limited} 429s in {secs:.2} s ({:.1}/s)",
        var("IOT_SDK_EXAMPLE_WORKER"),
        f64::from(ok + limited) / secs
    );
    Ok(())
}
