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

/// A fresh temporary directory for one test of this process (emptied first).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("iot-sdk-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The phases the crash tests cycle through, by the name a child is given.
pub const CRASH_PHASES: [&str; 4] = ["data", "before", "temp", "after"];

fn crash_phase(name: &str) -> iot_sdk::fleet::CrashPhase {
    use iot_sdk::fleet::CrashPhase;
    match name {
        "before" => CrashPhase::BeforeData,
        "data" => CrashPhase::AfterData,
        "temp" => CrashPhase::CheckpointTemp,
        "assemble" => CrashPhase::AssembleTemp,
        "assembled" => CrashPhase::Assembled,
        _ => CrashPhase::AfterCheckpoint,
    }
}

/// `n` kill points over an export of `total` units: strictly increasing units spread over the
/// whole export, the first at unit 0, the phases cycling through [`CRASH_PHASES`].
pub fn crash_points(n: u64, total: u64) -> Vec<(u64, &'static str)> {
    let mut last = 0;
    (0..n)
        .map(|k| {
            let unit = if k == 0 {
                0
            } else {
                (k * (total - 1) / n).max(last + 1).min(total - 1)
            };
            last = unit;
            (unit, CRASH_PHASES[(k % 4) as usize])
        })
        .collect()
}

/// What a crash child is asked to do.
pub struct Child {
    /// The export's directory.
    pub dir: String,
    /// The fleet's clients.
    pub clients: Clients,
    /// The range.
    pub from: DateTime<Utc>,
    /// The range's end.
    pub to: DateTime<Utc>,
    /// Where to abort.
    pub point: iot_sdk::fleet::CrashPoint,
}

/// In a crash child (this test binary run again by [`crash_child`]): its orders from the
/// environment; `None` in an ordinary test run.
pub fn child_orders() -> Option<Child> {
    let dir = std::env::var("FLEET_CHILD").ok()?;
    let var = |k: &str| std::env::var(k).unwrap();
    let crash = var("FLEET_CRASH");
    let (unit, phase) = crash.split_once(':').unwrap();
    Some(Child {
        dir,
        clients: clients(|name| std::env::var(name).unwrap_or_default()),
        from: var("FLEET_FROM").parse().unwrap(),
        to: var("FLEET_TO").parse().unwrap(),
        point: iot_sdk::fleet::CrashPoint {
            unit: unit.parse().unwrap(),
            phase: crash_phase(phase),
        },
    })
}

/// Runs the test `child` of this binary as a child process exporting `[from, to)` into `dir`
/// that aborts at `unit` in `phase`; fails the test when it did not crash there.
pub async fn crash_child(
    child: &str,
    sims: &Sims,
    dir: &std::path::Path,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    (unit, phase): (u64, &str),
) {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([child, "--exact", "--nocapture", "--test-threads=1"])
        .envs(endpoints(sims))
        .env("FLEET_CHILD", dir)
        .env("FLEET_FROM", from.to_rfc3339())
        .env("FLEET_TO", to.to_rfc3339())
        .env("FLEET_CRASH", format!("{unit}:{phase}"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && !stdout.contains("without crashing"),
        "crash at unit {unit} ({phase}) did not happen: {stdout}"
    );
}
