//! SGT telemetry: exact requests, window splitting, and every ingest outcome.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use iot_sdk::sgt::{AggregateFn, Client, ExportFormat, Interval, Reading};
use serde_json::{Value, json};
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn setup() -> (MockServer, Client) {
    let server = MockServer::start().await;
    let client = Client::builder()
        .api_key("sgt_test_key")
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    (server, client)
}

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn query_of(req: &Request) -> Vec<(String, String)> {
    req.url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn query_sends_the_series_and_range_and_decodes_readings() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/telemetry"))
        .and(header("authorization", "Bearer sgt_test_key"))
        .respond_with(ok_fixture("sgt", "telemetry_query"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let page = sgt
        .telemetry()
        .query(
            "dev_42",
            "power_kw",
            instant("2026-05-24T00:00:00Z"),
            instant("2026-05-25T00:00:00Z"),
        )
        .limit(100)
        .send()
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert_eq!(
        req.url.query(),
        Some(
            "device_id=dev_42&metric=power_kw&from=2026-05-24T00%3A00%3A00Z&to=2026-05-25T00%3A00%3A00Z&limit=100"
        )
    );
    assert_eq!(page.items().len(), 2);
    let r = &page.items()[0];
    assert_eq!(r.device_id, "dev_42");
    assert_eq!(r.metric, "power_kw");
    assert_eq!(r.ts, instant("2026-05-24T10:00:00Z"));
    assert_eq!(r.value, 12.7);
    assert!(!r.supersedes);
    assert!(!page.has_more());
}

/// A fake server holding one reading every 6 hours, answering windows with paging of 50.
fn series_responder() -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |req: &Request| {
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        let from: DateTime<Utc> = q["from"].parse().unwrap();
        let to: DateTime<Utc> = q["to"].parse().unwrap();
        assert!(
            to - from <= Duration::days(31),
            "window over 31 days: {from} {to}"
        );
        let origin = instant("2026-01-01T00:00:00Z");
        let all: Vec<DateTime<Utc>> = (0..)
            .map(|i| origin + Duration::hours(6 * i))
            .skip_while(|ts| *ts < from)
            .take_while(|ts| *ts < to)
            .collect();
        let start: usize = q.get("cursor").map(|c| c.parse().unwrap()).unwrap_or(0);
        let end = (start + 50).min(all.len());
        let data: Vec<Value> = all[start..end]
            .iter()
            .map(|ts| json!({"device_id": "dev_42", "metric": "m", "ts": ts, "value": ts.timestamp() as f64}))
            .collect();
        let more = end < all.len();
        ResponseTemplate::new(200).set_body_json(json!({
            "data": data,
            "meta": {"request_id": "r", "pagination": {"limit": 50, "next": more.then(|| end.to_string()), "has_more": more}}
        }))
    }
}

#[tokio::test]
async fn a_90_day_query_is_split_into_31_day_windows_and_is_complete() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/telemetry"))
        .respond_with(series_responder())
        .mount(&server)
        .await;
    let from = instant("2026-01-01T00:00:00Z");
    let to = from + Duration::days(90);
    let readings: Vec<Reading> = sgt
        .telemetry()
        .query("dev_42", "m", from, to)
        .items()
        .try_collect()
        .await
        .unwrap();
    // One reading every 6 hours for 90 days, the boundary readings included once.
    assert_eq!(readings.len(), 90 * 4);
    for (i, r) in readings.iter().enumerate() {
        assert_eq!(r.ts, from + Duration::hours(6 * i as i64), "reading {i}");
    }
    // Windows [Jan 1, Feb 1), [Feb 1, Mar 4), [Mar 4, Apr 1): 124 + 124 + 112 readings, paged by 50.
    let reqs = server.received_requests().await.unwrap();
    let windows: Vec<(String, String)> = reqs
        .iter()
        .filter(|r| !r.url.query().unwrap().contains("cursor"))
        .map(|r| {
            let q: std::collections::HashMap<_, _> = r.url.query_pairs().into_owned().collect();
            (q["from"].clone(), q["to"].clone())
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("2026-01-01T00:00:00Z".into(), "2026-02-01T00:00:00Z".into()),
            ("2026-02-01T00:00:00Z".into(), "2026-03-04T00:00:00Z".into()),
            ("2026-03-04T00:00:00Z".into(), "2026-04-01T00:00:00Z".into()),
        ]
    );
    assert_eq!(reqs.len(), 3 + 3 + 3);
}

