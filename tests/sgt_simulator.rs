//! The SGT client against the SGT simulator, end to end: paging, window splitting, ingest
//! exactly once (also with injected faults), partial failures, ETags, reports, rate limits and
//! OAuth2.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::sgt::simulator as start;
use futures::TryStreamExt;
use iot_sdk::RetryPolicy;
use iot_sdk::sgt::oauth::{OAuthClient, OAuthConfig, OAuthSession, PkcePair};
use iot_sdk::sgt::{Client, DeviceUpdate, NewReport, Reading, ReportStatus};
use iot_sdk_sim::Faults;
use iot_sdk_sim::sgt::SgtSimulator;

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test]
async fn paging_10000_devices_with_faults_loses_and_repeats_nothing() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(9_998)
            .rate_limit_scale(100.0)
            .faults(Faults::none().error_rate(0.2)),
    )
    .await;
    let ids: Vec<String> = sgt
        .devices()
        .list()
        .limit(500)
        .items()
        .map_ok(|d| d.id.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 10_000);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 10_000, "no repeats");
    assert!(
        sim.stats().faults_injected > 0,
        "faults were injected and survived"
    );
}

#[tokio::test]
async fn a_90_day_query_is_split_and_complete() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(3)
            .rate_limit_scale(100.0),
    )
    .await;
    let from = instant("2026-01-01T00:00:00Z");
    let to = instant("2026-04-01T00:00:00Z");
    let readings: Vec<Reading> = sgt
        .telemetry()
        .query("dev_1", "power_kw", from, to)
        .limit(500)
        .items()
        .try_collect()
        .await
        .unwrap();
    // One reading every 15 minutes, boundaries included once.
    assert_eq!(readings.len(), 90 * 96);
    for (i, r) in readings.iter().enumerate() {
        assert_eq!(
            r.ts,
            from + chrono::Duration::minutes(15 * i as i64),
            "reading {i}"
        );
        assert_eq!(r.device_id, "dev_1");
    }
    let _ = sim;
}

fn batch(devices: &[&str], n: usize) -> Vec<Reading> {
    let origin = instant("2026-06-01T00:00:00Z");
    (0..n)
        .map(|i| {
            let d = devices[i % devices.len()];
            Reading::new(
                d,
                "power_kw",
                origin + chrono::Duration::seconds((i / devices.len()) as i64),
                i as f64,
            )
        })
        .collect()
}

fn assert_stored_once(sim: &SgtSimulator, devices: &[&str], expected_per_device: usize) {
    for d in devices {
        let stored = sim.stored_readings(d, "power_kw");
        let distinct: HashSet<DateTime<Utc>> = stored.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(
            distinct.len(),
            stored.len(),
            "{d}: a reading was stored twice"
        );
        assert_eq!(stored.len(), expected_per_device, "{d}");
    }
}

#[tokio::test]
async fn ingest_25000_readings_exactly_once() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(5)
            .rate_limit_scale(100.0),
    )
    .await;
    let devices = ["dev_1", "dev_2", "dev_3", "dev_4", "dev_5"];
    let s = sgt
        .telemetry()
        .ingest(batch(&devices, 25_000))
        .send()
        .await
        .unwrap();
    assert_eq!((s.accepted, s.requests), (25_000, 25));
    assert_eq!(sim.readings_stored(), 25_000);
    assert_stored_once(&sim, &devices, 5_000);
}

#[tokio::test]
async fn ingest_25000_readings_exactly_once_with_5xx_faults() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(5)
            .rate_limit_scale(100.0)
            .faults(Faults::none().error_rate(0.3)),
    )
    .await;
    let devices = ["dev_1", "dev_2", "dev_3", "dev_4", "dev_5"];
    let s = sgt
        .telemetry()
        .ingest(batch(&devices, 25_000))
        .concurrency(6)
        .send()
        .await
        .unwrap();
    assert_eq!(s.accepted, 25_000);
    assert!(sim.stats().faults_injected > 0);
    assert_eq!(
        sim.readings_stored(),
        25_000,
        "retried chunks were not stored twice"
    );
    assert_stored_once(&sim, &devices, 5_000);
}

#[tokio::test]
async fn ingest_with_dropped_connections_loses_nothing_and_stores_nothing_twice() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(2)
            .rate_limit_scale(100.0)
            .faults(Faults::none().drop_rate(0.15)),
    )
    .await;
    let devices = ["dev_1", "dev_2"];
    let readings = batch(&devices, 20_000);
    let (accepted, handed_back) = match sgt
        .telemetry()
        .ingest(readings.clone())
        .concurrency(1)
        .send()
        .await
    {
        Ok(s) => (s.accepted, Vec::new()),
        Err(e) => {
            let accepted = e.accepted();
            let (rejected, retryable, unconfirmed) = e.into_parts();
            assert!(rejected.is_empty());
            (accepted, [retryable, unconfirmed].concat())
        }
    };
    // Every reading is accounted for exactly once: accepted, or handed back.
    assert_eq!(accepted as usize + handed_back.len(), readings.len());
    // The simulator drops connections before processing, so what the server stored is exactly
    // what was reported accepted, and nothing twice.
    assert_eq!(sim.readings_stored(), accepted);
    for d in devices {
        let stored = sim.stored_readings(d, "power_kw");
        let distinct: HashSet<DateTime<Utc>> = stored.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(distinct.len(), stored.len());
    }
    // Sending the handed-back readings again completes the batch, still exactly once.
    if !handed_back.is_empty() {
        sim.set_faults(Faults::none());
        let s = sgt.telemetry().ingest(handed_back).send().await.unwrap();
        assert_eq!(accepted + s.accepted, 20_000);
    }
    assert_eq!(sim.readings_stored(), 20_000);
    assert_stored_once(&sim, &devices, 10_000);
}

