//! Sepolo errors: the error shape of each status, and unknown fields that never break decoding.

mod common;

use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use common::sepolo::setup;

#[tokio::test]
async fn errors_400_401_404_500() {
    let (server, sepolo) = setup().await;
    for (p, status, code) in [
        (
            "/api/v1/assets/bad",
            400,
            iot_sdk::ErrorCode::InvalidRequest,
        ),
        (
            "/api/v1/assets/unauth",
            401,
            iot_sdk::ErrorCode::Unauthenticated,
        ),
        ("/api/v1/assets/missing", 404, iot_sdk::ErrorCode::NotFound),
    ] {
        let word = match status {
            400 => "validation",
            401 => "unauthorized",
            _ => "not_found",
        };
        Mock::given(path(p))
            .respond_with(
                ResponseTemplate::new(status).set_body_json(json!({"error": word, "message": "m"})),
            )
            .mount(&server)
            .await;
        let id = p.rsplit('/').next().unwrap();
        let err = sepolo.assets().get(id).await.unwrap_err();
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.api().unwrap().code(), &code, "{p}");
    }
    Mock::given(path("/api/v1/assets/boom"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": "server_error", "message": "boom"})),
        )
        .mount(&server)
        .await;
    let err = sepolo.assets().get("boom").await.unwrap_err();
    assert_eq!(err.api().unwrap().attempts(), 3, "a GET is retried on 500");
}

#[tokio::test]
async fn unknown_fields_never_break_decoding() {
    let (server, sepolo) = setup().await;
    Mock::given(path("/api/v1/assets/x"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"assetId": "x", "brandNew": {"nested": [1, 2]}, "isActive": null}),
        ))
        .mount(&server)
        .await;
    let a = sepolo.assets().get("x").await.unwrap();
    assert_eq!(a.extra["brandNew"]["nested"][1], 2);
    assert_eq!(a.is_active, None);
}
