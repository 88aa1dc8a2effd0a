//! SiliconWit errors: input refused before sending, the text error body, a 429 and the daily
//! rate-limit headers.

mod common;

use common::*;
use futures::TryStreamExt;
use iot_sdk::Error;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use common::siliconwit::setup;

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