#[tokio::test]
async fn a_partial_ingest_failure_hands_back_exactly_the_rejected_readings() {
    let (sim, sgt) = start(
        SgtSimulator::builder()
            .fleet_size(2)
            .rate_limit_scale(100.0),
    )
    .await;
    let mut readings = batch(&["dev_1", "dev_2"], 2_500);
    let bad: Vec<usize> = vec![3, 1_200, 2_499];
    for &i in &bad {
        readings[i].device_id = "dev_does_not_exist".into();
    }
    let err = sgt
        .telemetry()
        .ingest(readings.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.accepted(), 2_497);
    let rejected: Vec<Reading> = err.rejected().iter().map(|r| r.reading.clone()).collect();
    let expected: Vec<Reading> = bad.iter().map(|&i| readings[i].clone()).collect();
    assert_eq!(rejected, expected);
    assert!(
        err.rejected()
            .iter()
            .all(|r| r.code.as_deref() == Some("device_not_found"))
    );
    assert!(err.retryable().is_empty() && err.unconfirmed().is_empty());
    assert_eq!(sim.readings_stored(), 2_497);
}

#[tokio::test]
async fn stale_etag_conflicts_and_modify_recovers() {
    let (_sim, sgt) = start(SgtSimulator::builder().fleet_size(3)).await;
    let d = sgt.devices().get("dev_2").await.unwrap();
    let stale = d.etag.clone().unwrap();
    // Someone else renames it.
    let fresh = sgt
        .devices()
        .update("dev_2", DeviceUpdate::new().name("renamed by a colleague"))
        .if_match(&stale)
        .await
        .unwrap();
    assert_ne!(fresh.etag.as_deref(), Some(stale.as_str()));
    // Our write with the old ETag is refused.
    let err = sgt
        .devices()
        .update("dev_2", DeviceUpdate::new().tags(["ours"]))
        .if_match(&stale)
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // modify() re-reads and applies on top of their change.
    let d = sgt
        .devices()
        .modify("dev_2", |d| {
            Some(DeviceUpdate::new().tags([d.name.clone()]))
        })
        .await
        .unwrap();
    assert_eq!(d.name, "renamed by a colleague");
    assert_eq!(d.tags, ["renamed by a colleague"]);
}

#[tokio::test]
async fn a_report_is_waited_for_until_ready() {
    let (_sim, sgt) = start(SgtSimulator::builder().report_delay(Duration::from_millis(400))).await;
    let run = sgt
        .reports()
        .create(NewReport::new("energy_summary"))
        .await
        .unwrap();
    assert_eq!(run.report().status, ReportStatus::Queued);
    let started = Instant::now();
    let ready = run.wait().deadline(Duration::from_secs(20)).await.unwrap();
    assert_eq!(ready.status, ReportStatus::Ready);
    assert!(ready.download_url.is_some());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_is_honoured_with_retry_after() {
    // Read bucket scaled to 60 a minute (one a second), burst 12: 16 calls run into it unless
    // they take over 4 seconds.
    let (sim, sgt) = start(SgtSimulator::builder().fleet_size(3).rate_limit_scale(0.1)).await;
    let started = Instant::now();
    for _ in 0..16 {
        sgt.devices().count().await.unwrap();
    }
    assert!(
        sim.stats().rate_limited >= 1,
        "the bucket ran out at least once"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the client waited as told"
    );
    let rl = sgt.last_rate_limit().unwrap();
    assert_eq!(rl.limit, Some(60));
}

#[tokio::test]
async fn pacing_avoids_429s_entirely() {
    let (sim, _) = start(SgtSimulator::builder().fleet_size(3).rate_limit_scale(0.1)).await;
    let paced = Client::builder()
        .api_key(sim.api_key())
        .base_url(sim.base_url())
        .pacing_buckets(vec![iot_sdk::Bucket::new(
            iot_sdk::sgt::RateBucket::Read,
            60,
            Duration::from_secs(60),
            12,
        )])
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    for _ in 0..14 {
        paced.devices().count().await.unwrap();
    }
    assert_eq!(sim.stats().rate_limited, 0);
}

#[tokio::test]
async fn oauth_code_exchange_and_refresh_against_the_simulator() {
    let sim = SgtSimulator::builder()
        .token_ttl(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let pkce = PkcePair::generate().unwrap();
    let code = sim.authorize(pkce.challenge());
    let oauth = OAuthClient::new(
        OAuthConfig::new("partner-app", "https://partner.example/callback")
            .token_url(sim.token_url()),
    )
    .unwrap();
    let tokens = oauth.exchange_code(&code, pkce.verifier()).await.unwrap();
    // The code works once.
    assert!(
        oauth
            .exchange_code(&code, pkce.verifier())
            .await
            .unwrap_err()
            .api()
            .is_some()
    );
    let refreshed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = refreshed.clone();
    let session = Arc::new(
        OAuthSession::new(oauth, tokens)
            .with_refresh_margin(Duration::from_secs(1))
            .on_refresh(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
    );
    let sgt = Client::builder()
        .oauth(session)
        .base_url(sim.base_url())
        .build()
        .unwrap();
    sgt.devices().count().await.unwrap();
    // Within a second of the 2-second expiry the session refreshes before using the token.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    sgt.devices().count().await.unwrap();
    assert_eq!(refreshed.load(std::sync::atomic::Ordering::SeqCst), 1);
}
