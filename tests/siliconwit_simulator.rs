//! The SiliconWit simulator end to end: the SDK's `siliconwit::Client` against it (offset paging
//! under faults and while the list changes, retention capping, null latest telemetry, account
//! state, limits, rate-limit headers), plus raw reqwest checks of the wire format.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::siliconwit::{simulator as start, simulator_client as client};
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::siliconwit::{Device, DeviceStatus, Operator, TelemetryRange};
use iot_sdk_sim::Faults;
use iot_sdk_sim::siliconwit::{Plan, SiliconWitSimulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use common::siliconwit::KEY;

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.parse().ok())
    }
}

/// `GET base_url + path` with `key` as bearer token (none when `None`).
async fn raw(sim: &SiliconWitSimulator, path: &str, key: Option<&str>) -> Answer {
    raw_method(sim, reqwest::Method::GET, path, key).await
}

async fn raw_method(
    sim: &SiliconWitSimulator,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
) -> Answer {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("request reaches the simulator");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

fn ids(devices: &[Device]) -> Vec<String> {
    devices.iter().map(|d| d.id.to_string()).collect()
}

fn assert_no_repeats(ids: &[String]) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id was yielded twice");
}

#[tokio::test]
async fn offset_paging_over_1000_devices_under_faults_loses_and_repeats_nothing() {
    let sim = start(
        SiliconWitSimulator::builder()
            .plan(Plan::scale())
            .device_count(1_000)
            .rate_limit_scale(100.0)
            .faults(Faults::none().error_rate(0.2).drop_rate(0.03))
            .seed(11),
    )
    .await;
    let sw = client(&sim);
    let expected = sim.device_ids();
    assert_eq!(expected.len(), 1_000);

    let sequential: Vec<Device> = sw
        .devices()
        .list()
        .limit(100)
        .items()
        .try_collect()
        .await
        .expect("sequential paging");
    assert_eq!(ids(&sequential), expected);

    let concurrent: Vec<Device> = sw
        .devices()
        .list()
        .limit(100)
        .concurrent(4)
        .items()
        .try_collect()
        .await
        .expect("concurrent paging");
    assert_eq!(concurrent, sequential, "same items, same order");

    // An odd page size, from an offset, and a filter: the pages still tile the list.
    let tail: Vec<Device> = sw
        .devices()
        .list()
        .limit(37)
        .offset(990)
        .items()
        .try_collect()
        .await
        .expect("paging from an offset");
    assert_eq!(ids(&tail), expected[990..]);
    let paused: Vec<Device> = sw
        .devices()
        .list()
        .status(DeviceStatus::Paused)
        .limit(100)
        .concurrent(4)
        .items()
        .try_collect()
        .await
        .expect("paused devices");
    assert_eq!(paused.len(), 200, "every fifth device is paused");
    assert!(paused.iter().all(|d| d.status == DeviceStatus::Paused));

    let stats = sim.stats();
    assert!(stats.faults_injected > 5, "{stats:?}");
    assert!(stats.connections_dropped > 0, "{stats:?}");
}

#[tokio::test]
async fn devices_removed_and_added_while_paging_are_neither_lost_nor_repeated() {
    for concurrency in [None, Some(4)] {
        let sim = start(
            SiliconWitSimulator::builder()
                .device_count(300)
                .rate_limit_scale(100.0),
        )
        .await;
        let sw = client(&sim);
        let before = sim.device_ids();
        let mut list = sw.devices().list().limit(50);
        if let Some(n) = concurrency {
            list = list.concurrent(n);
        }
        let mut pages = list.pages();
        let mut seen: Vec<String> = Vec::new();
        let mut n = 0;
        let mut added = Vec::new();
        while let Some(page) = pages.try_next().await.expect("a page") {
            seen.extend(page.items().iter().map(|d| d.id.to_string()));
            n += 1;
            if n == 1 {
                // Three devices already read and two not yet read disappear.
                for id in [
                    &before[3],
                    &before[10],
                    &before[40],
                    &before[120],
                    &before[250],
                ] {
                    assert!(sim.remove_device(id));
                }
            }
            if n == 3 {
                added.push(sim.add_device("Added while paging 1"));
                added.push(sim.add_device("Added while paging 2"));
            }
        }
        assert_no_repeats(&seen);
        let now: Vec<String> = sim.device_ids();
        let seen_set: HashSet<&String> = seen.iter().collect();
        let lost: Vec<&String> = now.iter().filter(|id| !seen_set.contains(id)).collect();
        assert!(lost.is_empty(), "{concurrency:?}: lost {lost:?}");
        assert!(added.iter().all(|id| seen_set.contains(id)));
        // What was yielded is in list order.
        let order: Vec<&String> = seen.iter().filter(|id| now.contains(id)).collect();
        assert_eq!(order, now.iter().collect::<Vec<_>>(), "{concurrency:?}");
        assert!(!seen.contains(&before[120]) && !seen.contains(&before[250]));
    }
}