#[tokio::test]
async fn bad_ranges_and_limits_are_refused_before_sending() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let at = instant("2026-01-01T00:00:00Z");
    let tel = sgt.telemetry();
    for err in [
        tel.query("dev_42", "m", at, at).send().await.unwrap_err(),
        tel.query("dev_42", "m", at + Duration::hours(1), at)
            .send()
            .await
            .unwrap_err(),
        tel.query("dev_42", "m", at, at + Duration::hours(1))
            .limit(501)
            .send()
            .await
            .unwrap_err(),
        tel.query("", "m", at, at + Duration::hours(1))
            .send()
            .await
            .unwrap_err(),
        tel.query("dev_42", "", at, at + Duration::hours(1))
            .send()
            .await
            .unwrap_err(),
        tel.aggregate(
            "dev_42",
            "m",
            at,
            at,
            Interval::minutes(5),
            AggregateFn::Avg,
        )
        .send()
        .await
        .unwrap_err(),
        tel.aggregate(
            "dev_42",
            "m",
            at,
            at + Duration::days(1),
            Interval::seconds(0),
            AggregateFn::Avg,
        )
        .send()
        .await
        .unwrap_err(),
        tel.export("dev_42", "m", at, at, ExportFormat::Csv)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn aggregate_sends_interval_and_fn_and_decodes_points() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/telemetry/aggregate"))
        .and(query_param("device_id", "dev_42"))
        .and(query_param("metric", "power_kw"))
        .and(query_param("from", "2026-05-23T10:00:00Z"))
        .and(query_param("to", "2026-05-24T10:00:00Z"))
        .and(query_param("interval", "15m"))
        .and(query_param("fn", "avg"))
        .respond_with(ok_fixture("sgt", "telemetry_aggregate"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let points = sgt
        .telemetry()
        .aggregate(
            "dev_42",
            "power_kw",
            instant("2026-05-23T10:00:00Z"),
            instant("2026-05-24T10:00:00Z"),
            Interval::minutes(15),
            AggregateFn::Avg,
        )
        .await
        .unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].ts, instant("2026-05-24T09:45:00Z"));
    assert_eq!(points[0].value, Some(12.41));
}

#[tokio::test]
async fn a_two_year_aggregate_is_split_on_interval_boundaries() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/telemetry/aggregate"))
        .respond_with(|req: &Request| {
            let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [{"ts": q["from"], "value": 1.0}], "meta": {}}))
        })
        .mount(&server)
        .await;
    let from = instant("2025-01-01T00:00:00Z");
    let to = instant("2027-01-01T00:00:00Z"); // 730 days
    let points = sgt
        .telemetry()
        .aggregate("dev_42", "m", from, to, Interval::days(7), AggregateFn::P95)
        .send()
        .await
        .unwrap();
    // 366 days hold 52 whole weeks (364 days): windows of 364, 364 and 2 days.
    let froms: Vec<DateTime<Utc>> = points.iter().map(|p| p.ts).collect();
    assert_eq!(
        froms,
        [from, from + Duration::days(364), from + Duration::days(728)]
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 3);
    assert!(query_of(&reqs[2]).contains(&("to".into(), "2027-01-01T00:00:00Z".into())));
    assert!(query_of(&reqs[0]).contains(&("fn".into(), "p95".into())));
}

