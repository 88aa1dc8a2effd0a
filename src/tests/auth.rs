//! Credentials go where they should, and nowhere else.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::auth::{ApiKey, TokenSource};
use crate::error::{Error, Result};

#[tokio::test]
async fn bearer_key_user_agent_and_default_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/devices"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "application/json"))
        .and(header(
            "user-agent",
            concat!("acme-erp-sync/1.4.2 iot-sdk/", env!("CARGO_PKG_VERSION")),
        ))
        .and(header("x-sgt-tenant", "acme-industries"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let mut b = builder(&server);
    b.user_agent("acme-erp-sync/1.4.2");
    b.header("X-SGT-Tenant", "acme-industries");
    let (v, meta) = b
        .build()
        .unwrap()
        .send_json::<Value>(&get(&["devices"]))
        .await
        .unwrap();
    assert_eq!(v, json!({"ok": true}));
    assert_eq!(meta.status, 200);
}

#[tokio::test]
async fn default_user_agent_is_the_sdk_alone() {
    let server = MockServer::start().await;
    Mock::given(header(
        "user-agent",
        concat!("iot-sdk/", env!("CARGO_PKG_VERSION")),
    ))
    .respond_with(ResponseTemplate::new(204))
    .expect(1)
    .mount(&server)
    .await;
    catch_all(&server).await;
    client(&server).send(&get(&["x"])).await.unwrap();
}

#[tokio::test]
async fn named_header_key_and_no_authorization() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/api/v1/me"))
        .and(header("x-sepolo-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let mut b = builder(&server);
    b.auth(Auth::header("X-Sepolo-Api-Key", KEY).unwrap());
    b.build()
        .unwrap()
        .send_json::<Value>(&get(&["api", "v1", "me"]))
        .await
        .unwrap();
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn missing_or_empty_key_is_a_config_error() {
    let b = TransportBuilder::new::<TestVendor>("https://api.example.com/v1");
    assert!(matches!(b.build(), Err(Error::Config(m)) if m.contains("no credentials")));
    let mut b = TransportBuilder::new::<TestVendor>("https://api.example.com/v1");
    b.auth(Auth::bearer(""));
    assert!(matches!(b.build(), Err(Error::Config(m)) if m.contains("empty")));
}

/// A token source that hands out `t1`, then `t2` after a refresh.
#[derive(Debug, Default)]
struct Rotating {
    refreshed: Mutex<bool>,
}

impl TokenSource for Rotating {
    fn token(&self) -> BoxFuture<'_, Result<ApiKey>> {
        let t = if *self.refreshed.lock().unwrap() {
            "t2"
        } else {
            "t1"
        };
        Box::pin(async move { Ok(ApiKey::new(t)) })
    }
    fn refresh(&self, rejected: &ApiKey) -> BoxFuture<'_, Result<ApiKey>> {
        assert_eq!(rejected.expose(), "t1");
        *self.refreshed.lock().unwrap() = true;
        Box::pin(async { Ok(ApiKey::new("t2")) })
    }
}

#[tokio::test]
async fn token_source_is_refreshed_once_on_401() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer t1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "unauthenticated", "message": "token expired"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer t2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(1)))
        .expect(1)
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.auth(Auth::token_source(Arc::new(Rotating::default())));
    let (v, _) = b
        .build()
        .unwrap()
        .send_json::<u32>(&get(&["x"]))
        .await
        .unwrap();
    assert_eq!(v, 1);
}