#[tokio::test]
async fn retention_caps_the_range_and_was_capped_says_so() {
    let sim =
        start(SiliconWitSimulator::builder().plan(Plan::starter().data_retention_days(7))).await;
    let sw = client(&sim);
    let h = sw
        .devices()
        .telemetry("dev_a1b2c3d4")
        .range(TelemetryRange::Days30)
        .limit(1_000)
        .send()
        .await
        .expect("telemetry");
    assert!(h.was_capped());
    assert_eq!(h.query.requested_range, Some(TelemetryRange::Days30));
    assert_eq!(h.query.range, Some(TelemetryRange::Days7));
    assert_eq!(h.query.data_retention_days, Some(7));
    assert_eq!(h.query.limit, Some(1_000));
    // One reading every 15 minutes over 7 days, newest first, all distinct.
    assert_eq!(h.readings.len(), 7 * 96);
    assert!(h.readings.windows(2).all(|w| w[0].time > w[1].time));
    let distinct: HashSet<&str> = h.readings.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(distinct.len(), h.readings.len());
    assert!(
        h.readings
            .iter()
            .all(|r| r.data.f64("temperature").is_some())
    );

    let h = sw
        .devices()
        .telemetry("dev_a1b2c3d4")
        .range(TelemetryRange::Days7)
        .limit(10)
        .send()
        .await
        .expect("telemetry");
    assert!(!h.was_capped());
    assert_eq!(h.readings.len(), 10);
    // The default range (24 h) and limit (100).
    let h = sw
        .devices()
        .telemetry("dev_a1b2c3d4")
        .await
        .expect("telemetry");
    assert_eq!(h.query.requested_range, Some(TelemetryRange::Hours24));
    assert_eq!((h.readings.len(), h.query.limit), (96, Some(100)));
    // The latest reading is the newest of the history.
    let latest = sw.devices().latest("dev_a1b2c3d4").await.expect("latest");
    assert_eq!(latest.as_ref(), h.readings.first());
}

#[tokio::test]
async fn latest_is_none_for_devices_without_readings_and_keeps_text_values() {
    let sim = start(SiliconWitSimulator::builder().device_count(10)).await;
    let sw = client(&sim);
    let ids = sim.device_ids();
    // Device 3 never reported; an added device has not reported yet.
    assert_eq!(
        sw.devices().latest(ids[3].as_str()).await.expect("latest"),
        None
    );
    let added = sim.add_device("Fresh");
    assert_eq!(
        sw.devices().latest(added.as_str()).await.expect("latest"),
        None
    );
    let raw_null = raw(
        &sim,
        &format!("/devices/{added}/telemetry/latest"),
        Some(KEY),
    )
    .await;
    assert_eq!(raw_null.body, serde_json::json!({ "data": null }));
    let device = sw.devices().get(ids[3].as_str()).await.expect("device");
    assert_eq!(device.last_seen, None);
    // Device 1 is a door sensor: `door` is text, kept as sent.
    let door = sw
        .devices()
        .latest(ids[1].as_str())
        .await
        .expect("latest")
        .expect("a reading");
    assert_eq!(door.data.f64("door"), None);
    assert!(matches!(
        door.data.get("door").and_then(Value::as_str),
        Some("open" | "closed")
    ));
    assert!(door.data.f64("battery").is_some());
    // Unknown devices are 404s.
    let err = sw.devices().latest("dev_nope").await.expect_err("404");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.api().map(|a| a.message()), Some("Device not found"));
}

