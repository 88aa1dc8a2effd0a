//! What reaches the caller when a body is not what it should be: a clear error, never a panic.

use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::error::{Error, ErrorCode, TransportErrorKind};

async fn serve(status: u16, body: ResponseTemplate) -> (MockServer, Transport) {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(body)
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.retry_policy(RetryPolicy::none());
    let t = b.build().unwrap();
    let _ = status;
    (server, t)
}

#[derive(Debug, Deserialize)]
struct Reading {
    #[allow(dead_code)]
    ts: String,
    #[allow(dead_code)]
    value: f64,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[allow(dead_code)]
    data: Vec<Reading>,
}

#[tokio::test]
async fn html_502_from_a_proxy_is_an_api_error_with_a_snippet() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
    let (_s, t) = serve(
        502,
        ResponseTemplate::new(502).set_body_raw(html, "text/html"),
    )
    .await;
    let err = t.send_json::<Value>(&get(&["r"])).await.unwrap_err();
    let api = err.api().expect("an API error, not a decode error");
    assert_eq!(api.status(), 502);
    assert_eq!(api.code(), &ErrorCode::BadGateway);
    assert_eq!(api.message(), "Bad Gateway");
    assert_eq!(api.body_snippet(), Some(html));
    assert!(
        err.to_string()
            .starts_with("HTTP 502 bad_gateway: Bad Gateway (GET /v1/r)"),
        "{err}"
    );
}

#[tokio::test]
async fn long_non_json_bodies_are_cut() {
    let body = "é".repeat(5000);
    let (_s, t) = serve(500, ResponseTemplate::new(500).set_body_string(body)).await;
    let err = t.send(&get(&["r"])).await.unwrap_err();
    let snip = err.api().unwrap().body_snippet().unwrap();
    assert!(snip.len() <= 243 && snip.ends_with('…'), "{}", snip.len());
}

#[tokio::test]
async fn the_three_vendor_error_bodies_are_normalized() {
    // SGT: nested, with details and a request id in the body (no header).
    let (_s, t) = serve(
        404,
        ResponseTemplate::new(404).set_body_json(json!({
            "error": {
                "code": "device_not_found",
                "message": "No device with id 'dev_42' exists in tenant 'acme-industries'.",
                "details": {"device_id": "dev_42"},
                "request_id": "req_01HW3K9F2X"
            }
        })),
    )
    .await;
    let err = t.send(&get(&["r"])).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.code(), &ErrorCode::NotFound);
    assert_eq!(api.vendor_code(), Some("device_not_found"));
    assert_eq!(api.details(), Some(&json!({"device_id": "dev_42"})));
    assert_eq!(api.request_id(), Some("req_01HW3K9F2X"));
    assert!(err.is_not_found());

    // Sepolo: flat code + message.
    let (_s, t) = serve(
        403,
        ResponseTemplate::new(403).set_body_json(json!({
            "error": "forbidden",
            "message": "The API key does not include the appointments.read scope."
        })),
    )
    .await;
    let err = t.send(&get(&["r"])).await.unwrap_err();
    assert_eq!(err.api().unwrap().code(), &ErrorCode::Forbidden);
    assert_eq!(
        err.api().unwrap().message(),
        "The API key does not include the appointments.read scope."
    );
    assert!(err.is_forbidden());

    // SiliconWit: a sentence only; the code comes from the status.
    let (_s, t) = serve(
        404,
        ResponseTemplate::new(404).set_body_json(json!({"error": "Device not found"})),
    )
    .await;
    let err = t.send(&get(&["r"])).await.unwrap_err();
    assert_eq!(err.api().unwrap().code(), &ErrorCode::NotFound);
    assert_eq!(err.api().unwrap().message(), "Device not found");

    // An unknown code is kept.
    let (_s, t) = serve(
        400,
        ResponseTemplate::new(400)
            .set_body_json(json!({"error": {"code": "quota_exceeded", "message": "m"}})),
    )
    .await;
    let err = t.send(&get(&["r"])).await.unwrap_err();
    assert_eq!(
        err.api().unwrap().code(),
        &ErrorCode::Other("quota_exceeded".into())
    );
}

#[tokio::test]
async fn empty_and_odd_error_bodies() {
    for (status, body) in [
        (500, ""),
        (503, "null"),
        (500, "[1,2]"),
        (500, "{\"error\": 42}"),
        (500, "{\"error\": {\"code\": 5}}"),
        (500, "{\"error\": "),
    ] {
        let (_s, t) = serve(status, ResponseTemplate::new(status).set_body_string(body)).await;
        let err = t.send(&get(&["r"])).await.unwrap_err();
        let api = err.api().unwrap_or_else(|| panic!("{body}: {err:?}"));
        assert_eq!(api.status(), status);
        assert_eq!(api.code(), &ErrorCode::from_status(status), "{body}");
        assert!(!api.message().is_empty());
    }
}

