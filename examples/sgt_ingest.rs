//! Bulk ingest of a large generated batch, with a progress bar and a summary.
//!
//! ```sh
//! cargo run --example sgt_ingest
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/sgt.rs"]
mod sgt_env;

use std::io::Write;
use std::time::Instant;

use chrono::{Duration, Utc};
use iot_sdk::sgt::Reading;

const READINGS: usize = 50_000;

fn bar(done: u64, total: u64) {
    let width = 40;
    let filled = (done * width as u64)
        .checked_div(total)
        .map_or(width, |f| f as usize);
    eprint!(
        "\r  [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    );
    let _ = std::io::stderr().flush();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Paced: each 1,000-reading chunk waits for room in the `ingest` bucket, so the job runs at
    // the allowed rate instead of running into 429s.
    let (sgt, _sim) = sgt_env::client_paced(50, Some(20.0)).await?;
    let devices = sgt.devices().list().limit(10).send().await?.into_items();
    if devices.is_empty() {
        println!("no devices to write readings for");
        return Ok(());
    }
    let start = Utc::now() - Duration::hours(12);
    let readings: Vec<Reading> = (0..READINGS)
        .map(|i| {
            let d = &devices[i % devices.len()];
            let ts = start + Duration::milliseconds(i as i64 * 500);
            Reading::new(d.id.clone(), "power_kw", ts, 10.0 + (i % 100) as f64 / 10.0)
        })
        .collect();

    println!(
        "ingesting {} readings for {} devices",
        readings.len(),
        devices.len()
    );
    let began = Instant::now();
    let result = sgt
        .telemetry()
        .ingest(readings)
        .concurrency(4)
        .on_progress(|p| bar(p.done, p.total))
        .send()
        .await;
    eprintln!();
    let secs = began.elapsed().as_secs_f64();
    match result {
        Ok(s) => println!(
            "done: {} readings accepted in {} requests, {secs:.1} s ({:.0} readings/s)",
            s.accepted,
            s.requests,
            s.accepted as f64 / secs.max(1e-9)
        ),
        Err(e) => {
            println!("incomplete after {secs:.1} s: {e}");
            println!(
                "  accepted {}, rejected {}, retry later {}, unconfirmed {}",
                e.accepted(),
                e.rejected().len(),
                e.retryable().len(),
                e.unconfirmed().len()
            );
        }
    }
    println!("rate limit after the run:");
    common::show_rate_limit(sgt.last_rate_limit());
    Ok(())
}
