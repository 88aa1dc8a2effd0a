//! The HTTP layer every vendor module stands on.
//!
//! A vendor describes a call as a [`Request`] (method, path segments, query, body, idempotency) and
//! hands it to [`Transport::send_json`]. The transport builds the URL (percent-encoding every
//! segment, refusing empty, `.` and `..` ones), adds the credentials and default headers, sends it,
//! retries per the [`RetryPolicy`], parses rate-limit headers and metadata from every response, turns
//! error statuses into [`ApiError`]s and decodes success bodies with field paths in errors. Vendors
//! never re-implement any of that.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use reqwest::header::{
    ACCEPT, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, LOCATION, USER_AGENT,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::{Host, Url};

use crate::auth::{ApiKey, Auth, Redactor};
use crate::error::{
    ApiError, DecodeError, Error, ErrorCode, RequestInfo, Result, TransportError,
    TransportErrorKind, snippet,
};
use crate::rate_limit::{Bucket, Pacer, RateLimit};
use crate::retry::{self, Failure, RetryBudget, RetryPolicy};

/// The SDK's own product token, sent in `User-Agent`.
pub(crate) const SDK_USER_AGENT: &str = concat!("iot-sdk/", env!("CARGO_PKG_VERSION"));

const SNIPPET_LEN: usize = 240;
const MAX_WARNED_ENDPOINTS: usize = 1024;
/// Never sleep longer than this between attempts, whatever the configuration says.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What a response said about itself, beyond its body.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ResponseMeta {
    /// HTTP status.
    pub status: u16,
    /// `X-Request-Id`, or the request id in the body's envelope when the header is absent.
    pub request_id: Option<String>,
    /// Rate-limit headers.
    pub rate_limit: RateLimit,
    /// `ETag`, for `If-Match` on a later update.
    pub etag: Option<String>,
    /// `Deprecation` (RFC 9745), as sent.
    pub deprecation: Option<String>,
    /// `Sunset` (RFC 8594), as sent.
    pub sunset: Option<String>,
    /// Attempts it took (1 when the first one succeeded).
    pub attempts: u32,
    /// Which request this answered.
    pub request: Option<RequestInfo>,
}

impl ResponseMeta {
    /// The `Sunset` date, when it is a valid HTTP-date.
    pub fn sunset_at(&self) -> Option<DateTime<Utc>> {
        let t = httpdate::parse_http_date(self.sunset.as_deref()?.trim()).ok()?;
        Some(DateTime::<Utc>::from(t))
    }

    /// Whether the server marked the endpoint deprecated (`Deprecation` present and not `false`).
    pub fn is_deprecated(&self) -> bool {
        self.deprecation
            .as_deref()
            .is_some_and(|d| !d.trim().eq_ignore_ascii_case("false"))
    }
}

/// How a vendor's API behaves, as far as the transport needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VendorProfile {
    /// Shown in tracing spans.
    pub(crate) name: &'static str,
    /// 5xx statuses the vendor documents as safe to retry for any method.
    pub(crate) safe_statuses: &'static [u16],
    /// The vendor's published rate-limit buckets, for client-side pacing.
    pub(crate) buckets: &'static [Bucket],
    /// Which bucket a call counts against, from its method and URL path.
    pub(crate) bucket_for: fn(&Method, &str) -> &'static str,
}

/// The bucket of a vendor that publishes one budget for everything.
pub(crate) fn single_bucket(_: &Method, _: &str) -> &'static str {
    "all"
}

enum Target {
    Segments(Vec<String>),
    Absolute(Url),
}

/// One call, before it is sent. Cheap to retry: the body is serialized once.
pub(crate) struct Request {
    method: Method,
    target: Target,
    query: Option<String>,
    headers: HeaderMap,
    body: Option<(HeaderValue, Vec<u8>)>,
    idempotent: bool,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    sensitive_response: bool,
    authenticate: bool,
    pacing: Option<(&'static str, u32)>,
    /// Secrets the request carries outside the auth header (an OAuth2 client secret in a form
    /// body), redacted from whatever the response sends back.
    secrets: Vec<ApiKey>,
}

impl Request {
    /// A call to `base URL + segments`. Each segment is percent-encoded when the URL is built.
    pub(crate) fn new<I, S>(method: Method, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        Request {
            method,
            target: Target::Segments(segments.into_iter().map(Into::into).collect()),
            query: None,
            headers: HeaderMap::new(),
            body: None,
            idempotent,
            retry: None,
            timeout: None,
            sensitive_response: false,
            authenticate: true,
            pacing: None,
            secrets: Vec::new(),
        }
    }

