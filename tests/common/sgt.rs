//! The SGT wiremock setup shared by the `sgt_*` tests, and the simulator setup of `sgt_simulator`.

use iot_sdk::sgt::Client;
use wiremock::MockServer;
use wiremock::matchers::header;

use super::fast_retry;

/// The key every SGT test client sends.
pub const KEY: &str = "sgt_test_key";

/// A wiremock server and an SGT client pointed at its `/v1`, with a tenant, a product token in
/// `User-Agent` and near-zero retry delays.
pub async fn setup() -> (MockServer, Client) {
    let server = MockServer::start().await;
    let client = Client::builder()
        .api_key(KEY)
        .tenant("acme-industries")
        .user_agent("acme-erp-sync/1.4.2")
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    (server, client)
}

/// Requires the headers every SGT request carries.
pub fn sgt_headers(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("x-sgt-tenant", "acme-industries"))
        .and(header(
            "user-agent",
            concat!("acme-erp-sync/1.4.2 iot-sdk/", env!("CARGO_PKG_VERSION")),
        ))
        .and(header("accept", "application/json"))
}

// ---------------------------------------------------------------------------------------------
// The SGT simulator setup shared by the `sgt_simulator` tests.
// ---------------------------------------------------------------------------------------------

/// Patient, fast retries: with injected faults, a page may need several attempts.
pub fn patient() -> iot_sdk::RetryPolicy {
    iot_sdk::RetryPolicy::default()
        .with_max_attempts(12)
        .with_initial_delay(std::time::Duration::from_millis(1))
        .with_max_delay(std::time::Duration::from_millis(10))
}

/// Starts the simulator `b` describes and a client of it with [`patient`] retries and no retry
/// budget.
pub async fn simulator(
    b: iot_sdk_sim::sgt::SgtSimulatorBuilder,
) -> (iot_sdk_sim::sgt::SgtSimulator, Client) {
    let sim = super::started(b.start().await);
    let client = Client::builder()
        .api_key(sim.api_key())
        .tenant(sim.tenant())
        .base_url(sim.base_url())
        .retry_policy(patient())
        .retry_budget(iot_sdk::RetryBudget::unlimited())
        .build()
        .unwrap();
    (sim, client)
}
