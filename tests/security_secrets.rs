//! Promise: no credential a request carried (API key, bearer token, OAuth2 client secret, refresh
//! token, authorization code and PKCE verifier, Sepolo header key), nor any prefix of it of 8
//! characters or more, appears in any error's `Display` or `Debug`, in `ApiError`'s accessors, in
//! `ResponseMeta`, or in any `tracing` output, whatever part of the response echoed it.
//!
//! The matrix: every vendor × every kind of credential × every place a server can echo it (error
//! code, message, details at any depth and as an object key, the body's request id, the
//! `X-Request-Id`, `ETag`, `Deprecation`, `Sunset` and `Location` headers, HTML and other non-JSON
//! bodies of many lengths with the key at every offset around the snippet cut, long messages with
//! the key around their cut, and success bodies that fail to decode).

mod common;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{TimeDelta, Utc};
use futures::future::BoxFuture;
use iot_sdk::sgt::oauth::{OAuthClient, OAuthConfig, OAuthSession, TokenSet};
use iot_sdk::{Error, ResponseMeta, RetryPolicy};
use serde_json::json;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

/// The length the SDK cuts body snippets to (`SNIPPET_LEN`).
const SNIPPET_CUT: usize = 240;
/// The length the SDK cuts vendor messages to.
const MESSAGE_CUT: usize = 2048;

/// Everything the test binary logs, at TRACE level, from every crate.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn traces() -> &'static Capture {
    static TRACES: OnceLock<Capture> = OnceLock::new();
    TRACES.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        capture
    })
}

/// Answers each request with the next scripted response (418 when the script is empty).
#[derive(Clone, Default)]
struct Script(Arc<Mutex<VecDeque<ResponseTemplate>>>);

impl Script {
    fn push(&self, r: ResponseTemplate) {
        self.0.lock().unwrap().push_back(r);
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| ResponseTemplate::new(418))
    }
}

async fn scripted_server() -> (MockServer, Script) {
    traces();
    let server = MockServer::start().await;
    let script = Script::default();
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(script.clone())
        .mount(&server)
        .await;
    (server, script)
}

/// A body of `len` filler characters with `secret` starting at byte `at` (after any trimming).
fn body_with(secret: &str, at: usize, tail: usize) -> String {
    format!("{}{secret}{}", "x".repeat(at), "y".repeat(tail))
}