#[tokio::test]
async fn a_static_key_is_not_retried_on_401() {
    let server = MockServer::start().await;
    Mock::given(header_exists("authorization"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"code": "unauthenticated", "message": "bad key"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).send(&get(&["x"])).await.unwrap_err();
    assert!(err.is_unauthenticated());
}

/// The key is absent from `Debug` of the builder and client, from every error's `Display` and
/// `Debug`, and from everything logged at TRACE level, even when the server echoes it back.
#[tokio::test]
async fn key_never_appears_in_debug_errors_or_traces() {
    let capture = traces();

    let server = MockServer::start().await;
    // 401 whose message echoes the key.
    Mock::given(path("/v1/echo"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": "unauthenticated", "message": format!("key {KEY} is revoked")}
        })))
        .mount(&server)
        .await;
    // A success body that does not decode, and echoes the key.
    Mock::given(path("/v1/garbage"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!("{{\"key\": \"{KEY}\", ")))
        .mount(&server)
        .await;
    // A non-JSON error page echoing the key.
    Mock::given(path("/v1/html"))
        .respond_with(
            ResponseTemplate::new(502)
                .set_body_raw(format!("<html>Bearer {KEY}</html>"), "text/html"),
        )
        .mount(&server)
        .await;
    // Retried with the key in the header, then given up.
    Mock::given(path("/v1/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let mut b = builder(&server);
    b.header("X-SGT-Tenant", "acme");
    let builder_debug = format!("{b:?}");
    let transport = b.build().unwrap();
    let mut outputs = vec![builder_debug, format!("{transport:?}")];

    for p in ["echo", "garbage", "html", "flaky"] {
        let err = transport.send_json::<Value>(&get(&[p])).await.unwrap_err();
        outputs.push(err.to_string());
        outputs.push(format!("{err:?}"));
    }
    // A transport error: nothing listens.
    let mut dead = builder_at(&format!("http://127.0.0.1:{}/v1", dead_port()));
    dead.auth(Auth::header("X-Sepolo-Api-Key", KEY).unwrap());
    let dead = dead.build().unwrap();
    outputs.push(format!("{dead:?}"));
    let err = dead.send(&get(&["x"])).await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    outputs.push(err.to_string());
    outputs.push(format!("{err:?}"));
    // A config error with a key that is not a valid header value.
    let mut bad = builder_at("https://api.example.com");
    bad.auth(Auth::bearer(format!("{KEY}\n")));
    let err = bad.build().unwrap_err();
    outputs.push(format!("{err} {err:?}"));

    // The capture holds this test's traces and those of every test that ran before it in this
    // binary, all of which use the same key.
    let traces = capture.text();
    assert!(traces.contains("retrying"), "the capture works: {traces}");
    assert!(traces.contains("iot_sdk.request"));
    outputs.push(traces);
    for out in &outputs {
        assert!(!out.contains("TOPSECRET"), "key leaked into: {out}");
    }
    // The echoed key was replaced, not just the message dropped.
    assert!(
        outputs
            .iter()
            .any(|o| o.contains("key [REDACTED] is revoked"))
    );
}

/// A token from a token source (OAuth2) is redacted from error text too, not only static keys.
#[tokio::test]
async fn a_token_source_token_echoed_by_the_server_is_redacted() {
    #[derive(Debug)]
    struct Fixed;
    impl TokenSource for Fixed {
        fn token(&self) -> BoxFuture<'_, Result<ApiKey>> {
            Box::pin(async { Ok(ApiKey::new("tok_TOPSECRET_oauth")) })
        }
        fn refresh(&self, _: &ApiKey) -> BoxFuture<'_, Result<ApiKey>> {
            Box::pin(async { Ok(ApiKey::new("tok_TOPSECRET_oauth")) })
        }
    }
    let server = MockServer::start().await;
    Mock::given(path("/v1/bad"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"code": "invalid_request", "message": "token tok_TOPSECRET_oauth is malformed"}
        })))
        .mount(&server)
        .await;
    Mock::given(path("/v1/garbled"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"you_sent\": \"tok_TOPSECRET_oauth\", "),
        )
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.auth(Auth::token_source(Arc::new(Fixed)));
    let t = b.build().unwrap();
    for p in ["bad", "garbled"] {
        let err = t.send_json::<Value>(&get(&[p])).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("[REDACTED]"), "{shown}");
    }
}

/// A caller's own `reqwest::Client` is used as given (here: a default header only it sets),
/// with the SDK's credentials and headers on top.
#[tokio::test]
async fn a_custom_reqwest_client_is_used() {
    let server = MockServer::start().await;
    Mock::given(header("x-corp-proxy-tag", "finance"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("via custom client")))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-corp-proxy-tag", "finance".parse().unwrap());
    let custom = reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut b = builder(&server);
    b.http_client(custom);
    let (v, _) = b
        .build()
        .unwrap()
        .send_json::<String>(&get(&["x"]))
        .await
        .unwrap();
    assert_eq!(v, "via custom client");
}