    /// A call to an absolute URL (an OAuth2 token endpoint on another host).
    pub(crate) fn absolute(method: Method, url: Url) -> Self {
        let mut r = Request::new(method, Vec::<String>::new());
        r.target = Target::Absolute(url);
        r
    }

    /// Serializes `params` (a struct with `Option` fields skipped when `None`) as the query string.
    pub(crate) fn query<T: Serialize + ?Sized>(mut self, params: &T) -> Result<Self> {
        let q = serde_urlencoded::to_string(params)
            .map_err(|e| Error::invalid_input(format!("query parameters: {e}")))?;
        self.query = (!q.is_empty()).then_some(q);
        Ok(self)
    }

    /// Adds one `key=value` pair to the query string (percent-encoded).
    pub(crate) fn append_query(mut self, key: &str, value: &str) -> Self {
        let mut ser = url::form_urlencoded::Serializer::new(self.query.take().unwrap_or_default());
        ser.append_pair(key, value);
        self.query = Some(ser.finish());
        self
    }

    /// `METHOD /segments` for `Debug` output (no query, no headers).
    pub(crate) fn describe(&self) -> String {
        match &self.target {
            Target::Segments(s) => format!("{} /{}", self.method, s.join("/")),
            Target::Absolute(u) => format!("{} {}", self.method, u.path()),
        }
    }

    /// A JSON body.
    pub(crate) fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input(format!("request body: {e}")))?;
        self.body = Some((HeaderValue::from_static("application/json"), bytes));
        Ok(self)
    }

    /// An `application/x-www-form-urlencoded` body.
    pub(crate) fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let s = serde_urlencoded::to_string(body)
            .map_err(|e| Error::invalid_input(format!("form body: {e}")))?;
        self.body = Some((
            HeaderValue::from_static("application/x-www-form-urlencoded"),
            s.into_bytes(),
        ));
        Ok(self)
    }

    /// A header on this call only. The value is checked here, so a bad one (a newline in an ETag
    /// given by the caller) is an `InvalidInput`, not a panic.
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Result<Self> {
        let v = HeaderValue::from_str(value).map_err(|_| {
            Error::invalid_input(format!("`{name}` value is not a valid HTTP header value"))
        })?;
        self.headers.insert(name, v);
        Ok(self)
    }

    /// Overrides whether the call is safe to repeat (PATCH with `If-Match` is; POST usually is not).
    pub(crate) fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// A retry policy for this call only.
    pub(crate) fn retry(mut self, policy: Option<RetryPolicy>) -> Self {
        if policy.is_some() {
            self.retry = policy;
        }
        self
    }

    /// A per-attempt timeout for this call only.
    pub(crate) fn timeout(mut self, timeout: Option<Duration>) -> Self {
        if timeout.is_some() {
            self.timeout = timeout;
        }
        self
    }

    /// The response carries a secret (a webhook signing secret, a token): no body snippet in
    /// decode errors.
    pub(crate) fn sensitive_response(mut self) -> Self {
        self.sensitive_response = true;
        self
    }

    /// Counts this call as `cost` units of `bucket` for client-side pacing (the default is one
    /// unit of the bucket the vendor's classifier picks).
    #[allow(dead_code)] // Used by telemetry ingest (one unit per reading).
    pub(crate) fn pacing(mut self, bucket: &'static str, cost: u32) -> Self {
        self.pacing = Some((bucket, cost));
        self
    }

    /// Send without the client's credentials (an OAuth2 token endpoint).
    pub(crate) fn without_auth(mut self) -> Self {
        self.authenticate = false;
        self
    }

    /// A secret this request carries in its body or query (an OAuth2 client secret, a refresh
    /// token): like the auth header's key, it is redacted from everything the response sends back.
    pub(crate) fn secret(mut self, secret: &ApiKey) -> Self {
        self.secrets.push(secret.clone());
        self
    }
}

/// A success response with its body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) body: Vec<u8>,
    pub(crate) meta: ResponseMeta,
    /// The credentials the request carried, so that error text echoing them can be redacted.
    redactor: Redactor,
}