/// Every error response a hostile server can echo `s` in.
fn error_echoes(s: &str) -> Vec<ResponseTemplate> {
    let json =
        |status: u16, body: serde_json::Value| ResponseTemplate::new(status).set_body_json(body);
    let mut out = vec![
        // SGT's shape: code, message, details (any depth, as a value and as a key), request id.
        json(400, json!({"error": {"code": s, "message": "bad"}})),
        json(
            400,
            json!({"error": {"code": format!("x_{s}_y"), "message": "bad"}}),
        ),
        json(
            401,
            json!({"error": {"code": "unauthenticated", "message": format!("key {s} is invalid")}}),
        ),
        json(
            422,
            json!({"error": {"code": "c", "message": "m",
            "details": {"a": [{"b": {"c": s}}], s: [s], "n": [1, {"deep": [[format!("Bearer {s}")]]}]}}}),
        ),
        json(
            404,
            json!({"error": {"code": "c", "message": "m", "request_id": s}}),
        ),
        json(
            404,
            json!({"error": {"code": "c", "message": "m", "request_id": format!("req\n{s}\r")}}),
        ),
        // Sepolo's, SiliconWit's and OAuth2's shapes.
        json(403, json!({"error": s, "message": s})),
        json(404, json!({"error": format!("no such key {s}")})),
        json(
            400,
            json!({"error": s, "error_description": format!("{s} revoked")}),
        ),
        json(500, json!({"code": s, "message": s, "details": [s]})),
        // Headers the SDK records.
        ResponseTemplate::new(500)
            .insert_header("x-request-id", s)
            .set_body_string("oops"),
        ResponseTemplate::new(503)
            .insert_header("x-request-id", format!("id-{s}").as_str())
            .insert_header("deprecation", s)
            .insert_header("sunset", s)
            .insert_header("etag", s)
            .set_body_json(json!({"error": "unavailable"})),
        ResponseTemplate::new(302).insert_header(
            "location",
            format!("https://{s}.evil.example/steal?k={s}").as_str(),
        ),
        ResponseTemplate::new(302).insert_header("location", format!("/same/{s}").as_str()),
    ];
    // Non-JSON bodies with the key at every offset around the snippet cut, with and without text
    // after it, and as an HTML page.
    for at in SNIPPET_CUT.saturating_sub(s.len() + 4)..=SNIPPET_CUT + 2 {
        out.push(ResponseTemplate::new(502).set_body_string(body_with(s, at, 0)));
        out.push(ResponseTemplate::new(502).set_body_string(body_with(s, at, 500)));
        out.push(
            ResponseTemplate::new(502)
                .insert_header("content-type", "text/html")
                .set_body_string(format!(
                    "<html>{}</html>",
                    body_with(s, at.saturating_sub(6), 40)
                )),
        );
    }
    for at in [0, 1, 7, 100, 1000] {
        out.push(ResponseTemplate::new(500).set_body_string(body_with(s, at, at)));
    }
    // Long messages with the key around their cut.
    for at in MESSAGE_CUT.saturating_sub(s.len() + 2)..=MESSAGE_CUT + 1 {
        out.push(json(
            400,
            json!({"error": {"code": "c", "message": body_with(s, at, 10)}}),
        ));
    }
    out
}

/// Success answers that do not decode and echo `s`: serde quotes the value, and the snippet shows
/// the body, with the key at offsets around the cut.
fn decode_echoes(s: &str) -> Vec<ResponseTemplate> {
    let mut out = vec![
        ResponseTemplate::new(200).set_body_json(json!({"data": s, "meta": s, "pagination": s})),
        ResponseTemplate::new(200).set_body_json(json!({"data": [s], "hasMore": s})),
        ResponseTemplate::new(200)
            .insert_header("x-request-id", s)
            .set_body_string(format!("{{\"data\": \"{s}")),
    ];
    for at in SNIPPET_CUT.saturating_sub(s.len() + 14)..=SNIPPET_CUT {
        out.push(
            ResponseTemplate::new(200)
                .set_body_string(format!("{{\"data\":\"{}\"", body_with(s, at, 20))),
        );
    }
    out
}

/// Success answers whose recorded headers echo `s`.
fn header_echoes(s: &str, body: serde_json::Value) -> Vec<ResponseTemplate> {
    vec![
        ResponseTemplate::new(200)
            .insert_header("x-request-id", s)
            .insert_header("etag", format!("\"{s}\"").as_str())
            .insert_header("deprecation", s)
            .insert_header("sunset", s)
            .set_body_json(body.clone()),
        ResponseTemplate::new(200).set_body_json({
            let mut b = body;
            if let Some(o) = b.as_object_mut() {
                o.insert("request_id".into(), json!(s));
                o.insert("requestId".into(), json!(s));
            }
            b
        }),
    ]
}

/// Fails if any secret, or its 8-character prefix (any longer prefix contains it), is in `text`,
/// ignoring ASCII case.
fn assert_clean(secrets: &[&str], text: &str, what: &str) {
    let lower = text.to_ascii_lowercase();
    for s in secrets {
        let prefix = s.get(..8.min(s.len())).unwrap().to_ascii_lowercase();
        assert!(
            !lower.contains(&prefix),
            "{what} leaks a credential prefix {prefix:?}:\n{text}"
        );
    }
}

