//! The retry matrix: one test per (failure × idempotent / not), counting the requests the server
//! received; Retry-After in all its forms; the cap; the time and token budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::error::{Error, TransportErrorKind};
use crate::retry::RetryBudget;

/// Answers every request with `status`; returns how many requests arrived for `req`.
async fn count_for<V: Vendor>(status: u16, req: Request) -> (usize, Error) {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    let mut b = TransportBuilder::new::<V>(&format!("{}/v1", server.uri()));
    b.auth(Auth::bearer(KEY));
    b.retry_policy(fast_retry());
    let err = b.build().unwrap().send(&req).await.unwrap_err();
    (request_count(&server).await, err)
}

macro_rules! matrix {
    ($($name:ident: $status:expr, $idempotent:expr => $expected:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            let req = if $idempotent { get(&["r"]) } else { post(&["r"]) };
            let (n, err) = count_for::<TestVendor>($status, req).await;
            assert_eq!(n, $expected, "requests received");
            assert_eq!(err.status(), Some($status));
            assert_eq!(err.api().unwrap().attempts(), $expected as u32);
        }
    )*};
}

matrix! {
    status_429_get_retries: 429, true => 3;
    status_429_post_retries: 429, false => 3;
    status_500_get_retries: 500, true => 3;
    status_500_post_does_not: 500, false => 1;
    status_502_get_retries: 502, true => 3;
    status_502_post_does_not: 502, false => 1;
    status_503_get_retries: 503, true => 3;
    status_503_post_retries: 503, false => 3;
    status_504_get_retries: 504, true => 3;
    status_504_post_does_not: 504, false => 1;
    status_400_never: 400, true => 1;
    status_401_never: 401, true => 1;
    status_403_never: 403, true => 1;
    status_404_never: 404, true => 1;
    status_409_never: 409, true => 1;
    status_422_never: 422, false => 1;
}

#[tokio::test]
async fn patch_marked_idempotent_retries_500() {
    let req = Request::new(Method::PATCH, segments!["r"]).idempotent(true);
    assert_eq!(count_for::<TestVendor>(500, req).await.0, 3);
    let req = Request::new(Method::PATCH, segments!["r"]);
    assert_eq!(count_for::<TestVendor>(500, req).await.0, 1);
}

#[tokio::test]
async fn vendor_safe_statuses_retry_post() {
    /// The test vendor, promising like SGT that 500 and 502 are safe to retry.
    struct SgtLike;
    impl Vendor for SgtLike {
        type Wire = TestWire;
        const PAGING: &'static Paging = &TEST_PAGING;
        type Bucket = TestBucket;
        const NAME: &'static str = "sgt-like";
        const SAFE_STATUSES: &'static [u16] = &[500, 502];
        const BUCKETS: &'static [Bucket<TestBucket>] = TestVendor::BUCKETS;
        const REQUEST_ID_POINTERS: &'static [&'static str] = TestVendor::REQUEST_ID_POINTERS;
        fn bucket_for(method: &Method, path: &str) -> TestBucket {
            TestVendor::bucket_for(method, path)
        }
        fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
            TestVendor::error_body(body)
        }
    }
    assert_eq!(count_for::<SgtLike>(500, post(&["r"])).await.0, 3);
    assert_eq!(count_for::<SgtLike>(502, post(&["r"])).await.0, 3);
    assert_eq!(count_for::<SgtLike>(504, post(&["r"])).await.0, 1);
}

