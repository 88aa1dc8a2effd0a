//! Sepolo devices: list and get, telemetry (filters, a 90-day range split into windows, a range
//! that must be real), PointGuard cycles and samples, movements and signatures.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, Request, ResponseTemplate};

use common::query_string;
use common::sepolo::{get_fixture, instant, setup};

#[tokio::test]
async fn devices_list_and_get() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/devices", "devices_list").await;
    let page = sepolo
        .devices()
        .list()
        .updated_since(instant("2026-05-01T00:00:00Z"))
        .group_id(12)
        .status(2)
        .page_size(100)
        .cursor("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("updatedSince=2026-05-01T00%3A00%3A00Z&groupId=12&status=2&pageSize=100&cursor=abc")
    );
    assert_eq!(page.items()[1].battery_percentage, Some(47.0));

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/devices/SEP-DEVICE-001", "devices_get").await;
    let d = sepolo.devices().get("SEP-DEVICE-001").await.unwrap();
    assert_eq!(d.device_name.as_deref(), Some("Cooling line sensor"));
    assert_eq!(d.group_id, Some(12));
}

#[tokio::test]
async fn device_telemetry_with_every_filter() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/devices/SEP-DEVICE-001/telemetry",
        "device_telemetry",
    )
    .await;
    let page = sepolo
        .devices()
        .telemetry(
            "SEP-DEVICE-001",
            instant("2026-05-27T00:00:00Z"),
            instant("2026-05-28T00:00:00Z"),
        )
        .metrics(["current", "temperature"])
        .telemetry_type(1)
        .cycle_id("cyc_20260527_120000")
        .page_size(500)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "metrics=current%2Ctemperature&telemetryType=1&cycleId=cyc_20260527_120000&pageSize=500&from=2026-05-27T00%3A00%3A00Z&to=2026-05-28T00%3A00%3A00Z"
        )
    );
    let s = &page.items()[0];
    assert_eq!(s.stamp, instant("2026-05-27T12:00:00Z"));
    assert_eq!(s.current, Some(8.4));
    assert_eq!(s.cycle_sample_index, Some(42));
    assert_eq!(s.cycle_sample_count, Some(142));
}

/// A device with one sample every 3 hours, paged by 40.
fn samples_responder(req: &Request) -> ResponseTemplate {
    let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
    let from: DateTime<Utc> = q["from"].parse().unwrap();
    let to: DateTime<Utc> = q["to"].parse().unwrap();
    assert!(to - from <= Duration::days(31));
    let all: Vec<DateTime<Utc>> = (0..)
        .map(|i| instant("2026-01-01T00:00:00Z") + Duration::hours(3 * i))
        .skip_while(|s| *s < from)
        .take_while(|s| *s < to)
        .collect();
    let start: usize = q.get("cursor").map(|c| c.parse().unwrap()).unwrap_or(0);
    let end = (start + 40).min(all.len());
    let data: Vec<Value> = all[start..end]
        .iter()
        .map(|s| json!({"deviceId": "D", "stamp": s, "current": 1.0}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({
        "data": data, "nextCursor": (end < all.len()).then(|| end.to_string()), "hasMore": end < all.len()
    }))
}

#[tokio::test]
async fn a_90_day_telemetry_query_is_split_complete_and_ordered() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/devices/D/telemetry"))
        .respond_with(samples_responder)
        .mount(&server)
        .await;
    let from = instant("2026-01-01T00:00:00Z");
    let samples: Vec<_> = sepolo
        .devices()
        .telemetry("D", from, from + Duration::days(90))
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(samples.len(), 90 * 8);
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s.stamp, from + Duration::hours(3 * i as i64));
    }
    let firsts = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| !r.url.query().unwrap().contains("cursor"))
        .count();
    assert_eq!(firsts, 3, "three 31-day windows");
}

#[tokio::test]
async fn telemetry_needs_a_real_range() {
    let (server, sepolo) = setup().await;
    catch_all(&server).await;
    let at = instant("2026-01-01T00:00:00Z");
    assert!(matches!(
        sepolo.devices().telemetry("D", at, at).send().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sepolo
            .devices()
            .cycles("D", at, at - Duration::days(1))
            .send()
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sepolo
            .devices()
            .telemetry("", at, at + Duration::days(1))
            .send()
            .await,
        Err(Error::InvalidInput(_))
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn pointguard_cycles_and_samples() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/devices/SEP-DEVICE-001/pointguard/cycles",
        "pointguard_cycles",
    )
    .await;
    let page = sepolo
        .devices()
        .cycles(
            "SEP-DEVICE-001",
            instant("2026-05-27T00:00:00Z"),
            instant("2026-05-28T00:00:00Z"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("from=2026-05-27T00%3A00%3A00Z&to=2026-05-28T00%3A00%3A00Z")
    );
    let c = &page.items()[0];
    assert_eq!(c.cycle_id, "cyc_20260527_120000");
    assert_eq!(c.stop, Some(instant("2026-05-27T12:00:01.420Z")));
    assert_eq!((c.samples, c.peak_current), (Some(142), Some(15.7)));

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/devices/SEP-DEVICE-001/pointguard/cycles/cyc_20260527_120000/samples",
        "pointguard_cycle_samples",
    )
    .await;
    let page = sepolo
        .devices()
        .cycle_samples("SEP-DEVICE-001", "cyc_20260527_120000")
        .send()
        .await
        .unwrap();
    let idx: Vec<_> = page.items().iter().map(|s| s.cycle_sample_index).collect();
    assert_eq!(idx, [Some(0), Some(1)]);
    assert!(page.has_more());
}

#[tokio::test]
async fn movements_and_signature() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/devices/SEP-DEVICE-001/movements",
        "movements",
    )
    .await;
    let page = sepolo
        .devices()
        .movements(
            "SEP-DEVICE-001",
            instant("2026-05-27T00:00:00Z"),
            instant("2026-05-28T00:00:00Z"),
        )
        .min_duration_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("minDurationSeconds=5&from=2026-05-27T00%3A00%3A00Z&to=2026-05-28T00%3A00%3A00Z")
    );
    let m = &page.items()[0];
    assert_eq!(m.is_anomaly_suggested, Some(true));
    assert_eq!(m.anomaly_decision_action.as_deref(), Some("Classify"));
    assert_eq!(m.current_signature.as_ref().unwrap().current_rms, Some(8.8));

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/devices/SEP-DEVICE-001/movements/5c722f76-5f0b-4c1b-875d-05a1d8cd47b5/signature",
        "movement_signature",
    )
    .await;
    let sig = sepolo
        .devices()
        .movement_signature("SEP-DEVICE-001", "5c722f76-5f0b-4c1b-875d-05a1d8cd47b5")
        .await
        .unwrap();
    assert_eq!(sig.current_p50, Some(7.9));
    let shape = sig.shape().unwrap().unwrap();
    assert_eq!(shape["points"][2], json!([20, 15.7]));
}
