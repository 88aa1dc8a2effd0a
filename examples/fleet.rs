//! Every device of the three vendors in one table, with the latest reading of each: one code
//! path for SGT meters, Sepolo PointGuard sensors and SiliconWit room sensors.
//!
//! `cargo run --example fleet`: the real APIs whose keys are set (`SGT_API_KEY`,
//! `SEPOLO_API_KEY`, `SILICONWIT_API_KEY`; SGT reads the metrics in `SGT_METRICS`), the
//! built-in simulators for the others.

#[path = "common/fleet.rs"]
mod fleet_env;

use futures::StreamExt;
use iot_sdk::fleet::MetricFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (fleet, _sims) = fleet_env::fleet().await?;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut latest = fleet.latest(&MetricFilter::all());
    while let Some(item) = latest.next().await {
        match item {
            Ok(l) => rows.push(l),
            // One source failing does not hide the others: note it and go on.
            Err(e) => failures.push(e.to_string()),
        }
    }
    rows.sort_by(|a, b| (&a.source, &a.device.id).cmp(&(&b.source, &b.device.id)));
    println!(
        "\n{:<11} {:<28} {:<26} {:<9} {:<14} latest reading",
        "source", "device", "name", "status", "vendor status"
    );
    for l in &rows {
        let d = &l.device;
        let newest = l.readings.iter().max_by_key(|r| r.ts);
        let reading = newest.map_or_else(
            || "-".to_owned(),
            |r| {
                let value = r
                    .value
                    .map(|v| v.to_string())
                    .or_else(|| r.raw.as_ref().map(ToString::to_string))
                    .unwrap_or_default();
                format!(
                    "{} {}{} at {}",
                    r.metric,
                    value,
                    r.unit.unwrap_or_default(),
                    r.ts.format("%Y-%m-%d %H:%M")
                )
            },
        );
        println!(
            "{:<11} {:<28} {:<26} {:<9} {:<14} {reading}",
            &*l.source,
            d.id,
            d.name
                .as_deref()
                .unwrap_or("-")
                .chars()
                .take(26)
                .collect::<String>(),
            d.status.as_str(),
            d.vendor_status.as_deref().unwrap_or("-"),
        );
    }
    println!("\n{} devices", rows.len());
    for f in &failures {
        eprintln!("failed: {f}");
    }
    Ok(())
}
