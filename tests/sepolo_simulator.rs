//! The Sepolo simulator end to end: the real `iot_sdk::sepolo::Client` against it (paging under
//! faults, split windows, scopes, cycles, reports, rate limits), plus raw reqwest checks of the
//! wire format the client hides (window limits, the bare array, error bodies, headers).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::sepolo::{simulator as start, simulator_client as client_for};
use futures::TryStreamExt;
use iot_sdk::sepolo::{AssetStatusFilter, Client, MissingScope, NewServiceReport, Scope};
use iot_sdk::{Error, RetryPolicy};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sepolo::SepoloSimulator;
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "sep_test_key";
const PORTAL_KEY: &str = "sep_portal_key";
const COOLING_LINE: &str = "a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63";

/// A simulator with room for many requests (limits scaled up 100 times).
async fn roomy_sim() -> SepoloSimulator {
    start(
        SepoloSimulator::builder()
            .api_key(KEY)
            .rate_limit_scale(100.0),
    )
    .await
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

/// A raw GET with the main key: status, headers, JSON body.
async fn raw_get(
    sim: &SepoloSimulator,
    path_and_query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path_and_query}", sim.base_url()))
        .header("X-Sepolo-Api-Key", KEY)
        .send()
        .await
        .expect("request reaches the simulator");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = json_body(resp).await;
    (status, headers, body)
}

async fn json_body(resp: reqwest::Response) -> Value {
    let bytes = resp.bytes().await.expect("a body");
    serde_json::from_slice(&bytes).expect("a JSON body")
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/sepolo/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

#[tokio::test]
async fn paging_10000_assets_under_faults_loses_and_repeats_nothing() {
    let sim = start(
        SepoloSimulator::builder()
            .api_key(KEY)
            .organization_size(10_000)
            .rate_limit_scale(100.0)
            .faults(Faults::none().error_rate(0.2))
            .seed(11),
    )
    .await;
    // The client's default retries (3 attempts, full jitter), with short delays. A page is lost
    // only if all three attempts fault (0.8 % at this rate); the fault sequence is seeded, so
    // the run is deterministic.
    let sepolo = Client::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        // Eight attempts: at a 20% fault rate a page fails for good with probability 0.2^8, so
        // the test does not depend on the seed to pass.
        .retry_policy(
            RetryPolicy::default()
                .with_max_attempts(8)
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(10)),
        )
        .retry_budget(iot_sdk::RetryBudget::unlimited())
        .build()
        .expect("client");
    let assets: Vec<_> = sepolo
        .assets()
        .list()
        .page_size(500)
        .items()
        .try_collect()
        .await
        .expect("every page, retried through the faults");
    let ids: Vec<String> = assets.iter().map(|a| a.asset_id.to_string()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 10_004, "10,000 generated and the spec's four");
    assert_eq!(unique.len(), ids.len(), "no asset twice");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "stable id order");
    let stats = sim.stats();
    assert!(stats.faults_injected > 0, "{stats:?}");

    sim.set_faults(Faults::none());
    let summary = sepolo.reporting().assets_summary().await.expect("summary");
    assert_eq!(summary.total_assets, 10_004);
    assert_eq!(
        summary.active_assets + summary.inactive_assets,
        summary.total_assets
    );
}