#[tokio::test]
async fn export_returns_the_signed_location() {
    let (server, sgt) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/telemetry/export"))
        .and(query_param("format", "csv"))
        .and(query_param("device_id", "dev_42"))
        .and(query_param("metric", "power_kw"))
        .and(query_param("from", "2025-01-01T00:00:00Z"))
        .and(query_param("to", "2026-05-01T00:00:00Z"))
        .respond_with(ok_fixture("sgt", "telemetry_export"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let e = sgt
        .telemetry()
        .export(
            "dev_42",
            "power_kw",
            instant("2025-01-01T00:00:00Z"),
            instant("2026-05-01T00:00:00Z"),
            ExportFormat::Csv,
        )
        .await
        .unwrap();
    assert!(
        e.url
            .expose()
            .starts_with("https://exports.sgtsystems.com/")
    );
    assert!(e.url.expose().contains("X-Amz-Signature=4f1c9a2e7b6d3085"));
    let shown = format!("{e:?}");
    assert!(!shown.contains("X-Amz-Signature"), "{shown}");
    assert!(shown.contains("SignedUrl(https://exports.sgtsystems.com/acme-industries/exp_01HW3K9F2XK0M1.csv?[REDACTED])"), "{shown}");
    assert_eq!(e.format, Some(ExportFormat::Csv));
    assert_eq!(e.expires_at, Some(instant("2026-05-24T11:30:00Z")));
}

fn readings(n: usize) -> Vec<Reading> {
    let origin = instant("2026-05-24T00:00:00Z");
    (0..n)
        .map(|i| {
            Reading::new(
                "dev_42",
                "power_kw",
                origin + Duration::seconds(i as i64),
                i as f64,
            )
        })
        .collect()
}

/// Accepts everything, counting readings.
fn accept_all(
    count: Arc<AtomicUsize>,
) -> impl Fn(&Request) -> ResponseTemplate + Send + Sync + 'static {
    move |req: &Request| {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let n = body["readings"].as_array().unwrap().len();
        count.fetch_add(n, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(json!({"data": {"accepted": n, "rejected": 0}, "meta": {}}))
    }
}

#[tokio::test]
async fn ingest_sends_the_spec_body() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/telemetry/ingest"))
        .and(header("content-type", "application/json"))
        .and(body_is(json!({
            "readings": [
                {"device_id": "dev_42", "metric": "power_kw", "ts": "2026-05-24T10:00:00Z", "value": 12.7},
                {"device_id": "dev_42", "metric": "power_kw", "ts": "2026-05-24T10:00:05Z", "value": 12.9, "supersedes": true}
            ]
        })))
        .respond_with(ok_fixture("sgt", "telemetry_ingest"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let summary = sgt
        .telemetry()
        .ingest([
            Reading::new("dev_42", "power_kw", instant("2026-05-24T10:00:00Z"), 12.7),
            Reading::new("dev_42", "power_kw", instant("2026-05-24T10:00:05Z"), 12.9).superseding(),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(summary.accepted, 2);
    assert_eq!(summary.requests, 1);
}

#[tokio::test]
async fn ingest_chunks_to_1000_and_reports_progress() {
    let (server, sgt) = setup().await;
    let count = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(accept_all(count.clone()))
        .mount(&server)
        .await;
    let last = Arc::new(std::sync::Mutex::new(None));
    let seen = last.clone();
    let summary = sgt
        .telemetry()
        .ingest(readings(2_500))
        .on_progress(move |p| *seen.lock().unwrap() = Some((p.accepted, p.done, p.total)))
        .send()
        .await
        .unwrap();
    assert_eq!(summary.accepted, 2_500);
    assert_eq!(summary.requests, 3);
    assert_eq!(count.load(Ordering::SeqCst), 2_500);
    let mut sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| body_json(r)["readings"].as_array().unwrap().len())
        .collect();
    sizes.sort();
    assert_eq!(sizes, [500, 1000, 1000]);
    assert_eq!(*last.lock().unwrap(), Some((2_500, 2_500, 2_500)));
}

#[tokio::test]
async fn zero_readings_send_nothing() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let s = sgt.telemetry().ingest(Vec::new()).send().await.unwrap();
    assert_eq!((s.accepted, s.requests), (0, 0));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_readings_are_refused_and_handed_back() {
    let (server, sgt) = setup().await;
    catch_all(&server).await;
    let mut rs = readings(3);
    rs[1].value = f64::NAN;
    let err = sgt.telemetry().ingest(rs.clone()).send().await.unwrap_err();
    assert!(matches!(err.error(), Some(Error::InvalidInput(m)) if m.contains("reading 1")));
    assert_eq!(err.accepted(), 0);
    assert_eq!(err.retryable().len(), 3);
    assert!(server.received_requests().await.unwrap().is_empty());
    let err = sgt
        .telemetry()
        .ingest(readings(1))
        .chunk_size(1001)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err.error(), Some(Error::InvalidInput(_))));
}

#[tokio::test]
async fn individually_rejected_readings_are_handed_back_exactly() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"accepted": 3, "rejected": 2, "errors": [
                {"index": 1, "code": "device_not_found", "message": "No device dev_x"},
                {"index": 4, "code": "device_not_found", "message": "No device dev_y"}
            ]},
            "meta": {}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let rs = readings(5);
    let err = sgt.telemetry().ingest(rs.clone()).send().await.unwrap_err();
    assert_eq!(err.accepted(), 3);
    let rejected: Vec<&Reading> = err.rejected().iter().map(|r| &r.reading).collect();
    assert_eq!(rejected, [&rs[1], &rs[4]]);
    assert_eq!(err.rejected()[0].code.as_deref(), Some("device_not_found"));
    assert!(err.retryable().is_empty() && err.unconfirmed().is_empty() && err.error().is_none());
    // `?` into the crate error keeps it.
    let e: Error = err.into();
    assert!(e.vendor::<iot_sdk::sgt::IngestError>().is_some());
}

