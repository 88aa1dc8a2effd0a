//! Sepolo service: reports (list, get, create, no retry of a create), visits and appointments,
//! and a two-year visits range split into 366-day windows.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use futures::TryStreamExt;
use iot_sdk::sepolo::NewServiceReport;
use serde_json::{Value, json};
use wiremock::matchers::{body_json as body_is, header, method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use common::query_string;
use common::sepolo::{KEY, get_fixture, instant, setup};

#[tokio::test]
async fn service_reports_list_get_create() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/service-reports", "service_reports_list").await;
    let page = sepolo
        .service()
        .reports()
        .between(
            instant("2026-01-01T00:00:00Z"),
            instant("2026-06-01T00:00:00Z"),
        )
        .asset_id("a33b")
        .device_id("SEP-DEVICE-001")
        .state(3)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "assetId=a33b&deviceId=SEP-DEVICE-001&state=3&fromUtc=2026-01-01T00%3A00%3A00Z&toUtc=2026-06-01T00%3A00%3A00Z"
        )
    );
    assert_eq!(page.items()[1].state_text.as_deref(), Some("Draft"));

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/service-reports/5c722f76-5f0b-4c1b-875d-05a1d8cd47b5",
        "service_reports_get",
    )
    .await;
    let r = sepolo
        .service()
        .report("5c722f76-5f0b-4c1b-875d-05a1d8cd47b5")
        .await
        .unwrap();
    assert_eq!(r.state_text.as_deref(), Some("Completed"));

    let (server, sepolo) = setup().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/service-reports"))
        .and(header("x-sepolo-api-key", KEY))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({"assetId": "a33b", "deviceId": "SEP-DEVICE-001", "stateText": "Completed", "notes": "Replaced filter"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("sepolo", "service_reports_create")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let created = sepolo
        .service()
        .create_report(
            NewServiceReport::new("a33b")
                .device_id("SEP-DEVICE-001")
                .state_text("Completed")
                .field("notes", "Replaced filter"),
        )
        .await
        .unwrap();
    assert_eq!(
        created.service_report_id,
        "5c722f76-5f0b-4c1b-875d-05a1d8cd47b5"
    );
}

#[tokio::test]
async fn service_report_create_is_not_retried_after_a_500() {
    let (server, sepolo) = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(
        sepolo
            .service()
            .create_report(NewServiceReport::new("a"))
            .await
            .unwrap_err()
            .status(),
        Some(500)
    );
}

#[tokio::test]
async fn visits_and_appointments() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/service-visits", "service_visits").await;
    let page = sepolo
        .service()
        .visits()
        .between(
            instant("2026-06-01T00:00:00Z"),
            instant("2026-06-30T23:59:59Z"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("fromUtc=2026-06-01T00%3A00%3A00Z&toUtc=2026-06-30T23%3A59%3A59Z")
    );
    assert_eq!(
        page.items()[0].service_visit_id.as_deref(),
        Some("6d3a9e15-7f2b-4c80-9e4d-1b5a8c3f7d62")
    );
    assert_eq!(page.items()[0].extra["cost"], 1850);

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/appointments", "appointments").await;
    let page = sepolo
        .service()
        .appointments()
        .between(
            instant("2026-06-01T00:00:00Z"),
            instant("2026-07-01T00:00:00Z"),
        )
        .user_id("d2a8f5c1-6e3b-4f70-a9d4-1c7e5b8a2f63")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "userId=d2a8f5c1-6e3b-4f70-a9d4-1c7e5b8a2f63&fromUtc=2026-06-01T00%3A00%3A00Z&toUtc=2026-07-01T00%3A00%3A00Z"
        )
    );
    assert_eq!(
        page.items()[1].user_id.as_ref().unwrap(),
        "d2a8f5c1-6e3b-4f70-a9d4-1c7e5b8a2f63"
    );
}

#[tokio::test]
async fn a_two_year_visits_query_is_split_into_366_day_windows_in_order() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/service-visits"))
        .respond_with(|req: &Request| {
            let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
            let from: DateTime<Utc> = q["fromUtc"].parse().unwrap();
            let to: DateTime<Utc> = q["toUtc"].parse().unwrap();
            assert!(to - from <= Duration::days(366));
            // One visit at the start of each 30-day period inside the window, two per page.
            let all: Vec<DateTime<Utc>> = (0..)
                .map(|i| instant("2025-01-01T00:00:00Z") + Duration::days(30 * i))
                .skip_while(|d| *d < from)
                .take_while(|d| *d < to)
                .collect();
            let start: usize = q.get("cursor").map(|c| c.parse().unwrap()).unwrap_or(0);
            let end = (start + 2).min(all.len());
            let data: Vec<Value> = all[start..end].iter().map(|d| json!({"serviceVisitId": d.to_rfc3339(), "startUtc": d})).collect();
            ResponseTemplate::new(200).set_body_json(json!({"data": data, "nextCursor": (end < all.len()).then(|| end.to_string()), "hasMore": end < all.len()}))
        })
        .mount(&server)
        .await;
    let from = instant("2025-01-01T00:00:00Z");
    let to = instant("2027-01-01T00:00:00Z");
    let visits: Vec<_> = sepolo
        .service()
        .visits()
        .between(from, to)
        .items()
        .try_collect()
        .await
        .unwrap();
    let expected: Vec<String> = (0..25)
        .map(|i| (from + Duration::days(30 * i)).to_rfc3339())
        .collect();
    let got: Vec<String> = visits
        .iter()
        .map(|v| v.service_visit_id.clone().unwrap())
        .collect();
    assert_eq!(got, expected);
}
