//! The fleet of the fleet examples: the three vendors' clients (the real APIs whose keys are
//! set, the built-in simulators for the others), and the simulators to keep running.
#![allow(dead_code)]

use iot_sdk::fleet::{Fleet, MetricFilter, Source};
use iot_sdk::{sepolo, sgt, siliconwit};
use iot_sdk_sim::sepolo::SepoloSimulator;
use iot_sdk_sim::sgt::SgtSimulator;
use iot_sdk_sim::siliconwit::SiliconWitSimulator;

#[path = "mod.rs"]
mod shared;

/// The simulators started for vendors without a key; dropping it stops them.
#[derive(Default)]
pub struct Sims {
    pub sgt: Option<SgtSimulator>,
    pub sepolo: Option<SepoloSimulator>,
    pub siliconwit: Option<SiliconWitSimulator>,
}

/// The SGT metrics to read: `SGT_METRICS` (comma-separated) or the simulator's four.
fn sgt_metrics() -> MetricFilter {
    let list = std::env::var("SGT_METRICS")
        .unwrap_or_else(|_| "power_kw,temperature_c,humidity_pct,voltage_v".to_owned());
    MetricFilter::only(list.split(',').map(str::trim).filter(|m| !m.is_empty()))
}

/// A fleet of the three vendors.
pub async fn fleet() -> Result<(Fleet, Sims), Box<dyn std::error::Error>> {
    let mut sims = Sims::default();
    let sgt = if shared::is_set("SGT_API_KEY") {
        println!("SGT: the real API (SGT_API_KEY is set).");
        sgt::Client::from_env()?
    } else {
        let sim = SgtSimulator::builder()
            .fleet_size(6)
            .rate_limit_scale(100.0)
            .start()
            .await?;
        println!("SGT: simulator at {}", sim.base_url());
        let c = sgt::Client::builder()
            .api_key(sim.api_key())
            .tenant(sim.tenant())
            .base_url(sim.base_url())
            .build()?;
        sims.sgt = Some(sim);
        c
    };
    let sepolo = if shared::is_set("SEPOLO_API_KEY") {
        println!("Sepolo: the real API (SEPOLO_API_KEY is set).");
        sepolo::Client::from_env()?
    } else {
        let sim = SepoloSimulator::builder()
            .organization_size(10)
            .rate_limit_scale(100.0)
            .start()
            .await?;
        println!("Sepolo: simulator at {}", sim.base_url());
        let c = sepolo::Client::builder()
            .api_key(sim.api_key())
            .base_url(sim.base_url())
            .build()?;
        sims.sepolo = Some(sim);
        c
    };
    let siliconwit = if shared::is_set("SILICONWIT_API_KEY") {
        println!("SiliconWit: the real API (SILICONWIT_API_KEY is set).");
        siliconwit::Client::from_env()?
    } else {
        let sim = SiliconWitSimulator::builder()
            .device_count(4)
            .rate_limit_scale(100.0)
            .start()
            .await?;
        println!("SiliconWit: simulator at {}", sim.base_url());
        let c = siliconwit::Client::builder()
            .api_key(sim.api_key())
            .base_url(sim.base_url())
            .build()?;
        sims.siliconwit = Some(sim);
        c
    };
    let fleet = Fleet::new()
        .with_source(Source::new(sgt).metrics(sgt_metrics()))
        .with(sepolo)
        .with(siliconwit);
    Ok((fleet, sims))
}
