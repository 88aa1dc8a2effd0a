//! Sepolo reporting: service performance and its split, the bare-array daily telemetry.

mod common;

use common::*;
use iot_sdk::Error;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use common::query_string;
use common::sepolo::{get_fixture, instant, setup};

#[tokio::test]
async fn service_performance_and_its_split() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/reporting/service-performance",
        "service_performance",
    )
    .await;
    let p = sepolo
        .reporting()
        .service_performance()
        .between(
            instant("2026-01-01T00:00:00Z"),
            instant("2026-07-01T00:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("fromUtc=2026-01-01T00%3A00%3A00Z&toUtc=2026-07-01T00%3A00%3A00Z")
    );
    assert_eq!(
        (p.total_visits, p.completed_visits, p.open_visits),
        (42, 35, 7)
    );
    assert_eq!((p.estimated_cost, p.actual_cost), (91000.0, 97250.0));

    // Two years: two windows, summed.
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/reporting/service-performance"))
        .respond_with(ok_fixture("sepolo", "service_performance"))
        .expect(2)
        .mount(&server)
        .await;
    let p = sepolo
        .reporting()
        .service_performance()
        .between(
            instant("2025-01-01T00:00:00Z"),
            instant("2026-12-31T00:00:00Z"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!((p.total_visits, p.actual_cost), (84, 194500.0));
}

#[tokio::test]
async fn telemetry_daily_is_a_bare_array() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/reporting/telemetry-daily",
        "telemetry_daily",
    )
    .await;
    let days = sepolo
        .reporting()
        .telemetry_daily()
        .between(
            instant("2026-05-01T00:00:00Z"),
            instant("2026-06-01T00:00:00Z"),
        )
        .device_id("SEP-DEVICE-001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "deviceId=SEP-DEVICE-001&fromUtc=2026-05-01T00%3A00%3A00Z&toUtc=2026-06-01T00%3A00%3A00Z"
        )
    );
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].date, instant("2026-05-13T00:00:00Z"));
    assert_eq!(
        (days[0].samples, days[0].average_temperature),
        (Some(288), Some(18.4))
    );
    // An envelope where an array is expected is a decode error, not a panic.
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/reporting/telemetry-daily"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&server)
        .await;
    assert!(matches!(
        sepolo.reporting().telemetry_daily().send().await,
        Err(Error::Decode(_))
    ));
}
