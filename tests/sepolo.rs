//! Sepolo: one test per endpoint (exact request, fixture decoding), scopes, window splitting,
//! the bare-array endpoint and the error shape.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::sepolo::{AssetStatusFilter, Client, MissingScope, NewServiceReport, Scope};
use serde_json::{Value, json};
use wiremock::matchers::{body_json as body_is, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use common::sepolo::{KEY, setup};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Mounts `GET path` answering with a fixture, requiring the key header, exactly once.
async fn get_fixture(server: &MockServer, p: &str, fixture_name: &str) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("x-sepolo-api-key", KEY))
        .and(header("accept", "application/json"))
        .respond_with(ok_fixture("sepolo", fixture_name))
        .expect(1)
        .mount(server)
        .await;
    catch_all(server).await;
}

async fn query_string(server: &MockServer) -> Option<String> {
    only_request(server).await.url.query().map(str::to_owned)
}

#[tokio::test]
async fn me_and_scopes() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/me", "me").await;
    let me = sepolo.me().await.unwrap();
    assert_eq!(me.organization_id, "7f2d3f0a-7c51-42cf-a06d-2c2df5f0c20b");
    assert_eq!(me.client_name.as_deref(), Some("Partner API"));
    assert_eq!(
        me.scopes,
        [
            Scope::AssetsRead,
            Scope::DevicesRead,
            Scope::ServiceVisitsRead
        ]
    );
    assert_eq!(me.rate_limit.unwrap().requests_per_minute, None);
    assert_eq!(query_string(&server).await, None);
}

#[tokio::test]
async fn require_scopes_names_the_missing_ones() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/me"))
        .respond_with(ok_fixture("sepolo", "me"))
        .mount(&server)
        .await;
    sepolo.require_scopes(&[Scope::AssetsRead]).await.unwrap();
    let err = sepolo
        .require_scopes(&[
            Scope::AssetsRead,
            Scope::ReportingRead,
            Scope::AppointmentsRead,
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.ends_with("lacks the scopes: reporting.read, appointments.read")),
        "{err}"
    );
}

#[tokio::test]
async fn bearer_placement_is_the_callers_choice() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/me"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ok_fixture("sepolo", "me"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let sepolo = Client::builder()
        .api_key(KEY)
        .send_key_as_bearer(true)
        .base_url(server.uri())
        .build()
        .unwrap();
    sepolo.me().await.unwrap();
    assert!(
        only_request(&server)
            .await
            .headers
            .get("x-sepolo-api-key")
            .is_none()
    );
}

#[tokio::test]
async fn a_missing_scope_403_names_the_scope() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/appointments"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(fixture("sepolo", "error_forbidden")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = sepolo.service().appointments().send().await.unwrap_err();
    assert!(err.is_forbidden());
    let api = err.api().unwrap();
    assert_eq!(api.code(), &iot_sdk::ErrorCode::Forbidden);
    assert_eq!(api.missing_scope(), Some("appointments.read"));
    assert_eq!(
        err.to_string(),
        "HTTP 403 forbidden: The API key does not include the appointments.read scope. (GET /api/v1/appointments)"
    );
}

#[tokio::test]
async fn errors_400_401_404_500() {
    let (server, sepolo) = setup().await;
    for (p, status, code) in [
        (
            "/api/v1/assets/bad",
            400,
            iot_sdk::ErrorCode::InvalidRequest,
        ),
        (
            "/api/v1/assets/unauth",
            401,
            iot_sdk::ErrorCode::Unauthenticated,
        ),
        ("/api/v1/assets/missing", 404, iot_sdk::ErrorCode::NotFound),
    ] {
        let word = match status {
            400 => "validation",
            401 => "unauthorized",
            _ => "not_found",
        };
        Mock::given(path(p))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"error": word, "message": "m"})),
            )
            .mount(&server)
            .await;
        let id = p.rsplit('/').next().unwrap();
        let err = sepolo.assets().get(id).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.api().unwrap().code(), &code, "{p}");
    }
    Mock::given(path("/api/v1/assets/boom"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": "server_error", "message": "boom"})),
        )
        .mount(&server)
        .await;
    let err = sepolo.assets().get("boom").await.unwrap_err();
    assert_eq!(err.api().unwrap().attempts(), 3, "a GET is retried on 500");
}

#[tokio::test]
async fn assets_list_with_every_filter() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/assets", "assets_list").await;
    let page = sepolo
        .assets()
        .list()
        .updated_since(t("2026-05-01T00:00:00Z"))
        .group_id(12)
        .customer_id("CUST-10042")
        .status(AssetStatusFilter::Active)
        .page_size(500)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "updatedSince=2026-05-01T00%3A00%3A00Z&groupId=12&customerId=CUST-10042&status=active&pageSize=500"
        )
    );
    assert_eq!(page.items().len(), 2);
    assert_eq!(
        page.items()[0].asset_id,
        "a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63"
    );
    assert_eq!(page.items()[0].name.as_deref(), Some("Cooling line 4"));
    assert_eq!(
        page.items()[0].device_id.as_ref().unwrap(),
        "SEP-DEVICE-001"
    );
    assert_eq!(page.items()[1].is_active, Some(false));
    assert!(page.items()[1].device_id.is_none());
    assert_eq!(page.next_cursor(), Some("eyJsYXN0SWQiOiIwZThkNDFjMiJ9"));
}

