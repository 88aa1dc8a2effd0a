//! What the send loop calls out to: tracing spans named after the OpenTelemetry HTTP client
//! semantic conventions, the caller's interceptors and retry rules. A client with no
//! interceptor and no rule pays one `is_empty` check per hook; a disabled span costs nothing.
//!
//! Spans (both at `DEBUG`):
//!
//! | span | fields |
//! |---|---|
//! | `iot_sdk.request`, one per call | `otel.kind` (`client`), `iot_sdk.vendor`, `http.request.method`, `server.address`, `server.port`, `url.path` (never the query: it can hold a secret), then `http.response.status_code`, `http.request.resend_count` (retries made), `error.type`, `iot_sdk.request_id` |
//! | `iot_sdk.attempt`, one per attempt, inside the call's | the same, `http.request.resend_count` being the attempt's number minus one |

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use tracing::Span;
use tracing::field::Empty;
use url::Url;

use super::{Request, Response, Transport};
use crate::auth::Redactor;
use crate::error::{Error, RequestInfo, Result, TransportErrorKind};
use crate::intercept::{AttemptEnd, AttemptStart, CallEnd, guarded};
use crate::retry::{AttemptInfo, FailureKind, RetryAction, is_retryable};

/// The span of one call.
pub(super) fn call_span(vendor: &'static str, method: &Method, url: &Url) -> Span {
    tracing::debug_span!(
        "iot_sdk.request",
        "otel.kind" = "client",
        "iot_sdk.vendor" = vendor,
        "http.request.method" = %method,
        "server.address" = url.host_str().unwrap_or(""),
        "server.port" = url.port_or_known_default().unwrap_or(0),
        "url.path" = url.path(),
        "http.response.status_code" = Empty,
        "http.request.resend_count" = Empty,
        "error.type" = Empty,
        "iot_sdk.request_id" = Empty,
    )
}

/// The span of one attempt.
pub(super) fn attempt_span(vendor: &'static str, method: &Method, url: &Url, attempt: u32) -> Span {
    tracing::debug_span!(
        "iot_sdk.attempt",
        "otel.kind" = "client",
        "iot_sdk.vendor" = vendor,
        "http.request.method" = %method,
        "server.address" = url.host_str().unwrap_or(""),
        "server.port" = url.port_or_known_default().unwrap_or(0),
        "url.path" = url.path(),
        "http.request.resend_count" = attempt.saturating_sub(1),
        "http.response.status_code" = Empty,
        "error.type" = Empty,
        "iot_sdk.request_id" = Empty,
    )
}

/// Polls `fut` inside `span`, as [`tracing::Instrument`] does, but through a pinned reference, so
/// the future stays where it was made: a send future is kilobytes, and moving it into a wrapper
/// copies all of it on every call.
pub(super) fn in_span<'a, F: Future>(span: &'a Span, fut: Pin<&'a mut F>) -> InSpan<'a, F> {
    InSpan { span, fut }
}

/// The future of [`in_span`].
pub(super) struct InSpan<'a, F> {
    span: &'a Span,
    fut: Pin<&'a mut F>,
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.span.enter();
        this.fut.as_mut().poll(cx)
    }
}

/// Records a response status and request id on a span.
pub(super) fn record_response(span: &Span, status: u16, request_id: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    span.record("http.response.status_code", status);
    if let Some(id) = request_id {
        span.record("iot_sdk.request_id", id);
    }
}

/// Records a failure on a span: its status and request id if it had a response, and
/// `error.type`: the status for an error status (as the conventions say), else the kind of
/// failure (`connect`, `timeout`, `decode`, …).
pub(super) fn record_error(span: &Span, error: &Error) {
    if span.is_disabled() {
        return;
    }
    if let Some(status) = error.status() {
        record_response(span, status, error.request_id());
        span.record("error.type", tracing::field::display(status));
        return;
    }
    let kind = match error {
        Error::Transport(t) => match t.kind() {
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Request => "request",
            TransportErrorKind::ResponseTooLarge => "response_too_large",
            TransportErrorKind::Other => "_OTHER",
        },
        Error::Decode(_) => "decode",
        Error::Protocol(_) => "protocol",
        Error::InvalidInput(_) => "invalid_input",
        Error::Config(_) => "config",
        Error::Interceptor(_) => "interceptor",
        _ => "_OTHER",
    };
    span.record("error.type", kind);
}