#[tokio::test]
async fn a_90_day_telemetry_query_is_split_complete_and_ordered() {
    let sim = roomy_sim().await;
    let sepolo = client_for(&sim, KEY);
    let from = instant("2026-06-01T00:00:00Z");
    let to = from + TimeDelta::days(90);
    let samples: Vec<_> = sepolo
        .devices()
        .telemetry("SEP-DEVICE-002", from, to)
        .page_size(500)
        .items()
        .try_collect()
        .await
        .expect("telemetry");
    assert!(
        samples
            .windows(2)
            .all(|w| (w[0].stamp, w[0].telemetry_type) < (w[1].stamp, w[1].telemetry_type)),
        "ordered by stamp, then type, with no repeats"
    );
    assert!(samples.iter().all(|s| s.stamp >= from && s.stamp < to));
    let environment = samples
        .iter()
        .filter(|s| s.telemetry_type == Some(0))
        .count();
    assert_eq!(environment, 90 * 288, "one every 5 minutes");
    // Every PointGuard sample of every cycle in the range, no more.
    let cycles: Vec<_> = sepolo
        .devices()
        .cycles("SEP-DEVICE-002", from, to)
        .page_size(500)
        .items()
        .try_collect()
        .await
        .expect("cycles");
    assert!(cycles.len() >= 180, "2 to 5 a day: {}", cycles.len());
    let in_cycles: u64 = cycles.iter().filter_map(|c| c.samples).sum();
    let pointguard = samples
        .iter()
        .filter(|s| s.telemetry_type == Some(1))
        .count();
    assert_eq!(pointguard as u64, in_cycles);
    assert_eq!(samples.len(), environment + pointguard);
}