#[tokio::test]
async fn a_suspended_or_free_account_is_refused_with_403() {
    let sim = start(SiliconWitSimulator::builder().suspended(true)).await;
    let err = client(&sim).usage().await.expect_err("403");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.api().map(|a| a.message()), Some("Account suspended"));

    let sim = start(SiliconWitSimulator::builder().plan(Plan::free())).await;
    let err = client(&sim).devices().list().send().await.expect_err("403");
    assert_eq!(err.status(), Some(403));
    assert!(
        err.api().is_some_and(|a| a.message().contains("free plan")),
        "{err}"
    );
    // Wrong credentials are a 401 before anything else.
    let a = raw(&sim, "/devices", Some("swk_wrong")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn limits_over_the_maximum_are_refused_by_the_client_and_by_the_server() {
    let sim = start(SiliconWitSimulator::builder()).await;
    let sw = client(&sim);
    let err = sw
        .devices()
        .list()
        .limit(101)
        .send()
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = sw
        .alerts()
        .history("alert_abc123", Some(101))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = sw
        .devices()
        .telemetry("dev_a1b2c3d4")
        .limit(1_001)
        .send()
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(sim.stats().requests, 0, "nothing was sent");

    for path in [
        "/devices?limit=101",
        "/devices?limit=0",
        "/devices?limit=ten",
        "/devices?offset=-1",
        "/devices?offset=abc",
        "/devices?status=broken",
        "/devices?limit=10&limit=20",
        "/alerts?limit=101",
        "/alerts/alert_abc123/history?limit=101",
        "/devices/dev_a1b2c3d4/telemetry?limit=1001",
        "/devices/dev_a1b2c3d4/telemetry?range=2d",
    ] {
        let a = raw(&sim, path, Some(KEY)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(a.body["error"].is_string(), "{path}: {}", a.body);
    }
    let a = raw(&sim, "/devices?limit=100&offset=100000", Some(KEY)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["data"], serde_json::json!([]));
    assert_eq!(a.body["pagination"]["total"], 5);
}

#[tokio::test]
async fn per_minute_and_daily_headers_are_sent_and_read_by_last_rate_limit() {
    let sim = start(SiliconWitSimulator::builder().plan(Plan::business())).await;
    let sw = client(&sim);
    sw.usage().await.expect("usage");
    let rl = sw.last_rate_limit().expect("rate-limit headers");
    assert_eq!((rl.limit, rl.remaining), (Some(300), Some(299)));
    assert_eq!(
        (rl.daily_limit, rl.daily_remaining),
        (Some(50_000), Some(49_999))
    );
    sw.api_keys().await.expect("keys");
    let rl = sw.last_rate_limit().expect("rate-limit headers");
    assert_eq!(
        (rl.remaining, rl.daily_remaining),
        (Some(298), Some(49_998))
    );

    // On every response, errors included, with a request id and no reset header.
    for (path, key, status) in [
        ("/devices", Some(KEY), StatusCode::OK),
        ("/devices/dev_nope", Some(KEY), StatusCode::NOT_FOUND),
        (
            "/alerts/alert_nope/history",
            Some(KEY),
            StatusCode::NOT_FOUND,
        ),
        ("/nowhere", Some(KEY), StatusCode::NOT_FOUND),
        ("/devices", None, StatusCode::UNAUTHORIZED),
    ] {
        let a = raw(&sim, path, key).await;
        assert_eq!(a.status, status, "{path}");
        assert!(
            a.header("x-request-id")
                .is_some_and(|id| id.starts_with("req_"))
        );
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-daily-limit",
            "x-ratelimit-daily-remaining",
        ] {
            assert!(a.header_u64(h).is_some(), "{path}: {h}");
        }
        assert_eq!(a.header("x-ratelimit-reset"), None);
    }
}

#[tokio::test]
async fn over_the_limit_is_429_with_retry_after() {
    // The starter's 60 a minute scaled to 3: one token every 20 s.
    let sim = start(SiliconWitSimulator::builder().rate_limit_scale(0.05)).await;
    for _ in 0..3 {
        assert_eq!(raw(&sim, "/alerts", Some(KEY)).await.status, StatusCode::OK);
    }
    let a = raw(&sim, "/alerts", Some(KEY)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        a.body,
        serde_json::json!({ "error": "Rate limit exceeded" })
    );
    assert!(matches!(a.header_u64("retry-after"), Some(19..=20)));
    assert_eq!(a.header_u64("x-ratelimit-remaining"), Some(0));
    // Not counted against the day: 3 allowed of a (scaled) 500.
    assert_eq!(a.header_u64("x-ratelimit-daily-remaining"), Some(497));
    // The client gives up at once: the wait is over its Retry-After cap.
    let err = client(&sim).alerts().list().send().await.expect_err("429");
    assert!(err.is_rate_limited(), "{err}");
    assert!(
        err.retry_after()
            .is_some_and(|d| d >= Duration::from_secs(19))
    );
    assert_eq!(sim.stats().rate_limited, 2);

    // A daily quota of 3: the fourth request waits for midnight UTC.
    let sim = start(SiliconWitSimulator::builder().plan(Plan::enterprise(600, 3))).await;
    for left in (0..3).rev() {
        let a = raw(&sim, "/account/usage", Some(KEY)).await;
        assert_eq!(a.header_u64("x-ratelimit-daily-remaining"), Some(left));
    }
    let a = raw(&sim, "/account/usage", Some(KEY)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(a.header_u64("retry-after"), Some(1..=86_400)));
    assert_eq!(a.header_u64("x-ratelimit-daily-limit"), Some(3));
}

#[tokio::test]
async fn errors_have_the_specs_shape() {
    let sim = start(SiliconWitSimulator::builder()).await;
    for key in [None, Some("swk_wrong_key")] {
        let a = raw(&sim, "/devices", key).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.body,
            serde_json::json!({ "error": "Missing or invalid API key" })
        );
    }
    let a = raw(&sim, "/alerts/alert_nope", Some(KEY)).await;
    assert_eq!(a.body, serde_json::json!({ "error": "Alert not found" }));
    let a = raw_method(&sim, reqwest::Method::POST, "/devices", Some(KEY)).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.body["error"].is_string());

    // Injected faults answer in the same shape, before any processing.
    sim.set_faults(Faults::none().error_rate(1.0));
    let a = raw(&sim, "/devices", Some(KEY)).await;
    assert!(a.status.is_server_error());
    assert!(a.body["error"].is_string());
    assert!(a.header("x-ratelimit-remaining").is_some());
    sim.set_faults(Faults::none());
}