/// The settings of a client, shared by the vendor builders.
pub(crate) struct TransportBuilder {
    vendor: VendorProfile,
    base_url: String,
    allow_insecure_http: bool,
    auth: Option<Auth>,
    product: Option<String>,
    headers: Vec<(String, String)>,
    retry: RetryPolicy,
    retry_budget: Option<RetryBudget>,
    connect_timeout: Duration,
    timeout: Duration,
    http: Option<reqwest::Client>,
    max_response_bytes: usize,
    pacing: Option<Vec<Bucket>>,
}

impl fmt::Debug for TransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("vendor", &self.vendor.name)
            .field("base_url", &self.base_url)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("auth", &self.auth)
            .field("user_agent", &self.product)
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.0).collect::<Vec<_>>(),
            )
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("custom_http_client", &self.http.is_some())
            .field("pacing", &self.pacing)
            .finish()
    }
}

impl TransportBuilder {
    pub(crate) fn new(vendor: VendorProfile, default_base_url: &str) -> Self {
        TransportBuilder {
            vendor,
            base_url: default_base_url.to_owned(),
            allow_insecure_http: false,
            auth: None,
            product: None,
            headers: Vec::new(),
            retry: RetryPolicy::default(),
            retry_budget: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            http: None,
            max_response_bytes: 64 * 1024 * 1024,
            pacing: None,
        }
    }

    pub(crate) fn base_url(&mut self, url: impl Into<String>) {
        self.base_url = url.into();
    }

    pub(crate) fn allow_insecure_http(&mut self, allow: bool) {
        self.allow_insecure_http = allow;
    }

    pub(crate) fn auth(&mut self, auth: Auth) {
        self.auth = Some(auth);
    }

    pub(crate) fn user_agent(&mut self, product: impl Into<String>) {
        self.product = Some(product.into());
    }

    pub(crate) fn header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    pub(crate) fn retry_policy(&mut self, policy: RetryPolicy) {
        self.retry = policy;
    }

    pub(crate) fn retry_budget(&mut self, budget: RetryBudget) {
        self.retry_budget = Some(budget);
    }

    pub(crate) fn connect_timeout(&mut self, t: Duration) {
        self.connect_timeout = t;
    }

    pub(crate) fn timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    pub(crate) fn http_client(&mut self, client: reqwest::Client) {
        self.http = Some(client);
    }

    pub(crate) fn max_response_bytes(&mut self, n: usize) {
        self.max_response_bytes = n;
    }

    /// Client-side pacing with the vendor's published buckets (`true`) or none (`false`).
    pub(crate) fn pacing(&mut self, on: bool) {
        self.pacing = on.then(|| self.vendor.buckets.to_vec());
    }

    /// Client-side pacing with custom buckets (a plan with other limits). Names must match the
    /// vendor's bucket names (see the vendor module).
    pub(crate) fn pacing_buckets(&mut self, buckets: Vec<Bucket>) {
        self.pacing = Some(buckets);
    }

    pub(crate) fn build(self) -> Result<Transport> {
        let auth = self.auth.ok_or_else(|| {
            Error::config("no credentials: set an API key (or a token source) on the builder")
        })?;
        auth.validate()?;
        let base = parse_base_url(&self.base_url, self.allow_insecure_http)?;

        let mut default_headers = HeaderMap::new();
        let ua = match &self.product {
            Some(p) if !p.trim().is_empty() => format!("{} {SDK_USER_AGENT}", p.trim()),
            _ => SDK_USER_AGENT.to_owned(),
        };
        let ua = HeaderValue::from_str(&ua)
            .map_err(|_| Error::config("the user agent is not a valid HTTP header value"))?;
        default_headers.insert(USER_AGENT, ua);
        default_headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &self.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::config(format!("`{name}` is not a valid HTTP header name")))?;
            let v = HeaderValue::from_str(value).map_err(|_| {
                Error::config(format!(
                    "the value of `{name}` is not a valid HTTP header value"
                ))
            })?;
            default_headers.insert(n, v);
        }

        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .redirect(same_origin_redirects())
                .build()
                .map_err(|e| Error::config(format!("could not build the HTTP client: {e}")))?,
        };

        Ok(Transport {
            inner: Arc::new(Inner {
                vendor: self.vendor,
                http,
                base,
                auth,
                default_headers,
                retry: self.retry,
                budget: self.retry_budget.unwrap_or_default(),
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                pacer: self.pacing.as_deref().map(Pacer::new),
                last_rate_limit: Mutex::new(None),
                warned: Mutex::new(HashSet::new()),
            }),
        })
    }
}

