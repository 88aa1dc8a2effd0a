//! The crate's one error type.
//!
//! Every fallible call returns [`Result<T>`], whose error is [`Error`]. Each variant says *what*
//! happened and *which request* it was: the HTTP method and path, the status, the vendor's error code
//! and message, and the request id to quote to the vendor's support team.
//!
//! ```
//! use iot_sdk::{Error, ErrorCode};
//!
//! fn explain(err: &Error) -> String {
//!     match err {
//!         Error::Api(api) if api.code() == &ErrorCode::NotFound => "gone".to_owned(),
//!         Error::Api(api) => format!("server said {} (request {:?})", api.status(), api.request_id()),
//!         other => other.to_string(),
//!     }
//! }
//! ```
//!
//! No error's `Display` or `Debug` ever contains an API key or token: the transport never puts one in
//! an error, and redacts any occurrence of the client's key that a server echoes back in a body.

use std::fmt;
use std::time::Duration;

use crate::rate_limit::RateLimit;
use crate::retry;

/// `Result<T, iot_sdk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a call.
///
/// The large variants are boxed so that `Result<T>` stays small.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status (4xx, 5xx, or a redirect that was not followed).
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request could not be completed: connect failure, TLS, timeout, reset, oversized body.
    #[error(transparent)]
    Transport(Box<TransportError>),
    /// A success response whose body did not have the documented shape.
    #[error(transparent)]
    Decode(Box<DecodeError>),
    /// The responses parsed, but broke the API's protocol: a cursor that repeats (which would page
    /// forever), or `has_more` without a cursor (which would silently lose the rest of the list).
    #[error(transparent)]
    Protocol(Box<ProtocolError>),
    /// The caller's input was refused before anything was sent: an empty or `..` id, a page size
    /// over the vendor's maximum, an empty or inverted time window.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The client could not be built: a missing key, a malformed or non-`https` base URL, a header
    /// value that is not valid in HTTP.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A failure only one vendor's call has, carrying more than one request's outcome (a bulk
    /// ingest in which not every item was accepted hands back the items that were not). The
    /// vendor module documents its type; [`Error::vendor`] downcasts to it. Its
    /// [`source`](std::error::Error::source) is the request error that decided the outcome, if
    /// one did, so [`Error::api`] and [`Error::is_retryable`] still answer for it.
    #[error(transparent)]
    Vendor(Box<dyn std::error::Error + Send + Sync>),
    /// An [`Interceptor`](crate::intercept::Interceptor) or a
    /// [`RetryRule`](crate::retry::RetryRule) registered by the caller returned an error or
    /// panicked: the call stops there. The client stays usable.
    #[error(transparent)]
    Interceptor(Box<InterceptorError>),

    /// Pacing is on and its [`Limiter`](crate::Limiter) could not decide whether the call may
    /// go (a shared store unreachable) for longer than its
    /// [`LimiterFallback::Wait`](crate::LimiterFallback::Wait) allows; nothing was sent.
    #[error("rate limiter: {0}")]
    Limiter(Box<crate::limiter::LimiterError>),
}

impl Error {
    /// The API error, if the server answered with an error status.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            Error::Vendor(_) => self.underlying().and_then(Error::api),
            _ => None,
        }
    }

    /// The HTTP status of the response this error came from, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode(e) => Some(e.status),
            _ => None,
        }
    }

    /// The request id (`X-Request-Id`, or the id in the body), if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id(),
            Error::Decode(e) => e.request_id(),
            Error::Protocol(e) => e.request_id(),
            _ => None,
        }
    }

    /// How long the server asked the caller to wait before trying again (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(ApiError::retry_after)
    }

    /// Whether trying the same call again later may succeed: 429, 500, 502, 503, 504, connect
    /// failures, timeouts and resets; never a body over the size cap. This ignores idempotency (the
    /// SDK's own retry loop also checks that) and is decided by the same classification as that
    /// loop, so the two never disagree.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Transport(e) => {
                retry::is_retryable(retry::FailureKind::of_transport(e.kind()), true, &[])
            }
            Error::Vendor(_) => self.underlying().is_some_and(Error::is_retryable),
            _ => false,
        }
    }

    /// The vendor-specific failure of type `T` this error carries, if it is one (the vendor
    /// module's docs show its type).
    pub fn vendor<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            Error::Vendor(e) => e.downcast_ref::<T>(),
            _ => None,
        }
    }

    /// The request error under a vendor-specific failure.
    fn underlying(&self) -> Option<&Error> {
        match self {
            Error::Vendor(e) => e.source()?.downcast_ref::<Error>(),
            _ => None,
        }
    }

    /// 404, or a vendor code meaning "not found".
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    /// 429 / `rate_limited`.
    pub fn is_rate_limited(&self) -> bool {
        self.api().is_some_and(ApiError::is_rate_limited)
    }

    /// 409 / `conflict` (for example a stale `If-Match` ETag).
    pub fn is_conflict(&self) -> bool {
        self.api().is_some_and(ApiError::is_conflict)
    }

    /// 401: the key or token is missing, invalid or expired.
    pub fn is_unauthenticated(&self) -> bool {
        self.api().is_some_and(|e| e.status == 401)
    }

    /// 403: authenticated, but not allowed (missing scope, wrong tenant, suspended account).
    pub fn is_forbidden(&self) -> bool {
        self.api().is_some_and(|e| e.status == 403)
    }

    pub(crate) fn invalid_input(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
}

