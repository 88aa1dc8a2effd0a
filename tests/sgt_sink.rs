//! The streaming ingest sink without a queue: exact requests (wiremock), batching by count and
//! linger, backpressure, flush and close, and against the simulator 200,000 readings exactly
//! once in bounded memory and the three-way accounting under 30 % faults.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::sgt::{KEY, setup, sgt_headers, simulator as start};
use futures::StreamExt;
use iot_sdk::sgt::{Client, IngestReport, IngestReports, Reading, SinkError, SinkStats};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::SgtSimulator;
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, ResponseTemplate};

fn origin() -> DateTime<Utc> {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

/// Reading `i` of a fleet of `devices`: a distinct (device, metric, ts) for every `i`.
fn reading(devices: usize, i: usize) -> Reading {
    Reading::new(
        format!("dev_{}", 1 + i % devices),
        "power_kw",
        origin() + chrono::Duration::seconds((i / devices) as i64),
        i as f64,
    )
}

/// Reads every report until the stream ends.
async fn collect(mut reports: IngestReports) -> Vec<IngestReport> {
    let mut all = Vec::new();
    while let Some(r) = reports.next().await {
        all.push(r);
    }
    all
}

fn ok_answer(n: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {"accepted": n, "rejected": 0, "errors": []},
        "meta": {"request_id": "req_1"}
    }))
}

#[tokio::test]
async fn a_partial_batch_is_sent_after_the_linger_with_the_spec_body() {
    let (server, sgt) = setup().await;
    sgt_headers(Mock::given(method("POST")))
        .and(path("/v1/telemetry/ingest"))
        .and(body_json(json!({"readings": [
            {"device_id": "dev_1", "metric": "power_kw", "ts": "2026-06-01T00:00:00Z", "value": 0.0},
            {"device_id": "dev_2", "metric": "power_kw", "ts": "2026-06-01T00:00:00Z", "value": 1.0},
            {"device_id": "dev_1", "metric": "power_kw", "ts": "2026-06-01T00:00:01Z", "value": 2.0, "supersedes": true},
        ]})))
        .respond_with(ok_answer(3))
        .expect(1)
        .mount(&server)
        .await;
    let (sink, mut reports) = sgt
        .telemetry()
        .sink()
        .linger(Duration::from_millis(20))
        .start()
        .unwrap();
    sink.send(reading(2, 0)).await.unwrap();
    sink.send(reading(2, 1)).await.unwrap();
    sink.send(reading(2, 2).superseding()).await.unwrap();
    // No flush: the linger alone sends the three as one request.
    let report = reports.next().await.expect("a report");
    assert_eq!((report.readings, report.accepted), (3, 3));
    assert!(report.rejected.is_empty() && report.retryable.is_empty());
    let stats = sink.close().await;
    assert_eq!((stats.produced, stats.accepted, stats.requests), (3, 3, 1));
    assert!(
        reports.next().await.is_none(),
        "the stream ends with the sink"
    );
}

#[tokio::test]
async fn full_batches_go_at_once_and_flush_sends_the_rest() {
    let (server, sgt) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/telemetry/ingest"))
        .respond_with(|req: &wiremock::Request| {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let n = body["readings"].as_array().unwrap().len();
            ok_answer(n)
        })
        .mount(&server)
        .await;
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .batch_size(10)
        .capacity(100)
        // A linger far longer than the test: only full batches and the flush send anything.
        .linger(Duration::from_secs(3600))
        .start()
        .unwrap();
    let reader = tokio::spawn(collect(reports));
    let n = sink
        .send_all(futures::stream::iter((0..25).map(|i| reading(5, i))))
        .await
        .unwrap();
    assert_eq!(n, 25);
    sink.flush().await.unwrap();
    let stats = sink.stats();
    assert_eq!((stats.accepted, stats.requests, stats.held), (25, 3, 0));
    let mut sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let b: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            b["readings"].as_array().unwrap().len()
        })
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [5, 10, 10]);
    sink.close().await;
    let reports = reader.await.unwrap();
    assert_eq!(reports.iter().map(|r| r.accepted).sum::<u64>(), 25);
}

