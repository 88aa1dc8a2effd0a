//! SiliconWit: one test per endpoint (exact request, fixture decoding), offset paging to
//! `total` (sequential and concurrent, also while the list changes), retention capping, null
//! latest telemetry, errors and rate-limit headers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::siliconwit::{Client, DeviceStatus, Operator, Severity, TelemetryRange};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use common::siliconwit::{KEY, setup};

async fn get_fixture(server: &MockServer, p: &str, name: &str) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ok_fixture("siliconwit", name))
        .expect(1)
        .mount(server)
        .await;
    catch_all(server).await;
}

async fn query_string(server: &MockServer) -> Option<String> {
    only_request(server).await.url.query().map(str::to_owned)
}

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

#[tokio::test]
async fn limits_are_checked_before_sending() {
    let (server, sw) = setup().await;
    catch_all(&server).await;
    assert!(matches!(
        sw.devices().list().limit(101).send().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sw.alerts().list().limit(0).items().try_next().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sw.alerts().history("alert_1", Some(101)).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sw.devices().telemetry("dev_1").limit(1001).send().await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sw.devices().get("").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        sw.alerts().get("..").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn alerts_list_get_history() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts", "alerts_list").await;
    let page = sw.alerts().list().offset(0).send().await.unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("offset=0"));
    let a = &page.items()[0];
    assert_eq!(a.id, "alert_abc123");
    assert_eq!(a.condition.field, "temperature");
    assert_eq!(a.condition.operator, Operator::Gt);
    assert_eq!(a.condition.value.as_f64(), Some(40.0));
    assert_eq!(a.severity, Some(Severity::Warning));
    assert_eq!(a.cooldown, Some(300));
    assert_eq!(a.actions, ["email"]);

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts/alert_abc123", "alerts_get").await;
    assert_eq!(
        sw.alerts().get("alert_abc123").await.unwrap().enabled,
        Some(true)
    );

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/alerts/alert_abc123/history", "alerts_history").await;
    let h = sw.alerts().history("alert_abc123", Some(20)).await.unwrap();
    assert_eq!(query_string(&server).await.as_deref(), Some("limit=20"));
    assert_eq!(h[0].condition_value.as_ref().unwrap().as_f64(), Some(42.1));
    assert!(!h[0].acknowledged);
}

#[tokio::test]
async fn account_usage_and_keys() {
    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/account/usage", "account_usage").await;
    let u = sw.usage().await.unwrap();
    assert_eq!(u.plan.plan, "starter");
    assert_eq!(u.plan.data_retention_days, Some(30));
    assert_eq!(
        (
            u.devices.total,
            u.devices.active,
            u.devices.paused,
            u.devices.limit
        ),
        (5, 4, 1, 10)
    );
    assert_eq!(u.telemetry.data_points_24h, 1440);
    assert_eq!((u.alerts.total, u.alerts.active), (3, 2));

    let (server, sw) = setup().await;
    get_fixture(&server, "/v1/account/keys", "account_keys").await;
    let keys = sw.api_keys().await.unwrap();
    assert_eq!(keys[0].key_prefix.as_deref(), Some("swk_AbCd"));
    assert!(keys[0].revoked_at.is_none());
}

#[tokio::test]
async fn errors_are_typed_from_the_text_body() {
    let (server, sw) = setup().await;
    Mock::given(path("/v1/devices/dev_x"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(fixture("siliconwit", "error_not_found")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v1/account/usage"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"error": "Account suspended"})),
        )
        .mount(&server)
        .await;
    let err = sw.devices().get("dev_x").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "HTTP 404 not_found: Device not found (GET /v1/devices/dev_x)"
    );
    let err = sw.usage().await.unwrap_err();
    assert!(err.is_forbidden());
    assert_eq!(err.api().unwrap().message(), "Account suspended");
}

#[tokio::test]
async fn a_429_is_honoured_and_daily_headers_are_read() {
    let (server, sw) = setup().await;
    Mock::given(path("/v1/account/usage"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": "Rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/account/usage"))
        .respond_with(
            ok_fixture("siliconwit", "account_usage")
                .insert_header("x-ratelimit-limit", "60")
                .insert_header("x-ratelimit-remaining", "59")
                .insert_header("x-ratelimit-daily-limit", "10000")
                .insert_header("x-ratelimit-daily-remaining", "9998"),
        )
        .mount(&server)
        .await;
    let start = std::time::Instant::now();
    sw.usage().await.unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
    let rl = sw.last_rate_limit().unwrap();
    assert_eq!(
        (rl.limit, rl.remaining, rl.daily_limit, rl.daily_remaining),
        (Some(60), Some(59), Some(10000), Some(9998))
    );
}

/// A server holding a list of devices that `mutate` may change after each request.
fn paged_devices(
    list: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicUsize>,
    mutate: impl Fn(usize, &mut Vec<String>) + Send + Sync + 'static,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |req: &Request| {
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        let limit: usize = q.get("limit").map_or(50, |l| l.parse().unwrap());
        let offset: usize = q.get("offset").map_or(0, |o| o.parse().unwrap());
        let mut l = list.lock().unwrap();
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let body = {
            let data: Vec<Value> = l
                .iter()
                .skip(offset)
                .take(limit)
                .map(|id| json!({"id": id, "name": id, "status": "active"}))
                .collect();
            json!({"data": data, "pagination": {"total": l.len(), "limit": limit, "offset": offset}})
        };
        mutate(n, &mut l);
        ResponseTemplate::new(200).set_body_json(body)
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dev_{i:04}")).collect()
}

async fn collect(sw: &Client, concurrent: Option<usize>) -> Vec<String> {
    let mut list = sw.devices().list().limit(7);
    if let Some(c) = concurrent {
        list = list.concurrent(c);
    }
    list.items()
        .map_ok(|d| d.id.to_string())
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn offset_paging_to_total_sequential_and_concurrent_agree() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(100)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls.clone(), |_, _| {}))
        .mount(&server)
        .await;
    let seq = collect(&sw, None).await;
    assert_eq!(seq, ids(100));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        15,
        "ceil(100 / 7) pages and not one more"
    );
    let conc = collect(&sw, Some(4)).await;
    assert_eq!(conc, seq, "same items in the same order");
    assert_eq!(calls.load(Ordering::SeqCst), 30);
}

#[tokio::test]
async fn items_removed_during_sequential_paging_are_not_skipped() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(30)));
    let calls = Arc::new(AtomicUsize::new(0));
    // After the first page (0..7) is served, dev_0001 and dev_0002 are deleted: everything
    // shifts left by two.
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls, |n, l| {
            if n == 0 {
                l.retain(|id| id != "dev_0001" && id != "dev_0002");
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, None).await;
    // Every device that still exists is there, in order; the deleted ones were read before.
    assert_eq!(got, ids(30), "nothing lost, nothing repeated");
}