/// Follows redirects only within the original origin (scheme, host, port). A redirect elsewhere
/// is returned as a 3xx error: reqwest strips `Authorization` across hosts, but would forward a
/// custom key header such as `X-Sepolo-Api-Key`.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 10 {
            return attempt.error("too many redirects");
        }
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Checks a base URL: `http(s)`, no credentials, query or fragment, and `https` unless the host is
/// loopback or the caller opted out.
pub(crate) fn parse_base_url(raw: &str, allow_insecure_http: bool) -> Result<Url> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::config(format!("the base URL is not a valid URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            "the base URL must not contain a user name or password; set the key on the builder",
        ));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(Error::config(format!("the base URL `{url}` has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "the base URL `{url}` must not have a query or fragment"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::config(format!(
                "the base URL `{url}` is not https: keys would travel in clear text \
                 (allowed only for loopback hosts, or with allow_insecure_http(true))"
            )));
        }
        other => {
            return Err(Error::config(format!(
                "the base URL scheme `{other}` is not supported (use https)"
            )));
        }
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A configured HTTP client for one vendor. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    vendor: VendorProfile,
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    default_headers: HeaderMap,
    retry: RetryPolicy,
    budget: RetryBudget,
    timeout: Duration,
    max_response_bytes: usize,
    pacer: Option<Pacer>,
    last_rate_limit: Mutex<Option<RateLimit>>,
    warned: Mutex<HashSet<String>>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Client")
            .field("vendor", &i.vendor.name)
            .field("base_url", &i.base.as_str())
            .field("auth", &i.auth)
            .field("retry", &i.retry)
            .field("retry_budget_available", &i.budget.available())
            .field("timeout", &i.timeout)
            .field("pacing", &i.pacer)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended, when it did not succeed.
struct Failed {
    failure: Failure,
    error: Error,
    retry_after: Option<Duration>,
    /// The key the attempt was sent with, to hand back to a token source on 401.
    key: Option<ApiKey>,
}

impl Transport {
    /// The base URL all paths are appended to.
    pub(crate) fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The rate-limit state of the latest response that carried rate-limit headers.
    pub(crate) fn last_rate_limit(&self) -> Option<RateLimit> {
        lock(&self.inner.last_rate_limit).clone()
    }

    /// The retry budget shared by this client's calls.
    #[cfg(test)]
    pub(crate) fn retry_budget(&self) -> &RetryBudget {
        &self.inner.budget
    }

    #[cfg(test)]
    pub(crate) fn inner_warned_len(&self) -> usize {
        lock(&self.inner.warned).len()
    }

