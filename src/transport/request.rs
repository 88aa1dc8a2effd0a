//! A call before it is sent: method, target, query, headers, body, and per-call settings.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use url::Url;

use crate::auth::ApiKey;
use crate::error::{Error, Result, snippet};
use crate::rate_limit::BucketKind;
use crate::retry::{RetryPolicy, RetryRules};
/// One path segment of a request, as given (it is percent-encoded when the URL is built): a
/// resource name the SDK knows at compile time is borrowed, an id is moved in, so building a
/// request copies no text.
pub(crate) type Segment = Cow<'static, str>;

/// Where a request goes.
#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
pub(super) enum Target {
    Segments(Vec<Segment>),
    // Boxed: a `Url` is four times a `Vec`, and a request is moved through every layer of a call.
    Absolute(Box<Url>),
}

/// One call, before it is sent. Cheap to retry: the body is serialized once.
pub(crate) struct Request {
    pub(super) method: Method,
    pub(super) target: Target,
    pub(super) query: Option<String>,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<(HeaderValue, Bytes)>,
    pub(super) idempotent: bool,
    /// Boxed, like the rare absolute target, to keep a request small to move.
    pub(super) retry: Option<Box<RetryPolicy>>,
    /// This call's own retry rules, asked before the client's.
    pub(super) retry_rules: RetryRules,
    pub(super) timeout: Option<Duration>,
    pub(super) sensitive_response: bool,
    pub(super) authenticate: bool,
    pub(super) pacing: Option<(&'static str, u32)>,
    /// Secrets the request carries outside the auth header (an OAuth2 client secret in a form
    /// body), redacted from whatever the response sends back.
    pub(super) secrets: Vec<ApiKey>,
}

impl Request {
    /// A call to `base URL + segments`. Each segment is percent-encoded when the URL is built.
    pub(crate) fn new<I, S>(method: Method, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Segment>,
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
            retry_rules: RetryRules::default(),
            timeout: None,
            sensitive_response: false,
            authenticate: true,
            pacing: None,
            secrets: Vec::new(),
        }
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// A call to an absolute URL (an OAuth2 token endpoint on another host).
    pub(crate) fn absolute(method: Method, url: Url) -> Self {
        let mut r = Request::new(method, Vec::<String>::new());
        r.target = Target::Absolute(Box::new(url));
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

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// A JSON body.
    pub(crate) fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input(format!("request body: {e}")))?;
        Ok(self.json_bytes(bytes.into()))
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// A JSON body already serialized (the caller vouches that `bytes` is one JSON value): for a
    /// body built once and kept, like the ingest sink's stored batches.
    pub(crate) fn json_bytes(mut self, bytes: Bytes) -> Self {
        self.body = Some((HeaderValue::from_static("application/json"), bytes));
        self
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// An `application/x-www-form-urlencoded` body.
    pub(crate) fn form<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let s = serde_urlencoded::to_string(body)
            .map_err(|e| Error::invalid_input(format!("form body: {e}")))?;
        self.body = Some((
            HeaderValue::from_static("application/x-www-form-urlencoded"),
            s.into_bytes().into(),
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

    /// A call's own settings, in place (a request is hundreds of bytes: it is not moved for each):
    /// its retry policy, its retry rules (asked before the client's) and its per-attempt
    /// timeout, each only when the call sets one.
    pub(crate) fn set_options(
        &mut self,
        policy: Option<&RetryPolicy>,
        rules: &RetryRules,
        timeout: Option<Duration>,
    ) {
        if let Some(policy) = policy {
            self.retry = Some(Box::new(policy.clone()));
        }
        if !rules.is_empty() {
            self.retry_rules = rules.clone();
        }
        if timeout.is_some() {
            self.timeout = timeout;
        }
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// The response carries a secret (a webhook signing secret, a token): no body snippet in
    /// decode errors.
    pub(crate) fn sensitive_response(mut self) -> Self {
        self.sensitive_response = true;
        self
    }

    /// Counts this call as `cost` units of `bucket` for client-side pacing (the default is one
    /// unit of the bucket the vendor's classifier picks).
    #[allow(
        dead_code,
        reason = "only a vendor whose calls cost more than one unit uses it"
    )]
    pub(crate) fn pacing(mut self, bucket: impl BucketKind, cost: u32) -> Self {
        self.pacing = Some((bucket.name(), cost));
        self
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// Send without the client's credentials (an OAuth2 token endpoint).
    pub(crate) fn without_auth(mut self) -> Self {
        self.authenticate = false;
        self
    }

    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    /// A secret this request carries in its body or query (an OAuth2 client secret, a refresh
    /// token): like the auth header's key, it is redacted from everything the response sends back.
    pub(crate) fn secret(mut self, secret: &ApiKey) -> Self {
        self.secrets.push(secret.clone());
        self
    }
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
        // Bytes, not chars: an ASCII control character is one byte, and no byte of a multi-byte
        // UTF-8 character is below 0x80.
        _ if s.bytes().any(|b| b.is_ascii_control()) => Err(Error::invalid_input(format!(
            "{:?} is not a valid id: it contains an ASCII control character",
            snippet(s, 64)
        ))),
        _ => Ok(()),
    }
}
