//! The three simulators and a fleet of their clients, shared by the `fleet_*` tests. A child
//! process (the crash tests) builds the same fleet from the environment the parent gives it.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use iot_sdk::fleet::{Fleet, MetricFilter, Source};
use iot_sdk::{RetryBudget, RetryPolicy, sepolo, sgt, siliconwit};
use iot_sdk_sim::sepolo::SepoloSimulator;
use iot_sdk_sim::sgt::SgtSimulator;
use iot_sdk_sim::siliconwit::SiliconWitSimulator;

/// The SGT metrics the fleet reads.
pub const SGT_METRICS: [&str; 2] = ["power_kw", "temperature_c"];

/// The three simulators.
pub struct Sims {
    pub sgt: SgtSimulator,
    pub sepolo: SepoloSimulator,
    pub siliconwit: SiliconWitSimulator,
}

/// Starts the three simulators: 4 SGT devices (2 with generated telemetry), a small Sepolo
/// organization, 3 SiliconWit devices; rate limits 100 times the published ones.
pub async fn start() -> Sims {
    let sgt = SgtSimulator::builder()
        .fleet_size(2)
        .rate_limit_scale(100.0)
        .start()
        .await
        .expect("sgt simulator");
    let sepolo = SepoloSimulator::builder()
        .organization_size(4)
        .rate_limit_scale(100.0)
        .start()
        .await
        .expect("sepolo simulator");
    let siliconwit = SiliconWitSimulator::builder()
        .device_count(3)
        .rate_limit_scale(100.0)
        .start()
        .await
        .expect("siliconwit simulator");
    Sims {
        sgt,
        sepolo,
        siliconwit,
    }
}

/// Retries quickly, many times: a fault-injecting simulator is survived in milliseconds.
pub fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(4))
        .with_retry_after_cap(Duration::from_secs(1))
}

/// Where the clients of the fleet connect, as `(name, value)` pairs for a child's environment.
pub fn endpoints(s: &Sims) -> Vec<(&'static str, String)> {
    vec![
        ("FLEET_SGT_URL", s.sgt.base_url().to_owned()),
        ("FLEET_SGT_KEY", s.sgt.api_key().to_owned()),
        ("FLEET_SGT_TENANT", s.sgt.tenant().to_owned()),
        ("FLEET_SEPOLO_URL", s.sepolo.base_url().to_owned()),
        ("FLEET_SEPOLO_KEY", s.sepolo.api_key().to_owned()),
        ("FLEET_SW_URL", s.siliconwit.base_url().to_owned()),
        ("FLEET_SW_KEY", s.siliconwit.api_key().to_owned()),
    ]
}

pub struct Clients {
    pub sgt: sgt::Client,
    pub sepolo: sepolo::Client,
    pub siliconwit: siliconwit::Client,
}

/// The three clients, from `(name, value)` pairs as [`endpoints`] makes them.
pub fn clients(get: impl Fn(&str) -> String) -> Clients {
    Clients {
        sgt: sgt::Client::builder()
            .api_key(get("FLEET_SGT_KEY"))
            .tenant(get("FLEET_SGT_TENANT"))
            .base_url(get("FLEET_SGT_URL"))
            .retry_policy(quick())
            .retry_budget(RetryBudget::unlimited())
            .build()
            .expect("sgt client"),
        sepolo: sepolo::Client::builder()
            .api_key(get("FLEET_SEPOLO_KEY"))
            .base_url(get("FLEET_SEPOLO_URL"))
            .retry_policy(quick())
            .retry_budget(RetryBudget::unlimited())
            .build()
            .expect("sepolo client"),
        siliconwit: siliconwit::Client::builder()
            .api_key(get("FLEET_SW_KEY"))
            .base_url(get("FLEET_SW_URL"))
            .retry_policy(quick())
            .retry_budget(RetryBudget::unlimited())
            .build()
            .expect("siliconwit client"),
    }
}

/// The fleet of the tests: the three clients, SGT reading [`SGT_METRICS`].
pub fn fleet(c: &Clients) -> Fleet {
    Fleet::new()
        .with_source(Source::new(c.sgt.clone()).metrics(MetricFilter::only(SGT_METRICS)))
        .with(c.sepolo.clone())
        .with(c.siliconwit.clone())
        .concurrency(3)
}

/// The clients of `sims`.
pub fn clients_of(s: &Sims) -> Clients {
    let pairs = endpoints(s);
    clients(|name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    })
}

/// A past range every simulator serves whole, the same for runs a few minutes apart: from
/// 30 hours to 6 hours before the current hour.
pub fn range() -> (DateTime<Utc>, DateTime<Utc>) {
    let hour = Utc::now().duration_trunc(TimeDelta::hours(1)).unwrap();
    (hour - TimeDelta::hours(30), hour - TimeDelta::hours(6))
}