/// Everything an error shows: Display, Debug and every accessor.
fn error_text(e: &Error) -> String {
    let mut all = format!("{e}\n{e:?}\n{:?}\n", e.request_id());
    if let Some(a) = e.api() {
        all.push_str(&format!(
            "{}\n{}\n{:?}\n{:?}\n{:?}\n{}\n",
            a.code(),
            a.message(),
            a.details().map(|d| d.to_string()),
            a.request_id(),
            a.body_snippet(),
            a.request(),
        ));
    }
    if let Error::Decode(d) = e {
        all.push_str(&format!(
            "{}\n{}\n{:?}\n{:?}\n",
            d.field_path(),
            d.message(),
            d.body_snippet(),
            d.request_id()
        ));
    }
    all
}

type Probe = Box<dyn Fn() -> BoxFuture<'static, String>>;

/// Runs `probe` once per scripted response and checks what it shows and what was logged.
async fn run(script: &Script, responses: Vec<ResponseTemplate>, secrets: &[&str], probe: &Probe) {
    assert!(!responses.is_empty());
    for (n, r) in responses.into_iter().enumerate() {
        script.push(r);
        let shown = probe().await;
        assert_clean(secrets, &shown, &format!("response #{n}"));
    }
    let logged = String::from_utf8_lossy(&traces().0.lock().unwrap()).into_owned();
    assert_clean(secrets, &logged, "the tracing output");
}

fn err_probe<T: 'static, F>(f: F) -> Probe
where
    F: Fn() -> BoxFuture<'static, iot_sdk::Result<T>> + 'static,
{
    Box::new(move || {
        let fut = f();
        Box::pin(async move {
            match fut.await {
                Ok(_) => String::new(),
                Err(e) => error_text(&e),
            }
        })
    })
}

fn meta_probe<T: std::fmt::Debug + 'static, F>(f: F) -> Probe
where
    F: Fn() -> BoxFuture<'static, iot_sdk::Result<(T, ResponseMeta)>> + 'static,
{
    Box::new(move || {
        let fut = f();
        Box::pin(async move {
            match fut.await {
                // The decoded value is the caller's data (a server may put anything in it); what
                // the SDK records about the response is the promise.
                Ok((_, meta)) => format!("{meta:?}\n{:?}", meta.request_id),
                Err(e) => error_text(&e),
            }
        })
    })
}

const SGT_KEY: &str = "Sgt-Live-K3y-0123456789abcdef";
const SGT_TOKEN: &str = "eyJ-access-T0ken-0123456789abcdef";
const CLIENT_SECRET: &str = "Cs-Client-S3cret-0123456789";
const REFRESH_TOKEN: &str = "Rt-Refresh-T0ken-0123456789";
const AUTH_CODE: &str = "Ac-Auth-C0de-0123456789";
const VERIFIER: &str = "Pv-PkceVerifier-0123456789-0123456789-abcdefgh";
const SEPOLO_KEY: &str = "Sep-Live-K3y-0123456789abcdef";
const SILICONWIT_KEY: &str = "swk_Live_K3y_0123456789abcdef";

