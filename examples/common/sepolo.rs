//! The Sepolo client of the examples: the real API when `SEPOLO_API_KEY` is set, otherwise the
//! built-in simulator.
#![allow(dead_code)]

use iot_sdk::sepolo;
use iot_sdk_sim::sepolo::SepoloSimulator;

/// The device the examples read when running against the simulator: it has PointGuard cycles,
/// among them the spec's example `cyc_20260527_120000`.
pub const SIM_DEVICE: &str = "SEP-DEVICE-001";

/// A Sepolo client: the real API when `SEPOLO_API_KEY` is set (with `SEPOLO_BASE_URL` if
/// given), otherwise a simulator of an organization with `size` generated assets, returned too
/// so that it keeps running while the client is used.
pub async fn client(
    size: usize,
) -> Result<(sepolo::Client, Option<SepoloSimulator>), Box<dyn std::error::Error>> {
    if std::env::var("SEPOLO_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        println!("Using the Sepolo API (SEPOLO_API_KEY is set).");
        return Ok((sepolo::Client::from_env()?, None));
    }
    let sim = SepoloSimulator::builder()
        .organization_size(size)
        .start()
        .await?;
    println!(
        "SEPOLO_API_KEY is not set: using the built-in Sepolo simulator at {}",
        sim.base_url()
    );
    let client = sepolo::Client::builder()
        .api_key(sim.api_key())
        .user_agent("iot-sdk-examples/1.0")
        .base_url(sim.base_url())
        .build()?;
    Ok((client, Some(sim)))
}

/// The device to read: `SEPOLO_DEVICE_ID` when set, [`SIM_DEVICE`] on the simulator, else the
/// first device of the organization.
pub async fn device_id(
    sepolo: &sepolo::Client,
    sim: Option<&SepoloSimulator>,
) -> Result<Option<String>, iot_sdk::Error> {
    if let Ok(id) = std::env::var("SEPOLO_DEVICE_ID") {
        if !id.trim().is_empty() {
            return Ok(Some(id.trim().to_owned()));
        }
    }
    if sim.is_some() {
        return Ok(Some(SIM_DEVICE.to_owned()));
    }
    let page = sepolo.devices().list().page_size(1).send().await?;
    Ok(page.items().first().map(|d| d.device_id.to_string()))
}