/// Records how a call ended on its span.
pub(super) fn record_call(span: &Span, result: &Result<Response>, attempts: u32) {
    if span.is_disabled() {
        return;
    }
    span.record("http.request.resend_count", attempts.saturating_sub(1));
    match result {
        Ok(r) => record_response(span, r.meta.status, r.meta.request_id.as_deref()),
        Err(e) => record_error(span, e),
    }
}

impl Transport {
    /// The `before_attempt` hooks, on the attempt's headers (no credential among them yet).
    pub(super) fn before_attempt(
        &self,
        headers: &mut HeaderMap,
        info: &RequestInfo,
        attempt: u32,
        redactor: &Redactor,
    ) -> Result<()> {
        let i = &self.inner;
        if i.interceptors.is_empty() {
            return Ok(());
        }
        i.interceptors
            .run("before_attempt", info, redactor, |hook| {
                hook.before_attempt(&mut AttemptStart {
                    vendor: i.vendor.name,
                    request: info,
                    attempt,
                    headers,
                })
            })
    }

    /// Starts an attempt: through the `before_send_sensitive` hooks when there are interceptors.
    /// The outer `Err` is final (a hook refused it); the future is reqwest's own, so an attempt's
    /// future does not also hold the request while it waits for the response.
    pub(super) fn execute(
        &self,
        request: reqwest::Request,
        info: &RequestInfo,
        redactor: &Redactor,
    ) -> Result<impl Future<Output = reqwest::Result<reqwest::Response>> + Send + use<>> {
        let i = &self.inner;
        if !i.interceptors.is_empty() {
            i.interceptors
                .run("before_send_sensitive", info, redactor, |hook| {
                    hook.before_send_sensitive(&request)
                })?;
        }
        Ok(i.http.execute(request))
    }

    /// The `after_attempt` hooks.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_attempt(
        &self,
        info: &RequestInfo,
        attempt: u32,
        status: Option<u16>,
        headers: Option<&HeaderMap>,
        elapsed: Duration,
        error: Option<&Error>,
        retry_delay: Option<Duration>,
    ) -> Result<()> {
        let i = &self.inner;
        if i.interceptors.is_empty() {
            return Ok(());
        }
        let end = AttemptEnd {
            vendor: i.vendor.name,
            request: info,
            attempt,
            status,
            headers,
            elapsed,
            error,
            retry_delay,
        };
        i.interceptors
            .run("after_attempt", info, &self.static_redactor(), |hook| {
                hook.after_attempt(&end)
            })
    }

    /// The `after_call` hooks: an error of theirs fails a call that had succeeded; a call that
    /// had failed keeps its own error.
    pub(super) fn after_call(
        &self,
        info: &RequestInfo,
        attempts: u32,
        started: Instant,
        result: Result<Response>,
    ) -> Result<Response> {
        let i = &self.inner;
        if i.interceptors.is_empty() {
            return result;
        }
        let end = CallEnd {
            vendor: i.vendor.name,
            request: info,
            attempts,
            elapsed: started.elapsed(),
            outcome: result.as_ref().map(|r| &r.meta),
        };
        let hooked = i
            .interceptors
            .run("after_call", info, &self.static_redactor(), |hook| {
                hook.after_call(&end)
            });
        match (result, hooked) {
            (Ok(r), Ok(())) => Ok(r),
            (Ok(_), Err(e)) | (Err(e), _) => Err(e),
        }
    }

    /// What the caller's retry rules say about a failed attempt: the call's first, then the
    /// client's; `None` when there are none or none decides.
    pub(super) fn rule_verdict(
        &self,
        req: &Request,
        info: &RequestInfo,
        attempt: u32,
        kind: FailureKind,
        error: &Error,
    ) -> Result<Option<RetryAction>> {
        let i = &self.inner;
        if req.retry_rules.is_empty() && i.retry_rules.is_empty() {
            return Ok(None);
        }
        let a = AttemptInfo {
            vendor: i.vendor.name,
            request: info,
            attempt,
            idempotent: req.idempotent,
            default_retry: is_retryable(kind, req.idempotent, i.vendor.safe_statuses),
            error,
        };
        let redactor = self.static_redactor();
        for rule in req.retry_rules.0.iter().chain(i.retry_rules.0.iter()) {
            let verdict = guarded("retry rule", "retry_rule", info, &redactor, || {
                Ok(rule.classify(&a))
            })?;
            if verdict.is_some() {
                return Ok(verdict);
            }
        }
        Ok(None)
    }

    /// A redactor of the client's own key, for what a hook's error says.
    pub(crate) fn static_redactor(&self) -> Redactor {
        Redactor::new(self.inner.auth.static_key())
    }
}
