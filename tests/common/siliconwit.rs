//! The SiliconWit wiremock setup shared by the `siliconwit*` tests.

use iot_sdk::siliconwit::Client;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer};

use super::{catch_all, fast_retry, ok_fixture, only_request};

/// The key every SiliconWit test client sends (as a bearer token).
pub const KEY: &str = "swk_test_key";

/// A wiremock server and a SiliconWit client pointed at its `/v1`, with near-zero retry delays.
pub async fn setup() -> (MockServer, Client) {
    let server = MockServer::start().await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    (server, client)
}

/// Mounts `GET path` answering with a fixture, requiring the bearer key, exactly once.
pub async fn get_fixture(server: &MockServer, p: &str, name: &str) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ok_fixture("siliconwit", name))
        .expect(1)
        .mount(server)
        .await;
    catch_all(server).await;
}

/// The query string of the one request the server received.
pub async fn query_string(server: &MockServer) -> Option<String> {
    only_request(server).await.url.query().map(str::to_owned)
}