async fn connect_refused(req: Request) {
    let t = builder_at(&format!("http://127.0.0.1:{}/v1", dead_port()))
        .build()
        .unwrap();
    let err = t.send(&req).await.unwrap_err();
    let Error::Transport(te) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(te.kind(), TransportErrorKind::Connect);
    assert!(!te.may_have_reached_server());
    // Nothing was sent, so even a POST is retried: all three attempts were made.
    assert_eq!(te.attempts(), 3);
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn connect_refused_get_retries() {
    connect_refused(get(&["r"])).await;
}

#[tokio::test]
async fn connect_refused_post_retries() {
    connect_refused(post(&["r"])).await;
}

async fn timeout_count(req: Request) -> (usize, Error) {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.timeout(Duration::from_millis(50));
    let err = b.build().unwrap().send(&req).await.unwrap_err();
    (request_count(&server).await, err)
}

#[tokio::test]
async fn timeout_get_retries() {
    let (n, err) = timeout_count(get(&["r"])).await;
    assert_eq!(n, 3);
    let Error::Transport(te) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(te.kind(), TransportErrorKind::Timeout);
    assert!(te.may_have_reached_server());
}

#[tokio::test]
async fn timeout_post_does_not() {
    let (n, err) = timeout_count(post(&["r"])).await;
    assert_eq!(n, 1);
    assert!(matches!(err, Error::Transport(ref t) if t.kind() == TransportErrorKind::Timeout));
}

#[tokio::test]
async fn per_call_policy_overrides_the_client() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let t = client(&server);
    let with_policy = |policy: RetryPolicy| {
        let mut req = get(&["r"]);
        req.set_options(Some(&policy), &Default::default(), None);
        req
    };
    t.send(&with_policy(RetryPolicy::none())).await.unwrap_err();
    assert_eq!(request_count(&server).await, 1);
    t.send(&with_policy(fast_retry().with_max_attempts(5)))
        .await
        .unwrap_err();
    assert_eq!(request_count(&server).await, 6);
}

/// 429 with `retry_after` once, then 200.
async fn after_429(
    retry_after: &str,
    date: Option<&str>,
    policy: RetryPolicy,
) -> (Duration, usize, crate::error::Result<Value>) {
    let server = MockServer::start().await;
    let mut tmpl = ResponseTemplate::new(429).insert_header("retry-after", retry_after);
    if let Some(d) = date {
        tmpl = tmpl.insert_header("date", d);
    }
    Mock::given(method("GET"))
        .respond_with(tmpl)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!("ok")))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.retry_policy(policy);
    let t = b.build().unwrap();
    let start = Instant::now();
    let r = t.send_json::<Value>(&get(&["r"])).await.map(|(v, _)| v);
    (start.elapsed(), request_count(&server).await, r)
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let (elapsed, n, r) = after_429("1", None, fast_retry()).await;
    assert_eq!(r.unwrap(), "ok");
    assert_eq!(n, 2);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn retry_after_http_date_is_relative_to_the_server_date() {
    // The server's clock says 11:19:00 and asks to come back at 11:19:01: one second, whatever
    // the local clock says.
    let (elapsed, n, r) = after_429(
        "Fri, 24 May 2024 11:19:01 GMT",
        Some("Fri, 24 May 2024 11:19:00 GMT"),
        fast_retry(),
    )
    .await;
    assert_eq!(r.unwrap(), "ok");
    assert_eq!(n, 2);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[tokio::test]
async fn malformed_and_negative_retry_after_fall_back_to_backoff() {
    for bad in ["soon", "-3", "", "1e3", "Mon, 99 Foo 2024"] {
        let (elapsed, n, r) = after_429(bad, None, fast_retry()).await;
        assert_eq!(r.unwrap(), "ok", "{bad}");
        assert_eq!(n, 2, "{bad}");
        assert!(elapsed < Duration::from_secs(1), "{bad}: {elapsed:?}");
    }
}

#[tokio::test]
async fn absurd_retry_after_returns_the_error_without_sleeping() {
    for huge in ["99999999999", "999999999999999999999999999999"] {
        let (elapsed, n, r) = after_429(huge, None, fast_retry()).await;
        let err = r.unwrap_err();
        assert_eq!(n, 1);
        assert!(err.is_rate_limited());
        assert!(err.retry_after().unwrap() > Duration::from_secs(60 * 60 * 24 * 365));
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    }
}

#[tokio::test]
async fn retry_after_above_the_cap_is_returned_to_the_caller() {
    let policy = fast_retry().with_retry_after_cap(Duration::from_secs(2));
    let (elapsed, n, r) = after_429("5", None, policy).await;
    let err = r.unwrap_err();
    assert_eq!(n, 1);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert!(err.to_string().contains("retry after 5s"), "{err}");
    assert!(elapsed < Duration::from_secs(1));
}

#[tokio::test]
async fn time_budget_stops_a_long_wait() {
    let policy = fast_retry().with_time_budget(Duration::from_millis(200));
    let (elapsed, n, r) = after_429("1", None, policy).await;
    assert!(r.unwrap_err().is_rate_limited());
    assert_eq!(n, 1);
    assert!(elapsed < Duration::from_secs(1));
}

#[tokio::test]
async fn exhausted_attempts_return_the_last_error_with_its_request_id() {
    let server = MockServer::start().await;
    let n = Arc::new(AtomicUsize::new(0));
    let counter = n.clone();
    Mock::given(path("/v1/r"))
        .respond_with(move |_: &wiremock::Request| {
            let i = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(503)
                .insert_header("x-request-id", format!("req_{i}").as_str())
                .set_body_json(serde_json::json!({
                    "error": {"code": "unavailable", "message": format!("outage {i}")}
                }))
        })
        .mount(&server)
        .await;
    let err = client(&server).send(&get(&["r"])).await.unwrap_err();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(err.request_id(), Some("req_3"));
    let api = err.api().unwrap();
    assert_eq!(api.message(), "outage 3");
    assert_eq!(api.attempts(), 3);
    assert_eq!(
        err.to_string(),
        "HTTP 503 unavailable: outage 3 (request req_3; GET /v1/r; after 3 attempts)"
    );
}

#[tokio::test]
async fn retry_budget_stops_a_storm() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    // Enough for two retries.
    b.retry_budget(RetryBudget::new(10, 5, 1));
    let t = b.build().unwrap();
    for _ in 0..5 {
        t.send(&get(&["r"])).await.unwrap_err();
    }
    // First call: 1 + 2 retries; the other four: no tokens left, one attempt each.
    assert_eq!(request_count(&server).await, 3 + 4);
    assert_eq!(t.retry_budget().available(), 0);
}

