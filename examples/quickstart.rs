//! The quickstart: one section per vendor.
//!
//! - SGT Systems: list devices, read one, query aggregated telemetry, show rate-limit state.
//! - Sepolo: identity and scopes, assets, one device's telemetry.
//! - SiliconWit: plan and usage, devices, latest readings.
//!
//! Each section uses the real API when its key is set (`SGT_API_KEY`, `SEPOLO_API_KEY`,
//! `SILICONWIT_API_KEY`) and the built-in simulator otherwise:
//!
//! ```sh
//! cargo run --example quickstart
//! SGT_API_KEY=sgt_live_… SGT_TENANT=acme-industries cargo run --example quickstart
//! ```

#[path = "common/mod.rs"]
mod common;
#[path = "common/quickstart_sepolo.rs"]
mod quickstart_sepolo;
#[path = "common/quickstart_siliconwit.rs"]
mod quickstart_siliconwit;
#[path = "common/sgt.rs"]
mod sgt_env;

use chrono::{Duration, Utc};
use futures::TryStreamExt;
use iot_sdk::sgt::{AggregateFn, DeviceStatus, Interval};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    sgt_section().await?;
    println!();
    quickstart_sepolo::section().await?;
    println!();
    quickstart_siliconwit::section().await?;
    Ok(())
}

async fn sgt_section() -> Result<(), Box<dyn std::error::Error>> {
    let (sgt, _sim) = sgt_env::client(50).await?;

    println!("\n== SGT Systems: devices");
    let page = sgt.devices().list().limit(5).send().await?;
    for d in page.items() {
        println!("  {:<12} {:<36} {}", d.id, d.name, d.status);
    }
    let online: Vec<_> = sgt
        .devices()
        .list()
        .status(DeviceStatus::Online)
        .items()
        .try_collect()
        .await?;
    let count = sgt.devices().count().await?;
    println!("  {} online of about {} devices", online.len(), count.count);

    let Some(first) = page.items().first() else {
        println!("  no devices: nothing more to show");
        return Ok(());
    };
    let (device, meta) = sgt.devices().get(&first.id).send_with_meta().await?;
    println!(
        "\n== {}: {} at {} (etag {}, request {})",
        device.id,
        device.name,
        device.site.as_ref().map_or("-", |s| s.as_str()),
        device.etag.as_deref().unwrap_or("-"),
        meta.request_id.as_deref().unwrap_or("-"),
    );

    let to = Utc::now();
    let points = sgt
        .telemetry()
        .aggregate(
            &device.id,
            "power_kw",
            to - Duration::hours(6),
            to,
            Interval::hours(1),
            AggregateFn::Avg,
        )
        .send()
        .await?;
    println!("\n== power_kw, hourly average over the last 6 hours");
    for p in &points {
        match p.value {
            Some(v) => println!("  {}  {v:>8.2}", p.ts.format("%Y-%m-%d %H:%M")),
            None => println!("  {}  (no readings)", p.ts.format("%Y-%m-%d %H:%M")),
        }
    }

    println!("\n== rate limit");
    common::show_rate_limit(sgt.last_rate_limit());
    Ok(())
}
