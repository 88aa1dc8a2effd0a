//! The Sepolo wiremock setup shared by the `sepolo*` tests.

use iot_sdk::sepolo::Client;
use wiremock::MockServer;

use super::fast_retry;

/// The key every Sepolo test client sends (in `X-Sepolo-Api-Key`).
pub const KEY: &str = "sep_live_test_key";

/// A wiremock server and a Sepolo client pointed at it, with near-zero retry delays.
pub async fn setup() -> (MockServer, Client) {
    let server = MockServer::start().await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.uri())
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    (server, client)
}