#[tokio::test]
async fn rejected_and_failed_batches_are_reported_three_ways() {
    let (server, sgt) = setup().await;
    // First batch: the second reading refused. Second batch: a 400 (retryable: not stored).
    Mock::given(method("POST"))
        .and(path("/v1/telemetry/ingest"))
        .and(body_json(json!({"readings": [
            {"device_id": "dev_1", "metric": "power_kw", "ts": "2026-06-01T00:00:00Z", "value": 0.0},
            {"device_id": "dev_2", "metric": "power_kw", "ts": "2026-06-01T00:00:00Z", "value": 1.0},
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"accepted": 1, "rejected": 1, "errors": [
                {"index": 1, "code": "device_not_found", "message": "No device dev_2."}
            ]},
            "meta": {"request_id": "req_1"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/telemetry/ingest"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "invalid_request", "message": "no", "request_id": "req_2"}
        })))
        .mount(&server)
        .await;
    let (sink, mut reports) = sgt
        .telemetry()
        .sink()
        .batch_size(2)
        .concurrency(1)
        .backoff(Duration::ZERO, Duration::ZERO)
        .start()
        .unwrap();
    sink.send_batch((0..4).map(|i| reading(2, i)).collect())
        .await
        .unwrap();
    let first = reports.next().await.unwrap();
    assert_eq!(first.accepted, 1);
    assert_eq!(first.rejected.len(), 1);
    assert_eq!(first.rejected[0].reading, reading(2, 1));
    assert_eq!(first.rejected[0].code.as_deref(), Some("device_not_found"));
    let second = reports.next().await.unwrap();
    assert_eq!(second.accepted, 0);
    assert_eq!(second.retryable, vec![reading(2, 2), reading(2, 3)]);
    assert!(second.unconfirmed.is_empty());
    assert_eq!(second.error.as_ref().and_then(|e| e.status()), Some(400));
    let stats = sink.close().await;
    assert_eq!(
        (
            stats.produced,
            stats.accepted,
            stats.rejected,
            stats.retryable,
            stats.unconfirmed
        ),
        (4, 1, 1, 2, 0)
    );
}

#[tokio::test]
async fn invalid_readings_settings_and_a_closed_sink_are_refused() {
    let (_server, sgt) = setup().await;
    assert!(sgt.telemetry().sink().batch_size(0).start().is_err());
    assert!(sgt.telemetry().sink().batch_size(1001).start().is_err());
    assert!(
        sgt.telemetry()
            .sink()
            .batch_size(100)
            .capacity(99)
            .start()
            .is_err()
    );
    let (sink, _reports) = sgt.telemetry().sink().start().unwrap();
    let nan = Reading::new("dev_1", "power_kw", origin(), f64::NAN);
    match sink.send_batch(vec![reading(1, 0), nan]).await {
        Err(SinkError::Invalid(e)) => assert!(e.to_string().contains("reading 1"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sink.stats().produced,
        0,
        "none of an invalid batch is taken"
    );
    let stats = sink.close().await;
    assert_eq!(stats, SinkStats::default());
    assert!(matches!(
        sink.send(reading(1, 0)).await,
        Err(SinkError::Closed)
    ));
    assert!(matches!(sink.flush().await, Err(SinkError::Closed)));
}

#[tokio::test]
async fn send_waits_while_the_sink_is_full() {
    // Every request takes 2 s at the server, so the first batch holds the sink's whole
    // capacity for at least that long.
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(2)
            .faults(Faults::none().latency(Duration::from_secs(2))),
    )
    .await;
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .batch_size(10)
        .capacity(10)
        .concurrency(1)
        .start()
        .unwrap();
    drop(reports);
    sink.send_batch((0..10).map(|i| reading(2, i)).collect())
        .await
        .unwrap();
    let blocked = tokio::time::timeout(Duration::from_millis(300), sink.send(reading(2, 10))).await;
    assert!(blocked.is_err(), "send returned while the sink was full");
    assert_eq!(sink.stats().produced, 10);
    // Once the batch is resolved, there is room again.
    sink.send(reading(2, 10)).await.unwrap();
    let stats = sink.close().await;
    assert_eq!((stats.produced, stats.accepted), (11, 11));
    assert!(stats.peak_held <= 10, "peak {}", stats.peak_held);
    assert_eq!(sim.readings_stored(), 11);
}

fn fast_client(sim: &SgtSimulator, attempts: u32) -> Client {
    Client::builder()
        .api_key(sim.api_key())
        .tenant(sim.tenant())
        .base_url(sim.base_url())
        .retry_policy(
            iot_sdk::RetryPolicy::default()
                .with_max_attempts(attempts)
                .with_initial_delay(Duration::from_millis(1))
                .with_max_delay(Duration::from_millis(5)),
        )
        .retry_budget(iot_sdk::RetryBudget::unlimited())
        .build()
        .unwrap()
}

#[tokio::test]
async fn two_hundred_thousand_readings_exactly_once_in_bounded_memory() {
    const N: usize = 200_000;
    const DEVICES: usize = 20;
    const CAPACITY: usize = 8_000;
    let sim = common::started(
        SgtSimulator::builder()
            .api_key(KEY)
            .fleet_size(DEVICES)
            .rate_limit_scale(1000.0)
            // 20 ms a request: the producer outruns the sender, so backpressure must hold it.
            .faults(Faults::none().latency(Duration::from_millis(20)))
            .start()
            .await,
    );
    let sgt = fast_client(&sim, 3);
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .capacity(CAPACITY)
        .concurrency(4)
        .start()
        .unwrap();
    let reader = tokio::spawn(collect(reports));
    // A fast producer: one reading at a time, as fast as the sink takes them.
    for i in 0..N {
        sink.send(reading(DEVICES, i)).await.unwrap();
    }
    let stats = sink.close().await;
    let reports = reader.await.unwrap();
    eprintln!(
        "sink: {N} readings, capacity {CAPACITY}, peak held {}, {} requests",
        stats.peak_held, stats.requests
    );
    assert_eq!((stats.produced, stats.accepted), (N as u64, N as u64));
    assert_eq!(stats.rejected + stats.retryable + stats.unconfirmed, 0);
    assert!(
        stats.peak_held <= CAPACITY as u64,
        "peak {}",
        stats.peak_held
    );
    assert!(stats.peak_held >= 1_000, "the producer outran the sender");
    assert_eq!(reports.iter().map(|r| r.accepted).sum::<u64>(), N as u64);
    assert_eq!(sim.readings_stored(), N as u64);
    let counts = sim.stored_counts();
    assert_eq!(counts.len(), N, "distinct readings stored");
    assert!(
        counts.values().all(|&c| c == 1),
        "a reading was stored twice"
    );
}

#[tokio::test]
async fn thirty_percent_faults_account_for_every_reading() {
    const N: usize = 20_000;
    let sim = common::started(
        SgtSimulator::builder()
            .api_key(KEY)
            .fleet_size(10)
            .rate_limit_scale(1000.0)
            .faults(
                Faults::none()
                    .error_rate(0.3)
                    .drop_rate(0.05)
                    .lost_response_rate(0.05),
            )
            .start()
            .await,
    );
    // Two attempts per request, so faults get through to the outcomes.
    let sgt = fast_client(&sim, 2);
    let (sink, reports) = sgt
        .telemetry()
        .sink()
        .batch_size(200)
        .backoff(Duration::ZERO, Duration::ZERO)
        .start()
        .unwrap();
    let reader = tokio::spawn(collect(reports));
    let mut produced = Vec::with_capacity(N);
    for i in 0..N {
        // Every 100th reading names a device that does not exist: rejected individually.
        let r = if i % 100 == 0 {
            Reading::new("dev_nope", "power_kw", origin(), i as f64)
        } else {
            reading(10, i)
        };
        produced.push(r.clone());
        sink.send(r).await.unwrap();
    }
    let stats = sink.close().await;
    let reports = reader.await.unwrap();
    let accepted: u64 = reports.iter().map(|r| r.accepted).sum();
    let rejected: Vec<&Reading> = reports
        .iter()
        .flat_map(|r| r.rejected.iter().map(|x| &x.reading))
        .collect();
    let retryable: Vec<&Reading> = reports.iter().flat_map(|r| &r.retryable).collect();
    let unconfirmed: Vec<&Reading> = reports.iter().flat_map(|r| &r.unconfirmed).collect();
    eprintln!(
        "faults: {accepted} accepted, {} rejected, {} retryable, {} unconfirmed, {} faults injected",
        rejected.len(),
        retryable.len(),
        unconfirmed.len(),
        sim.stats().faults_injected
    );
    // accepted + rejected + handed back = produced, in the reports and in the counters.
    assert_eq!(
        accepted as usize + rejected.len() + retryable.len() + unconfirmed.len(),
        N
    );
    assert_eq!(
        (
            stats.accepted,
            stats.rejected,
            stats.retryable,
            stats.unconfirmed
        ),
        (
            accepted,
            rejected.len() as u64,
            retryable.len() as u64,
            unconfirmed.len() as u64
        )
    );
    assert!(
        !retryable.is_empty() && !unconfirmed.is_empty(),
        "faults got through"
    );
    assert!(rejected.iter().all(|r| r.device_id.as_str() == "dev_nope"));
    // No reading is handed back twice or both accepted and handed back.
    // (The value is the reading's index: unique.)
    let handed: HashSet<u64> = rejected
        .iter()
        .chain(&retryable)
        .chain(&unconfirmed)
        .map(|r| r.value as u64)
        .collect();
    assert_eq!(
        handed.len(),
        rejected.len() + retryable.len() + unconfirmed.len()
    );
    // What the server stored: every accepted reading, no retryable one, and of the unconfirmed
    // only those whose response was lost.
    let counts = sim.stored_counts();
    assert!(counts.values().all(|&c| c == 1));
    for r in &retryable {
        let key = (r.device_id.to_string(), r.metric.clone(), r.ts);
        assert!(!counts.contains_key(&key), "a retryable reading was stored");
    }
    let stored = counts.len() as u64;
    assert!(stored >= accepted && stored <= accepted + unconfirmed.len() as u64);
    assert_eq!(sim.readings_stored(), stored);
}