/// The method and path of the request an error belongs to, e.g. `GET /v1/devices/dev_42`.
///
/// The query string is left out (it can be long); no credential is ever part of either.
///
/// Cheap to clone: every response's metadata and every error of a call share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    method: std::borrow::Cow<'static, str>,
    path: std::sync::Arc<str>,
}

impl RequestInfo {
    pub(crate) fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            method: std::borrow::Cow::Owned(method.into()),
            path: path.into().into(),
        }
    }

    /// The request of `method` (a standard one needs no allocation) to `path`.
    pub(crate) fn of(method: &reqwest::Method, path: &str) -> Self {
        use reqwest::Method as M;
        use std::borrow::Cow::{Borrowed, Owned};
        let method = match *method {
            M::GET => Borrowed("GET"),
            M::POST => Borrowed("POST"),
            M::PUT => Borrowed("PUT"),
            M::PATCH => Borrowed("PATCH"),
            M::DELETE => Borrowed("DELETE"),
            M::HEAD => Borrowed("HEAD"),
            M::OPTIONS => Borrowed("OPTIONS"),
            _ => Owned(method.as_str().to_owned()),
        };
        Self {
            method,
            path: path.into(),
        }
    }

    /// The HTTP method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL path, percent-encoded as sent.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A vendor error code, normalized across the three APIs.
///
/// Vendors send codes (`not_found`, `forbidden`), some only a sentence; where the body carries no
/// code, the code is derived from the HTTP status. A vendor maps its own specific codes onto these
/// (a `device_not_found` is [`ErrorCode::NotFound`]); [`ApiError::vendor_code`] keeps the code as
/// sent. A code this enum does not know is kept in [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: malformed request or missing required fields (`invalid_request`, `bad_request`,
    /// `validation`).
    InvalidRequest,
    /// 401: missing or invalid credentials.
    Unauthenticated,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: the resource does not exist or is not visible to the caller.
    NotFound,
    /// 409: state conflict, such as a stale `If-Match`.
    Conflict,
    /// 422: semantic validation failure.
    ValidationFailed,
    /// 429: rate limit exceeded.
    RateLimited,
    /// 500: unexpected server error.
    InternalError,
    /// 502: an upstream component answered badly.
    BadGateway,
    /// 503: temporary outage.
    Unavailable,
    /// 504: upstream timeout.
    Timeout,
    /// Any other code, kept as the server sent it (or `http_<status>` when there was none).
    Other(String),
}

impl ErrorCode {
    /// Parses a vendor code; unknown codes become [`ErrorCode::Other`].
    pub fn parse(code: &str) -> Self {
        match code.trim().to_ascii_lowercase().as_str() {
            "invalid_request" | "bad_request" | "validation" | "validation_error" => {
                ErrorCode::InvalidRequest
            }
            "unauthenticated" | "unauthorized" => ErrorCode::Unauthenticated,
            "forbidden" => ErrorCode::Forbidden,
            "not_found" => ErrorCode::NotFound,
            "conflict" => ErrorCode::Conflict,
            "validation_failed" => ErrorCode::ValidationFailed,
            "rate_limited" | "too_many_requests" => ErrorCode::RateLimited,
            "internal_error" | "internal_server_error" => ErrorCode::InternalError,
            "bad_gateway" => ErrorCode::BadGateway,
            "unavailable" | "service_unavailable" => ErrorCode::Unavailable,
            "timeout" | "gateway_timeout" => ErrorCode::Timeout,
            _ => ErrorCode::Other(code.to_owned()),
        }
    }

