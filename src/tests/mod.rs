//! Wiremock tests of the core: auth placement and secrecy, the retry matrix, Retry-After, budgets,
//! paging over HTTP, redirects, URL safety and error decoding. They live inside the crate because
//! they drive the crate-private transport directly; the vendor modules get their own tests in
//! `tests/`.

mod auth;
mod errors;
mod paging_http;
mod parsers;
mod retry;
mod urls;

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::auth::Auth;
use serde::de::DeserializeOwned;

use crate::envelope::{Envelope, One, RawPage};
use crate::error::ErrorCode;
use crate::list::{Paging, TokenParam};
use crate::rate_limit::{Bucket, BucketKind};
use crate::retry::RetryPolicy;
use crate::transport::{Request, Transport, TransportBuilder};
use crate::vendor::{ErrorBody, Vendor, text};

/// A key that must never show up in any output.
pub(crate) const KEY: &str = "sgt_live_TOPSECRET_5h7k9w";

/// The buckets of the test vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestBucket {
    Read,
    Write,
}

impl BucketKind for TestBucket {
    fn name(self) -> &'static str {
        match self {
            TestBucket::Read => "read",
            TestBucket::Write => "write",
        }
    }
}

/// A vendor that reads every documented error shape and request-id location, and maps a
/// vendor-specific code (`device_not_found`), so the core's handling of each can be tested in one
/// place. Each real vendor's own description is tested in its module.
pub(crate) struct TestVendor;

/// The test vendor's envelopes: `{data}` for one object, `{data, next}` for a page.
pub(crate) struct TestWire;

/// `{data, next}`.
#[derive(serde::Deserialize)]
pub(crate) struct TestPage<T> {
    data: Vec<T>,
    next: Option<String>,
}

impl Envelope for TestWire {
    const ONE: One = One::Data;
    type Page<T: DeserializeOwned + Send + 'static> = TestPage<T>;

    fn open_page<T: DeserializeOwned + Send + 'static>(wire: TestPage<T>) -> RawPage<T> {
        RawPage {
            items: wire.data,
            next_cursor: wire.next,
            total: None,
            echoed_offset: None,
        }
    }
}

/// `limit` up to 100, and a `cursor`.
pub(crate) const TEST_PAGING: Paging = Paging {
    page_size_param: "limit",
    max_page_size: 100,
    token: TokenParam::Cursor("cursor"),
    window_first: false,
};

impl Vendor for TestVendor {
    type Wire = TestWire;
    const PAGING: &'static Paging = &TEST_PAGING;
    type Bucket = TestBucket;
    const NAME: &'static str = "test";
    const BUCKETS: &'static [Bucket<TestBucket>] = &[
        Bucket::new(TestBucket::Read, 600, Duration::from_secs(60), 120),
        Bucket::new(TestBucket::Write, 120, Duration::from_secs(60), 30),
    ];
    const REQUEST_ID_POINTERS: &'static [&'static str] = &[
        "/meta/request_id",
        "/error/request_id",
        "/request_id",
        "/requestId",
    ];

    fn bucket_for(method: &Method, _: &str) -> TestBucket {
        if method == Method::GET {
            TestBucket::Read
        } else {
            TestBucket::Write
        }
    }

    fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
        // SGT's nested shape, then the flat ones of Sepolo, SiliconWit and OAuth2.
        let nested = body
            .get("error")
            .and_then(|e| e.as_object())
            .map(|e| ErrorBody {
                code: text(e.get("code")),
                message: text(e.get("message")),
                details: e.get("details").filter(|d| !d.is_null()).cloned(),
                request_id: text(e.get("request_id")),
            });
        nested.or_else(|| ErrorBody::flat(body, &["message", "error_description"]))
    }

    fn error_code(code: &str) -> ErrorCode {
        match code.trim() {
            "device_not_found" => ErrorCode::NotFound,
            other => ErrorCode::parse(other),
        }
    }
}

/// Fast retries (1-5 ms) so the matrix runs in milliseconds.
/// The property-test configuration: 64 cases by default so that `cargo test` stays fast, or as
/// many as `PROPTEST_CASES` says.
pub(crate) fn proptest_config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    proptest::prelude::ProptestConfig {
        cases,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    }
}

pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
}

/// A builder against `server` with base path `/v1`, bearer [`KEY`] and fast retries.
pub(crate) fn builder(server: &MockServer) -> TransportBuilder {
    builder_at(&format!("{}/v1", server.uri()))
}

pub(crate) fn builder_at(base: &str) -> TransportBuilder {
    traces();
    let mut b = TransportBuilder::new::<TestVendor>(base);
    b.auth(Auth::bearer(KEY));
    b.retry_policy(fast_retry());
    b
}

pub(crate) fn client(server: &MockServer) -> Transport {
    builder(server).build().unwrap()
}

/// Mounts a catch-all that answers 418, last in priority, so a request that matched no mock
/// fails loudly instead of looking like a plain 404.
pub(crate) async fn catch_all(server: &MockServer) {
    Mock::given(any())
        .respond_with(ResponseTemplate::new(418).set_body_string("no mock matched this request"))
        .with_priority(u8::MAX)
        .mount(server)
        .await;
}

pub(crate) fn get(segments: &[&str]) -> Request {
    Request::new(Method::GET, segments.iter().map(|s| (*s).to_owned()))
}

pub(crate) fn post(segments: &[&str]) -> Request {
    Request::new(Method::POST, segments.iter().map(|s| (*s).to_owned()))
}

/// A port on 127.0.0.1 that nothing listens on.
pub(crate) fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

pub(crate) async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

/// Everything any test in this binary logs through `tracing`, at TRACE level.
#[derive(Clone, Default)]
pub(crate) struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs one global TRACE subscriber before the first client is built. A global one, not a
/// per-test `set_default`: tracing caches each callsite's interest process-wide, so a scoped
/// subscriber in one test can miss spans that a parallel test registered first.
pub(crate) fn traces() -> &'static Capture {
    static TRACES: OnceLock<Capture> = OnceLock::new();
    TRACES.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        // Fails only if something else installed one first; the assertions would then show it.
        let _ = tracing::subscriber::set_global_default(subscriber);
        capture
    })
}
