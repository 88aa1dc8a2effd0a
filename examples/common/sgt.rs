//! The SGT client of the examples: the real API when `SGT_API_KEY` is set, otherwise the
//! built-in simulator.
#![allow(dead_code)]

use iot_sdk::sgt;
use iot_sdk_sim::sgt::SgtSimulator;

/// An SGT client: the real API when `SGT_API_KEY` is set (with `SGT_TENANT` and `SGT_BASE_URL`
/// if given), otherwise a simulator with `fleet` generated devices, returned too so that it keeps
/// running while the client is used.
pub async fn client(
    fleet: usize,
) -> Result<(sgt::Client, Option<SgtSimulator>), Box<dyn std::error::Error>> {
    client_paced(fleet, None).await
}

/// Like [`client`], with client-side pacing when `pacing_scale` is given: the real API's
/// published buckets, or, against the simulator, its buckets scaled by that factor (the
/// simulator's limits are scaled the same way, so the example finishes in seconds).
pub async fn client_paced(
    fleet: usize,
    pacing_scale: Option<f64>,
) -> Result<(sgt::Client, Option<SgtSimulator>), Box<dyn std::error::Error>> {
    if std::env::var("SGT_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        println!("Using the SGT API (SGT_API_KEY is set).");
        let client = match pacing_scale {
            Some(_) => sgt::Client::from_env_builder()?.pacing(true).build()?,
            None => sgt::Client::from_env()?,
        };
        return Ok((client, None));
    }
    let scale = pacing_scale.unwrap_or(1.0);
    let sim = SgtSimulator::builder()
        .fleet_size(fleet)
        .rate_limit_scale(scale)
        .start()
        .await?;
    println!(
        "SGT_API_KEY is not set: using the built-in SGT simulator at {}",
        sim.base_url()
    );
    let mut builder = sgt::Client::builder()
        .api_key(sim.api_key())
        .tenant(sim.tenant())
        .user_agent("iot-sdk-examples/1.0")
        .base_url(sim.base_url());
    if pacing_scale.is_some() {
        let scaled = sgt::BUCKETS
            .iter()
            .map(|b| {
                iot_sdk::Bucket::new(
                    b.kind,
                    (f64::from(b.limit) * scale) as u32,
                    b.per,
                    (f64::from(b.burst) * scale) as u32,
                )
            })
            .collect();
        builder = builder.pacing_buckets(scaled);
    }
    Ok((builder.build()?, Some(sim)))
}
