//! SGT OAuth2: PKCE, the authorization URL, the token requests' exact form bodies, sessions that
//! refresh ahead of expiry and once on a 401, and tokens never showing in `Debug` or errors.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use common::*;
use iot_sdk::sgt::Client;
use iot_sdk::sgt::oauth::{
    OAuthClient, OAuthConfig, OAuthSession, PkcePair, TokenSet, random_state,
};
use iot_sdk::{ApiKey, Error, ErrorCode, TokenSource};
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const ACCESS: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNndC0yMDI2LTA1In0.eyJzdWIiOiJ1c3JfODgxMiIsInRlbmFudCI6ImFjbWUtaW5kdXN0cmllcyIsImV4cCI6MTc3OTYyMjAwMH0.Q2k9xVb3rN7tYp1LmZ4sH8wJd6fKc0aE5gTu2iRoXyM";
const REFRESH: &str = "sgt_rt_3Kp9Vx2LmQ7wZr4TnB8yHc1Fd6Js5Ga0";

fn config(server: &MockServer) -> OAuthConfig {
    OAuthConfig::new("acme-erp", "https://erp.example.com/oauth/callback")
        .token_url(format!("{}/oauth2/token", server.uri()))
        .user_agent("acme-erp-sync/1.4.2")
        .retry_policy(fast_retry())
}

fn form(req: &wiremock::Request) -> String {
    String::from_utf8(req.body.clone()).unwrap()
}

fn token_response(access: &str, refresh: Option<&str>, expires_in: u64) -> ResponseTemplate {
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

#[test]
fn pkce_pairs_follow_rfc_7636() {
    // Appendix B, verified against the RFC text.
    let p = PkcePair::from_verifier(VERIFIER).unwrap();
    assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(p.method(), "S256");

    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let p = PkcePair::generate().unwrap();
        let v = p.verifier();
        assert!((43..=128).contains(&v.len()), "{}", v.len());
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            "{v}"
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(v).unwrap().len(), 32);
        assert_eq!(
            p.challenge(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
        );
        assert!(!format!("{p:?}").contains(v), "Debug hides the verifier");
        assert!(seen.insert(v.to_owned()), "verifiers repeat");
    }
    for bad in ["short", &"a".repeat(129), &format!("{}/", "a".repeat(50))] {
        assert!(matches!(
            PkcePair::from_verifier(bad),
            Err(Error::InvalidInput(_))
        ));
    }
    let s = random_state().unwrap();
    assert_eq!(s.len(), 22);
    assert_ne!(s, random_state().unwrap());
}