#[tokio::test]
async fn successes_refill_the_budget() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/ok"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    b.retry_budget(RetryBudget::new(10, 5, 1));
    let t = b.build().unwrap();
    assert!(t.retry_budget().try_acquire());
    for _ in 0..3 {
        t.send(&get(&["ok"])).await.unwrap();
    }
    assert_eq!(t.retry_budget().available(), 8);
}

#[tokio::test]
async fn rate_limit_of_the_last_response_is_kept() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-limit", "600")
                .insert_header("x-ratelimit-remaining", "572")
                .insert_header("x-ratelimit-reset", "1716549600")
                .insert_header("date", "Fri, 24 May 2024 11:19:00 GMT")
                .set_body_json(serde_json::json!(null)),
        )
        .mount(&server)
        .await;
    let t = client(&server);
    assert!(t.last_rate_limit().is_none());
    let (_, meta) = t.send_json::<Value>(&get(&["r"])).await.unwrap();
    assert_eq!(meta.rate_limit.remaining, Some(572));
    assert_eq!(meta.rate_limit.reset_after, Some(Duration::from_secs(60)));
    let last = t.last_rate_limit().unwrap();
    assert_eq!(last.limit, Some(600));
    let _ = SystemTime::now();
}

#[tokio::test]
async fn pacing_spaces_requests_per_bucket() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut b = builder(&server);
    // Writes: 4 a second, burst 1 -> one every 250 ms. Reads: unlimited in practice.
    b.pacing_buckets(vec![
        Bucket::new(TestBucket::Write, 4, Duration::from_secs(1), 1),
        Bucket::new(TestBucket::Read, 100_000, Duration::from_secs(1), 100_000),
    ]);
    let t = b.build().unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        t.send(&post(&["r"])).await.unwrap();
    }
    let writes = start.elapsed();
    assert!(writes >= Duration::from_millis(1000), "{writes:?}");
    // Paced like writes, five reads would take over a second; they are not held back.
    let start = Instant::now();
    for _ in 0..5 {
        t.send(&get(&["r"])).await.unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    // An explicit bucket and cost: 3 units at 4 a second after the bucket ran dry.
    let start = Instant::now();
    t.send(&post(&["r"]).pacing(TestBucket::Write, 3))
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn pacing_is_off_by_default() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/r"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let t = client(&server);
    assert!(format!("{t:?}").contains("pacing: None"), "{t:?}");
    // Well past the write bucket's burst of 30, and nothing is held back.
    for _ in 0..50 {
        t.send(&post(&["r"])).await.unwrap();
    }
    assert_eq!(request_count(&server).await, 50);
}
