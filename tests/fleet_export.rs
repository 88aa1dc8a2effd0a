//! Resumable exports against the three simulators: an export equals the readings fetched
//! directly; an export killed at 24 points (between writing data and the checkpoint, inside
//! the checkpoint's atomic replace, …) and resumed is byte-identical to an uninterrupted run;
//! one vendor failing mid-export leaves the others complete, reports the failure, and a re-run
//! completes it.

#[path = "common/fleet.rs"]
mod fleet_sims;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use fleet_sims::{
    child_orders, clients_of, crash_child, crash_points, fleet, range, start, temp_dir,
};
use futures::TryStreamExt;
use iot_sdk::fleet::{MetricFilter, VendorKind};
use iot_sdk_sim::Faults;

/// Two-hour units: the range below is 12 windows, about 130 units.
const UNIT: TimeDelta = TimeDelta::hours(2);

/// The rows of a CSV export, without the header.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "source",
            "vendor",
            "device_id",
            "metric",
            "ts",
            "value",
            "unit",
            "raw"
        ]
    );
    r.records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[tokio::test]
async fn a_range_export_equals_the_readings_fetched_directly() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let dir = temp_dir("equal");
    let report = f.export(from, to).unit(UNIT).csv(&dir).await.unwrap();
    assert!(report.is_complete(), "{:?}", report.failures);
    assert!(!report.resumed);
    let got = rows(&report.path);
    assert_eq!(got.len() as u64, report.rows);

    let direct: Vec<_> = f
        .readings(from, to, &MetricFilter::all())
        .try_collect()
        .await
        .unwrap();
    let mut want: Vec<Vec<String>> = direct
        .iter()
        .map(|r| {
            vec![
                r.source.to_string(),
                r.vendor.to_string(),
                r.device_id.clone(),
                r.metric.clone(),
                r.ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                r.value.map(|v| v.to_string()).unwrap_or_default(),
                r.unit.unwrap_or_default().to_owned(),
                r.raw
                    .as_ref()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "every reading exactly once");
    assert!(got.len() > 1_000);
    // In the documented order: window after window, each source in order, devices by id.
    let ts: Vec<DateTime<Utc>> = got.iter().map(|r| r[4].parse().unwrap()).collect();
    let window = |t: &DateTime<Utc>| (*t - from).num_seconds() / UNIT.num_seconds();
    assert!(ts.windows(2).all(|p| window(&p[0]) <= window(&p[1])));
    let units = got.iter().map(|r| r[2].clone()).collect::<Vec<_>>();
    assert!(!units.is_empty());
    // Running it again finds the checkpoint complete and writes nothing.
    let before = std::fs::read(&report.path).unwrap();
    let again = f.export(from, to).unit(UNIT).csv(&dir).await.unwrap();
    assert!(again.resumed && again.is_complete());
    assert_eq!(again.units_written, 0);
    assert_eq!(std::fs::read(&report.path).unwrap(), before);
    // Other arguments against this checkpoint are refused.
    let other = f.export(from, to).unit(TimeDelta::hours(1)).csv(&dir).await;
    assert!(matches!(other, Err(iot_sdk::Error::InvalidInput(m)) if m.contains("another export")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs in a child process when `FLEET_CHILD` is set: the export of the parent's fleet into
/// `FLEET_DIR`, aborting at `FLEET_CRASH` (`unit:phase`).
#[tokio::test]
async fn child_export() {
    let Some(child) = child_orders() else {
        return;
    };
    let report = fleet(&child.clients)
        .export(child.from, child.to)
        .unit(UNIT)
        .crash_at(child.point)
        .csv(&child.dir)
        .await;
    // Reaching here means the crash point was never reached: the parent counts that a failure.
    println!(
        "export ended without crashing: {:?}",
        report.map(|r| r.rows)
    );
}

// Multi-threaded: the simulators serve the child while this test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_at_24_points_and_resumed_is_byte_identical() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let clean = temp_dir("clean");
    let reference = f.export(from, to).unit(UNIT).csv(&clean).await.unwrap();
    assert!(reference.is_complete());
    let total = reference.units_total;
    assert!(
        total >= 48,
        "enough units to spread 24 crashes over: {total}"
    );
    let want = std::fs::read(&reference.path).unwrap();

    let dir = temp_dir("killed");
    for point in crash_points(24, total) {
        crash_child("child_export", &sims, &dir, (from, to), point).await;
        // The checkpoint on disk is always whole and readable.
        let cp = std::fs::read(dir.join("readings.csv.checkpoint.json")).unwrap();
        let cp: serde_json::Value = serde_json::from_slice(&cp).unwrap();
        let len = std::fs::metadata(dir.join("readings.csv")).unwrap().len();
        assert!(cp["data_len"].as_u64().unwrap() <= len);
    }
    let resumed = f.export(from, to).unit(UNIT).csv(&dir).await.unwrap();
    assert!(resumed.resumed && resumed.is_complete());
    let got = std::fs::read(&resumed.path).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the resumed file is byte-identical to the uninterrupted one"
    );
    assert_eq!(resumed.rows, reference.rows);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&clean).unwrap();
}

#[tokio::test]
async fn one_vendor_failing_mid_export_leaves_the_others_complete() {
    let sims = Arc::new(start().await);
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let clean = temp_dir("reference");
    let reference = f.export(from, to).unit(UNIT).csv(&clean).await.unwrap();
    let want = rows(&reference.path);

    // SiliconWit goes down after the first 20 units.
    let dir = temp_dir("failing");
    let done = Arc::new(AtomicU64::new(0));
    let (s, d) = (Arc::clone(&sims), Arc::clone(&done));
    let report = f
        .export(from, to)
        .unit(UNIT)
        .progress(move |p| {
            if d.fetch_add(1, Ordering::SeqCst) == 20 {
                s.siliconwit.set_faults(Faults::none().error_rate(1.0));
            }
            assert!(p.units_done <= p.units_total);
        })
        .csv(&dir)
        .await
        .unwrap();
    assert!(!report.is_complete());
    assert!(report.pending > 0);
    assert_eq!(report.pending, report.failures.len() as u64);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.error.vendor == VendorKind::SiliconWit
                && &*f.error.source == "siliconwit"
                && f.error.device_id.is_some()
                && f.window.is_some())
    );
    let partial = rows(&report.path);
    let per_vendor = |rows: &[Vec<String>]| {
        let mut m: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for r in rows {
            m.entry(r[1].clone()).or_default().push(r.clone());
        }
        m
    };
    let (p, w) = (per_vendor(&partial), per_vendor(&want));
    assert_eq!(p["sgt"], w["sgt"], "SGT complete, in order");
    assert_eq!(p["sepolo"], w["sepolo"], "Sepolo complete, in order");
    assert!(p["siliconwit"].len() < w["siliconwit"].len());

    // Healthy again: a re-run does the failed units, and every reading is there exactly once.
    sims.siliconwit.set_faults(Faults::none());
    let again = f.export(from, to).unit(UNIT).csv(&dir).await.unwrap();
    assert!(again.resumed && again.is_complete(), "{:?}", again.failures);
    assert_eq!(again.units_written, report.pending);
    let mut got = rows(&again.path);
    let mut all = want.clone();
    got.sort();
    all.sort();
    assert_eq!(got, all);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&clean).unwrap();
}

