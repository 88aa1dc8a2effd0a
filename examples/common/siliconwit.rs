//! The SiliconWit client of the examples: the real API when `SILICONWIT_API_KEY` is set,
//! otherwise the built-in simulator.
#![allow(dead_code)]

use iot_sdk::siliconwit;
use iot_sdk_sim::siliconwit::SiliconWitSimulator;

/// A SiliconWit client: the real API when `SILICONWIT_API_KEY` is set (with
/// `SILICONWIT_BASE_URL` if given), otherwise a simulator (starter plan) with `devices` devices,
/// returned too so that it keeps running while the client is used.
pub async fn client(
    devices: usize,
) -> Result<(siliconwit::Client, Option<SiliconWitSimulator>), Box<dyn std::error::Error>> {
    if std::env::var("SILICONWIT_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        println!("Using the SiliconWit API (SILICONWIT_API_KEY is set).");
        return Ok((siliconwit::Client::from_env()?, None));
    }
    let sim = SiliconWitSimulator::builder()
        .device_count(devices)
        .start()
        .await?;
    println!(
        "SILICONWIT_API_KEY is not set: using the built-in SiliconWit simulator at {}",
        sim.base_url()
    );
    let client = siliconwit::Client::builder()
        .api_key(sim.api_key())
        .user_agent("iot-sdk-examples/1.0")
        .base_url(sim.base_url())
        .build()?;
    Ok((client, Some(sim)))
}
