//! PointGuard analytics: a device's cycles over the last month, every cycle's raw samples, and a
//! per-cycle table comparing the summary the API computed with the same figures recomputed from
//! the samples.
//!
//! ```sh
//! cargo run --example sepolo_pointguard                        # against the built-in simulator
//! SEPOLO_API_KEY=sep_live_… SEPOLO_DEVICE_ID=… cargo run --example sepolo_pointguard
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/sepolo.rs"]
mod sepolo_env;

use chrono::{Duration, Utc};
use futures::{StreamExt, TryStreamExt};
use iot_sdk::sepolo::{Cycle, TelemetrySample};

/// Rows shown in full; every cycle is checked either way.
const ROWS_SHOWN: usize = 30;

/// What the samples of one cycle say about it.
struct Recomputed {
    samples: usize,
    average: Option<f64>,
    peak: Option<f64>,
    first: Option<chrono::DateTime<Utc>>,
    last: Option<chrono::DateTime<Utc>>,
}

fn recompute(samples: &[TelemetrySample]) -> Recomputed {
    let currents: Vec<f64> = samples.iter().filter_map(|s| s.current).collect();
    let average =
        (!currents.is_empty()).then(|| currents.iter().sum::<f64>() / currents.len() as f64);
    let peak = currents.iter().copied().reduce(f64::max);
    Recomputed {
        samples: samples.len(),
        average,
        peak,
        first: samples.first().map(|s| s.stamp),
        last: samples.last().map(|s| s.stamp),
    }
}

/// Whether the summary agrees with its samples (means to within rounding).
fn consistent(c: &Cycle, r: &Recomputed) -> bool {
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6,
        (None, None) => true,
        _ => false,
    };
    c.samples == Some(r.samples as u64)
        && close(c.average_current, r.average)
        && close(c.peak_current, r.peak)
        && c.start == r.first
        && c.stop == r.last
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sepolo, sim) = sepolo_env::client(50).await?;
    let Some(device) = sepolo_env::device_id(&sepolo, sim.as_ref()).await? else {
        println!("The organization has no devices: nothing to show.");
        return Ok(());
    };

    let to = Utc::now();
    let from = to - Duration::days(30);
    let cycles: Vec<Cycle> = sepolo
        .devices()
        .cycles(device.as_str(), from, to)
        .page_size(500)
        .items()
        .try_collect()
        .await?;
    println!(
        "\n== {device}: {} PointGuard cycles from {} to {}",
        cycles.len(),
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    );
    if cycles.is_empty() {
        println!("  (no cycles: is this a PointGuard device?)");
        return Ok(());
    }

    // Each cycle's samples, four cycles at a time, in cycle order.
    let devices = sepolo.devices();
    let per_cycle: Vec<Vec<TelemetrySample>> = futures::stream::iter(cycles.iter())
        .map(|c| {
            devices
                .cycle_samples(device.as_str(), &c.cycle_id)
                .page_size(500)
                .items()
                .try_collect::<Vec<_>>()
        })
        .buffered(4)
        .try_collect()
        .await?;

    println!(
        "\n  {:<21} {:<24} {:>7}  {:>8} {:>8}  {:>8} {:>8}  ok",
        "cycle", "start", "samples", "avg", "avg*", "peak", "peak*"
    );
    let mut agree = 0;
    let mut total_samples = 0;
    for (i, (c, samples)) in cycles.iter().zip(&per_cycle).enumerate() {
        let r = recompute(samples);
        let ok = consistent(c, &r);
        agree += usize::from(ok);
        total_samples += r.samples;
        if i < ROWS_SHOWN {
            println!(
                "  {:<21} {:<24} {:>7}  {:>8} {:>8}  {:>8} {:>8}  {}",
                c.cycle_id.as_str(),
                c.start.map_or_else(
                    || "-".to_owned(),
                    |s| s.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
                ),
                c.samples.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                num(c.average_current),
                num(r.average),
                num(c.peak_current),
                num(r.peak),
                if ok { "yes" } else { "NO" },
            );
        }
    }
    if cycles.len() > ROWS_SHOWN {
        println!("  … {} more cycles", cycles.len() - ROWS_SHOWN);
    }
    println!("  (avg*, peak*: recomputed from the cycle's samples)");
    println!(
        "\n{agree} of {} cycles agree with their {total_samples} samples (count, start, stop, mean and peak current).",
        cycles.len()
    );
    println!("\n== rate limit");
    common::show_rate_limit(sepolo.last_rate_limit());
    Ok(())
}