#[tokio::test]
async fn a_failed_chunk_stops_the_ingest_and_hands_back_what_was_not_accepted() {
    let (server, sgt) = setup().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(move |req: &Request| {
            let n = body_json(req)["readings"].as_array().unwrap().len();
            if c.fetch_add(1, Ordering::SeqCst) == 1 {
                ResponseTemplate::new(400).set_body_json(
                    json!({"error": {"code": "invalid_request", "message": "bad chunk"}}),
                )
            } else {
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"accepted": n, "rejected": 0}, "meta": {}}))
            }
        })
        .mount(&server)
        .await;
    let rs = readings(3_000);
    let err = sgt
        .telemetry()
        .ingest(rs.clone())
        .concurrency(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the third chunk is not sent after the second failed"
    );
    assert_eq!(err.accepted(), 1_000);
    assert_eq!(err.retryable(), &rs[1_000..]);
    assert!(err.unconfirmed().is_empty());
    assert_eq!(err.error().unwrap().status(), Some(400));
    assert!(err.to_string().contains("1000 accepted"), "{err}");
}

#[tokio::test]
async fn a_504_chunk_is_unconfirmed_and_not_resent() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(504))
        .expect(1)
        .mount(&server)
        .await;
    let rs = readings(10);
    let err = sgt.telemetry().ingest(rs.clone()).send().await.unwrap_err();
    assert_eq!(err.unconfirmed(), &rs[..]);
    assert!(err.retryable().is_empty());
}

#[tokio::test]
async fn a_503_or_500_chunk_is_retried_and_stored_once() {
    let (server, sgt) = setup().await;
    let count = Arc::new(AtomicUsize::new(0));
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(accept_all(count.clone()))
        .with_priority(3)
        .mount(&server)
        .await;
    let s = sgt.telemetry().ingest(readings(10)).send().await.unwrap();
    assert_eq!(s.accepted, 10);
    assert_eq!(count.load(Ordering::SeqCst), 10);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn inconsistent_counts_make_the_chunk_unconfirmed() {
    let (server, sgt) = setup().await;
    Mock::given(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"accepted": 2, "rejected": 2, "errors": [{"index": 99}]}, "meta": {}}),
        ))
        .mount(&server)
        .await;
    let rs = readings(4);
    let err = sgt.telemetry().ingest(rs.clone()).send().await.unwrap_err();
    assert_eq!(err.accepted(), 0);
    assert_eq!(err.unconfirmed(), &rs[..]);
}
