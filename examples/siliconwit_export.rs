//! Seven days of telemetry of every active device, written as one CSV file under
//! `target/siliconwit_export/`: `device_id, reading_id, time`, then one column per metric name
//! seen. Text values (`"open"`) are kept as text. Devices whose range the plan's retention
//! capped are named.
//!
//! ```sh
//! cargo run --example siliconwit_export
//! SILICONWIT_API_KEY=swk_… cargo run --example siliconwit_export
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/siliconwit.rs"]
mod siliconwit_env;

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::SecondsFormat;
use futures::{StreamExt, TryStreamExt};
use iot_sdk::siliconwit::devices::MAX_TELEMETRY_LIMIT;
use iot_sdk::siliconwit::{Device, DeviceStatus, TelemetryHistory, TelemetryRange};
use serde_json::Value;

/// A metric value as a CSV cell: numbers and flags as written, text as is, missing as empty.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `target/siliconwit_export/` (or under `CARGO_TARGET_DIR`).
fn export_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("siliconwit_export")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sw, _sim) = siliconwit_env::client(10).await?;

    let devices: Vec<Device> = sw
        .devices()
        .list()
        .status(DeviceStatus::Active)
        .limit(100)
        .items()
        .try_collect()
        .await?;
    println!("{} active devices", devices.len());

    // Seven days of each, four devices at a time, in list order.
    let histories: Vec<TelemetryHistory> = futures::stream::iter(&devices)
        .map(|d| {
            sw.devices()
                .telemetry(&d.id)
                .range(TelemetryRange::Days7)
                .limit(MAX_TELEMETRY_LIMIT)
                .send()
        })
        .buffered(4)
        .try_collect()
        .await?;

    let mut metrics = BTreeSet::new();
    for (device, h) in devices.iter().zip(&histories) {
        metrics.extend(
            h.readings
                .iter()
                .flat_map(|r| r.data.names().map(str::to_owned)),
        );
        if h.was_capped() {
            println!(
                "  {}: range capped by the plan's retention ({} days) to {}",
                device.id,
                h.query.data_retention_days.unwrap_or(0),
                h.query.range.as_ref().map_or("?", |r| r.as_str()),
            );
        }
        if h.readings.len() >= MAX_TELEMETRY_LIMIT as usize {
            println!(
                "  {}: only the newest {MAX_TELEMETRY_LIMIT} readings (the API's maximum per query)",
                device.id
            );
        }
        if h.readings.is_empty() {
            println!("  {}: no readings in the last 7 days", device.id);
        }
    }

    let dir = export_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("telemetry_7d.csv");
    // The `csv` crate quotes what needs quoting (RFC 4180).
    let mut out = csv::Writer::from_path(&path)?;
    let mut header = vec![
        "device_id".to_owned(),
        "reading_id".to_owned(),
        "time".to_owned(),
    ];
    header.extend(metrics.iter().cloned());
    out.write_record(&header)?;
    let mut rows = 0usize;
    for (device, h) in devices.iter().zip(&histories) {
        // Oldest first in the file.
        for r in h.readings.iter().rev() {
            let mut row = vec![
                device.id.to_string(),
                r.id.clone(),
                r.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            ];
            row.extend(metrics.iter().map(|m| cell(r.data.get(m))));
            out.write_record(&row)?;
            rows += 1;
        }
    }
    out.flush()?;
    println!(
        "wrote {rows} rows ({} metric columns: {}) to {}",
        metrics.len(),
        metrics.iter().cloned().collect::<Vec<_>>().join(", "),
        path.display()
    );
    common::show_rate_limit(sw.last_rate_limit());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_text_as_text() {
        assert_eq!(cell(Some(&Value::from(21.5))), "21.5");
        assert_eq!(cell(Some(&Value::from("open"))), "open");
        assert_eq!(cell(None), "");
    }
}