    /// The code a bare HTTP status implies, for bodies that carry none.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => ErrorCode::InvalidRequest,
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            422 => ErrorCode::ValidationFailed,
            429 => ErrorCode::RateLimited,
            500 => ErrorCode::InternalError,
            502 => ErrorCode::BadGateway,
            503 => ErrorCode::Unavailable,
            504 => ErrorCode::Timeout,
            other => ErrorCode::Other(format!("http_{other}")),
        }
    }

    /// The code as text (SGT's spelling for the known ones).
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::BadGateway => "bad_gateway",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Other(s) => s,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error status from the server, with the vendor's body normalized.
///
/// `Display` reads like
/// `HTTP 404 device_not_found: No device with id 'dev_42' exists (request req_01HW; GET /v1/devices/dev_42)`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: ErrorCode,
    pub(crate) vendor_code: Option<String>,
    pub(crate) message: String,
    pub(crate) details: Option<serde_json::Value>,
    pub(crate) request_id: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) rate_limit: RateLimit,
    pub(crate) request: RequestInfo,
    pub(crate) body_snippet: Option<String>,
    pub(crate) attempts: u32,
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The normalized vendor code.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// The code as the server sent it (`device_not_found`), when the body had one; [`Self::code`]
    /// is its normalized form.
    pub fn vendor_code(&self) -> Option<&str> {
        self.vendor_code.as_deref()
    }

    /// The vendor's human-readable message (or a short text snippet of a non-JSON body).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details, when the vendor sends them (SGT's `error.details`).
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// The request id from `X-Request-Id` or the error body.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The server's `Retry-After`, parsed (seconds or HTTP-date).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The rate-limit headers of the error response.
    pub fn rate_limit(&self) -> &RateLimit {
        &self.rate_limit
    }

    /// Which request this was.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// For a body that was not a recognised JSON error (an HTML page from a proxy), its first few
    /// hundred characters.
    pub fn body_snippet(&self) -> Option<&str> {
        self.body_snippet.as_deref()
    }

    /// How many attempts were made before giving up (1 when the call was not retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// 429, 500, 502, 503 and 504: the statuses the SDK's retry loop retries (the 5xx ones only
    /// for idempotent calls, unless the vendor promises otherwise).
    pub fn is_retryable(&self) -> bool {
        retry::is_retryable(retry::FailureKind::Status(self.status), true, &[])
    }

    /// 404 or a not-found code.
    pub fn is_not_found(&self) -> bool {
        self.status == 404 || self.code == ErrorCode::NotFound
    }

    /// 429 or `rate_limited`.
    pub fn is_rate_limited(&self) -> bool {
        self.status == 429 || self.code == ErrorCode::RateLimited
    }

    /// 409 or `conflict`.
    pub fn is_conflict(&self) -> bool {
        self.status == 409 || self.code == ErrorCode::Conflict
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.vendor_code.as_deref().unwrap_or(self.code.as_str());
        write!(f, "HTTP {} {code}", self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        f.write_str(" (")?;
        if let Some(id) = &self.request_id {
            write!(f, "request {id}; ")?;
        }
        write!(f, "{}", self.request)?;
        if self.attempts > 1 {
            write!(f, "; after {} attempts", self.attempts)?;
        }
        if let Some(ra) = self.retry_after {
            write!(f, "; retry after {}s", ra.as_secs())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for ApiError {}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, DNS, TLS handshake): nothing was sent.
    Connect,
    /// The attempt timed out; the server may have received and processed the request.
    Timeout,
    /// The connection failed after the request was (maybe) sent: reset, closed, broken body.
    Request,
    /// The response body was larger than the client's limit.
    ResponseTooLarge,
    /// Anything else the HTTP stack reported.
    Other,
}

/// The request could not be completed at the HTTP level.
#[derive(Debug)]
pub struct TransportError {
    pub(crate) kind: TransportErrorKind,
    pub(crate) request: RequestInfo,
    pub(crate) attempts: u32,
    pub(crate) message: String,
    pub(crate) source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// What kind of failure it was.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the server may have received the request (and acted on it). `false` only when the
    /// connection was never made.
    pub fn may_have_reached_server(&self) -> bool {
        self.kind != TransportErrorKind::Connect
    }

    /// Which request this was.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Connect => "could not connect (nothing was sent)",
            TransportErrorKind::Timeout => "timed out (the server may have processed the request)",
            TransportErrorKind::Request => {
                "connection failed mid-request (the server may have processed it)"
            }
            TransportErrorKind::ResponseTooLarge => "response body too large",
            TransportErrorKind::Other => "HTTP error",
        };
        write!(f, "{what}: {} ({}", self.message, self.request)?;
        if self.attempts > 1 {
            write!(f, "; after {} attempts", self.attempts)?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A caller's interceptor or retry rule failed: it returned an error or panicked.
#[derive(Debug, Clone)]
pub struct InterceptorError {
    pub(crate) name: String,
    pub(crate) hook: &'static str,
    pub(crate) message: String,
    pub(crate) panicked: bool,
    pub(crate) request: RequestInfo,
}

impl InterceptorError {
    /// The interceptor's [`name`](crate::intercept::Interceptor::name) (`retry rule` for a rule).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hook that failed: `before_attempt`, `before_send_sensitive`, `after_attempt`,
    /// `after_call` or `retry_rule`.
    pub fn hook(&self) -> &'static str {
        self.hook
    }

    /// The error's text, or the panic message; credentials the request carried are redacted.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the hook panicked (rather than returning an error).
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// Which request this was.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }
}

impl fmt::Display for InterceptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.panicked { "panicked" } else { "failed" };
        write!(
            f,
            "interceptor `{}` {how} in {}: {} ({})",
            self.name, self.hook, self.message, self.request
        )
    }
}

