//! `iot_sdk::fleet` against the three simulators: the union of the device lists, readings and
//! latest readings equal what each client returns directly, and one failing source is reported
//! while the others complete.

#[path = "common/fleet.rs"]
mod fleet_sims;

use std::collections::{BTreeMap, BTreeSet};

use fleet_sims::{SGT_METRICS, clients_of, fleet, range, start};
use futures::{StreamExt, TryStreamExt};
use iot_sdk::fleet::{FleetSource, FleetStatus, MetricFilter, Source, VendorKind};
use iot_sdk_sim::Faults;

/// (source, vendor, id) of every device the fleet lists, and the errors.
async fn fleet_devices(
    f: &iot_sdk::fleet::Fleet,
) -> (BTreeSet<(String, VendorKind, String)>, Vec<String>) {
    let items: Vec<_> = f.devices().collect().await;
    let mut ok = BTreeSet::new();
    let mut errors = Vec::new();
    for item in items {
        match item {
            Ok(d) => assert!(
                ok.insert((d.source.to_string(), d.vendor, d.id.clone())),
                "{} listed twice",
                d.id
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (ok, errors)
}

#[tokio::test]
async fn the_union_equals_the_three_vendor_lists() {
    let sims = start().await;
    let c = clients_of(&sims);
    // Two sources of one vendor too: a second SGT key gets its own label.
    let f =
        fleet(&c).with_source(Source::new(c.sgt.clone()).metrics(MetricFilter::only(["power_kw"])));
    assert_eq!(
        f.labels().collect::<Vec<_>>(),
        ["sgt", "sepolo", "siliconwit", "sgt-2"]
    );
    let (union, errors) = fleet_devices(&f).await;
    assert!(errors.is_empty(), "{errors:?}");

    let mut expected = BTreeSet::new();
    let sgt: Vec<_> = c.sgt.devices().list().items().try_collect().await.unwrap();
    for d in &sgt {
        expected.insert(("sgt".to_owned(), VendorKind::Sgt, d.id.to_string()));
        expected.insert(("sgt-2".to_owned(), VendorKind::Sgt, d.id.to_string()));
    }
    let sepolo: Vec<_> = c
        .sepolo
        .devices()
        .list()
        .items()
        .try_collect()
        .await
        .unwrap();
    for d in &sepolo {
        expected.insert((
            "sepolo".to_owned(),
            VendorKind::Sepolo,
            d.device_id.to_string(),
        ));
    }
    let sw: Vec<_> = c
        .siliconwit
        .devices()
        .list()
        .items()
        .try_collect()
        .await
        .unwrap();
    for d in &sw {
        expected.insert((
            "siliconwit".to_owned(),
            VendorKind::SiliconWit,
            d.id.to_string(),
        ));
    }
    assert!(sgt.len() >= 4 && !sepolo.is_empty() && sw.len() == 3);
    assert_eq!(union, expected);

    // The common fields come from the vendor's own.
    let all: Vec<_> = c.sepolo.fleet_devices().try_collect().await.unwrap();
    for (d, orig) in all.iter().zip(&sepolo) {
        assert_eq!(d.id, orig.device_id.as_str());
        assert_eq!(d.name, orig.device_name);
        let text = orig.extra.get("statusText").and_then(|v| v.as_str());
        assert_eq!(d.vendor_status.as_deref(), text);
        let want = match text {
            Some("Online") => FleetStatus::Online,
            Some("Offline") => FleetStatus::Offline,
            Some("Maintenance") => FleetStatus::Inactive,
            _ => FleetStatus::Unknown,
        };
        assert_eq!(d.status, want);
    }
    let all: Vec<_> = c.sgt.fleet_devices().try_collect().await.unwrap();
    for (d, orig) in all.iter().zip(&sgt) {
        assert_eq!(
            (d.id.as_str(), d.name.as_deref()),
            (orig.id.as_str(), Some(orig.name.as_str()))
        );
        assert_eq!(d.site, orig.site.as_ref().map(ToString::to_string));
        assert_eq!(d.vendor_status.as_deref(), Some(orig.status.as_str()));
    }
}

/// (vendor, device, metric, ts, value) of readings.
type Key = (VendorKind, String, String, String, Option<String>);

fn key(r: &iot_sdk::fleet::FleetReading) -> Key {
    (
        r.vendor,
        r.device_id.clone(),
        r.metric.clone(),
        r.ts.to_rfc3339(),
        r.value
            .map(|v| v.to_string())
            .or_else(|| r.raw.as_ref().map(ToString::to_string)),
    )
}

#[tokio::test]
async fn the_fleets_readings_equal_each_clients_own() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (from, to) = range();
    let got: Vec<_> = f
        .readings(from, to, &MetricFilter::all())
        .try_collect()
        .await
        .unwrap();
    let mut got_keys: Vec<Key> = got.iter().map(|r| key(&r.item)).collect();
    got_keys.sort();

    // The same, read from each client's own API.
    let mut want: Vec<Key> = Vec::new();
    for d in c
        .sgt
        .devices()
        .list()
        .items()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
    {
        for m in SGT_METRICS {
            let rs: Vec<_> = c
                .sgt
                .telemetry()
                .query(d.id.as_str(), m, from, to)
                .items()
                .try_collect()
                .await
                .unwrap();
            want.extend(rs.iter().map(|r| {
                (
                    VendorKind::Sgt,
                    r.device_id.to_string(),
                    r.metric.clone(),
                    r.ts.to_rfc3339(),
                    Some(r.value.to_string()),
                )
            }));
        }
    }
    for d in c
        .sepolo
        .devices()
        .list()
        .items()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
    {
        let samples: Vec<_> = c
            .sepolo
            .devices()
            .telemetry(d.device_id.as_str(), from, to)
            .items()
            .try_collect()
            .await
            .unwrap();
        for s in samples {
            let mut names: Vec<String> = s
                .extra
                .iter()
                .filter(|(_, v)| v.is_number())
                .map(|(k, _)| k.clone())
                .collect();
            if s.current.is_some() {
                names.push("current".into());
            }
            for n in names {
                let v = s.metric(&n).unwrap();
                want.push((
                    VendorKind::Sepolo,
                    d.device_id.to_string(),
                    n,
                    s.stamp.to_rfc3339(),
                    Some(v.to_string()),
                ));
            }
        }
    }
    for d in c
        .siliconwit
        .devices()
        .list()
        .items()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
    {
        let h = c
            .siliconwit
            .devices()
            .telemetry(d.id.as_str())
            .range(iot_sdk::siliconwit::TelemetryRange::Days7)
            .limit(1000)
            .send()
            .await
            .unwrap();
        for r in h.readings.iter().filter(|r| r.time >= from && r.time < to) {
            for (k, v) in &r.data.0 {
                if v.is_null() {
                    continue;
                }
                let text = r
                    .data
                    .f64(k)
                    .map(|x| x.to_string())
                    .or_else(|| Some(v.to_string()));
                want.push((
                    VendorKind::SiliconWit,
                    d.id.to_string(),
                    k.clone(),
                    r.time.to_rfc3339(),
                    text,
                ));
            }
        }
    }
    want.sort();
    assert!(want.len() > 1_000, "a real amount of data: {}", want.len());
    for v in [VendorKind::Sgt, VendorKind::Sepolo, VendorKind::SiliconWit] {
        assert!(want.iter().any(|k| k.0 == v), "{v} has readings in range");
    }
    assert_eq!(got_keys.len(), want.len());
    assert_eq!(got_keys, want);
    // Every reading has its source's label, and a way back to the vendor's model.
    let labels: BTreeMap<VendorKind, &str> = got.iter().map(|r| (r.vendor, &*r.source)).collect();
    assert_eq!(labels[&VendorKind::Sgt], "sgt");
    assert_eq!(labels[&VendorKind::SiliconWit], "siliconwit");
}

#[tokio::test]
async fn latest_readings_are_each_vendors_latest() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let latest: Vec<_> = f.latest(&MetricFilter::all()).try_collect().await.unwrap();
    let devices = fleet_devices(&f).await.0;
    assert_eq!(latest.len(), devices.len(), "one entry per device");
    for l in &latest {
        match l.device.vendor {
            VendorKind::SiliconWit => {
                let direct = c
                    .siliconwit
                    .devices()
                    .latest(l.device.id.as_str())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(!l.readings.is_empty());
                assert!(l.readings.iter().all(|r| r.ts == direct.time));
                let names: BTreeSet<_> = l.readings.iter().map(|r| r.metric.as_str()).collect();
                let want: BTreeSet<_> = direct
                    .data
                    .0
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, _)| k.as_str())
                    .collect();
                assert_eq!(names, want);
            }
            VendorKind::Sgt => {
                // Generated devices report every 15 minutes: the latest is within the last 15.
                for r in &l.readings {
                    assert!(SGT_METRICS.contains(&r.metric.as_str()));
                    assert!(
                        chrono::Utc::now() - r.ts <= chrono::TimeDelta::minutes(16),
                        "{r:?}"
                    );
                }
            }
            _ => {
                for r in &l.readings {
                    assert!(chrono::Utc::now() - r.ts <= chrono::TimeDelta::days(1));
                }
            }
        }
    }
    assert!(
        latest
            .iter()
            .any(|l| l.device.vendor == VendorKind::Sgt && l.readings.len() == 2)
    );
    assert!(
        latest
            .iter()
            .any(|l| l.device.vendor == VendorKind::Sepolo && !l.readings.is_empty())
    );
}