#[tokio::test]
async fn truncated_json_is_a_decode_error_with_status_request_id_and_snippet() {
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200)
            .insert_header("x-request-id", "req_trunc")
            .set_body_string("{\"data\": [{\"ts\": \"2026-05-24T10:00:00Z\", \"val"),
    )
    .await;
    let err = t.send_json::<Envelope>(&get(&["r"])).await.unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.status(), 200);
    assert_eq!(d.request_id(), Some("req_trunc"));
    assert!(d.message().contains("EOF"), "{}", d.message());
    assert!(d.body_snippet().unwrap().starts_with("{\"data\""));
    assert!(err.to_string().contains("req_trunc"));
}

#[tokio::test]
async fn wrong_types_name_the_field_path() {
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200).set_body_json(json!({
            "data": [
                {"ts": "2026-05-24T10:00:00Z", "value": 12.7},
                {"ts": "2026-05-24T10:00:05Z", "value": "twelve"}
            ]
        })),
    )
    .await;
    let err = t.send_json::<Envelope>(&get(&["r"])).await.unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.field_path(), "data[1].value");
    assert!(d.message().contains("invalid type"), "{}", d.message());
    assert!(err.to_string().contains("`data[1].value`"), "{err}");
}

#[tokio::test]
async fn empty_success_bodies() {
    let (_s, t) = serve(200, ResponseTemplate::new(200)).await;
    // Nothing expected: fine.
    t.send_json::<()>(&get(&["r"])).await.unwrap();
    let (v, _) = t.send_json::<Option<Envelope>>(&get(&["r"])).await.unwrap();
    assert!(v.is_none());
    // Something expected: a decode error at the root.
    let err = t.send_json::<Envelope>(&get(&["r"])).await.unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.field_path(), ".");
    assert_eq!(d.body_snippet(), None);
}

#[tokio::test]
async fn trailing_garbage_and_non_utf8_do_not_panic() {
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200).set_body_string("{\"data\": []} trailing"),
    )
    .await;
    assert!(matches!(
        t.send_json::<Envelope>(&get(&["r"])).await,
        Err(Error::Decode(_))
    ));
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200).set_body_raw(vec![0xff, 0xfe, b'{'], "application/json"),
    )
    .await;
    assert!(matches!(
        t.send_json::<Envelope>(&get(&["r"])).await,
        Err(Error::Decode(_))
    ));
    let (_s, t) = serve(
        500,
        ResponseTemplate::new(500).set_body_raw(vec![0xff, 0xfe, b'{'], "text/plain"),
    )
    .await;
    assert!(t.send(&get(&["r"])).await.unwrap_err().api().is_some());
}

#[tokio::test]
async fn sensitive_responses_have_no_snippet() {
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200).set_body_string("{\"secret\": \"whsec_abc\", "),
    )
    .await;
    let err = t
        .send_json::<Value>(&get(&["r"]).sensitive_response())
        .await
        .unwrap_err();
    let Error::Decode(d) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(d.body_snippet(), None);
    assert!(!format!("{err} {err:?}").contains("whsec_abc"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let (_s, _) = serve(200, ResponseTemplate::new(200)).await;
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(10_000)))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.max_response_bytes(1000);
    b.retry_policy(RetryPolicy::none());
    let err = b.build().unwrap().send(&get(&["r"])).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport(ref t) if t.kind() == TransportErrorKind::ResponseTooLarge),
        "{err:?}"
    );
}

#[tokio::test]
async fn metadata_request_id_etag_deprecation() {
    let (_s, t) = serve(
        200,
        ResponseTemplate::new(200)
            .insert_header("etag", "\"v7\"")
            .insert_header("deprecation", "@1688169599")
            .insert_header("sunset", "Sat, 01 Jul 2028 00:00:00 GMT")
            .set_body_json(json!({"data": [], "meta": {"request_id": "req_body"}})),
    )
    .await;
    for _ in 0..2 {
        let (_, meta) = t.send_json::<Value>(&get(&["r"])).await.unwrap();
        assert_eq!(meta.request_id.as_deref(), Some("req_body"));
        assert_eq!(meta.etag.as_deref(), Some("\"v7\""));
        assert!(meta.is_deprecated());
        assert_eq!(
            meta.sunset_at().unwrap().to_rfc3339(),
            "2028-07-01T00:00:00+00:00"
        );
        assert_eq!(meta.attempts, 1);
        assert_eq!(meta.request.as_ref().unwrap().to_string(), "GET /v1/r");
    }
    // Logged once per endpoint, not once per call.
    assert_eq!(t.inner_warned_len(), 1);
}
