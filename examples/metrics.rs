//! Metrics with an interceptor: requests, retries, failures and latency per endpoint, counted by
//! an [`Interceptor`] registered on the client's builder, then printed as a table.
//!
//! It runs against the built-in SGT simulator with injected faults (a fifth of requests answer
//! 500/502/503, a few connections drop), so that retries happen. No flags; it ends by itself.
//!
//! ```sh
//! cargo run --example metrics
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use iot_sdk::intercept::{AttemptEnd, CallEnd, HookResult, Interceptor};
use iot_sdk::sgt::{Client, DeviceStatus};
use iot_sdk::{RetryBudget, RetryPolicy};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::SgtSimulator;

/// What is counted for one endpoint.
#[derive(Debug, Default)]
struct Endpoint {
    calls: u64,
    failed_calls: u64,
    attempts: u64,
    retries: u64,
    statuses: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
}

/// Counts per endpoint (`GET /v1/devices/{id}`). The hooks only lock a map and push numbers:
/// they are synchronous and cheap, as hooks should be.
#[derive(Default, Clone)]
struct Metrics(Arc<Mutex<BTreeMap<String, Endpoint>>>);

/// `METHOD /path` with every segment that holds a digit (an id) written `{id}`.
fn endpoint(method: &str, path: &str) -> String {
    let path: Vec<&str> = path
        .split('/')
        .map(|s| {
            if s.bytes().any(|b| b.is_ascii_digit()) && s != "v1" {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}

impl Metrics {
    fn with(&self, method: &str, path: &str, f: impl FnOnce(&mut Endpoint)) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(endpoint(method, path)).or_default());
    }

    fn print(&self) {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "\n{:<28} {:>6} {:>6} {:>8} {:>7} {:>8} {:>8}  statuses",
            "endpoint", "calls", "failed", "attempts", "retries", "p50 ms", "max ms"
        );
        for (name, e) in map.iter() {
            let mut l = e.latencies.clone();
            l.sort();
            let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let statuses: Vec<String> =
                e.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            println!(
                "{name:<28} {:>6} {:>6} {:>8} {:>7} {:>8.1} {:>8.1}  {}",
                e.calls,
                e.failed_calls,
                e.attempts,
                e.retries,
                ms(l.get(l.len() / 2)),
                ms(l.last()),
                statuses.join(" "),
            );
        }
    }
}

impl Interceptor for Metrics {
    fn name(&self) -> &str {
        "metrics"
    }

    fn after_attempt(&self, a: &AttemptEnd<'_>) -> HookResult {
        let r = a.request();
        self.with(r.method(), r.path(), |e| {
            e.attempts += 1;
            if a.retry_delay().is_some() {
                e.retries += 1;
            }
            let status = a
                .status()
                .map_or_else(|| "io".to_owned(), |s| s.to_string());
            *e.statuses.entry(status).or_default() += 1;
            e.latencies.push(a.elapsed());
        });
        Ok(())
    }

    fn after_call(&self, c: &CallEnd<'_>) -> HookResult {
        let r = c.request();
        self.with(r.method(), r.path(), |e| {
            e.calls += 1;
            if c.outcome().is_err() {
                e.failed_calls += 1;
            }
        });
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = SgtSimulator::builder()
        .fleet_size(300)
        .faults(Faults::none().error_rate(0.2).drop_rate(0.02))
        .seed(11)
        .start()
        .await?;
    println!(
        "SGT simulator at {} (20% errors, 2% dropped connections)",
        sim.base_url()
    );

    let metrics = Metrics::default();
    let sgt = Client::builder()
        .api_key(sim.api_key())
        .tenant(sim.tenant())
        .base_url(sim.base_url())
        .interceptor(metrics.clone())
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(4)
                .with_initial_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(50)),
        )
        .retry_budget(RetryBudget::unlimited())
        .build()?;

    // A page walk, some single reads and a count: a small sync job.
    let online: Vec<_> = sgt
        .devices()
        .list()
        .status(DeviceStatus::Online)
        .limit(50)
        .items()
        .try_collect()
        .await?;
    println!("{} online devices", online.len());
    let mut read = 0;
    let mut failed = 0;
    for d in online.iter().take(40) {
        match sgt.devices().get(&d.id).await {
            Ok(_) => read += 1,
            Err(e) => {
                failed += 1;
                println!("  {}: {e}", d.id);
            }
        }
    }
    println!("read {read} devices one by one ({failed} failed after retries)");
    match sgt.devices().count().await {
        Ok(n) => println!("{} devices in all", n.count),
        Err(e) => println!("count failed: {e}"),
    }

    metrics.print();
    Ok(())
}