#[test]
fn authorization_url_carries_the_standard_parameters() {
    let pkce = PkcePair::from_verifier(VERIFIER).unwrap();
    let config = OAuthConfig::new("acme-erp", "https://erp.example.com/oauth/callback");
    let url = config
        .authorization_url(
            "https://auth.sgtsystems.com/oauth2/authorize",
            ["devices:read", "events:write"],
            "st4te",
            &pkce,
        )
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://auth.sgtsystems.com/oauth2/authorize?response_type=code&client_id=acme-erp\
         &redirect_uri=https%3A%2F%2Ferp.example.com%2Foauth%2Fcallback\
         &scope=devices%3Aread+events%3Awrite&state=st4te\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let no_scope = config
        .authorization_url("https://a.example/authorize", [""; 0], "s", &pkce)
        .unwrap();
    assert!(!no_scope.as_str().contains("scope="));
    assert!(matches!(
        config.authorization_url("https://a.example/authorize", ["x"], " ", &pkce),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        config.authorization_url("http://auth.example/authorize", ["x"], "s", &pkce),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn exchange_posts_the_exact_form_without_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("accept", "application/json"))
        .and(header(
            "user-agent",
            concat!("acme-erp-sync/1.4.2 iot-sdk/", env!("CARGO_PKG_VERSION")),
        ))
        .respond_with(ok_fixture("sgt", "oauth_token"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let oauth = OAuthClient::new(config(&server).client_secret("cs_topsecret")).unwrap();
    let before = Utc::now();
    let tokens = oauth
        .exchange_code("SplxlOBeZQQYbYS6WxSbIA", VERIFIER)
        .await
        .unwrap();
    let req = only_request(&server).await;
    assert_eq!(
        form(&req),
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
         &redirect_uri=https%3A%2F%2Ferp.example.com%2Foauth%2Fcallback&client_id=acme-erp\
         &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&client_secret=cs_topsecret"
    );
    assert!(req.headers.get("authorization").is_none());
    assert!(req.headers.get("x-sgt-tenant").is_none());

    assert_eq!(tokens.access_token.expose(), ACCESS);
    assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), REFRESH);
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(
        tokens.scope.as_deref(),
        Some("devices:read devices:write telemetry:read events:write")
    );
    let lifetime = tokens.expires_at - before;
    assert!(
        (3599..=3601).contains(&lifetime.num_seconds()),
        "{lifetime:?}"
    );
    let debug = format!("{tokens:?} {oauth:?}");
    for secret in [ACCESS, REFRESH, "cs_topsecret"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[tokio::test]
async fn a_public_client_sends_no_secret_and_bad_input_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok_fixture("sgt", "oauth_token"))
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(config(&server)).unwrap();
    oauth.exchange_code("c0de", VERIFIER).await.unwrap();
    assert!(!form(&only_request(&server).await).contains("client_secret"));

    assert!(matches!(
        oauth.exchange_code(" ", VERIFIER).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        oauth.exchange_code("c0de", "too-short").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        oauth.refresh("").await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(matches!(
        OAuthClient::new(OAuthConfig::new("id", "https://x/cb").token_url("http://auth.example/t")),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn invalid_grant_is_an_api_error_without_the_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": format!("Refresh token {REFRESH} is expired or revoked.")
        })))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(config(&server)).unwrap();
    let err = oauth.refresh(REFRESH).await.unwrap_err();
    let api = err.api().expect("an API error");
    assert_eq!(api.status(), 400);
    assert_eq!(api.code(), &ErrorCode::Other("invalid_grant".into()));
    assert_eq!(
        api.message(),
        "Refresh token [REDACTED] is expired or revoked."
    );
    assert!(!err.is_retryable());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(REFRESH), "{text}");
    }
    assert_eq!(
        form(&only_request(&server).await),
        format!("grant_type=refresh_token&refresh_token={REFRESH}&client_id=acme-erp")
    );
}

#[tokio::test]
async fn token_requests_are_not_retried_after_a_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(config(&server)).unwrap();
    let err = oauth.exchange_code("c0de", VERIFIER).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_non_bearer_token_is_a_protocol_error_without_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "mac_secret_token", "token_type": "mac", "expires_in": 60
        })))
        .mount(&server)
        .await;
    let oauth = OAuthClient::new(config(&server)).unwrap();
    let err = oauth.exchange_code("c0de", VERIFIER).await.unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(!format!("{err} {err:?}").contains("mac_secret_token"));
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_on_the_next_token_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_response("access_2", Some("refresh_2"), 3600))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    let refreshed = Arc::new(AtomicUsize::new(0));
    let hook = refreshed.clone();
    let tokens = TokenSet::new("access_1", Utc::now() + chrono::TimeDelta::seconds(30))
        .with_refresh_token("refresh_1")
        .with_scope("devices:read");
    let session = OAuthSession::new(OAuthClient::new(config(&server)).unwrap(), tokens).on_refresh(
        move |t| {
            assert_eq!(t.access_token.expose(), "access_2");
            hook.fetch_add(1, Ordering::SeqCst);
        },
    );
    assert_eq!(session.token().await.unwrap().expose(), "access_2");
    assert_eq!(
        form(&only_request(&server).await),
        "grant_type=refresh_token&refresh_token=refresh_1&client_id=acme-erp"
    );
    // Fresh now: no second refresh.
    assert_eq!(session.token().await.unwrap().expose(), "access_2");
    let now = session.tokens().await;
    assert_eq!(now.refresh_token.unwrap().expose(), "refresh_2");
    assert_eq!(
        now.scope.as_deref(),
        Some("devices:read"),
        "kept when not resent"
    );
    assert_eq!(refreshed.load(Ordering::SeqCst), 1);
    assert!(!format!("{session:?}").contains("access_2"));
}

