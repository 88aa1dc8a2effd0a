//! Trigger an on-demand report and wait for it: 202 Accepted, then polling with backoff that
//! starts near the expected completion time.
//!
//! ```sh
//! cargo run --example sgt_report
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/sgt.rs"]
mod sgt_env;

use std::time::{Duration, Instant};

use iot_sdk::sgt::NewReport;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sgt, _sim) = sgt_env::client(50).await?;

    let run = sgt
        .reports()
        .create(NewReport::new("energy_summary").format("pdf"))
        .await?;
    let report = run.report();
    println!(
        "report {} accepted: status {}, expected at {}",
        report.id,
        report.status,
        report
            .expected_completion_at
            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339()),
    );

    let began = Instant::now();
    let ready = run.wait().deadline(Duration::from_secs(120)).await?;
    println!(
        "report {} is {} after {:.1} s",
        ready.id,
        ready.status,
        began.elapsed().as_secs_f64()
    );
    match &ready.download_url {
        Some(url) => println!("download (signed, short-lived): {}", url.expose()),
        None => println!("no download URL in the answer"),
    }
    Ok(())
}
