//! A gateway: 25 devices produce readings at a steady rate into the store-and-forward ingest
//! sink, against the SGT simulator, which goes down for a while in the middle. A progress line
//! shows produced / queued on disk / accepted; the run ends by itself, with nothing lost.
//!
//! ```sh
//! cargo run --example sgt_gateway --features store-forward
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use iot_sdk::sgt::{Client, Queue, Reading};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::SgtSimulator;

const DEVICES: usize = 25;
/// Readings per device per second.
const RATE: u64 = 40;
const RUN: Duration = Duration::from_secs(8);
const OUTAGE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(5));

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = SgtSimulator::builder()
        .fleet_size(DEVICES)
        .rate_limit_scale(100.0)
        .start()
        .await?;
    let sgt = Client::builder()
        .api_key(sim.api_key())
        .tenant(sim.tenant())
        .base_url(sim.base_url())
        .build()?;
    let path = std::env::temp_dir().join(format!("sgt_gateway-{}.db", std::process::id()));
    let queue = Queue::open(&path)?;
    println!(
        "queue file: {} ({} readings left from before)",
        path.display(),
        queue.len()
    );
    let (sink, mut reports) = sgt
        .telemetry()
        .sink()
        .store_forward(queue.clone())
        .linger(Duration::from_millis(200))
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .start()?;

    // The reports: print the first error of each run of failures.
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut failing = false;
        while let Some(r) = reports.next().await {
            match (&r.error, failing) {
                (Some(e), false) => {
                    eprintln!();
                    println!("  a batch failed, kept in the file for later: {e}");
                    failing = true;
                }
                (None, true) => failing = false,
                _ => {}
            }
        }
    });
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n: u64 = 0;
    let mut down = false;
    let mut last_line = Instant::now();
    while began.elapsed() < RUN {
        tick.tick().await;
        let t = began.elapsed();
        let outage = t >= OUTAGE.0 && t < OUTAGE.1;
        if outage != down {
            down = outage;
            sim.set_faults(Faults::none().unavailable(down));
            eprintln!();
            println!(
                "[{:>4.1} s] the API is {}",
                t.as_secs_f64(),
                if down { "DOWN" } else { "back up" }
            );
        }
        // One tick's readings from every device, written in one transaction.
        let now = Utc::now();
        let per_tick = RATE / 10;
        let batch: Vec<Reading> = (0..DEVICES as u64 * per_tick)
            .map(|i| {
                n += 1;
                let ts = now + chrono::Duration::microseconds(i as i64);
                Reading::new(
                    format!("dev_{}", 1 + i % DEVICES as u64),
                    "power_kw",
                    ts,
                    (n % 1000) as f64 / 10.0,
                )
            })
            .collect();
        sink.send_batch(batch).await?;
        if last_line.elapsed() >= Duration::from_millis(500) {
            last_line = Instant::now();
            let s = sink.stats();
            eprint!(
                "\r  produced {:>6}  queued {:>6}  accepted {:>6}",
                s.produced,
                queue.len(),
                s.accepted
            );
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!();
    println!("producer done; draining the queue");
    let stats = tokio::time::timeout(Duration::from_secs(60), sink.close()).await?;
    println!(
        "produced {}, accepted {}, rejected {}, possibly duplicated {}, left in the file {}; the server stored {}",
        stats.produced,
        stats.accepted,
        stats.rejected,
        stats.possibly_duplicated,
        queue.len(),
        sim.readings_stored()
    );
    drop(queue);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    if stats.accepted != stats.produced {
        return Err("not every reading was accepted".into());
    }
    Ok(())
}
