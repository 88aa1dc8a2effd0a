//! The SiliconWit section of the quickstart: plan and usage, devices, latest readings.
//!
//! Include it with `#[path = "common/quickstart_siliconwit.rs"] mod quickstart_siliconwit;` and
//! call `quickstart_siliconwit::section().await?`. It uses the real API when
//! `SILICONWIT_API_KEY` is set, else the built-in simulator.
#![allow(dead_code)]

#[path = "siliconwit.rs"]
mod siliconwit_env;

use iot_sdk::siliconwit::Metrics;

/// Readings shown, at most.
const LATEST: usize = 4;

/// `humidity=60 temperature=21.4 door=open …`: every metric, text unquoted.
fn show_metrics(m: &Metrics) -> String {
    m.names()
        .map(|name| match m.get(name) {
            Some(serde_json::Value::String(s)) => format!("{name}={s}"),
            Some(v) => format!("{name}={v}"),
            None => name.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints plan and usage, the first devices and the latest readings of a few of them.
pub async fn section() -> Result<(), Box<dyn std::error::Error>> {
    let (sw, _sim) = siliconwit_env::client(10).await?;

    let usage = sw.usage().await?;
    println!("\n== SiliconWit: account");
    println!(
        "  {} plan ({}), {} of {} devices ({} active, {} paused), {} days of telemetry kept",
        usage.plan.plan,
        usage.plan.status.as_deref().unwrap_or("-"),
        usage.devices.total,
        usage.devices.limit,
        usage.devices.active,
        usage.devices.paused,
        usage
            .plan
            .data_retention_days
            .map_or("?".to_owned(), |d| d.to_string()),
    );
    println!(
        "  {} data points in the last 24 h, {} of {} alerts active",
        usage.telemetry.data_points_24h, usage.alerts.active, usage.alerts.total
    );

    println!("\n== SiliconWit: devices");
    let page = sw.devices().list().limit(10).send().await?;
    for d in page.items() {
        println!(
            "  {:<14} {:<24} {:<8} last seen {}",
            d.id,
            d.name,
            d.status,
            d.last_seen.map_or("never".to_owned(), |t| t
                .format("%Y-%m-%d %H:%M")
                .to_string()),
        );
    }
    println!(
        "  ({} of {} shown)",
        page.items().len(),
        page.total().unwrap_or(0)
    );

    println!("\n== SiliconWit: latest readings");
    for d in page.items().iter().take(LATEST) {
        match sw.devices().latest(&d.id).await? {
            Some(r) => println!(
                "  {:<14} {}  {}",
                d.id,
                r.time.format("%Y-%m-%d %H:%M"),
                show_metrics(&r.data)
            ),
            None => println!("  {:<14} no readings yet", d.id),
        }
    }
    if let Some(rl) = sw.last_rate_limit() {
        println!(
            "  rate limit: {} of {} left this minute, {} of {} today",
            rl.remaining.unwrap_or(0),
            rl.limit.unwrap_or(0),
            rl.daily_remaining.unwrap_or(0),
            rl.daily_limit.unwrap_or(0),
        );
    }
    Ok(())
}
