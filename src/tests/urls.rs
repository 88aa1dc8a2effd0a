//! Base URLs and path segments: https unless loopback, no credentials in URLs, every id
//! percent-encoded, and ids that would change the path refused before anything is sent.

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::error::Error;
use crate::transport::parse_base_url;

#[test]
fn http_only_for_loopback_or_by_opting_out() {
    for ok in [
        "https://api.sgtsystems.com/v1",
        "http://127.0.0.1:8080/v1",
        "http://127.5.5.5/v1",
        "http://localhost:1/",
        "http://[::1]:9000",
    ] {
        parse_base_url(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "http://api.sgtsystems.com/v1",
        "http://10.0.0.5/v1",
        "http://localhost.evil.com/",
    ] {
        let err = parse_base_url(bad, false).unwrap_err();
        assert!(
            matches!(err, Error::Config(ref m) if m.contains("not https")),
            "{bad}: {err}"
        );
    }
    parse_base_url("http://api.sgtsystems.com/v1", true).unwrap();
    for bad in [
        "ftp://api.example.com",
        "not a url",
        "https://user:pw@api.example.com/v1",
        "https://api.example.com/v1?x=1",
        "https://api.example.com/v1#frag",
        "mailto:ops@example.com",
    ] {
        assert!(
            matches!(parse_base_url(bad, true), Err(Error::Config(_))),
            "{bad}"
        );
    }
    // The password is not echoed.
    let err = parse_base_url("https://user:hunter2@api.example.com", false).unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn builder_refuses_http_to_a_remote_host() {
    let b = builder_at("http://api.sgtsystems.com/v1");
    assert!(matches!(b.build(), Err(Error::Config(_))));
}

#[tokio::test]
async fn dot_segments_and_empty_ids_are_refused_before_sending() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let t = client(&server);
    for bad in ["..", ".", ""] {
        let err = t
            .send(&Request::new(Method::DELETE, segments!["devices", bad]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad:?}: {err:?}");
    }
    assert_eq!(request_count(&server).await, 0);
}

#[tokio::test]
async fn ids_are_percent_encoded_as_one_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!(null)))
        .mount(&server)
        .await;
    let t = client(&server);
    for (id, expected) in [
        ("a/b c?d#e", "/v1/devices/a%2Fb%20c%3Fd%23e"),
        ("../admin", "/v1/devices/..%2Fadmin"),
        ("%2e%2e", "/v1/devices/%252e%252e"),
        ("dev_42", "/v1/devices/dev_42"),
    ] {
        let (_, meta) = t.send_json::<Value>(&get(&["devices", id])).await.unwrap();
        assert_eq!(meta.request.unwrap().path(), expected);
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(reqs.last().unwrap().url.path(), expected);
    }
}

#[tokio::test]
async fn query_is_serialized_and_trailing_slash_in_base_is_fine() {
    #[derive(serde::Serialize)]
    struct Q<'a> {
        limit: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<&'a str>,
        from: chrono::DateTime<chrono::Utc>,
    }
    let server = MockServer::start().await;
    Mock::given(path("/v1/telemetry"))
        .and(wiremock::matchers::query_param("limit", "20"))
        .and(wiremock::matchers::query_param(
            "from",
            "2026-05-24T10:00:00Z",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!(null)))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let t = builder_at(&format!("{}/v1/", server.uri()))
        .build()
        .unwrap();
    let from = "2026-05-24T10:00:00Z".parse().unwrap();
    t.send(
        &get(&["telemetry"])
            .query(&Q {
                limit: 20,
                cursor: None,
                from,
            })
            .unwrap(),
    )
    .await
    .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs[0].url.query(),
        Some("limit=20&from=2026-05-24T10%3A00%3A00Z")
    );
}

/// A second server on 127.0.0.2, so the redirect crosses origins by host as well as port.
async fn other_origin() -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.2:0")
        .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!("stolen")))
        .mount(&server)
        .await;
    server
}

async fn cross_origin_redirect_carries_no_credentials(auth: Auth) {
    let evil = other_origin().await;
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("location", format!("{}/steal?x=1", evil.uri()).as_str()),
        )
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.auth(auth);
    let err = b.build().unwrap().send(&get(&["r"])).await.unwrap_err();
    // Not followed at all: the other origin saw nothing, with or without credentials.
    assert!(evil.received_requests().await.unwrap().is_empty());
    let api = err.api().unwrap();
    assert_eq!(api.status(), 302);
    assert!(api.message().contains("not followed"), "{}", api.message());
    assert!(
        !api.message().contains("steal"),
        "only the origin is named: {}",
        api.message()
    );
}

#[tokio::test]
async fn cross_origin_redirect_bearer() {
    cross_origin_redirect_carries_no_credentials(Auth::bearer(KEY)).await;
}

#[tokio::test]
async fn cross_origin_redirect_custom_header() {
    cross_origin_redirect_carries_no_credentials(Auth::header("X-Sepolo-Api-Key", KEY).unwrap())
        .await;
}

#[tokio::test]
async fn same_origin_redirect_is_followed_with_credentials() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/v1/new"))
        .mount(&server)
        .await;
    Mock::given(path("/v1/new"))
        .and(wiremock::matchers::header("x-sepolo-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!("moved")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let mut b = builder(&server);
    b.auth(Auth::header("X-Sepolo-Api-Key", KEY).unwrap());
    let (v, _) = b
        .build()
        .unwrap()
        .send_json::<String>(&get(&["old"]))
        .await
        .unwrap();
    assert_eq!(v, "moved");
}
