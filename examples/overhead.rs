//! What the SDK costs per call, measured against hand-written reqwest on the same local server
//! in the same run: `GET /devices/{id}` decoded into a typed device, and one page of 500
//! devices, each done N times sequentially both ways, in alternating rounds.
//!
//! ```sh
//! cargo run --release --example overhead
//! ```
//!
//! The SDK's extra work per call: building the URL from checked segments, the retry loop and
//! budget, rate-limit and metadata parsing, the tracing span, and `serde_path_to_error` on decode.

use std::time::{Duration, Instant};

use iot_sdk::RetryPolicy;
use iot_sdk::sgt::{Client, Device};
use iot_sdk_sim::sgt::SgtSimulator;

const ROUNDS: usize = 5;
const CALLS: usize = 400;

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: T,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = SgtSimulator::builder()
        .fleet_size(2_000)
        .rate_limit_scale(1_000_000.0)
        .start()
        .await?;
    let sdk = Client::builder()
        .api_key(sim.api_key())
        .base_url(sim.base_url())
        .retry_policy(RetryPolicy::none())
        .build()?;
    let raw = reqwest::Client::new();
    let auth = format!("Bearer {}", sim.api_key());
    let get_url = format!("{}/devices/dev_42", sim.base_url());
    let page_url = format!("{}/devices?limit=500", sim.base_url());

    // Warm up both connection pools.
    for _ in 0..50 {
        sdk.devices().get("dev_42").await?;
        raw.get(&get_url)
            .header("authorization", &auth)
            .send()
            .await?
            .bytes()
            .await?;
    }

    let (mut sdk_get, mut raw_get, mut sdk_page, mut raw_page) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..CALLS {
            let d = sdk.devices().get("dev_42").await?;
            std::hint::black_box(d);
        }
        sdk_get += t.elapsed();

        let t = Instant::now();
        for _ in 0..CALLS {
            let body = raw
                .get(&get_url)
                .header("authorization", &auth)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let d: Envelope<Device> = serde_json::from_slice(&body)?;
            std::hint::black_box(d.data);
        }
        raw_get += t.elapsed();

        let t = Instant::now();
        for _ in 0..CALLS / 10 {
            let p = sdk.devices().list().limit(500).send().await?;
            std::hint::black_box(p);
        }
        sdk_page += t.elapsed();

        let t = Instant::now();
        for _ in 0..CALLS / 10 {
            let body = raw
                .get(&page_url)
                .header("authorization", &auth)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            let p: Envelope<Vec<Device>> = serde_json::from_slice(&body)?;
            std::hint::black_box(p.data);
        }
        raw_page += t.elapsed();
    }

    let per = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / (n * ROUNDS) as f64;
    println!(
        "{} calls each way, {ROUNDS} alternating rounds, same simulator:",
        CALLS * ROUNDS
    );
    println!(
        "  GET one device        SDK {:>8.1} µs/call   reqwest {:>8.1} µs/call   ratio {:.2}",
        per(sdk_get, CALLS),
        per(raw_get, CALLS),
        sdk_get.as_secs_f64() / raw_get.as_secs_f64()
    );
    println!(
        "  GET a page of 500     SDK {:>8.1} µs/call   reqwest {:>8.1} µs/call   ratio {:.2}",
        per(sdk_page, CALLS / 10),
        per(raw_page, CALLS / 10),
        sdk_page.as_secs_f64() / raw_page.as_secs_f64()
    );
    Ok(())
}