    /// Sends a call and decodes its JSON body as `T`.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        req: Request,
    ) -> Result<(T, ResponseMeta)> {
        let sensitive = req.sensitive_response;
        let resp = self.send(req).await?;
        let value = decode(&resp, sensitive)?;
        Ok((value, resp.meta))
    }

    /// Sends a call; `Ok` only for a 2xx response.
    pub(crate) async fn send(&self, req: Request) -> Result<Response> {
        let url = self.url(&req)?;
        let info = RequestInfo::new(req.method.as_str(), url.path());
        let span = tracing::debug_span!(
            "iot_sdk.request",
            vendor = self.inner.vendor.name,
            method = %req.method,
            path = %url.path(),
        );
        self.send_with_retries(&req, &url, &info)
            .instrument(span)
            .await
    }

    /// The URL of a call: the base URL plus percent-encoded segments, plus the query.
    pub(crate) fn url(&self, req: &Request) -> Result<Url> {
        let mut url = match &req.target {
            Target::Absolute(u) => u.clone(),
            Target::Segments(segments) => {
                let mut url = self.inner.base.clone();
                {
                    let mut path = url
                        .path_segments_mut()
                        .map_err(|()| Error::config("the base URL cannot have a path"))?;
                    path.pop_if_empty();
                    for s in segments {
                        check_segment(s)?;
                        path.push(s);
                    }
                }
                url
            }
        };
        url.set_query(req.query.as_deref());
        Ok(url)
    }

    async fn send_with_retries(
        &self,
        req: &Request,
        url: &Url,
        info: &RequestInfo,
    ) -> Result<Response> {
        let policy = req.retry.as_ref().unwrap_or(&self.inner.retry);
        let started = Instant::now();
        let mut delays = policy.delays();
        let mut max_attempts = policy.max_attempts();
        let mut reauthenticated = false;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let failed = match self.attempt(req, url, info, attempt).await? {
                Ok(resp) => {
                    self.inner.budget.on_success();
                    return Ok(resp);
                }
                Err(f) => f,
            };
            let Failed {
                failure,
                error,
                retry_after,
                key,
            } = failed;

            if failure == Failure::Status(401) && !reauthenticated {
                if let Some(key) = key {
                    if self.inner.auth.refresh_after_401(&key).await? {
                        tracing::info!(attempt, "401: refreshed the token, sending again");
                        reauthenticated = true;
                        max_attempts = max_attempts.saturating_add(1);
                        continue;
                    }
                }
            }

            let verdict = self.next_delay(
                policy,
                failure,
                req.idempotent,
                attempt,
                max_attempts,
                delays.next(),
                retry_after,
                started,
            );
            let delay = match verdict {
                Ok(d) => d,
                Err(why) => {
                    tracing::debug!(attempt, reason = why, "not retrying");
                    return Err(with_attempts(error, attempt));
                }
            };
            tracing::info!(
                attempt,
                failure = ?failure,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                request_id = error.request_id().unwrap_or(""),
                "retrying",
            );
            tokio::time::sleep(delay.min(MAX_SLEEP)).await;
        }
    }

    /// How long to wait before the next attempt, or why there is none.
    #[allow(clippy::too_many_arguments)]
    fn next_delay(
        &self,
        policy: &RetryPolicy,
        failure: Failure,
        idempotent: bool,
        attempt: u32,
        max_attempts: u32,
        computed: Option<Duration>,
        retry_after: Option<Duration>,
        started: Instant,
    ) -> std::result::Result<Duration, &'static str> {
        if !retry::is_retryable(failure, idempotent, self.inner.vendor.safe_statuses) {
            return Err("not retryable");
        }
        let computed = match computed {
            Some(d) if attempt < max_attempts => d,
            _ => return Err("attempts exhausted"),
        };
        let delay = match retry_after {
            Some(ra) if ra > policy.retry_after_cap() => {
                return Err("Retry-After is above the cap");
            }
            Some(ra) => ra,
            None => computed,
        };
        if let Some(budget) = policy.time_budget() {
            if started.elapsed().saturating_add(delay) > budget {
                return Err("the retry time budget would be exceeded");
            }
        }
        if !self.inner.budget.try_acquire() {
            tracing::warn!(attempt, "retry budget exhausted: not retrying");
            return Err("retry budget exhausted");
        }
        Ok(delay)
    }

    /// One attempt. The outer `Err` is final (a token source failed); the inner one may be retried.
    async fn attempt(
        &self,
        req: &Request,
        url: &Url,
        info: &RequestInfo,
        attempt: u32,
    ) -> Result<std::result::Result<Response, Failed>> {
        let i = &self.inner;
        let mut rb = i
            .http
            .request(req.method.clone(), url.clone())
            .headers(i.default_headers.clone())
            .headers(req.headers.clone())
            .timeout(req.timeout.unwrap_or(i.timeout));
        let mut key = None;
        if req.authenticate {
            let (name, value, k) = i.auth.header_for_attempt().await?;
            rb = rb.header(name, value);
            key = Some(k);
        }
        let redactor = Redactor::new(
            i.auth
                .static_key()
                .into_iter()
                .chain(key.as_ref())
                .chain(&req.secrets),
        );
        if let Some((content_type, body)) = &req.body {
            rb = rb
                .header(CONTENT_TYPE, content_type.clone())
                .body(body.clone());
        }

        let bucket = req
            .pacing
            .unwrap_or_else(|| ((i.vendor.bucket_for)(&req.method, url.path()), 1));
        if let Some(pacer) = &i.pacer {
            pacer.acquire(bucket.0, bucket.1).await;
        }

        let started = Instant::now();
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = classify(&e);
                let failure = Failure::of_transport(kind);
                tracing::debug!(attempt, kind = ?kind, "attempt failed before a response");
                return Ok(Err(Failed {
                    failure,
                    error: transport_error(kind, info, describe_reqwest(&e), Some(e)),
                    retry_after: None,
                    key,
                }));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let received = SystemTime::now();
        let body = match read_body(resp, i.max_response_bytes).await {
            Ok(b) => b,
            Err((kind, msg, source)) => {
                tracing::debug!(attempt, status = status.as_u16(), "reading the body failed");
                return Ok(Err(Failed {
                    failure: Failure::of_transport(kind),
                    error: transport_error(kind, info, msg, source),
                    retry_after: None,
                    key,
                }));
            }
        };

        let meta = self.meta(status, &headers, &body, info, attempt, received, &redactor);
        if let Some(pacer) = &i.pacer {
            pacer.observe(bucket.0, &meta.rate_limit);
        }
        tracing::debug!(
            attempt,
            status = status.as_u16(),
            request_id = meta.request_id.as_deref().unwrap_or(""),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "response",
        );
        if status.is_success() {
            return Ok(Ok(Response {
                body,
                meta,
                redactor,
            }));
        }
        let retry_after = meta.rate_limit.retry_after;
        let error = api_error(status, &headers, &body, meta, &redactor);
        Ok(Err(Failed {
            failure: Failure::Status(status.as_u16()),
            error: error.into(),
            retry_after,
            key,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn meta(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        info: &RequestInfo,
        attempt: u32,
        received: SystemTime,
        redactor: &Redactor,
    ) -> ResponseMeta {
        // Header values are visible ASCII (`to_str`), but may still echo a credential.
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| redactor.text(s.trim()))
                .filter(|s| !s.is_empty())
        };
        let rate_limit = RateLimit::from_headers(headers, received);
        if !rate_limit.is_empty() {
            *lock(&self.inner.last_rate_limit) = Some(rate_limit.clone());
        }
        let meta = ResponseMeta {
            status: status.as_u16(),
            request_id: headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|id| redactor.untrusted_id(id))
                .or_else(|| request_id_in_body(body).and_then(|id| redactor.untrusted_id(&id))),
            rate_limit,
            etag: headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(|e| redactor.text(e)),
            deprecation: text("deprecation"),
            sunset: text("sunset"),
            attempts: attempt,
            request: Some(info.clone()),
        };
        if meta.deprecation.is_some() || meta.sunset.is_some() {
            let mut warned = lock(&self.inner.warned);
            let key = info.to_string();
            if warned.len() < MAX_WARNED_ENDPOINTS && warned.insert(key) {
                tracing::warn!(
                    method = info.method(),
                    path = info.path(),
                    deprecation = meta.deprecation.as_deref().unwrap_or(""),
                    sunset = meta.sunset.as_deref().unwrap_or(""),
                    "the server marked this endpoint deprecated",
                );
            }
        }
        meta
    }
}