impl std::error::Error for InterceptorError {}

impl From<InterceptorError> for Error {
    fn from(e: InterceptorError) -> Self {
        Error::Interceptor(Box::new(e))
    }
}

/// A success response whose body did not match the documented shape.
#[derive(Debug, Clone)]
pub struct DecodeError {
    pub(crate) status: u16,
    pub(crate) request_id: Option<String>,
    pub(crate) request: RequestInfo,
    pub(crate) field_path: String,
    pub(crate) message: String,
    pub(crate) body_snippet: Option<String>,
}

impl DecodeError {
    /// The HTTP status of the response.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The request id, if the server sent one.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Which request this was.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// Where in the body decoding failed, e.g. `data[3].last_seen` (`.` for the root).
    pub fn field_path(&self) -> &str {
        &self.field_path
    }

    /// What serde said.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The first few hundred characters of the body (absent for responses that carry secrets).
    pub fn body_snippet(&self) -> Option<&str> {
        self.body_snippet.as_deref()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not decode the HTTP {} response at `{}`: {} (",
            self.status, self.field_path, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, "request {id}; ")?;
        }
        write!(f, "{})", self.request)?;
        if let Some(s) = &self.body_snippet {
            write!(f, "; body starts: {s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

/// Responses that parsed but broke the API's protocol (see [`Error::Protocol`]).
#[derive(Debug, Clone)]
pub struct ProtocolError {
    pub(crate) message: String,
    pub(crate) request_id: Option<String>,
    pub(crate) request: Option<RequestInfo>,
}

impl ProtocolError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            request_id: None,
            request: None,
        }
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request id of the response that broke the protocol.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The request whose response broke the protocol, when known.
    pub fn request(&self) -> Option<&RequestInfo> {
        self.request.as_ref()
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error: {}", self.message)?;
        match (&self.request_id, &self.request) {
            (Some(id), Some(r)) => write!(f, " (request {id}; {r})"),
            (Some(id), None) => write!(f, " (request {id})"),
            (None, Some(r)) => write!(f, " ({r})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Transport(Box::new(e))
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(Box::new(e))
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(Box::new(e))
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary, appending `…` when cut.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    let trimmed = text.trim();
    if trimmed.len() <= max {
        return trimmed.to_owned();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| trimmed.is_char_boundary(i))
        .unwrap_or(0);
    let mut s = trimmed.get(..end).unwrap_or_default().to_owned();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_cuts_on_char_boundary() {
        assert_eq!(snippet("  héllo  ", 100), "héllo");
        // 'é' is two bytes: cutting at 2 must not split it.
        assert_eq!(snippet("héllo", 2), "h…");
        assert_eq!(snippet("", 5), "");
    }

    #[test]
    fn codes_round_trip_and_unknown_kept() {
        for code in [
            "invalid_request",
            "unauthenticated",
            "forbidden",
            "not_found",
            "device_not_found",
            "conflict",
            "validation_failed",
            "rate_limited",
            "internal_error",
            "bad_gateway",
            "unavailable",
            "timeout",
        ] {
            assert_eq!(ErrorCode::parse(code).as_str(), code);
        }
        assert_eq!(
            ErrorCode::parse("quota_exceeded"),
            ErrorCode::Other("quota_exceeded".into())
        );
        assert_eq!(ErrorCode::from_status(418).as_str(), "http_418");
    }

    #[test]
    fn api_error_display_names_everything() {
        let e = ApiError {
            status: 404,
            code: ErrorCode::NotFound,
            vendor_code: Some("device_not_found".into()),
            message: "No device with id 'dev_42'".into(),
            details: None,
            request_id: Some("req_1".into()),
            retry_after: None,
            rate_limit: RateLimit::default(),
            request: RequestInfo::new("GET", "/v1/devices/dev_42"),
            body_snippet: None,
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "HTTP 404 device_not_found: No device with id 'dev_42' (request req_1; GET /v1/devices/dev_42)"
        );
        let err = Error::from(e);
        assert!(err.is_not_found());
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.request_id(), Some("req_1"));
    }
}