#[tokio::test]
async fn alerts_account_and_keys_agree_with_the_devices() {
    let sim = start(SiliconWitSimulator::builder().device_count(50)).await;
    let sw = client(&sim);
    let devices: Vec<Device> = sw
        .devices()
        .list()
        .items()
        .try_collect()
        .await
        .expect("devices");
    let alerts: Vec<_> = sw
        .alerts()
        .list()
        .limit(7)
        .items()
        .try_collect()
        .await
        .expect("alerts");
    let usage = sw.usage().await.expect("usage");
    assert_eq!(usage.plan.plan, "starter");
    assert_eq!(usage.plan.data_retention_days, Some(30));
    assert_eq!(usage.devices.total, 50);
    let paused = devices
        .iter()
        .filter(|d| d.status == DeviceStatus::Paused)
        .count() as u64;
    assert_eq!(
        (usage.devices.active, usage.devices.paused),
        (50 - paused, paused)
    );
    assert_eq!(usage.alerts.total, alerts.len() as u64);
    let enabled = alerts.iter().filter(|a| a.enabled == Some(true)).count() as u64;
    assert_eq!(usage.alerts.active, enabled);
    assert!(usage.telemetry.data_points_24h > 0);

    let ops: HashSet<String> = alerts
        .iter()
        .map(|a| a.condition.operator.to_string())
        .collect();
    assert!(ops.len() >= 5, "{ops:?}");
    let device_ids: HashSet<String> = devices.iter().map(|d| d.id.to_string()).collect();
    assert!(alerts.iter().all(|a| {
        a.device_id
            .as_ref()
            .is_some_and(|d| device_ids.contains(d.as_str()))
    }));

    let first = sw.alerts().get("alert_abc123").await.expect("alert");
    assert_eq!(first.condition.operator, Operator::Gt);
    assert_eq!(first.condition.value.as_f64(), Some(40.0));
    let history = sw
        .alerts()
        .history("alert_abc123", None)
        .await
        .expect("history");
    assert_eq!(history.len(), 50, "the default limit");
    assert!(
        history
            .windows(2)
            .all(|w| w[0].triggered_at >= w[1].triggered_at)
    );
    assert_eq!(
        first.last_triggered,
        history.first().map(|e| e.triggered_at)
    );
    let all = sw
        .alerts()
        .history("alert_abc123", Some(100))
        .await
        .expect("history");
    assert_eq!(all.last().map(|e| e.id.as_str()), Some("evt_001"));

    let keys = sw.api_keys().await.expect("keys");
    let mine = keys
        .iter()
        .find(|k| k.revoked_at.is_none())
        .expect("the active key");
    // At most eight characters, and never more than half of the 12-character key.
    assert_eq!(mine.key_prefix.as_deref(), Some("swk_te"));
    assert!(mine.last_used_at.is_some());
    assert!(
        keys.iter()
            .all(|k| !k.key_prefix.as_deref().unwrap_or("").contains("test_key"))
    );
}

#[tokio::test]
async fn the_same_seed_serves_the_same_data() {
    let a = start(SiliconWitSimulator::builder().device_count(20).seed(3)).await;
    let b = start(SiliconWitSimulator::builder().device_count(20).seed(3)).await;
    let c = start(SiliconWitSimulator::builder().device_count(20).seed(4)).await;
    assert_eq!(a.device_ids(), b.device_ids());
    assert_ne!(a.device_ids(), c.device_ids());
    let path = format!("/devices/{}/telemetry?range=6h", a.device_ids()[2]);
    let (ra, rb) = (
        raw(&a, &path, Some(KEY)).await,
        raw(&b, &path, Some(KEY)).await,
    );
    assert_eq!(ra.body["data"], rb.body["data"]);
    assert_eq!(ra.body["query"]["range"], "6h");
}