#[tokio::test]
async fn a_fresh_token_is_used_as_is_and_the_margin_is_configurable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(token_response("access_2", None, 3600))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = TokenSet::new("access_1", Utc::now() + chrono::TimeDelta::minutes(10))
        .with_refresh_token("refresh_1");
    let oauth = OAuthClient::new(config(&server)).unwrap();
    let session = OAuthSession::new(oauth.clone(), tokens.clone());
    assert_eq!(session.token().await.unwrap().expose(), "access_1");
    assert!(server.received_requests().await.unwrap().is_empty());

    let eager = OAuthSession::new(oauth, tokens).with_refresh_margin(Duration::from_secs(900));
    assert_eq!(eager.token().await.unwrap().expose(), "access_2");
    // No new refresh token in the answer: the old one is kept.
    assert_eq!(
        eager.tokens().await.refresh_token.unwrap().expose(),
        "refresh_1"
    );
}

#[tokio::test]
async fn concurrent_callers_trigger_one_refresh() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            token_response("access_2", Some("refresh_2"), 3600)
                .set_delay(Duration::from_millis(100)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let tokens = TokenSet::new("access_1", Utc::now()).with_refresh_token("refresh_1");
    let session = Arc::new(OAuthSession::new(
        OAuthClient::new(config(&server)).unwrap(),
        tokens,
    ));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let s = session.clone();
            tokio::spawn(async move { s.token().await.unwrap().expose().to_owned() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "access_2");
    }
    // A 401 for the old token after the refresh: nothing more to do.
    let again = session.refresh(&ApiKey::new("access_1")).await.unwrap();
    assert_eq!(again.expose(), "access_2");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_401_refreshes_once_and_the_call_is_sent_again_with_the_new_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/devices/dev_42"))
        .and(header("authorization", "Bearer access_1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"code": "unauthenticated", "message": "token revoked"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(token_response("access_2", Some("refresh_2"), 3600))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/devices/dev_42"))
        .and(header("authorization", "Bearer access_2"))
        .and(header("x-sgt-tenant", "acme-industries"))
        .respond_with(ok_fixture("sgt", "devices_get"))
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;
    // Valid for an hour as far as the session knows: only the 401 reveals it was revoked.
    let tokens = TokenSet::new("access_1", Utc::now() + chrono::TimeDelta::hours(1))
        .with_refresh_token("refresh_1");
    let session = Arc::new(OAuthSession::new(
        OAuthClient::new(config(&server)).unwrap(),
        tokens,
    ));
    let sgt = Client::builder()
        .oauth(session.clone())
        .tenant("acme-industries")
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let d = sgt.devices().get("dev_42").await.unwrap();
    assert_eq!(d.id, "dev_42");
    let reqs = server.received_requests().await.unwrap();
    let order: Vec<_> = reqs.iter().map(|r| r.url.path().to_owned()).collect();
    assert_eq!(
        order,
        ["/v1/devices/dev_42", "/oauth2/token", "/v1/devices/dev_42"]
    );
    assert_eq!(
        form(&reqs[1]),
        "grant_type=refresh_token&refresh_token=refresh_1&client_id=acme-erp"
    );
    assert!(reqs[1].headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_second_401_is_returned_not_refreshed_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(token_response("access_2", None, 3600))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = TokenSet::new("access_1", Utc::now() + chrono::TimeDelta::hours(1))
        .with_refresh_token("refresh_1");
    let session = Arc::new(OAuthSession::new(
        OAuthClient::new(config(&server)).unwrap(),
        tokens,
    ));
    let sgt = Client::builder()
        .oauth(session)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry())
        .build()
        .unwrap();
    let err = sgt.devices().get("dev_42").await.unwrap_err();
    assert!(err.is_unauthenticated(), "{err}");
}

#[tokio::test]
async fn a_session_without_a_refresh_token_cannot_recover_from_a_401() {
    let server = MockServer::start().await;
    catch_all(&server).await;
    let session = OAuthSession::new(
        OAuthClient::new(config(&server)).unwrap(),
        TokenSet::new("access_1", Utc::now()),
    );
    // Expired but nothing to refresh with: the token is handed out, the server decides.
    assert_eq!(session.token().await.unwrap().expose(), "access_1");
    let err = session.refresh(&ApiKey::new("access_1")).await.unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.contains("authorize again")),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