/// The longest vendor message kept in an [`ApiError`]; a longer one is cut.
const MAX_MESSAGE_LEN: usize = 2048;

/// Turns an error response into an [`ApiError`]. Everything taken from the response (code,
/// message, details, request id, body snippet, redirect target) is redacted of the request's
/// credentials first, and cut to length only after that.
fn api_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    meta: ResponseMeta,
    redactor: &Redactor,
) -> ApiError {
    let parsed = parse_error_body(body);
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let status_code = || ErrorCode::from_status(status.as_u16());
    let (code, message, details, body_request_id, body_snippet) = match parsed {
        Some(p) => (
            p.code
                .and_then(|c| redactor.untrusted_id(&c))
                .map_or_else(status_code, |c| ErrorCode::parse(&c)),
            p.message
                .map(|m| snippet(&redactor.text(&m), MAX_MESSAGE_LEN))
                .unwrap_or(reason),
            p.details.map(|d| redactor.value(d)),
            p.request_id.and_then(|id| redactor.untrusted_id(&id)),
            None,
        ),
        None => {
            let snip = body_snippet(body, redactor);
            let message = if status.is_redirection() {
                let to = headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| Url::parse(l).ok())
                    .map(|u| redactor.text(&u.origin().ascii_serialization()))
                    .unwrap_or_else(|| "another location".to_owned());
                format!(
                    "redirect to {to} not followed: credentials are never sent to another origin"
                )
            } else {
                reason
            };
            (status_code(), message, None, None, snip)
        }
    };
    ApiError {
        status: status.as_u16(),
        code,
        message,
        details,
        request_id: meta.request_id.or(body_request_id),
        retry_after: meta.rate_limit.retry_after,
        rate_limit: meta.rate_limit,
        request: meta.request.unwrap_or_else(|| RequestInfo::new("?", "?")),
        body_snippet,
        attempts: meta.attempts,
    }
}

