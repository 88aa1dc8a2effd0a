//! The Sepolo wiremock setup shared by the `sepolo*` tests, and the simulator setup of
//! `sepolo_simulator`.

use chrono::{DateTime, Utc};
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

/// Parses an RFC 3339 instant (test data).
pub fn instant(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Mounts `GET path` answering with a fixture, requiring the key header, exactly once.
pub async fn get_fixture(server: &MockServer, p: &str, fixture_name: &str) {
    super::get_fixture_for(
        server,
        p,
        ("sepolo", fixture_name),
        ("x-sepolo-api-key", KEY),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// The Sepolo simulator setup shared by the `sepolo_simulator` tests.
// ---------------------------------------------------------------------------------------------

/// Starts the simulator `builder` describes.
pub async fn simulator(
    builder: iot_sdk_sim::sepolo::SepoloSimulatorBuilder,
) -> iot_sdk_sim::sepolo::SepoloSimulator {
    super::started(builder.start().await)
}

/// A client of `sim` sending `key`.
pub fn simulator_client(sim: &iot_sdk_sim::sepolo::SepoloSimulator, key: &str) -> Client {
    Client::builder()
        .api_key(key)
        .base_url(sim.base_url())
        .build()
        .expect("client")
}