fn sgt_client(server: &MockServer, key: &str) -> iot_sdk::sgt::Client {
    iot_sdk::sgt::Client::builder()
        .api_key(key)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn sgt_matrix(client: iot_sdk::sgt::Client, script: &Script, secrets: &[&str]) {
    for s in secrets {
        let c = client.clone();
        let get = err_probe(move || Box::pin(c.devices().get("dev_1").send()));
        run(script, error_echoes(s), secrets, &get).await;
        let c = client.clone();
        let list = err_probe(move || Box::pin(c.devices().list().send()));
        run(script, decode_echoes(s), secrets, &list).await;
        let c = client.clone();
        let count = meta_probe(move || Box::pin(c.devices().count().send_with_meta()));
        let body = common::fixture("sgt", "devices_count");
        run(script, header_echoes(s, body), secrets, &count).await;
    }
}

#[tokio::test]
async fn sgt_api_key_never_leaks() {
    let (server, script) = scripted_server().await;
    sgt_matrix(sgt_client(&server, SGT_KEY), &script, &[SGT_KEY]).await;
}

fn oauth_client(server: &MockServer) -> OAuthClient {
    OAuthClient::new(
        OAuthConfig::new("acme-erp", "https://erp.example.com/cb")
            .client_secret(CLIENT_SECRET)
            .token_url(format!("{}/oauth2/token", server.uri()))
            .retry_policy(RetryPolicy::none()),
    )
    .unwrap()
}

#[tokio::test]
async fn sgt_oauth_access_token_never_leaks() {
    let (server, script) = scripted_server().await;
    let tokens = TokenSet::new(SGT_TOKEN, Utc::now() + TimeDelta::days(1));
    let session = Arc::new(OAuthSession::new(oauth_client(&server), tokens));
    let client = iot_sdk::sgt::Client::builder()
        .oauth(session)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    // A 401 makes the session refresh once: every echo is answered 4xx first, so give the
    // refresh (which also fails, echoing) its own answer by probing only non-401 statuses.
    let secrets = [SGT_TOKEN, CLIENT_SECRET];
    let c = client.clone();
    let get = err_probe(move || Box::pin(c.devices().get("dev_1").send()));
    let echoes: Vec<_> = error_echoes(SGT_TOKEN);
    for (n, r) in echoes.into_iter().enumerate() {
        script.push(r);
        // If that was a 401, the session asks the token endpoint: answer it with an echo too.
        script.push(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": "invalid_grant", "error_description": SGT_TOKEN})),
        );
        let shown = get().await;
        assert_clean(&secrets, &shown, &format!("response #{n}"));
        script.0.lock().unwrap().clear();
    }
    let c = client.clone();
    let list = err_probe(move || Box::pin(c.devices().list().send()));
    run(&script, decode_echoes(SGT_TOKEN), &secrets, &list).await;
    let c = client.clone();
    let count = meta_probe(move || Box::pin(c.devices().count().send_with_meta()));
    let body = common::fixture("sgt", "devices_count");
    run(&script, header_echoes(SGT_TOKEN, body), &secrets, &count).await;
}

#[tokio::test]
async fn sgt_oauth_client_secret_refresh_token_code_and_verifier_never_leak() {
    let (server, script) = scripted_server().await;
    let oauth = Arc::new(oauth_client(&server));
    // Each request carries its own secrets: a refresh sends the client secret and the refresh
    // token, a code exchange the client secret, the code and the PKCE verifier.
    let refreshing = [CLIENT_SECRET, REFRESH_TOKEN];
    let exchanging = [CLIENT_SECRET, AUTH_CODE, VERIFIER];
    let o = oauth.clone();
    let refresh = err_probe(move || {
        let o = o.clone();
        Box::pin(async move { o.refresh(REFRESH_TOKEN).await })
    });
    let o = oauth.clone();
    let exchange = err_probe(move || {
        let o = o.clone();
        Box::pin(async move { o.exchange_code(AUTH_CODE, VERIFIER).await })
    });
    for (probe, secrets) in [(&refresh, &refreshing[..]), (&exchange, &exchanging[..])] {
        for s in secrets {
            run(&script, error_echoes(s), secrets, probe).await;
            let token_decode = vec![
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "a", "expires_in": s})),
                ResponseTemplate::new(200).set_body_json(json!({"access_token": [s]})),
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "a", "token_type": s})),
                ResponseTemplate::new(200).set_body_string(format!("{{\"access_token\": \"{s}")),
            ];
            run(&script, token_decode, secrets, probe).await;
        }
    }
}

fn sepolo_client(server: &MockServer, bearer: bool) -> iot_sdk::sepolo::Client {
    iot_sdk::sepolo::Client::builder()
        .api_key(SEPOLO_KEY)
        .send_key_as_bearer(bearer)
        .base_url(server.uri())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap()
}

