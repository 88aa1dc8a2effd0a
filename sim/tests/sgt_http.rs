//! The SGT simulator over real HTTP (raw reqwest, no SDK client): auth, envelope, paging,
//! validation, ETags, soft delete, reports, rate limits, faults, OAuth2 and the spec's curl
//! examples.

use std::collections::HashSet;
use std::time::Duration;

use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::{SgtSimulator, SgtSimulatorBuilder};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "sgt_test_key";

async fn start(builder: SgtSimulatorBuilder) -> SgtSimulator {
    match builder.start().await {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}

async fn default_sim() -> SgtSimulator {
    start(SgtSimulator::builder().api_key(KEY)).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }
}

/// Sends a request with the test key (or `key`), a JSON body when given, and extra headers.
async fn send(
    method: Method,
    url: &str,
    key: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(key) = key {
        req = req.header("Authorization", format!("Bearer {key}"));
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.expect("request reaches the simulator");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(sim: &SgtSimulator, path: &str) -> Answer {
    send(
        Method::GET,
        &format!("{}{path}", sim.base_url()),
        Some(KEY),
        None,
        &[],
    )
    .await
}

async fn post(sim: &SgtSimulator, path: &str, body: Value) -> Answer {
    let url = format!("{}{path}", sim.base_url());
    send(Method::POST, &url, Some(KEY), Some(body), &[]).await
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/../fixtures/sgt/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

#[tokio::test]
async fn unauthenticated_without_a_key_or_with_a_wrong_one() {
    let sim = default_sim().await;
    let url = format!("{}/devices", sim.base_url());
    for key in [None, Some("sgt_wrong_key")] {
        let a = send(Method::GET, &url, key, None, &[]).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.error_code(), "unauthenticated");
        assert_eq!(
            a.header("x-request-id"),
            a.body["error"]["request_id"].as_str()
        );
        assert!(a.header("x-ratelimit-limit").is_some());
        assert_eq!(a.body["error"]["details"], json!({}));
    }
    let a = send(
        Method::GET,
        &url,
        None,
        None,
        &[("Authorization", "Basic eDp5")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tenant_header_must_match_the_keys_tenant() {
    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .tenant("acme-industries"),
    )
    .await;
    let url = format!("{}/devices/count", sim.base_url());
    let a = send(
        Method::GET,
        &url,
        Some(KEY),
        None,
        &[("X-SGT-Tenant", "globex")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.error_code(), "forbidden");
    assert_eq!(a.body["error"]["details"]["tenant"], "globex");
    let ok = send(
        Method::GET,
        &url,
        Some(KEY),
        None,
        &[("X-SGT-Tenant", "acme-industries")],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn envelope_request_id_etag_and_rate_headers_match_the_fixture() {
    let sim = default_sim().await;
    let a = get(&sim, "/devices/dev_42").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["data"], fixture("devices_get.json")["data"]);
    let meta = &a.body["meta"];
    assert_eq!(meta["served_by"], "sim-sgt-1");
    assert!(meta["took_ms"].is_u64());
    let rid = meta["request_id"].as_str().expect("request id");
    assert!(rid.starts_with("req_") && rid.len() == 20, "{rid}");
    assert_eq!(a.header("x-request-id"), Some(rid));
    assert_eq!(a.header("etag"), Some("\"7c1e5b02\""));
    assert_eq!(a.header("x-ratelimit-limit"), Some("600"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("119"));
    let reset: u64 = a
        .header("x-ratelimit-reset")
        .and_then(|v| v.parse().ok())
        .expect("reset");
    assert!(reset > 1_700_000_000);

    let missing = get(&sim, "/devices/dev_9999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "device_not_found");
    assert_eq!(
        missing.body["error"]["details"],
        json!({ "device_id": "dev_9999999" })
    );
    assert_eq!(
        missing.body["error"]["message"],
        "No device with id 'dev_9999999' exists in tenant 'acme-industries'."
    );
    assert_eq!(
        missing.header("x-request-id"),
        missing.body["error"]["request_id"].as_str()
    );

    let route = get(&sim, "/nowhere").await;
    assert_eq!(
        (route.status, route.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let url = format!("{}/devices/count", sim.base_url());
    let wrong = send(Method::DELETE, &url, Some(KEY), None, &[]).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.error_code(), "method_not_allowed");
    assert_eq!(
        wrong.header("x-request-id"),
        wrong.body["error"]["request_id"].as_str()
    );
}

#[tokio::test]
async fn paging_a_2000_device_fleet_yields_every_id_once() {
    let sim = start(SgtSimulator::builder().api_key(KEY).fleet_size(2_000)).await;
    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/devices?limit=500&cursor={c}"),
            None => "/devices?limit=500".to_owned(),
        };
        let a = get(&sim, &path).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        pages += 1;
        for d in a.body["data"].as_array().expect("array") {
            assert!(
                seen.insert(d["id"].as_str().expect("id").to_owned()),
                "repeated {d}"
            );
        }
        let p = &a.body["meta"]["pagination"];
        assert_eq!(p["limit"], 500);
        if !p["has_more"].as_bool().expect("has_more") {
            assert!(p["next"].is_null());
            break;
        }
        cursor = Some(p["next"].as_str().expect("next").to_owned());
    }
    assert_eq!(seen.len(), 2_002);
    assert_eq!(pages, 5);
    assert!(seen.contains("dev_42") && seen.contains("dev_43"));
    let count = get(&sim, "/devices/count").await;
    assert_eq!(
        count.body["data"],
        json!({ "count": 2002, "approximate": true })
    );
}

#[tokio::test]
async fn list_validation_and_filters() {
    let sim = default_sim().await;
    for bad in [
        "/devices?limit=501",
        "/devices?limit=0",
        "/devices?limit=ten",
        "/devices?cursor=not-a-cursor",
        "/devices?status=broken",
        "/devices?updated_since=yesterday",
        "/events?acknowledged=maybe",
    ] {
        let a = get(&sim, bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(a.error_code(), "invalid_request", "{bad}");
    }
    let a = get(
        &sim,
        "/devices?limit=500&status=offline&site=site_dhaka_wh1",
    )
    .await;
    for d in a.body["data"].as_array().expect("array") {
        assert_eq!(
            (d["status"].as_str(), d["site"].as_str()),
            (Some("offline"), Some("site_dhaka_wh1"))
        );
    }
    assert!(
        a.body["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["id"] == "dev_43"))
    );
    let since = get(&sim, "/devices?updated_since=2026-05-24T09:58:12Z").await;
    let ids: Vec<&str> = since.body["data"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(!ids.contains(&"dev_42"), "updated_since is strictly after");
    let tagged = get(&sim, "/devices?tag=power&tag=building-a&limit=500").await;
    assert!(
        tagged.body["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| {
                d["tags"].as_array().is_some_and(|t| {
                    t.contains(&json!("power")) && t.contains(&json!("building-a"))
                })
            }))
    );
    let events = get(&sim, "/events?acknowledged=false&severity=critical").await;
    assert!(events.body["data"].as_array().is_some_and(|e| {
        !e.is_empty()
            && e.iter()
                .all(|e| e["acknowledged"] == false && e["severity"] == "critical")
    }));
}

#[tokio::test]
async fn telemetry_windows_and_paging() {
    let sim = default_sim().await;
    let base = "/telemetry?device_id=dev_42&metric=power_kw";
    let over = get(
        &sim,
        &format!("{base}&from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:01Z"),
    )
    .await;
    assert_eq!(
        (over.status, over.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let exactly = get(
        &sim,
        &format!("{base}&from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z&limit=1"),
    )
    .await;
    assert_eq!(exactly.status, StatusCode::OK);
    let backwards = get(
        &sim,
        &format!("{base}&from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z"),
    )
    .await;
    assert_eq!(backwards.status, StatusCode::BAD_REQUEST);
    let missing = get(
        &sim,
        "/telemetry?device_id=dev_42&from=2025-03-01T00:00:00Z",
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    // One day of 15-minute readings, paged by 7: 96 readings, each once, in order.
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let a = get(
            &sim,
            &format!("{base}&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z&limit=7{cursor}"),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        all.extend(
            a.body["data"]
                .as_array()
                .expect("array")
                .iter()
                .map(|r| r["ts"].as_str().unwrap_or("").to_owned()),
        );
        match a.body["meta"]["pagination"]["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(all.len(), 96);
    assert_eq!(
        all.first().map(String::as_str),
        Some("2025-03-01T00:00:00Z")
    );
    assert_eq!(all.last().map(String::as_str), Some("2025-03-01T23:45:00Z"));
    assert!(all.windows(2).all(|w| w[0] < w[1]));

    let agg = get(&sim, "/telemetry/aggregate?device_id=dev_42&metric=power_kw&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z&interval=6h&fn=max").await;
    assert_eq!(agg.status, StatusCode::OK);
    let points = agg.body["data"].as_array().expect("array");
    assert_eq!(points.len(), 4);
    assert_eq!(points[1]["ts"], "2025-03-01T06:00:00Z");
    assert!(agg.body["meta"].get("pagination").is_none());
    let bad_fn = get(&sim, "/telemetry/aggregate?device_id=dev_42&metric=power_kw&from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z&interval=6h&fn=median").await;
    assert_eq!(bad_fn.status, StatusCode::BAD_REQUEST);
    let too_long = get(&sim, "/telemetry/aggregate?device_id=dev_42&metric=power_kw&from=2025-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&interval=1d&fn=avg").await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    let export = get(&sim, "/telemetry/export?device_id=dev_42&metric=power_kw&from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&format=csv").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["data"]["format"], "csv");
    assert!(
        export.body["data"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://") && u.contains(".csv?"))
    );
}

#[tokio::test]
async fn ingest_limits_rejections_duplicates_and_supersession() {
    let sim = default_sim().await;
    let reading = |device: &str, ts: &str, value: f64| json!({ "device_id": device, "metric": "power_kw", "ts": ts, "value": value });

    let too_many: Vec<Value> = (0..1_001)
        .map(|_| reading("dev_42", "2025-03-01T00:00:05Z", 1.0))
        .collect();
    let a = post(&sim, "/telemetry/ingest", json!({ "readings": too_many })).await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let a = post(&sim, "/telemetry/ingest", json!({ "nothing": [] })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(sim.readings_stored(), 0);

    let a = post(
        &sim,
        "/telemetry/ingest",
        json!({ "readings": [
            reading("dev_42", "2025-03-01T00:00:05Z", 1.5),
            reading("dev_missing", "2025-03-01T00:00:05Z", 2.0),
            reading("dev_42", "2025-03-01T00:00:05Z", 1.5),
            reading("dev_nope", "2025-03-01T00:00:06Z", 3.0),
        ]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["data"]["accepted"], 2);
    assert_eq!(a.body["data"]["rejected"], 2);
    let errors = a.body["data"]["errors"].as_array().expect("errors");
    assert_eq!(
        errors
            .iter()
            .map(|e| e["index"].as_u64())
            .collect::<Vec<_>>(),
        [Some(1), Some(3)]
    );
    assert!(errors.iter().all(|e| e["code"] == "device_not_found"));
    let ts = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("ts")
            .to_utc()
    };
    // Duplicates stay visible…
    assert_eq!(
        sim.stored_readings("dev_42", "power_kw"),
        [(ts("2025-03-01T00:00:05Z"), 1.5); 2]
    );
    // …until a superseding reading replaces them; one also hides a generated reading.
    let mut fix = reading("dev_42", "2025-03-01T00:00:05Z", 9.0);
    fix["supersedes"] = json!(true);
    let mut fix_generated = reading("dev_42", "2025-03-01T00:15:00Z", 99.0);
    fix_generated["supersedes"] = json!(true);
    let a = post(
        &sim,
        "/telemetry/ingest",
        json!({ "readings": [fix, fix_generated] }),
    )
    .await;
    assert_eq!(
        a.body["data"],
        json!({ "accepted": 2, "rejected": 0, "errors": [] })
    );
    assert_eq!(
        sim.stored_readings("dev_42", "power_kw"),
        [
            (ts("2025-03-01T00:00:05Z"), 9.0),
            (ts("2025-03-01T00:15:00Z"), 99.0)
        ]
    );
    assert_eq!(sim.readings_stored(), 4);
    assert_eq!(sim.stats().ingest_requests, 2);

    let q = get(&sim, "/telemetry?device_id=dev_42&metric=power_kw&from=2025-03-01T00:00:00Z&to=2025-03-01T00:30:00Z").await;
    let series: Vec<(String, f64)> = q.body["data"]
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["ts"].as_str().unwrap_or("").to_owned(),
                r["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    assert_eq!(series.len(), 3);
    assert_eq!(series[1], ("2025-03-01T00:00:05Z".to_owned(), 9.0));
    assert_eq!(series[2], ("2025-03-01T00:15:00Z".to_owned(), 99.0));
}

#[tokio::test]
async fn etag_and_if_match() {
    let sim = default_sim().await;
    let url = format!("{}/devices/dev_42", sim.base_url());
    let etag = get(&sim, "/devices/dev_42")
        .await
        .header("etag")
        .expect("etag")
        .to_owned();
    let patch = json!({ "name": "Main incomer energy meter (north)", "tags": ["power", "building-a", "critical"] });

    let stale = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(patch.clone()),
        &[("If-Match", "\"00000000\"")],
    )
    .await;
    assert_eq!(
        (stale.status, stale.error_code()),
        (StatusCode::CONFLICT, "conflict")
    );

    let ok = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(patch.clone()),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let new_etag = ok.body["data"]["etag"].as_str().expect("etag");
    assert_ne!(new_etag, etag);
    assert_eq!(ok.header("etag"), Some(new_etag));
    assert_eq!(ok.body["data"]["name"], "Main incomer energy meter (north)");
    assert_eq!(
        ok.body["data"]["tags"],
        json!(["power", "building-a", "critical"])
    );
    assert_ne!(ok.body["data"]["updated_at"], "2026-05-24T09:58:12Z");

    let again = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(patch),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let invalid = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(json!({ "name": 5 })),
        &[],
    )
    .await;
    assert_eq!(
        (invalid.status, invalid.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

#[tokio::test]
async fn soft_delete_hides_the_device_everywhere() {
    let sim = default_sim().await;
    let before = get(&sim, "/devices/count").await.body["data"]["count"]
        .as_u64()
        .expect("count");
    let url = format!("{}/devices/dev_43", sim.base_url());
    let del = send(Method::DELETE, &url, Some(KEY), None, &[]).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(del.header("x-request-id").is_some());
    let gone = get(&sim, "/devices/dev_43").await;
    assert_eq!(
        (gone.status, gone.error_code()),
        (StatusCode::NOT_FOUND, "device_not_found")
    );
    assert_eq!(
        get(&sim, "/devices/count").await.body["data"]["count"].as_u64(),
        Some(before - 1)
    );
    let list = get(&sim, "/devices?limit=500").await;
    assert!(
        list.body["data"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["id"] != "dev_43"))
    );
    let twice = send(Method::DELETE, &url, Some(KEY), None, &[]).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);

    let created = post(&sim, "/devices", json!({ "name": "Line 3 PLC gateway", "type": "gateway", "site": "site_dhaka_wh1", "tags": ["line-3", "plc"] })).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["data"]["status"], "provisioning");
    assert_eq!(
        created.header("etag"),
        created.body["data"]["etag"].as_str()
    );
    let invalid = post(&sim, "/devices", json!({ "type": "gateway" })).await;
    assert_eq!(
        (invalid.status, invalid.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let cmd = post(
        &sim,
        "/devices/dev_42/commands",
        json!({ "command": "refresh_config" }),
    )
    .await;
    assert_eq!(cmd.status, StatusCode::ACCEPTED);
    assert_eq!(cmd.body["data"]["status"], "queued");
    let bad_cmd = post(
        &sim,
        "/devices/dev_42/commands",
        json!({ "command": "self_destruct" }),
    )
    .await;
    assert_eq!(bad_cmd.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn reports_are_queued_then_running_then_ready() {
    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .report_delay(Duration::from_millis(300)),
    )
    .await;
    let a = post(&sim, "/reports", json!({ "type": "energy_summary", "format": "csv", "parameters": { "site": "site_dhaka_wh1" } })).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let report = &a.body["data"];
    assert_eq!(report["status"], "queued");
    assert!(report["download_url"].is_null());
    assert!(report["expected_completion_at"].is_string());
    let id = report["id"].as_str().expect("id");
    assert!(id.starts_with("rpt_"));

    let running = get(&sim, &format!("/reports/{id}")).await;
    assert_eq!(running.body["data"]["status"], "running");
    assert!(running.body["data"]["download_url"].is_null());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ready = get(&sim, &format!("/reports/{id}")).await;
    assert_eq!(ready.body["data"]["status"], "ready");
    assert!(
        ready.body["data"]["download_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://") && u.contains(".csv?"))
    );

    let list = get(&sim, "/reports").await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(list.body["meta"]["pagination"]["limit"], 50);
    let missing = get(&sim, "/reports/rpt_nope").await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn events_and_webhooks() {
    let sim = default_sim().await;
    let ack = post(&sim, "/events/evt_01HW3K9F2XQ3R4/ack", json!({})).await;
    assert_eq!(ack.body["data"]["acknowledged"], true);
    assert!(ack.body["data"]["acknowledged_at"].is_string());
    let clear = post(&sim, "/events/evt_01HW3K9F2XQ3R4/clear", json!({})).await;
    assert_eq!(clear.body["data"]["cleared"], true);
    assert!(clear.body["data"]["cleared_at"].is_string());
    let note = post(
        &sim,
        "/events/evt_01HW3K9F2XQ3R4/comment",
        json!({ "note": "Checked on site." }),
    )
    .await;
    assert_eq!(note.status, StatusCode::CREATED);
    assert_eq!(note.body["data"]["event_id"], "evt_01HW3K9F2XQ3R4");
    let empty = post(
        &sim,
        "/events/evt_01HW3K9F2XQ3R4/comment",
        json!({ "note": "" }),
    )
    .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = post(&sim, "/events/evt_nope/ack", json!({})).await;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let http = post(
        &sim,
        "/webhooks",
        json!({ "url": "http://insecure.example/h", "events": ["report.ready"] }),
    )
    .await;
    assert_eq!(http.status, StatusCode::UNPROCESSABLE_ENTITY);
    let created = post(
        &sim,
        "/webhooks",
        json!({ "url": "https://erp.example/h", "events": ["report.ready"] }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let hook = &created.body["data"];
    assert!(
        hook["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let id = hook["id"].as_str().expect("id");
    let etag = hook["etag"].as_str().expect("etag");
    let list = get(&sim, "/webhooks").await;
    assert!(
        list.body["data"]
            .as_array()
            .is_some_and(|l| l.len() == 3 && l.iter().all(|w| w.get("secret").is_none()))
    );

    let url = format!("{}/webhooks/{id}", sim.base_url());
    let stale = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(json!({ "active": false })),
        &[("If-Match", "\"0\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let rotated = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(json!({ "rotate_secret": true, "events": ["alarm.raised"] })),
        &[("If-Match", etag)],
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_ne!(rotated.body["data"]["secret"], hook["secret"]);
    assert_eq!(rotated.body["data"]["events"], json!(["alarm.raised"]));
    let plain = send(
        Method::PATCH,
        &url,
        Some(KEY),
        Some(json!({ "active": false })),
        &[],
    )
    .await;
    assert!(plain.body["data"].get("secret").is_none());
    let test = post(&sim, &format!("/webhooks/{id}/test"), json!({})).await;
    assert_eq!(test.body["data"]["delivered"], true);
    assert_eq!(test.body["data"]["response_status"], 200);
    assert_eq!(
        send(Method::DELETE, &url, Some(KEY), None, &[])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        send(Method::DELETE, &url, Some(KEY), None, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    // Scale 0.05: the read bucket holds 6 and refills at 30 a minute.
    let sim = start(SgtSimulator::builder().api_key(KEY).rate_limit_scale(0.05)).await;
    for i in 0..6 {
        let a = get(&sim, "/devices/count").await;
        assert_eq!(a.status, StatusCode::OK, "request {i}");
        assert_eq!(a.header("x-ratelimit-limit"), Some("30"));
    }
    let limited = get(&sim, "/devices/count").await;
    assert_eq!(
        (limited.status, limited.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        limited.header("x-request-id"),
        limited.body["error"]["request_id"].as_str()
    );
    // Writes have their own bucket.
    assert_eq!(
        post(
            &sim,
            "/devices/dev_42/commands",
            json!({ "command": "reboot" })
        )
        .await
        .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(sim.stats().rate_limited, 1);

    // Ingest costs one unit per reading, from its own bucket (here 100, refilling 500 a minute):
    // 150 readings pass on a full bucket and leave it 50 in debt.
    let readings: Vec<Value> = (0..150)
        .map(|i| json!({ "device_id": "dev_42", "metric": "power_kw", "ts": format!("2025-03-01T00:00:{:02}Z", i % 60), "value": 1.0 }))
        .collect();
    let a = post(&sim, "/telemetry/ingest", json!({ "readings": readings })).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("x-ratelimit-limit"), Some("500"));
    assert_eq!(a.header("x-ratelimit-remaining"), Some("0"));
    let one = json!({ "readings": [{ "device_id": "dev_42", "metric": "power_kw", "ts": "2025-03-01T00:01:00Z", "value": 1.0 }] });
    let limited = post(&sim, "/telemetry/ingest", one).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    // 51 units at 500/60 a second.
    assert_eq!(limited.header("retry-after"), Some("7"));
    assert_eq!(limited.body["error"]["details"]["bucket"], "ingest");
    assert_eq!(sim.readings_stored(), 150);

    // Reports: burst 5 at the spec's numbers, one more every 120 s.
    let sim = default_sim().await;
    for _ in 0..5 {
        assert_eq!(
            post(&sim, "/reports", json!({ "type": "energy_summary" }))
                .await
                .status,
            StatusCode::ACCEPTED
        );
    }
    let limited = post(&sim, "/reports", json!({ "type": "energy_summary" })).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((110..=120).contains(&wait), "{wait}");
    assert_eq!(limited.header("x-ratelimit-limit"), Some("30"));
}

#[tokio::test]
async fn injected_errors_change_nothing() {
    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .faults(Faults::none().error_rate(1.0)),
    )
    .await;
    for _ in 0..6 {
        let a = post(&sim, "/devices", json!({ "name": "n", "type": "gateway" })).await;
        assert!(matches!(a.status.as_u16(), 500 | 502 | 503), "{}", a.status);
        assert!(matches!(
            a.error_code(),
            "internal_error" | "bad_gateway" | "unavailable"
        ));
        assert_eq!(
            a.header("x-request-id"),
            a.body["error"]["request_id"].as_str()
        );
    }
    sim.set_faults(Faults::none());
    assert_eq!(get(&sim, "/devices/count").await.body["data"]["count"], 52);
    let stats = sim.stats();
    assert_eq!(
        (stats.requests, stats.faults_injected, stats.status(200)),
        (7, 6, 1)
    );
}

#[tokio::test]
async fn dropped_connections_get_no_response_at_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .faults(Faults::none().drop_rate(1.0)),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let request = format!(
        "GET /v1/devices HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {KEY}\r\n\r\n",
        sim.addr()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection was closed");
    assert!(
        received.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );

    let via_client = reqwest::Client::new()
        .get(format!("{}/devices", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await;
    assert!(via_client.is_err());
    let stats = sim.stats();
    assert_eq!((stats.connections_dropped, stats.faults_injected), (2, 2));
    assert!(stats.statuses.is_empty());
}

#[tokio::test]
async fn oauth_tokens_are_accepted_by_the_api() {
    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .token_ttl(Duration::from_millis(700)),
    )
    .await;
    let token_url = sim.token_url().to_owned();
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).expect("form");
    let exchange = |body: String| {
        let url = token_url.clone();
        async move {
            let resp = reqwest::Client::new()
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("token endpoint");
            (
                resp.status(),
                serde_json::from_slice::<Value>(&resp.bytes().await.expect("body")).expect("JSON"),
            )
        }
    };
    // RFC 7636 appendix B.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let code = sim.authorize("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let grant = |code: &str, verifier: &str| {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", "https://app.example/cb"),
            ("client_id", "partner-app"),
        ])
    };

    let (status, body) = exchange(grant(
        &code,
        "the-wrong-verifier-xxxxxxxxxxxxxxxxxxxxxxxxxx",
    ))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = exchange(grant(&code, verifier)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 0);
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert!(access.starts_with("eyJ") && refresh.starts_with("sgt_rt_"));
    // A code is used once.
    assert_eq!(
        exchange(grant(&code, verifier)).await.1["error"],
        "invalid_grant"
    );

    let devices = format!("{}/devices/count", sim.base_url());
    assert_eq!(
        send(Method::GET, &devices, Some(&access), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        send(Method::GET, &devices, Some(&access), None, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let (status, body) = exchange(form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK);
    let renewed = body["access_token"].as_str().expect("access_token");
    assert_ne!(renewed, access);
    assert_eq!(
        send(Method::GET, &devices, Some(renewed), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let (status, body) = exchange(form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "sgt_rt_bogus"),
    ]))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (_, body) = exchange(form(&[("grant_type", "password")])).await;
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn the_specs_curl_examples_work() {
    let curl_present = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !curl_present {
        println!("note: curl is not installed; skipping the spec's curl examples");
        return;
    }
    let sim = default_sim().await;
    let base = sim.base_url().to_owned();
    let auth = format!("Authorization: Bearer {KEY}");
    let run = move |args: Vec<String>| {
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).expect("curl got JSON")
    };

    // curl — list devices
    let list_args = vec![
        "-sS".to_owned(),
        format!("{base}/devices?limit=20"),
        "-H".to_owned(),
        auth.clone(),
        "-H".to_owned(),
        "X-SGT-Tenant: acme-industries".to_owned(),
        "-H".to_owned(),
        "User-Agent: acme-erp-sync/1.4.2".to_owned(),
    ];
    let list = tokio::task::spawn_blocking(move || run(list_args))
        .await
        .expect("join");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(20));
    assert_eq!(list["meta"]["pagination"]["has_more"], true);

    // curl — ingest telemetry
    let ingest_args = vec![
        "-sS".to_owned(),
        "-X".to_owned(),
        "POST".to_owned(),
        format!("{base}/telemetry/ingest"),
        "-H".to_owned(),
        auth,
        "-H".to_owned(),
        "Content-Type: application/json".to_owned(),
        "-d".to_owned(),
        r#"{
  "readings": [
    {"device_id":"dev_42","metric":"power_kw","ts":"2026-05-24T10:00:00Z","value":12.7},
    {"device_id":"dev_42","metric":"power_kw","ts":"2026-05-24T10:00:05Z","value":12.9}
  ]
}"#
        .to_owned(),
    ];
    let ingest = tokio::task::spawn_blocking(move || run(ingest_args))
        .await
        .expect("join");
    assert_eq!(
        ingest["data"],
        json!({ "accepted": 2, "rejected": 0, "errors": [] })
    );
    assert_eq!(sim.stored_readings("dev_42", "power_kw").len(), 2);
}

#[tokio::test]
async fn the_server_stops_when_dropped_and_a_taken_port_is_a_bind_error() {
    let sim = default_sim().await;
    let addr = sim.addr();
    match SgtSimulator::builder().port(addr.port()).start().await {
        Err(iot_sdk_sim::Error::Bind {
            addr: tried,
            source,
        }) => {
            assert_eq!(tried.port(), addr.port());
            let msg = iot_sdk_sim::Error::Bind {
                addr: tried,
                source,
            }
            .to_string();
            assert!(msg.contains(&addr.port().to_string()), "{msg}")
        }
        other => panic!("expected a Bind error, got {other:?}"),
    }
    assert!(matches!(
        SgtSimulator::builder().rate_limit_scale(0.0).start().await,
        Err(iot_sdk_sim::Error::InvalidSetting(_))
    ));
    drop(sim);
    let mut refused = false;
    for _ in 0..40 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the port still accepts connections after the drop");

    let sim = default_sim().await;
    let url = format!("{}/devices/count", sim.base_url());
    assert_eq!(
        send(Method::GET, &url, Some(KEY), None, &[]).await.status,
        StatusCode::OK
    );
    sim.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_lost_response_is_processed_and_an_outage_processes_nothing() {
    let sim = start(
        SgtSimulator::builder()
            .api_key(KEY)
            .faults(Faults::none().lost_response_rate(1.0)),
    )
    .await;
    let reading = json!({"device_id": "dev_42", "metric": "power_kw", "ts": "2026-06-01T00:00:00Z", "value": 1.5});
    let body = json!({ "readings": [reading.clone()] });
    let url = format!("{}/telemetry/ingest", sim.base_url());
    let lost = reqwest::Client::new()
        .post(&url)
        .bearer_auth(KEY)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    assert!(lost.is_err(), "the response was not lost: {lost:?}");
    // Processed all the same: stored once.
    let ts: chrono::DateTime<chrono::Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let key = ("dev_42".to_owned(), "power_kw".to_owned(), ts);
    assert_eq!(sim.stored_counts().get(&key), Some(&1));
    let stats = sim.stats();
    assert_eq!((stats.responses_lost, stats.readings_stored), (1, 1));

    // Sent again without faults: the simulator counts the duplicate.
    sim.set_faults(Faults::none());
    assert_eq!(
        post(&sim, "/telemetry/ingest", body.clone()).await.status,
        StatusCode::OK
    );
    assert_eq!(sim.stored_counts().get(&key), Some(&2));

    // An outage: 503 with Retry-After for everything, nothing stored.
    sim.set_faults(Faults::none().unavailable(true));
    let down = post(&sim, "/telemetry/ingest", body.clone()).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.header("retry-after"), Some("1"));
    assert_eq!(
        get(&sim, "/devices").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(sim.stored_counts().get(&key), Some(&2));
    sim.set_faults(Faults::none());
    assert_eq!(get(&sim, "/devices").await.status, StatusCode::OK);
}