/// A range that starts beyond SiliconWit's reach (more than 1,000 readings, one every 15
/// minutes, between its start and now): the windows it cannot serve are unreachable units, a
/// final outcome; the export completes in one run, a second writes nothing and reports them
/// again, and the reachable windows' readings are exactly those fetched directly.
#[tokio::test]
async fn windows_beyond_a_vendors_reach_are_unreachable_and_the_export_completes() {
    use iot_sdk::fleet::{Fleet, FleetSource, OutOfReach};
    let sims = start().await;
    let c = clients_of(&sims);
    let f = Fleet::new().with(c.siliconwit.clone()).concurrency(3);
    let hour = chrono::DurationRound::duration_trunc(Utc::now(), TimeDelta::hours(1)).unwrap();
    let (from, to) = (hour - TimeDelta::days(12), hour - TimeDelta::days(2));
    let unit = TimeDelta::days(1);
    let dir = temp_dir("unreachable");
    let report = f.export(from, to).unit(unit).csv(&dir).await.unwrap();

    // What SiliconWit serves, unit by unit, asked directly.
    let mut devices: Vec<String> = c
        .siliconwit
        .fleet_devices()
        .map_ok(|d| d.id)
        .try_collect()
        .await
        .unwrap();
    devices.sort();
    let mut want_rows = Vec::new();
    let mut want_unreachable = Vec::new();
    for w in 0..10 {
        let (a, b) = (from + unit * w, from + unit * (w + 1));
        for d in &devices {
            match c
                .siliconwit
                .fleet_readings(d, a, b, &MetricFilter::all())
                .try_collect::<Vec<_>>()
                .await
            {
                Ok(rs) => want_rows.extend(rs.into_iter().map(|r| {
                    (
                        r.device_id,
                        r.metric,
                        r.ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    )
                })),
                Err(e) => {
                    assert!(e.vendor::<OutOfReach>().is_some(), "{e}");
                    want_unreachable.push((d.clone(), (a, b)));
                }
            }
        }
    }
    assert!(!want_unreachable.is_empty() && !want_rows.is_empty());
    // The two oldest windows are beyond reach (11 and 12 days: over 1,000 readings to now).
    assert!(want_unreachable.len() >= 2 * devices.len());

    assert!(report.is_complete(), "{:?}", report.failures);
    assert!(report.failures.is_empty());
    assert_eq!(report.pending, 0);
    assert_eq!(report.unreachable_new, want_unreachable.len() as u64);
    let got_unreachable: Vec<_> = report
        .unreachable
        .iter()
        .map(|u| (u.device_id.clone(), u.window))
        .collect();
    assert_eq!(got_unreachable, want_unreachable);
    assert!(
        report
            .unreachable
            .iter()
            .all(|u| u.vendor == VendorKind::SiliconWit
                && u.source == "siliconwit"
                && u.reachable_from > u.window.0)
    );
    let got_rows: Vec<_> = rows(&report.path)
        .into_iter()
        .map(|r| (r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    assert_eq!(
        got_rows, want_rows,
        "the reachable windows exactly, in order"
    );
    assert_eq!(report.rows, want_rows.len() as u64);

    // A second run: nothing to do, nothing retried, the unreachable units reported again.
    let before = std::fs::read(&report.path).unwrap();
    let again = f.export(from, to).unit(unit).csv(&dir).await.unwrap();
    assert!(again.resumed && again.is_complete());
    assert_eq!((again.units_written, again.unreachable_new), (0, 0));
    assert_eq!(again.unreachable, report.unreachable);
    assert_eq!(std::fs::read(&report.path).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