/// The start of a body as text for an error, redacted *before* it is cut, so that a credential
/// crossing the cut cannot survive in part. `None` for an empty body.
fn body_snippet(body: &[u8], redactor: &Redactor) -> Option<String> {
    // Only the start is shown; what lies far beyond the cut cannot reach the snippet.
    const SCAN: usize = 64 * 1024;
    let head = body.get(..body.len().min(SCAN)).unwrap_or(body);
    let text = redactor.text(&String::from_utf8_lossy(head));
    let snip = snippet(&text, SNIPPET_LEN);
    (!snip.is_empty()).then_some(snip)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A non-blank value from an environment lookup.
pub(crate) fn env_value(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    get(name).filter(|v| !v.trim().is_empty())
}

/// A required non-blank value from an environment lookup; its absence is a `Config` error.
pub(crate) fn env_required(get: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<String> {
    env_value(get, name).ok_or_else(|| Error::config(format!("{name} is not set")))
}

/// Refuses path segments that would change the path's meaning or vanish: empty, `.` and `..`
/// (dot segments, which URL parsing removes), and any ASCII control character (U+0000 to U+001F
/// and U+007F). Control characters are refused rather than encoded because URL parsing silently
/// *drops* tab, CR and LF, so `".\t."` would become `..` and `"a\tb"` another id `ab`; no vendor
/// issues ids with control characters, so one is a sign of corrupted or injected input. Every
/// other character is percent-encoded as part of exactly one segment.
pub(crate) fn check_segment(s: &str) -> Result<()> {
    match s {
        "" => Err(Error::invalid_input("an id or path segment is empty")),
        "." | ".." => Err(Error::invalid_input(format!(
            "`{s}` is not a valid id: it would change the request path"
        ))),
        _ if s.chars().any(|c| c.is_ascii_control()) => Err(Error::invalid_input(format!(
            "{:?} is not a valid id: it contains an ASCII control character",
            snippet(s, 64)
        ))),
        _ => Ok(()),
    }
}

fn classify(e: &reqwest::Error) -> TransportErrorKind {
    if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_request() || e.is_body() {
        TransportErrorKind::Request
    } else {
        TransportErrorKind::Other
    }
}

/// reqwest's message and its causes, without the URL.
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        src = s.source();
    }
    let head = if e.is_timeout() {
        "operation timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    if parts.is_empty() {
        head
    } else {
        format!("{head}: {}", parts.join(": "))
    }
}

fn transport_error(
    kind: TransportErrorKind,
    info: &RequestInfo,
    message: String,
    source: Option<reqwest::Error>,
) -> Error {
    TransportError {
        kind,
        request: info.clone(),
        attempts: 1,
        message,
        source: source
            .map(|e| Box::new(e.without_url()) as Box<dyn std::error::Error + Send + Sync>),
    }
    .into()
}

type BodyError = (TransportErrorKind, String, Option<reqwest::Error>);

async fn read_body(
    mut resp: reqwest::Response,
    max: usize,
) -> std::result::Result<Vec<u8>, BodyError> {
    let too_large = || {
        (
            TransportErrorKind::ResponseTooLarge,
            format!("the response body is larger than {max} bytes"),
            None,
        )
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let expected = resp
        .content_length()
        .map_or(0, |n| usize::try_from(n).unwrap_or(max));
    let mut body = Vec::with_capacity(expected.min(max));
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len().saturating_add(chunk.len()) > max {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                let kind = if e.is_timeout() {
                    TransportErrorKind::Timeout
                } else {
                    TransportErrorKind::Request
                };
                let msg = format!("reading the response body failed: {}", describe_reqwest(&e));
                return Err((kind, msg, Some(e)));
            }
        }
    }
}

/// The parts of an error body the three vendors use.
struct ParsedError {
    code: Option<String>,
    message: Option<String>,
    details: Option<serde_json::Value>,
    request_id: Option<String>,
}

