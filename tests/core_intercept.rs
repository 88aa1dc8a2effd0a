//! Interceptors and retry rules, through the public API against wiremock: the hooks' order and
//! what each sees, headers they add, failures and panics, and the retry rules per client and
//! per call.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use iot_sdk::intercept::{AttemptEnd, AttemptStart, CallEnd, HookResult, Interceptor};
use iot_sdk::retry::{AttemptInfo, RetryAction};
use iot_sdk::{Error, RetryBudget};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sgt_intercept_key_0123";

/// Writes what every hook saw into a shared log.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, s: String) {
        self.log.lock().unwrap().push(format!("{} {s}", self.name));
    }
}

impl Interceptor for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    fn before_attempt(&self, a: &mut AttemptStart<'_>) -> HookResult {
        assert!(!a.headers().contains_key("authorization"));
        assert_eq!(a.headers()["x-sgt-tenant"], "acme");
        a.headers_mut()
            .append("x-hooked", self.name.parse().unwrap());
        self.push(format!(
            "before {} {} {}",
            a.attempt(),
            a.request(),
            a.vendor()
        ));
        Ok(())
    }
    fn before_send_sensitive(&self, r: &reqwest::Request) -> HookResult {
        assert_eq!(
            r.headers()["authorization"],
            format!("Bearer {KEY}").as_str()
        );
        assert_eq!(r.url().query(), Some("q=1"));
        self.push("sensitive".into());
        Ok(())
    }
    fn after_attempt(&self, a: &AttemptEnd<'_>) -> HookResult {
        let rid = a
            .headers()
            .and_then(|h| h.get("x-request-id"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        self.push(format!(
            "after {} {:?} {rid} error={} retry={:?}",
            a.attempt(),
            a.status(),
            a.error().is_some(),
            a.retry_delay()
        ));
        Ok(())
    }
    fn after_call(&self, c: &CallEnd<'_>) -> HookResult {
        let outcome = match c.outcome() {
            Ok(m) => format!("ok {}", m.status),
            Err(e) => format!("err {:?}", e.status()),
        };
        self.push(format!("call {} {outcome}", c.attempts()));
        Ok(())
    }
}

async fn client_with(
    server: &MockServer,
    build: impl FnOnce(iot_sdk::sgt::ClientBuilder) -> iot_sdk::sgt::ClientBuilder,
) -> iot_sdk::sgt::Client {
    let b = iot_sdk::sgt::Client::builder()
        .api_key(KEY)
        .tenant("acme")
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(fast_retry().without_jitter())
        .retry_budget(RetryBudget::unlimited());
    build(b).build().unwrap()
}

/// `GET /v1/thing` answers `first` once, then 200.
async fn flaky(server: &MockServer, first: u16) {
    Mock::given(method("GET"))
        .and(path("/v1/thing"))
        .respond_with(
            ResponseTemplate::new(first)
                .insert_header("x-request-id", "req_1")
                .set_body_json(json!({"error": {"code": "x", "message": "m"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/thing"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req_2")
                .set_body_json(json!({"data": {"ok": true}})),
        )
        .with_priority(2)
        .mount(server)
        .await;
}

async fn get_thing(sgt: &iot_sdk::sgt::Client) -> iot_sdk::Result<Value> {
    sgt.raw().get(["thing"]).query_pair("q", "1").data().await
}

#[tokio::test]
async fn hooks_run_in_registration_order_for_every_attempt() {
    let server = MockServer::start().await;
    flaky(&server, 503).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sgt = client_with(&server, |b| {
        b.interceptor(Recorder {
            name: "A",
            log: log.clone(),
        })
        .interceptor(Recorder {
            name: "B",
            log: log.clone(),
        })
    })
    .await;
    assert_eq!(get_thing(&sgt).await.unwrap(), json!({"ok": true}));
    let log = log.lock().unwrap().clone();
    // fast_retry without jitter: the first delay is 1 ms.
    let want = [
        "A before 1 GET /v1/thing sgt",
        "B before 1 GET /v1/thing sgt",
        "A sensitive",
        "B sensitive",
        "A after 1 Some(503) req_1 error=true retry=Some(1ms)",
        "B after 1 Some(503) req_1 error=true retry=Some(1ms)",
        "A before 2 GET /v1/thing sgt",
        "B before 2 GET /v1/thing sgt",
        "A sensitive",
        "B sensitive",
        "A after 2 Some(200) req_2 error=false retry=None",
        "B after 2 Some(200) req_2 error=false retry=None",
        "A call 2 ok 200",
        "B call 2 ok 200",
    ];
    assert_eq!(log, want);
    // The headers the interceptors added went out, in order; the credential too.
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let hooked: Vec<_> = r.headers.get_all("x-hooked").iter().collect();
        assert_eq!(hooked, ["A", "B"]);
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY}").as_str());
    }
}

#[tokio::test]
async fn a_failed_call_reports_its_last_attempt_and_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error": {"code": "not_found", "message": "no"}})),
        )
        .mount(&server)
        .await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sgt = client_with(&server, |b| {
        b.interceptor(Recorder {
            name: "A",
            log: log.clone(),
        })
    })
    .await;
    let e = get_thing(&sgt).await.unwrap_err();
    assert!(e.is_not_found());
    let log = log.lock().unwrap().clone();
    assert_eq!(
        &log[2..],
        [
            "A after 1 Some(404) - error=true retry=None",
            "A call 1 err Some(404)"
        ]
    );
}