#[tokio::test]
async fn page_size_over_500_is_refused() {
    let (server, sepolo) = setup().await;
    catch_all(&server).await;
    let err = sepolo
        .assets()
        .list()
        .page_size(501)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(ref m) if m.contains("501")));
    assert!(matches!(
        sepolo.vendors().page_size(0).send().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn assets_get_children_and_summary() {
    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/assets/a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63",
        "assets_get",
    )
    .await;
    let a = sepolo
        .assets()
        .get("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63")
        .await
        .unwrap();
    assert_eq!(a.is_active, Some(true));

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/assets/a33b5a5d/children",
        "assets_children",
    )
    .await;
    let kids = sepolo
        .assets()
        .children("a33b5a5d")
        .page_size(50)
        .send()
        .await
        .unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("pageSize=50"));
    assert_eq!(
        kids.items()[1].device_id.as_ref().unwrap(),
        "SEP-DEVICE-003"
    );

    let (server, sepolo) = setup().await;
    get_fixture(
        &server,
        "/api/v1/reporting/assets-summary",
        "assets_summary",
    )
    .await;
    let s = sepolo.reporting().assets_summary().await.unwrap();
    assert_eq!(
        (
            s.total_assets,
            s.active_assets,
            s.inactive_assets,
            s.with_devices,
            s.overdue_service
        ),
        (120, 112, 8, 98, 7)
    );
    assert_eq!(s.total_maintenance_cost, 420000.0);
}

#[tokio::test]
async fn devices_list_and_get() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/devices", "devices_list").await;
    let page = sepolo
        .devices()
        .list()
        .updated_since(t("2026-05-01T00:00:00Z"))
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
            t("2026-05-27T00:00:00Z"),
            t("2026-05-28T00:00:00Z"),
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
    assert_eq!(s.stamp, t("2026-05-27T12:00:00Z"));
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
        .map(|i| t("2026-01-01T00:00:00Z") + Duration::hours(3 * i))
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
    let from = t("2026-01-01T00:00:00Z");
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
    let at = t("2026-01-01T00:00:00Z");
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
            t("2026-05-27T00:00:00Z"),
            t("2026-05-28T00:00:00Z"),
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
    assert_eq!(c.stop, Some(t("2026-05-27T12:00:01.420Z")));
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
            t("2026-05-27T00:00:00Z"),
            t("2026-05-28T00:00:00Z"),
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

#[tokio::test]
async fn incidents_with_every_filter() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/incidents", "incidents").await;
    let page = sepolo
        .incidents()
        .between(t("2026-05-01T00:00:00Z"), t("2026-06-01T00:00:00Z"))
        .device_id("SEP-DEVICE-001")
        .state(1)
        .page_size(10)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some(
            "deviceId=SEP-DEVICE-001&state=1&pageSize=10&fromUtc=2026-05-01T00%3A00%3A00Z&toUtc=2026-06-01T00%3A00%3A00Z"
        )
    );
    assert_eq!(page.items()[0].state, Some(1));
    assert_eq!(page.items()[0].extra["stateText"], "Open");
}

#[tokio::test]
async fn service_reports_list_get_create() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/service-reports", "service_reports_list").await;
    let page = sepolo
        .service()
        .reports()
        .between(t("2026-01-01T00:00:00Z"), t("2026-06-01T00:00:00Z"))
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
        .between(t("2026-06-01T00:00:00Z"), t("2026-06-30T23:59:59Z"))
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
        .between(t("2026-06-01T00:00:00Z"), t("2026-07-01T00:00:00Z"))
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
                .map(|i| t("2025-01-01T00:00:00Z") + Duration::days(30 * i))
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
    let from = t("2025-01-01T00:00:00Z");
    let to = t("2027-01-01T00:00:00Z");
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
        .between(t("2026-01-01T00:00:00Z"), t("2026-07-01T00:00:00Z"))
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
        .between(t("2025-01-01T00:00:00Z"), t("2026-12-31T00:00:00Z"))
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
        .between(t("2026-05-01T00:00:00Z"), t("2026-06-01T00:00:00Z"))
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
    assert_eq!(days[0].date, t("2026-05-13T00:00:00Z"));
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

#[tokio::test]
async fn customers_vendors_parts() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/customers", "customers").await;
    let page = sepolo
        .customers()
        .external_system("SAP")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("externalSystem=SAP")
    );
    assert_eq!(page.items()[0].external_system.as_deref(), Some("SAP"));
    assert_eq!(page.items()[0].extra["name"], "Nordic Cold Storage AB");

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/vendors", "vendors").await;
    let page = sepolo.vendors().send().await.unwrap();
    assert_eq!(query_string(&server).await, None);
    assert_eq!(
        page.items()[1].vendor_id.as_ref().unwrap(),
        "a1f5c8e3-2b7d-4e09-9c64-8d3a0f6b2e71"
    );

    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/inventory/parts", "inventory_parts").await;
    let page = sepolo
        .inventory_parts()
        .vendor_id("4e9a2b6c-8d1f-4c37-a5e0-3b7d9f1c6a28")
        .status(AssetStatusFilter::All)
        .page_size(200)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_string(&server).await.as_deref(),
        Some("vendorId=4e9a2b6c-8d1f-4c37-a5e0-3b7d9f1c6a28&status=all&pageSize=200")
    );
    assert_eq!(page.items()[0].extra["quantityOnHand"], 3);
}

#[tokio::test]
async fn unknown_fields_never_break_decoding() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/assets/x"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"assetId": "x", "brandNew": {"nested": [1, 2]}, "isActive": null}),
        ))
        .mount(&server)
        .await;
    let a = sepolo.assets().get("x").await.unwrap();
    assert_eq!(a.extra["brandNew"]["nested"][1], 2);
    assert_eq!(a.is_active, None);
}
