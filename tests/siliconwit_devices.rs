//! SiliconWit devices: the list and its filters, one device, latest telemetry (also none yet),
//! historical telemetry and retention capping.

mod common;

use iot_sdk::siliconwit::{DeviceStatus, TelemetryRange};
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use common::query_string;
use common::siliconwit::{get_fixture, setup};

#[tokio::test]
async fn devices_list_decodes_and_sends_filters() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/devices", "devices_list").await;
    let page = sw
        .devices()
        .list()
        .status(DeviceStatus::Active)
        .limit(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("status=active&limit=10&offset=0")
    );
    let d = &page.items()[0];
    assert_eq!(d.id, "dev_a1b2c3d4");
    assert_eq!(d.name, "Temperature Sensor");
    assert_eq!(d.device_type.as_deref(), Some("sensor"));
    assert_eq!(d.status, DeviceStatus::Active);
    assert_eq!(
        d.last_seen.unwrap().to_rfc3339(),
        "2025-01-15T10:30:00+00:00"
    );
    // The spec's example: one item at offset 0 of a total of 5, so the list goes on at 1.
    assert_eq!(page.total(), Some(5));
    assert_eq!(page.next_offset(), Some(1));
}

#[tokio::test]
async fn device_get_latest_and_null_latest() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/devices/dev_a1b2c3d4", "devices_get").await;
    assert_eq!(
        sw.devices()
            .get("dev_a1b2c3d4")
            .await
            .unwrap()
            .description
            .as_deref(),
        Some("Office temperature monitor")
    );

    let (server, sw) = setup().await;
    get_fixture(
        &server,
        "/v1/devices/dev_a1b2c3d4/telemetry/latest",
        "telemetry_latest",
    )
    .await;
    let r = sw.devices().latest("dev_a1b2c3d4").await.unwrap().unwrap();
    assert_eq!(r.id, "tel_xyz789");
    assert_eq!(r.data.f64("temperature"), Some(25.5));
    assert_eq!(r.data.f64("humidity"), Some(60.0));

    let (server, sw) = setup().await;
    get_fixture(
        &server,
        "/v1/devices/dev_new/telemetry/latest",
        "telemetry_latest_null",
    )
    .await;
    assert!(sw.devices().latest("dev_new").await.unwrap().is_none());
}

#[tokio::test]
async fn telemetry_history_and_retention_capping() {
    let (server, sw) = setup().await;
    get_fixture(
        &server,
        "/v1/devices/dev_a1b2c3d4/telemetry",
        "telemetry_history",
    )
    .await;
    let h = sw
        .devices()
        .telemetry("dev_a1b2c3d4")
        .range(TelemetryRange::Days7)
        .limit(500)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("range=7d&limit=500")
    );
    assert_eq!(h.readings.len(), 2);
    assert_eq!(h.readings[1].data.f64("humidity"), Some(61.0));
    assert_eq!(h.query.data_retention_days, Some(30));
    assert!(!h.was_capped());

    let (server, sw) = setup().await;
    Mock::given(path("/v1/devices/dev_1/telemetry"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [],
            "query": {"device_id": "dev_1", "requested_range": "30d", "range": "7d", "limit": 100, "data_retention_days": 7}
        })))
        .mount(&server)
        .await;
    let h = sw
        .devices()
        .telemetry("dev_1")
        .range(TelemetryRange::Days30)
        .await
        .unwrap();
    assert!(h.was_capped());
    assert_eq!(h.query.range, Some(TelemetryRange::Days7));
}