/// Normalizes SGT `{error:{code,message,details,request_id}}`, Sepolo `{error, message}`,
/// SiliconWit `{error}` and OAuth2 `{error, error_description}`. `None` when the body is not a
/// JSON object of one of those shapes.
fn parse_error_body(body: &[u8]) -> Option<ParsedError> {
    use serde_json::Value;
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    // OAuth2 (RFC 6749 §5.2) sends `{error: "invalid_grant", error_description}`.
    let message_or_description =
        || s(obj.get("message")).or_else(|| s(obj.get("error_description")));
    match obj.get("error") {
        Some(Value::Object(e)) => Some(ParsedError {
            code: s(e.get("code")),
            message: s(e.get("message")),
            details: e.get("details").filter(|d| !d.is_null()).cloned(),
            request_id: s(e.get("request_id")),
        }),
        Some(Value::String(text)) => match message_or_description() {
            Some(message) => Some(ParsedError {
                code: Some(text.clone()),
                message: Some(message),
                details: obj.get("details").filter(|d| !d.is_null()).cloned(),
                request_id: None,
            }),
            None => Some(ParsedError {
                code: None,
                message: Some(text.clone()),
                details: None,
                request_id: None,
            }),
        },
        _ if obj.contains_key("message") => Some(ParsedError {
            code: s(obj.get("code")),
            message: s(obj.get("message")),
            details: None,
            request_id: None,
        }),
        _ => None,
    }
}

/// A request id inside an envelope, for responses without `X-Request-Id`.
fn request_id_in_body(body: &[u8]) -> Option<String> {
    use serde_json::Value;
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    [
        v.pointer("/meta/request_id"),
        v.pointer("/error/request_id"),
        v.get("request_id"),
        v.get("requestId"),
    ]
    .into_iter()
    .flatten()
    .find_map(|v| v.as_str().map(str::to_owned))
}

/// Decodes a success body; an empty body decodes as JSON `null` (so `()` and `Option` work).
fn decode<T: DeserializeOwned>(resp: &Response, sensitive: bool) -> Result<T> {
    let body: &[u8] = if resp.body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &resp.body
    };
    // Fast path: plain serde_json. Only when that fails is the body decoded again with
    // serde_path_to_error, which tracks the field path at a cost on every value.
    if let Ok(v) = serde_json::from_slice::<T>(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = serde_path_to_error::deserialize::<_, T>(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
        .and_then(|v| {
            de.end()
                .map(|()| v)
                .map_err(|e| (".".to_owned(), e.to_string()))
        });
    let redactor = &resp.redactor;
    result.map_err(|(field_path, message)| {
        DecodeError {
            status: resp.meta.status,
            request_id: resp.meta.request_id.clone(),
            request: resp
                .meta
                .request
                .clone()
                .unwrap_or_else(|| RequestInfo::new("?", "?")),
            // A path can name a map key and serde's message can quote a value: both are server text.
            field_path: snippet(&redactor.text(&field_path), SNIPPET_LEN),
            message: snippet(&redactor.text(&message), SNIPPET_LEN),
            body_snippet: if sensitive {
                None
            } else {
                body_snippet(&resp.body, redactor)
            },
        }
        .into()
    })
}

fn with_attempts(mut e: Error, attempts: u32) -> Error {
    match &mut e {
        Error::Api(a) => a.attempts = attempts,
        Error::Transport(t) => t.attempts = attempts,
        _ => {}
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_bodies_keep_the_code_and_the_description() {
        let p = parse_error_body(
            br#"{"error":"invalid_grant","error_description":"The refresh token has expired."}"#,
        )
        .unwrap();
        assert_eq!(p.code.as_deref(), Some("invalid_grant"));
        assert_eq!(p.message.as_deref(), Some("The refresh token has expired."));
        assert!(p.details.is_none() && p.request_id.is_none());
        assert_eq!(
            ErrorCode::parse(p.code.as_deref().unwrap()),
            ErrorCode::Other("invalid_grant".into())
        );

        // Sepolo's `message` still wins; SiliconWit's lone `error` is still the message.
        let p = parse_error_body(br#"{"error":"forbidden","message":"m","error_description":"d"}"#)
            .unwrap();
        assert_eq!(p.message.as_deref(), Some("m"));
        let p = parse_error_body(br#"{"error":"Device not found"}"#).unwrap();
        assert_eq!(p.code, None);
        assert_eq!(p.message.as_deref(), Some("Device not found"));
    }
}
