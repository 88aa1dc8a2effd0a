//! Shared helpers for the wiremock tests of the vendor modules.
#![allow(dead_code)]

pub mod sepolo;
pub mod sgt;
pub mod siliconwit;

use std::time::Duration;

use iot_sdk::RetryPolicy;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The property-test configuration: 64 cases by default so that `cargo test` stays fast, or as
/// many as `PROPTEST_CASES` says (`PROPTEST_CASES=10000 cargo test security_`).
pub fn proptest_config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// A fixture from `fixtures/<vendor>/<name>.json`, as a JSON value.
pub fn fixture(vendor: &str, name: &str) -> serde_json::Value {
    let path = format!(
        "{}/fixtures/{vendor}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A 200 response with a fixture body.
pub fn ok_fixture(vendor: &str, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(fixture(vendor, name))
}

/// Retries with (almost) no delay, so retry tests take milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(2))
}

/// Mounts a catch-all answering 418 last, so a request that matched no mock fails loudly.
pub async fn catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(418).set_body_string("no mock matched this request"))
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}

/// The one request the server received (asserts there was exactly one).
pub async fn only_request(server: &MockServer) -> wiremock::Request {
    let mut reqs = server.received_requests().await.unwrap_or_default();
    assert_eq!(reqs.len(), 1, "expected exactly one request: {reqs:?}");
    reqs.remove(0)
}

/// The query string of the one request the server received.
pub async fn query_string(server: &MockServer) -> Option<String> {
    only_request(server).await.url.query().map(str::to_owned)
}

/// Mounts `GET path` answering with `fixtures/<vendor>/<name>.json`, requiring the credential
/// header `auth` and `Accept: application/json`, exactly once; anything else meets the
/// catch-all.
pub async fn get_fixture_for(
    server: &MockServer,
    p: &str,
    (vendor, name): (&str, &str),
    auth: (&str, &str),
) {
    use wiremock::matchers::{header, method, path};
    Mock::given(method("GET"))
        .and(path(p))
        .and(header(auth.0, auth.1))
        .and(header("accept", "application/json"))
        .respond_with(ok_fixture(vendor, name))
        .expect(1)
        .mount(server)
        .await;
    catch_all(server).await;
}

/// The request body as JSON.
pub fn body_json(req: &wiremock::Request) -> serde_json::Value {
    serde_json::from_slice(&req.body).expect("a JSON body")
}

/// The simulator `start()` returned, or a panic that says why it did not start.
pub fn started<S>(
    result: iot_sdk_sim::Result<iot_sdk_sim::Simulator<S>>,
) -> iot_sdk_sim::Simulator<S> {
    match result {
        Ok(sim) => sim,
        Err(e) => panic!("simulator did not start: {e}"),
    }
}