/// Panics in `before_attempt` while `armed`; otherwise does nothing.
struct Grenade {
    armed: AtomicBool,
}

impl Interceptor for Grenade {
    fn name(&self) -> &str {
        "grenade"
    }
    fn before_attempt(&self, _: &mut AttemptStart<'_>) -> HookResult {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("boom with {KEY}");
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_interceptor_fails_the_call_and_the_client_stays_usable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"ok": true}})))
        .mount(&server)
        .await;
    let sgt = client_with(&server, |b| {
        b.interceptor(Grenade {
            armed: AtomicBool::new(true),
        })
    })
    .await;
    let e = get_thing(&sgt).await.unwrap_err();
    let Error::Interceptor(i) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(i.name(), "grenade");
    assert_eq!(i.hook(), "before_attempt");
    assert!(i.panicked());
    // The panic message held the key: redacted.
    assert_eq!(i.message(), "boom with [REDACTED]");
    assert!(!e.to_string().contains(KEY));
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing was sent"
    );
    // Not poisoned: the next call goes through.
    assert_eq!(get_thing(&sgt).await.unwrap(), json!({"ok": true}));
}

struct Veto;

impl Interceptor for Veto {
    fn after_attempt(&self, a: &AttemptEnd<'_>) -> HookResult {
        if a.retry_delay().is_some() {
            return Err("no retries allowed here".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_interceptor_error_stops_the_call_with_its_name() {
    let server = MockServer::start().await;
    flaky(&server, 503).await;
    let sgt = client_with(&server, |b| b.interceptor(Veto)).await;
    let e = get_thing(&sgt).await.unwrap_err();
    let Error::Interceptor(i) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(i.hook(), "after_attempt");
    assert!(i.name().ends_with("Veto"), "{}", i.name());
    assert_eq!(i.message(), "no retries allowed here");
    assert!(!i.panicked());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_rule_retries_409_on_one_endpoint_only() {
    let server = MockServer::start().await;
    flaky(&server, 409).await;
    let sgt = client_with(&server, |b| {
        b.retry_rule(|a: &AttemptInfo<'_>| {
            assert!(!a.default_retry(), "409 is not retried by default");
            (a.status() == Some(409) && a.path() == "/v1/thing").then_some(RetryAction::Retry)
        })
    })
    .await;
    assert_eq!(get_thing(&sgt).await.unwrap(), json!({"ok": true}));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);

    // Another endpoint: the rule says nothing, the default matrix does not retry a 409.
    Mock::given(method("GET"))
        .and(path("/v1/other"))
        .respond_with(ResponseTemplate::new(409))
        .mount(&server)
        .await;
    let e = sgt
        .raw()
        .get(["other"])
        .decode::<Value>()
        .await
        .unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_call_rule_comes_before_the_client_rule_and_can_stop_retries() {
    let server = MockServer::start().await;
    flaky(&server, 503).await;
    let sgt = client_with(&server, |b| {
        b.retry_rule(|_: &AttemptInfo<'_>| Some(RetryAction::Retry))
    })
    .await;
    let e = sgt
        .raw()
        .get(["thing"])
        .data::<Value>()
        .with_retry_rule(|a: &AttemptInfo<'_>| (a.method() == "GET").then_some(RetryAction::Stop))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.api().unwrap().attempts(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_rule_can_fix_the_delay_and_still_respects_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sgt = client_with(&server, |b| {
        b.interceptor(Recorder {
            name: "A",
            log: log.clone(),
        })
        .retry_rule(|_: &AttemptInfo<'_>| Some(RetryAction::RetryAfter(Duration::from_millis(3))))
    })
    .await;
    let e = sgt
        .raw()
        .post(["thing"])
        .query_pair("q", "1")
        .no_content()
        .await
        .unwrap_err();
    assert_eq!(
        e.api().unwrap().attempts(),
        3,
        "the default policy's 3 attempts"
    );
    let retries: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(" after "))
        .cloned()
        .collect();
    assert_eq!(
        retries,
        [
            "A after 1 Some(500) - error=true retry=Some(3ms)",
            "A after 2 Some(500) - error=true retry=Some(3ms)",
            "A after 3 Some(500) - error=true retry=None",
        ]
    );
}

#[tokio::test]
async fn a_panicking_rule_fails_the_call() {
    let server = MockServer::start().await;
    flaky(&server, 503).await;
    let sgt = client_with(&server, |b| {
        b.retry_rule(|_: &AttemptInfo<'_>| -> Option<RetryAction> { panic!("bad rule") })
    })
    .await;
    let e = get_thing(&sgt).await.unwrap_err();
    let Error::Interceptor(i) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(i.hook(), "retry_rule");
    assert_eq!(i.message(), "bad rule");
}

/// A limiter that lets every call through at once and writes each wait into the hooks' log.
#[derive(Debug)]
struct LoggingLimiter(Arc<Mutex<Vec<String>>>);

impl iot_sdk::Limiter for LoggingLimiter {
    fn acquire<'a>(
        &'a self,
        bucket: &'a iot_sdk::PaceBucket,
        cost: u32,
    ) -> futures::future::BoxFuture<'a, Result<Duration, iot_sdk::limiter::LimiterError>> {
        self.0
            .lock()
            .unwrap()
            .push(format!("pace {} {cost}", bucket.name()));
        Box::pin(async { Ok(Duration::ZERO) })
    }
}

#[tokio::test]
async fn before_attempt_runs_before_the_pacing_wait_and_the_sensitive_hook_after_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/thing"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-request-id", "req_1")
                .set_body_json(json!({"data": {"ok": true}})),
        )
        .mount(&server)
        .await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let sgt = client_with(&server, |b| {
        b.interceptor(Recorder {
            name: "A",
            log: log.clone(),
        })
        .limiter(LoggingLimiter(log.clone()))
    })
    .await;
    assert_eq!(get_thing(&sgt).await.unwrap(), json!({"ok": true}));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "A before 1 GET /v1/thing sgt",
            "pace read 1",
            "A sensitive",
            "A after 1 Some(200) req_1 error=false retry=None",
            "A call 1 ok 200",
        ]
    );
}
