//! The Sepolo section of the quickstart: who the key is, a few assets, and a day of one
//! device's telemetry. Against the real API when `SEPOLO_API_KEY` is set, else the simulator.
//!
//! Include it from an example with
//! `#[path = "common/quickstart_sepolo.rs"] mod quickstart_sepolo;` and call
//! `quickstart_sepolo::section().await?`.
#![allow(dead_code)]

#[path = "sepolo.rs"]
mod sepolo_env;

use chrono::{Duration, Utc};
use futures::TryStreamExt;

/// Prints the Sepolo section.
pub async fn section() -> Result<(), Box<dyn std::error::Error>> {
    // `_sim` keeps the simulator (if any) running until the section ends.
    let (sepolo, _sim) = sepolo_env::client(50).await?;

    let me = sepolo.me().await?;
    println!(
        "\n== Sepolo: {} (organization {})",
        me.client_name.as_deref().unwrap_or("-"),
        me.organization_id
    );
    let scopes: Vec<String> = me.scopes.iter().map(ToString::to_string).collect();
    println!("  scopes: {}", scopes.join(", "));

    println!("\n== Sepolo: assets");
    let page = sepolo.assets().list().page_size(5).send().await?;
    for a in page.items() {
        println!(
            "  {:<36} {:<28} {:<16} {}",
            a.asset_id,
            a.name.as_deref().unwrap_or("-"),
            a.device_id.as_ref().map_or("(no device)", |d| d.as_str()),
            if a.is_active == Some(false) {
                "inactive"
            } else {
                "active"
            },
        );
    }

    let Some(device) = sepolo_env::device_id(&sepolo, _sim.as_ref()).await? else {
        println!("  no devices: nothing more to show");
        return Ok(());
    };
    let to = Utc::now();
    let samples: Vec<_> = sepolo
        .devices()
        .telemetry(device.as_str(), to - Duration::days(1), to)
        .page_size(500)
        .items()
        .try_collect()
        .await?;
    let pointguard = samples
        .iter()
        .filter(|s| s.telemetry_type == Some(1))
        .count();
    println!(
        "\n== Sepolo: {device}, last 24 hours: {} telemetry samples ({pointguard} PointGuard)",
        samples.len()
    );
    Ok(())
}