async fn sepolo_matrix(client: iot_sdk::sepolo::Client, script: &Script) {
    let secrets = [SEPOLO_KEY];
    let c = client.clone();
    let get = err_probe(move || Box::pin(c.devices().get("SEP-1").send()));
    run(script, error_echoes(SEPOLO_KEY), &secrets, &get).await;
    let c = client.clone();
    let list = err_probe(move || Box::pin(c.devices().list().send()));
    run(script, decode_echoes(SEPOLO_KEY), &secrets, &list).await;
    let c = client.clone();
    let asset = meta_probe(move || Box::pin(c.assets().get("A-1").send_with_meta()));
    let body = common::fixture("sepolo", "assets_get");
    run(script, header_echoes(SEPOLO_KEY, body), &secrets, &asset).await;
}

#[tokio::test]
async fn sepolo_header_key_never_leaks() {
    let (server, script) = scripted_server().await;
    sepolo_matrix(sepolo_client(&server, false), &script).await;
}

#[tokio::test]
async fn sepolo_bearer_key_never_leaks() {
    let (server, script) = scripted_server().await;
    sepolo_matrix(sepolo_client(&server, true), &script).await;
}

#[tokio::test]
async fn siliconwit_key_never_leaks() {
    let (server, script) = scripted_server().await;
    let client = iot_sdk::siliconwit::Client::builder()
        .api_key(SILICONWIT_KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let secrets = [SILICONWIT_KEY];
    let c = client.clone();
    let get = err_probe(move || Box::pin(c.devices().get("dev_1").send()));
    run(&script, error_echoes(SILICONWIT_KEY), &secrets, &get).await;
    let c = client.clone();
    let list = err_probe(move || Box::pin(c.devices().list().send()));
    run(&script, decode_echoes(SILICONWIT_KEY), &secrets, &list).await;
    let c = client.clone();
    let device = meta_probe(move || Box::pin(c.devices().get("dev_1").send_with_meta()));
    let body = common::fixture("siliconwit", "devices_get");
    run(
        &script,
        header_echoes(SILICONWIT_KEY, body),
        &secrets,
        &device,
    )
    .await;
}

/// The matrix really sees a leak: a probe that shows the key is caught.
#[test]
#[should_panic(expected = "leaks a credential prefix")]
fn the_check_catches_a_prefix() {
    assert_clean(&[SGT_KEY], &format!("echo {}", &SGT_KEY[..9]), "a probe");
}

/// A cursor is server text too: a list that repeats an echoed cursor ends with a protocol error
/// that names the cursor by fingerprint only.
#[tokio::test]
async fn a_repeated_cursor_that_echoes_the_key_is_not_shown() {
    use futures::TryStreamExt;
    let (server, script) = scripted_server().await;
    let page = |next: &str| {
        ResponseTemplate::new(200).set_body_json(
            json!({"data": [], "meta": {"pagination": {"limit": 1, "next": next, "has_more": true}}}),
        )
    };
    for _ in 0..2 {
        script.push(page(SGT_KEY));
    }
    let sgt = sgt_client(&server, SGT_KEY);
    let err = sgt
        .devices()
        .list()
        .pages()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert!(err.to_string().contains("fingerprint"), "{err}");
    assert_clean(&[SGT_KEY], &error_text(&err), "a repeated-cursor error");

    let sepolo = sepolo_client(&server, false);
    for _ in 0..2 {
        script.push(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [], "nextCursor": SEPOLO_KEY, "hasMore": true})),
        );
    }
    let err = sepolo
        .devices()
        .list()
        .pages()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
    assert_clean(&[SEPOLO_KEY], &error_text(&err), "a repeated-cursor error");
    let logged = String::from_utf8_lossy(&traces().0.lock().unwrap()).into_owned();
    assert_clean(&[SGT_KEY, SEPOLO_KEY], &logged, "the tracing output");
}