#[tokio::test]
async fn two_years_of_visits_are_split_complete_and_ordered() {
    let sim = roomy_sim().await;
    let sepolo = client_for(&sim, KEY);
    let to = Utc::now();
    let from = to - TimeDelta::days(730);
    let visits: Vec<_> = sepolo
        .service()
        .visits()
        .between(from, to)
        .page_size(100)
        .items()
        .try_collect()
        .await
        .expect("visits");
    let starts: Vec<DateTime<Utc>> = visits
        .iter()
        .map(|v| {
            v.extra["startUtc"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("startUtc")
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "ordered by start");
    assert!(starts.iter().all(|s| *s >= from && *s < to));
    assert!(starts.iter().any(|s| *s < to - TimeDelta::days(366)));
    assert!(starts.iter().any(|s| *s >= to - TimeDelta::days(366)));
    let ids: HashSet<_> = visits.iter().map(|v| v.service_visit_id.clone()).collect();
    assert_eq!(ids.len(), visits.len(), "no visit twice");
    // The report counts the same visits, window by window.
    let perf = sepolo
        .reporting()
        .service_performance()
        .between(from, to)
        .send()
        .await
        .expect("service performance");
    assert_eq!(perf.total_visits, visits.len() as u64);
    assert_eq!(perf.completed_visits + perf.open_visits, perf.total_visits);
}

#[tokio::test]
async fn a_missing_scope_is_403_naming_it() {
    let sim = start(
        SepoloSimulator::builder()
            .api_key(KEY)
            .key_with_scopes(PORTAL_KEY, &[Scope::PublicApiRead, Scope::AssetsRead])
            .key_with_scopes("sep_no_me", &["assets.read"]),
    )
    .await;
    let portal = client_for(&sim, PORTAL_KEY);
    let err = portal
        .service()
        .appointments()
        .send()
        .await
        .expect_err("no appointments.read");
    assert!(err.is_forbidden(), "{err}");
    let api = err.api().expect("an API error");
    assert_eq!(api.missing_scope(), Some("appointments.read"));
    assert_eq!(
        api.message(),
        "The API key does not include the appointments.read scope."
    );
    assert_eq!(api.attempts(), 1, "a 403 is not retried");

    let me = portal
        .require_scopes(&[Scope::AssetsRead])
        .await
        .expect("has assets.read");
    assert_eq!(me.scopes, [Scope::PublicApiRead, Scope::AssetsRead]);
    assert_eq!(me.organization_id, sim.organization_id());
    let err = portal
        .require_scopes(&[
            Scope::AssetsRead,
            Scope::ReportingRead,
            Scope::TelemetryRead,
        ])
        .await
        .expect_err("lacks two");
    assert!(
        matches!(err, Error::Config(ref m) if m.ends_with("reporting.read, telemetry.read")),
        "{err}"
    );
    portal.assets().list().send().await.expect("assets.read");

    let err = client_for(&sim, "sep_no_me")
        .me()
        .await
        .expect_err("no public_api.read");
    assert_eq!(
        err.api().and_then(|a| a.missing_scope()),
        Some("public_api.read")
    );
    let err = portal
        .service()
        .create_report(NewServiceReport::new(COOLING_LINE))
        .await
        .expect_err("no service_reports.write");
    assert_eq!(
        err.api().and_then(|a| a.missing_scope()),
        Some("service_reports.write")
    );

    // The main key has every scope.
    let me = client_for(&sim, KEY).me().await.expect("me");
    assert_eq!(me.scopes.len(), 14);
    assert!(!me.client_id.unwrap_or_default().contains(KEY));
}

#[tokio::test]
async fn unauthorized_both_ways() {
    let sim = start(SepoloSimulator::builder().api_key(KEY)).await;
    let header_key = client_for(&sim, "sep_wrong_key");
    let err = header_key.me().await.expect_err("wrong key");
    assert!(err.is_unauthenticated(), "{err}");
    assert_eq!(
        err.api().map(|a| a.code().as_str()),
        Some("unauthenticated")
    );

    let bearer = |key: &str| {
        Client::builder()
            .api_key(key)
            .send_key_as_bearer(true)
            .base_url(sim.base_url())
            .build()
            .expect("client")
    };
    let err = bearer("sep_wrong_key")
        .me()
        .await
        .expect_err("wrong bearer");
    assert!(err.is_unauthenticated(), "{err}");
    bearer(KEY)
        .me()
        .await
        .expect("the right key as a bearer token");

    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/assets", sim.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("x-request-id").is_some());
    let body = json_body(resp).await;
    assert_eq!(body["error"], "unauthorized");
    assert!(body["message"].is_string());
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "{{error, message}}"
    );
}

#[tokio::test]
async fn window_and_page_limits_are_400() {
    let sim = roomy_sim().await;
    let base = "/api/v1/devices/SEP-DEVICE-001";
    let bad = [
        format!("{base}/telemetry?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:01Z"),
        format!("{base}/pointguard/cycles?from=2026-05-01T00:00:00Z&to=2026-06-02T00:00:00Z"),
        format!("{base}/telemetry?to=2026-05-02T00:00:00Z"),
        format!("{base}/movements?from=2026-05-01T00:00:00Z"),
        format!("{base}/telemetry?from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z"),
        "/api/v1/service-visits?fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-03T00:00:00Z".to_owned(),
        "/api/v1/appointments?fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-03T00:00:00Z".to_owned(),
        "/api/v1/reporting/service-performance?fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-03T00:00:00Z".to_owned(),
        "/api/v1/reporting/telemetry-daily?fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-03T00:00:00Z".to_owned(),
        "/api/v1/assets?pageSize=501".to_owned(),
        "/api/v1/assets?pageSize=0".to_owned(),
        "/api/v1/assets?cursor=not-a-cursor".to_owned(),
        "/api/v1/assets?status=retired".to_owned(),
        "/api/v1/service-reports?assetId=a33b".to_owned(),
    ];
    for path in &bad {
        let (status, headers, body) = raw_get(&sim, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "validation", "{path}");
        assert!(headers.get("x-request-id").is_some());
    }
    let good = [
        format!("{base}/telemetry?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&pageSize=1"),
        format!(
            "{base}/telemetry?fromUtc=2026-05-01T00:00:00Z&toUtc=2026-05-02T00:00:00Z&pageSize=1"
        ),
        format!("{base}/movements?from=2026-01-01T00:00:00Z&to=2026-06-01T00:00:00Z&pageSize=1"),
        "/api/v1/service-visits?fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-02T00:00:00Z".to_owned(),
        "/api/v1/assets?pageSize=500".to_owned(),
    ];
    for path in &good {
        let (status, _, body) = raw_get(&sim, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    // A cursor of one list is refused by another.
    let (_, _, first) = raw_get(&sim, "/api/v1/assets?pageSize=1").await;
    let cursor = first["nextCursor"].as_str().expect("a cursor");
    let (status, _, _) = raw_get(&sim, &format!("/api/v1/devices?cursor={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cycles_are_consistent_with_their_samples_and_movements() {
    let sim = roomy_sim().await;
    let sepolo = client_for(&sim, KEY);
    let (from, to) = (
        instant("2026-05-20T00:00:00Z"),
        instant("2026-06-01T00:00:00Z"),
    );
    let cycles: Vec<_> = sepolo
        .devices()
        .cycles("SEP-DEVICE-001", from, to)
        .items()
        .try_collect()
        .await
        .expect("cycles");
    assert!(cycles.len() >= 24, "{}", cycles.len());
    for c in &cycles {
        // Default page size 100: most cycles take two pages.
        let samples: Vec<_> = sepolo
            .devices()
            .cycle_samples("SEP-DEVICE-001", &c.cycle_id)
            .items()
            .try_collect()
            .await
            .expect("samples");
        let n = samples.len();
        assert_eq!(c.samples, Some(n as u64), "{}", c.cycle_id);
        let currents: Vec<f64> = samples.iter().filter_map(|s| s.current).collect();
        assert_eq!(currents.len(), n);
        let mean = currents.iter().sum::<f64>() / n as f64;
        let peak = currents.iter().copied().fold(f64::MIN, f64::max);
        let avg = c.average_current.expect("averageCurrent");
        assert!((avg - mean).abs() < 1e-9, "{}: {avg} vs {mean}", c.cycle_id);
        assert_eq!(c.peak_current, Some(peak));
        let (first, last) = (&samples[0], &samples[n - 1]);
        assert_eq!(c.start, Some(first.stamp));
        assert_eq!(c.stop, Some(last.stamp));
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(s.cycle_id.as_ref(), Some(&c.cycle_id));
            assert_eq!(s.cycle_sample_index, Some(i as i64));
            assert_eq!(s.cycle_sample_count, Some(n as i64));
            assert_eq!(s.telemetry_type, Some(1));
            let offset = (s.stamp - first.stamp).num_milliseconds();
            assert_eq!(s.cycle_sample_offset_ms, Some(offset));
            assert_eq!(
                s.cycle_duration_ms,
                Some((last.stamp - first.stamp).num_milliseconds())
            );
        }
    }
    // The spec's example cycle, as the spec shows it.
    let example = cycles
        .iter()
        .find(|c| c.cycle_id == "cyc_20260527_120000")
        .expect("the example cycle");
    let expected: iot_sdk::sepolo::Cycle =
        serde_json::from_value(fixture("pointguard_cycles")["data"][0].clone()).expect("fixture");
    assert_eq!(example, &expected);

    // The telemetry endpoint's cycle filter serves the same samples.
    let filtered: Vec<_> = sepolo
        .devices()
        .telemetry(
            "SEP-DEVICE-001",
            instant("2026-05-27T00:00:00Z"),
            instant("2026-05-28T00:00:00Z"),
        )
        .cycle_id("cyc_20260527_120000")
        .items()
        .try_collect()
        .await
        .expect("filtered telemetry");
    assert_eq!(filtered.len(), 142);
    assert_eq!(filtered[42].current, Some(8.4));
    assert_eq!(filtered[42].cycle_sample_offset_ms, Some(420));

    // One movement per cycle, with its currents; the example's signature as the spec shows it.
    let movements: Vec<_> = sepolo
        .devices()
        .movements("SEP-DEVICE-001", from, to)
        .items()
        .try_collect()
        .await
        .expect("movements");
    assert_eq!(movements.len(), cycles.len());
    for (m, c) in movements.iter().zip(&cycles) {
        assert_eq!(m.average_current, c.average_current);
        assert_eq!(m.peak_current, c.peak_current);
    }
    let sig = sepolo
        .devices()
        .movement_signature("SEP-DEVICE-001", "5c722f76-5f0b-4c1b-875d-05a1d8cd47b5")
        .await
        .expect("the example signature");
    let expected: iot_sdk::sepolo::MovementSignature =
        serde_json::from_value(fixture("movement_signature")).expect("fixture");
    assert_eq!(sig, expected);
    let other = movements
        .iter()
        .find(|m| m.id != "5c722f76-5f0b-4c1b-875d-05a1d8cd47b5")
        .expect("a generated movement");
    let sig = sepolo
        .devices()
        .movement_signature("SEP-DEVICE-001", &other.id)
        .await
        .expect("a generated signature");
    let shape = sig.shape().expect("shapeJson").expect("valid JSON");
    assert!(shape["points"].as_array().is_some_and(|p| p.len() >= 10));
    let long: Vec<_> = sepolo
        .devices()
        .movements("SEP-DEVICE-001", from, to)
        .min_duration_seconds(5)
        .items()
        .try_collect()
        .await
        .expect("long movements");
    assert!(long.len() < movements.len());
    assert!(long.iter().all(|m| m.duration.is_some_and(|d| d >= 5.0)));
}

#[tokio::test]
async fn telemetry_daily_is_a_bare_array() {
    let sim = roomy_sim().await;
    let (status, _, body) = raw_get(
        &sim,
        "/api/v1/reporting/telemetry-daily?fromUtc=2026-05-13T00:00:00Z&toUtc=2026-05-14T00:00:00Z&deviceId=SEP-DEVICE-001",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        fixture("telemetry_daily"),
        "the spec's example, computed"
    );

    let sepolo = client_for(&sim, KEY);
    let days = sepolo
        .reporting()
        .telemetry_daily()
        .between(
            instant("2026-05-01T00:00:00Z"),
            instant("2026-05-08T00:00:00Z"),
        )
        .send()
        .await
        .expect("telemetry daily");
    let devices = sepolo
        .devices()
        .list()
        .page_size(500)
        .items()
        .try_collect::<Vec<_>>()
        .await
        .expect("devices")
        .len();
    assert_eq!(days.len(), 7 * devices, "one row per device and day");
    assert!(days.iter().all(|d| d.samples == Some(288)));
    assert!(days.windows(2).all(|w| w[0].date <= w[1].date));
}

#[tokio::test]
async fn a_created_service_report_can_be_read_back() {
    let sim = roomy_sim().await;
    let sepolo = client_for(&sim, KEY);
    let created = sepolo
        .service()
        .create_report(
            NewServiceReport::new(COOLING_LINE)
                .state_text("Completed")
                .field("notes", "Replaced filter"),
        )
        .await
        .expect("created");
    let report = sepolo
        .service()
        .report(&created.service_report_id)
        .await
        .expect("read back");
    assert_eq!(
        report.asset_id.as_ref().map(|a| a.as_str()),
        Some(COOLING_LINE)
    );
    assert_eq!(report.state_text.as_deref(), Some("Completed"));
    assert_eq!(report.state, Some(3));
    assert_eq!(
        report.device_id.as_ref().map(|d| d.as_str()),
        Some("SEP-DEVICE-001")
    );
    assert_eq!(report.extra["notes"], "Replaced filter");
    let listed: Vec<_> = sepolo
        .service()
        .reports()
        .asset_id(COOLING_LINE)
        .items()
        .try_collect()
        .await
        .expect("reports of the asset");
    assert!(
        listed
            .iter()
            .any(|r| r.service_report_id == created.service_report_id)
    );

    let post = |body: Value| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/service-reports", sim.base_url()))
            .header("X-Sepolo-Api-Key", KEY)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    for bad in [
        json!({ "notes": "no asset" }),
        json!({ "assetId": "not-a-uuid" }),
        json!({ "assetId": "00000000-0000-4000-8000-000000000000" }),
    ] {
        let resp = post(bad.clone()).await.expect("request");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = json_body(resp).await;
        assert_eq!(body["error"], "validation");
    }
    let resp = post(json!({ "assetId": COOLING_LINE }))
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body = json_body(resp).await;
    assert!(body["serviceReportId"].is_string());
    assert_eq!(body.as_object().map(|o| o.len()), Some(1));
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let sim = start(
        SepoloSimulator::builder()
            .api_key(KEY)
            .rate_limit_scale(0.01),
    )
    .await;
    let sepolo = Client::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("client");
    sepolo.me().await.expect("the first request fits the burst");
    let err = sepolo.me().await.expect_err("the second does not");
    assert!(err.is_rate_limited(), "{err}");
    assert!(
        err.retry_after()
            .is_some_and(|d| d >= Duration::from_secs(1))
    );
    let (status, headers, body) = raw_get(&sim, "/api/v1/me").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "rate_limited");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert!(header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)));
    assert_eq!(header("x-ratelimit-limit").as_deref(), Some("6"));
    assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert_eq!(sim.stats().rate_limited, 2);
}

#[tokio::test]
async fn the_specs_examples_are_served_with_every_header() {
    let sim = start(SepoloSimulator::builder().api_key(KEY)).await;
    let (status, headers, body) = raw_get(&sim, &format!("/api/v1/assets/{COOLING_LINE}")).await;
    assert_eq!(status, StatusCode::OK);
    for (k, v) in fixture("assets_get").as_object().expect("object") {
        assert_eq!(&body[k], v, "{k}");
    }
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id");
    assert!(rid.starts_with("req_"));
    assert_eq!(
        headers
            .get("x-ratelimit-limit")
            .and_then(|v| v.to_str().ok()),
        Some("600")
    );
    assert!(headers.get("x-ratelimit-remaining").is_some());
    assert!(headers.get("x-ratelimit-reset").is_some());

    let (_, _, me) = raw_get(&sim, "/api/v1/me").await;
    assert_eq!(me["organizationId"], fixture("me")["organizationId"]);
    assert_eq!(me["rateLimit"]["requestsPerMinute"], 600);

    let (_, _, page) = raw_get(&sim, "/api/v1/vendors?pageSize=2").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["hasMore"], true);
    assert!(page["nextCursor"].is_string());

    let (_, _, incidents) = raw_get(
        &sim,
        "/api/v1/incidents?fromUtc=2026-05-27T00:00:00Z&toUtc=2026-05-28T00:00:00Z&deviceId=SEP-DEVICE-001",
    )
    .await;
    assert_eq!(incidents["data"][0], fixture("incidents")["data"][0]);

    for (path, error) in [
        (
            "/api/v1/assets/00000000-0000-4000-8000-000000000000",
            "not_found",
        ),
        (
            "/api/v1/devices/SEP-NOPE/telemetry?from=2026-05-01T00:00:00Z&to=2026-05-02T00:00:00Z",
            "not_found",
        ),
        ("/api/v1/nowhere", "not_found"),
    ] {
        let (status, headers, body) = raw_get(&sim, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"], error);
        assert!(headers.get("x-request-id").is_some());
    }
}

#[tokio::test]
async fn filters_narrow_every_list() {
    let sim = roomy_sim().await;
    let sepolo = client_for(&sim, KEY);
    let all: Vec<_> = sepolo
        .assets()
        .list()
        .page_size(500)
        .items()
        .try_collect()
        .await
        .expect("assets");
    let inactive: Vec<_> = sepolo
        .assets()
        .list()
        .status(AssetStatusFilter::Inactive)
        .items()
        .try_collect()
        .await
        .expect("inactive assets");
    assert!(!inactive.is_empty() && inactive.len() < all.len());
    assert!(inactive.iter().all(|a| a.is_active == Some(false)));
    let of_customer: Vec<_> = sepolo
        .assets()
        .list()
        .customer_id("CUST-10042")
        .group_id(12)
        .items()
        .try_collect()
        .await
        .expect("assets of a customer and group");
    assert!(of_customer.iter().any(|a| a.asset_id == COOLING_LINE));
    assert!(
        of_customer
            .iter()
            .all(|a| a.extra["customerId"] == "CUST-10042" && a.extra["groupId"] == 12)
    );
    let recent: Vec<_> = sepolo
        .assets()
        .list()
        .updated_since(instant("2026-06-01T00:00:00Z"))
        .items()
        .try_collect()
        .await
        .expect("recently updated assets");
    assert!(recent.len() < all.len());
    assert!(recent.iter().all(|a| {
        a.extra["updatedUtc"]
            .as_str()
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
            .is_some_and(|u| u > instant("2026-06-01T00:00:00Z"))
    }));
    let children: Vec<_> = sepolo
        .assets()
        .children(COOLING_LINE)
        .items()
        .try_collect()
        .await
        .expect("children");
    let kids: Vec<&str> = children.iter().map(|a| a.asset_id.as_str()).collect();
    assert_eq!(
        kids,
        [
            "b71c2e94-6d0a-4f83-a5e1-9c4b7d2f8e06",
            "c58f3a17-2e9b-4d6c-b0a4-7f1e5c8d9a23"
        ]
    );

    let offline: Vec<_> = sepolo
        .devices()
        .list()
        .status(2)
        .items()
        .try_collect()
        .await
        .expect("offline devices");
    assert!(offline.iter().all(|d| d.extra["status"] == 2));

    let day = (
        instant("2026-05-27T00:00:00Z"),
        instant("2026-05-28T00:00:00Z"),
    );
    let temperature: Vec<_> = sepolo
        .devices()
        .telemetry("SEP-DEVICE-001", day.0, day.1)
        .metrics(["temperature"])
        .items()
        .try_collect()
        .await
        .expect("temperature only");
    assert_eq!(temperature.len(), 288);
    assert!(
        temperature
            .iter()
            .all(|s| s.current.is_none() && s.metric("temperature").is_some())
    );
    let pointguard: Vec<_> = sepolo
        .devices()
        .telemetry("SEP-DEVICE-001", day.0, day.1)
        .telemetry_type(1)
        .items()
        .try_collect()
        .await
        .expect("PointGuard samples only");
    assert!(pointguard.iter().all(|s| s.cycle_id.is_some()));

    let resolved: Vec<_> = sepolo
        .incidents()
        .state(3)
        .items()
        .try_collect()
        .await
        .expect("resolved incidents");
    assert!(!resolved.is_empty() && resolved.iter().all(|i| i.state == Some(3)));
    let user = "d2a8f5c1-6e3b-4f70-a9d4-1c7e5b8a2f63";
    let planned: Vec<_> = sepolo
        .service()
        .appointments()
        .user_id(user)
        .items()
        .try_collect()
        .await
        .expect("a user's appointments");
    assert!(planned.len() >= 2);
    assert!(
        planned
            .iter()
            .all(|a| a.user_id.as_ref().is_some_and(|u| u == user))
    );
    let sap: Vec<_> = sepolo
        .customers()
        .external_system("SAP")
        .items()
        .try_collect()
        .await
        .expect("SAP customers");
    assert!(!sap.is_empty());
    assert!(
        sap.iter()
            .all(|c| c.external_system.as_deref() == Some("SAP"))
    );
    let vendor = "4e9a2b6c-8d1f-4c37-a5e0-3b7d9f1c6a28";
    let parts: Vec<_> = sepolo
        .inventory_parts()
        .vendor_id(vendor)
        .status(AssetStatusFilter::All)
        .items()
        .try_collect()
        .await
        .expect("a vendor's parts");
    assert!(!parts.is_empty());
    assert!(
        parts
            .iter()
            .all(|p| p.vendor_id.as_ref().is_some_and(|v| v == vendor))
    );
}