#[tokio::test]
async fn a_failing_source_is_reported_and_the_others_complete() {
    let sims = start().await;
    let c = clients_of(&sims);
    let f = fleet(&c);
    let (healthy, _) = fleet_devices(&f).await;
    sims.sepolo.set_faults(Faults::none().error_rate(1.0));
    let (union, errors) = fleet_devices(&f).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("source sepolo (sepolo): "),
        "{}",
        errors[0]
    );
    let without: BTreeSet<_> = healthy
        .into_iter()
        .filter(|d| d.1 != VendorKind::Sepolo)
        .collect();
    assert_eq!(union, without, "every other device is there");

    // Readings: the stream reports the source and goes on; the caller can stop or go on.
    let (from, to) = range();
    let items: Vec<_> = f.readings(from, to, &MetricFilter::all()).collect().await;
    let failed: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (&*failed[0].source, failed[0].vendor),
        ("sepolo", VendorKind::Sepolo)
    );
    assert!(
        failed[0].error.api().is_some_and(|a| a.status() >= 500),
        "{}",
        failed[0]
    );
    let ok = items.iter().filter_map(|i| i.as_ref().ok());
    let vendors: BTreeSet<_> = ok.map(|r| r.vendor).collect();
    assert_eq!(
        vendors,
        BTreeSet::from([VendorKind::Sgt, VendorKind::SiliconWit])
    );
}

#[tokio::test]
async fn an_sgt_source_without_metrics_says_so() {
    let sims = start().await;
    let c = clients_of(&sims);
    let (from, to) = range();
    let err = c
        .sgt
        .fleet_readings("dev_1", from, to, &MetricFilter::all())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, iot_sdk::Error::InvalidInput(ref m) if m.contains("one metric at a time"))
    );
}
