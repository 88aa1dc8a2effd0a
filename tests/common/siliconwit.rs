//! The SiliconWit wiremock setup shared by the `siliconwit*` tests, and the simulator setup of
//! `siliconwit_simulator`.

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
