//! Sepolo `me`: the key's identity and scopes, the key's placement, and a missing scope.

mod common;

use common::*;
use iot_sdk::Error;
use iot_sdk::sepolo::{Client, MissingScope, Scope};
use wiremock::matchers::{header, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use common::query_string;
use common::sepolo::{KEY, get_fixture, setup};

#[tokio::test]
async fn me_and_scopes() {
    let (server, sepolo) = setup().await;
    get_fixture(&server, "/api/v1/me", "me").await;
    let me = sepolo.me().await.unwrap();
    assert_eq!(me.organization_id, "7f2d3f0a-7c51-42cf-a06d-2c2df5f0c20b");
    assert_eq!(me.client_name.as_deref(), Some("Partner API"));
    assert_eq!(
        me.scopes,
        [
            Scope::AssetsRead,
            Scope::DevicesRead,
            Scope::ServiceVisitsRead
        ]
    );
    assert_eq!(me.rate_limit.unwrap().requests_per_minute, None);
    assert_eq!(query_string(&server).await, None);
}

#[tokio::test]
async fn require_scopes_names_the_missing_ones() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/me"))
        .respond_with(ok_fixture("sepolo", "me"))
        .mount(&server)
        .await;
    sepolo.require_scopes(&[Scope::AssetsRead]).await.unwrap();
    let err = sepolo
        .require_scopes(&[
            Scope::AssetsRead,
            Scope::ReportingRead,
            Scope::AppointmentsRead,
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.ends_with("lacks the scopes: reporting.read, appointments.read")),
        "{err}"
    );
}

#[tokio::test]
async fn bearer_placement_is_the_callers_choice() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/me"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ok_fixture("sepolo", "me"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let sepolo = Client::builder()
        .api_key(KEY)
        .send_key_as_bearer(true)
        .base_url(server.uri())
        .build()
        .unwrap();
    sepolo.me().await.unwrap();
    assert!(
        only_request(&server)
            .await
            .headers
            .get("x-sepolo-api-key")
            .is_none()
    );
}

#[tokio::test]
async fn a_missing_scope_403_names_the_scope() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/appointments"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(fixture("sepolo", "error_forbidden")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = sepolo.service().appointments().send().await.unwrap_err();
    assert!(err.is_forbidden());
    let api = err.api().unwrap();
    assert_eq!(api.code(), &iot_sdk::ErrorCode::Forbidden);
    assert_eq!(api.missing_scope(), Some("appointments.read"));
    assert_eq!(
        err.to_string(),
        "HTTP 403 forbidden: The API key does not include the appointments.read scope. (GET /api/v1/appointments)"
    );
}