#[tokio::test]
async fn items_inserted_at_the_front_during_paging_are_not_repeated() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(20)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list, calls, |n, l| {
            if n == 0 {
                l.insert(0, "dev_new".into());
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, None).await;
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no repeats: {got:?}");
    assert_eq!(got, ids(20), "the 20 original devices, in order");
}

#[tokio::test]
async fn a_change_during_concurrent_paging_falls_back_to_a_sequential_reread() {
    let (server, sw) = setup().await;
    let list = Arc::new(Mutex::new(ids(50)));
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/devices"))
        .respond_with(paged_devices(list.clone(), calls.clone(), |n, l| {
            if n == 1 {
                l.retain(|id| id != "dev_0003");
                l.push("dev_late".into());
                l.push("dev_later".into());
            }
        }))
        .mount(&server)
        .await;
    let got = collect(&sw, Some(3)).await;
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no repeats");
    // Every device present at the end is there (dev_0003 too: it was read before it went).
    let end: Vec<String> = list.lock().unwrap().clone();
    for id in &end {
        assert!(got.contains(id), "{id} lost");
    }
    assert!(got.contains(&"dev_0003".to_string()));
    assert!(calls.load(Ordering::SeqCst) > 8, "the re-read happened");
}

#[tokio::test]
async fn an_error_in_concurrent_paging_is_yielded_and_ends_it() {
    let (server, sw) = setup().await;
    Mock::given(path("/v1/devices"))
        .and(wiremock::matchers::query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "dev_1", "name": "a", "status": "active"}],
            "pagination": {"total": 3, "limit": 1, "offset": 0}
        })))
        .mount(&server)
        .await;
    Mock::given(path("/v1/devices"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"error": "Account suspended"})),
        )
        .mount(&server)
        .await;
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).concurrent(2).items())
            .await;
    assert_eq!(got.len(), 2);
    assert!(got[1].as_ref().unwrap_err().is_forbidden());
}

#[tokio::test]
async fn a_server_that_repeats_itself_is_stopped_not_followed_to_total() {
    let (server, sw) = setup().await;
    // Claims a billion devices but always sends the same one.
    Mock::given(path("/v1/devices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "dev_same", "name": "n", "status": "active"}],
            "pagination": {"total": 1_000_000_000u64, "limit": 1, "offset": 0}
        })))
        .mount(&server)
        .await;
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).items()).await;
    assert_eq!(got.len(), 2, "the device once, then the error");
    assert!(matches!(got[1], Err(Error::Protocol(_))), "{:?}", got[1]);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        11,
        "1 + 10 pages of repeats"
    );

    // Concurrently: the same, give or take the pages in flight when it stopped.
    let got: Vec<_> =
        futures::StreamExt::collect::<Vec<_>>(sw.devices().list().limit(1).concurrent(4).items())
            .await;
    assert_eq!(got.len(), 2);
    assert!(matches!(got[1], Err(Error::Protocol(_))), "{:?}", got[1]);
    let sent = server.received_requests().await.unwrap().len() - 11;
    assert!((11..=15).contains(&sent), "{sent} requests");
}
