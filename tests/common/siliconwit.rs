//! The SiliconWit wiremock setup shared by the `siliconwit*` tests, and the simulator setup of
//! `siliconwit_simulator`.

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

/// Mounts `GET path` answering with a fixture, requiring the bearer key, exactly once.
pub async fn get_fixture(server: &MockServer, p: &str, name: &str) {
    let bearer = format!("Bearer {KEY}");
    super::get_fixture_for(server, p, ("siliconwit", name), ("authorization", &bearer)).await;
}

// ---------------------------------------------------------------------------------------------
// The SiliconWit simulator setup shared by the `siliconwit_simulator` tests.
// ---------------------------------------------------------------------------------------------

/// Starts the simulator `builder` describes, accepting [`KEY`].
pub async fn simulator(
    builder: iot_sdk_sim::siliconwit::SiliconWitSimulatorBuilder,
) -> iot_sdk_sim::siliconwit::SiliconWitSimulator {
    super::started(builder.api_key(KEY).start().await)
}

/// A client of `sim` that retries up to 10 times with millisecond delays.
pub fn simulator_client(sim: &iot_sdk_sim::siliconwit::SiliconWitSimulator) -> Client {
    Client::builder()
        .api_key(sim.api_key())
        .base_url(sim.base_url())
        .retry_policy(
            iot_sdk::RetryPolicy::default()
                .with_max_attempts(10)
                .with_initial_delay(std::time::Duration::from_millis(1))
                .with_max_delay(std::time::Duration::from_millis(4))
                .with_retry_after_cap(std::time::Duration::from_secs(1)),
        )
        .build()
        .expect("client")
}
