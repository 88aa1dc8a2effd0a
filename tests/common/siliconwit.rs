//! The SiliconWit wiremock setup shared by the `siliconwit*` tests.

use iot_sdk::siliconwit::Client;
use wiremock::MockServer;

use super::fast_retry;

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
