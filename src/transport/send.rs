//! The send loop: one attempt after another until success, a final failure, or the retry
//! policy says stop.

use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::decode::api_error;
use super::hooks::{attempt_span, in_span, record_error, record_response};
use super::{Request, Response, Transport};
use crate::auth::{ApiKey, Redactor};
use crate::error::{Error, RequestInfo, Result, TransportError, TransportErrorKind};
use crate::retry::{FailureKind, RetryDecision, RetryPolicy};

/// Never sleep longer than this between attempts, whatever the configuration says.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// How one attempt ended, when it did not succeed.
struct AttemptFailure {
    kind: FailureKind,
    error: Error,
    retry_after: Option<Duration>,
    /// The key the attempt was sent with, to hand back to a token source on 401.
    key: Option<ApiKey>,
    /// The response's status and headers (credentials stripped), when there was a response.
    status: Option<u16>,
    headers: Option<HeaderMap>,
    /// How long the attempt took.
    elapsed: Duration,
}

/// Where a call's retries stand, for [`Transport::after_failure`].
struct Retrying<'a> {
    started: Instant,
    attempt: u32,
    max_attempts: &'a mut u32,
    reauthenticated: &'a mut bool,
}

impl Transport {
    /// Sends `req` until it succeeds, fails for good, or the retry policy says stop.
    pub(super) async fn send_with_retries(
        &self,
        req: &Request,
        url: &Url,
        info: &RequestInfo,
        attempts: &mut u32,
    ) -> Result<Response> {
        let policy = req.retry.as_deref().unwrap_or(&self.inner.retry);
        let started = Instant::now();
        // The policy's pauses, made at the first failure (most calls never need them).
        let mut delays: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
        let mut max_attempts = policy.max_attempts();
        let mut reauthenticated = false;
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            *attempts = attempt;
            let span = attempt_span(self.inner.vendor.name, &req.method, url, attempt);
            let failed = {
                // Boxed: an attempt's future is most of a call's, and a call's future is boxed
                // itself; two allocations the allocator serves from its small-size caches cost
                // less than one large one.
                let mut outcome = Box::pin(self.attempt(req, url, info, attempt));
                match in_span(&span, outcome.as_mut()).await {
                    Err(e) => {
                        record_error(&span, &e);
                        return Err(e);
                    }
                    Ok(Ok(resp)) => {
                        let m = &resp.meta;
                        record_response(&span, m.status, m.request_id.as_deref());
                        let (status, headers) = (Some(m.status), Some(&m.headers));
                        self.after_attempt(
                            info,
                            attempt,
                            status,
                            headers,
                            resp.elapsed,
                            None,
                            None,
                        )?;
                        self.inner.budget.on_success();
                        return Ok(resp);
                    }
                    Ok(Err(f)) => f,
                }
            };
            record_error(&span, &failed.error);
            drop(span);
            // The way to the next attempt (a refreshed token, or a pause) is a future of its
            // own, allocated only when an attempt failed, so that a call's future does not
            // carry its state the whole time.
            let next = self.after_failure(
                req,
                info,
                policy,
                delays.get_or_insert_with(|| Box::new(policy.delays())),
                Retrying {
                    started,
                    attempt,
                    max_attempts: &mut max_attempts,
                    reauthenticated: &mut reauthenticated,
                },
                failed,
            );
            Box::pin(next).await?;
        }
    }

    /// After a failed attempt: `Ok` when the call goes on to its next attempt (after a refreshed
    /// token, or the retry policy's pause), the final error otherwise.
    async fn after_failure(
        &self,
        req: &Request,
        info: &RequestInfo,
        policy: &RetryPolicy,
        delays: &mut (dyn Iterator<Item = Duration> + Send),
        retrying: Retrying<'_>,
        failed: AttemptFailure,
    ) -> Result<()> {
        let Retrying {
            started,
            attempt,
            max_attempts,
            reauthenticated,
        } = retrying;
        let AttemptFailure {
            kind,
            error,
            retry_after,
            key,
            status,
            headers,
            elapsed,
        } = failed;
        let hook = |delay| {
            let h = headers.as_ref();
            self.after_attempt(info, attempt, status, h, elapsed, Some(&error), delay)
        };

        if kind == FailureKind::Status(401) && !*reauthenticated {
            if let Some(key) = key {
                if self.inner.auth.refresh_after_401(&key).await? {
                    hook(Some(Duration::ZERO))?;
                    tracing::info!(attempt, "401: refreshed the token, sending again");
                    *reauthenticated = true;
                    *max_attempts = max_attempts.saturating_add(1);
                    return Ok(());
                }
            }
        }

        let rule = self.rule_verdict(req, info, attempt, kind, &error)?;
        let decision = RetryDecision {
            kind,
            idempotent: req.idempotent,
            attempt,
            max_attempts: *max_attempts,
            retry_after,
            elapsed: started.elapsed(),
            rule,
        };
        let verdict = policy.next_delay(
            &decision,
            delays.next(),
            self.inner.vendor.safe_statuses,
            &self.inner.budget,
        );
        let delay = match verdict {
            Ok(d) => d,
            Err(why) => {
                tracing::debug!(attempt, reason = why, "not retrying");
                hook(None)?;
                return Err(with_attempts(error, attempt));
            }
        };
        hook(Some(delay.min(MAX_SLEEP)))?;
        tracing::info!(
            attempt,
            failure = ?kind,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            request_id = error.request_id().unwrap_or(""),
            "retrying",
        );
        tokio::time::sleep(delay.min(MAX_SLEEP)).await;
        Ok(())
    }

    /// One attempt. The outer `Err` is final (a token source failed); the inner one may be retried.
    async fn attempt(
        &self,
        req: &Request,
        url: &Url,
        info: &RequestInfo,
        attempt: u32,
    ) -> Result<std::result::Result<Response, AttemptFailure>> {
        let i = &self.inner;
        // The credential first: the redactor every hook and error of this attempt uses knows it.
        let (mut auth, mut key) = (None, None);
        if req.authenticate {
            match &i.static_auth {
                Some((name, value)) => auth = Some((name.clone(), value.clone())),
                None => {
                    let (name, value, k) = i.auth.header_for_attempt().await?;
                    auth = Some((name, value));
                    key = Some(k);
                }
            }
        }
        // The client's own redactor (its static key) unless this attempt carries other secrets.
        let redactor = if key.is_none() && req.secrets.is_empty() {
            i.redactor.clone()
        } else {
            Redactor::new(
                i.auth
                    .static_key()
                    .into_iter()
                    .chain(key.as_ref())
                    .chain(&req.secrets),
            )
        };
        // Built (and seen by the `before_attempt` hooks) before the pacing wait, as documented;
        // started after it. The built request lives only in this block, so the attempt's
        // future does not keep room for it while it waits for the response.
        let bucket = req
            .pacing
            .unwrap_or_else(|| ((i.vendor.bucket_for)(&req.method, url.path()), 1));
        let started;
        let sent = {
            let request = self.build_attempt(req, url, info, attempt, auth, &redactor)?;
            if let Some(pacer) = &i.pacer {
                pacer.acquire(bucket.0, bucket.1).await?;
            }
            started = Instant::now();
            match request {
                Ok(request) => Ok(self.execute(request, info, &redactor)?),
                Err(e) => Err(e),
            }
        };
        let sent = match sent {
            Ok(response) => response.await,
            Err(e) => Err(e),
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Ok(Err(failed_before_response(e, info, attempt, key, started))),
        };
        let status = resp.status();
        // Taken, not cloned: reading the body needs only its framing, which hyper keeps.
        let mut headers = std::mem::take(resp.headers_mut());
        super::super::intercept::strip_credentials(&mut headers, &redactor);
        let received = SystemTime::now();
        let body = match read_body(&mut resp, i.max_response_bytes).await {
            Ok(b) => b,
            Err((kind, msg, source)) => {
                tracing::debug!(attempt, status = status.as_u16(), "reading the body failed");
                return Ok(Err(AttemptFailure {
                    kind: FailureKind::of_transport(kind),
                    error: transport_error(kind, info, msg, source),
                    retry_after: None,
                    key,
                    status: Some(status.as_u16()),
                    headers: Some(headers),
                    elapsed: started.elapsed(),
                }));
            }
        };

        let mut meta = self.meta(status, &headers, &body, info, attempt, received, &redactor);
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
        let elapsed = started.elapsed();
        if status.is_success() {
            meta.headers = headers;
            return Ok(Ok(Response {
                body,
                meta,
                redactor,
                elapsed,
            }));
        }
        let retry_after = meta.rate_limit.retry_after;
        let error = api_error(&i.vendor, status, &headers, &body, meta, &redactor);
        Ok(Err(AttemptFailure {
            kind: FailureKind::Status(status.as_u16()),
            error: error.into(),
            retry_after,
            key,
            status: Some(status.as_u16()),
            headers: Some(headers),
            elapsed,
        }))
    }

    /// Builds the attempt's request: default headers, the request's own, the `before_attempt`
    /// hooks, then the credential and body. The outer `Err` is final (a hook refused); the inner
    /// one is a request reqwest could not build.
    fn build_attempt(
        &self,
        req: &Request,
        url: &Url,
        info: &RequestInfo,
        attempt: u32,
        auth: Option<(HeaderName, HeaderValue)>,
        redactor: &Redactor,
    ) -> Result<reqwest::Result<reqwest::Request>> {
        let i = &self.inner;
        let mut rb = i.http.request(req.method.clone(), url.clone());
        match req.timeout {
            Some(t) => rb = rb.timeout(t),
            None if !i.client_has_timeout => rb = rb.timeout(i.timeout),
            None => {}
        }
        let mut request = match rb.build() {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        // Headers are inserted one by one (values are shared, not copied) rather than by
        // cloning whole header maps on every attempt.
        let headers = request.headers_mut();
        for (name, value) in &i.default_headers {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &req.headers {
            headers.insert(name.clone(), value.clone());
        }
        // Interceptors see the headers before the credential is added.
        self.before_attempt(headers, info, attempt, redactor)?;
        if let Some((name, value)) = auth {
            headers.insert(name, value);
        }
        if let Some((content_type, body)) = &req.body {
            headers.insert(CONTENT_TYPE, content_type.clone());
            *request.body_mut() = Some(body.clone().into());
        }
        Ok(Ok(request))
    }
}

/// The failure of an attempt that got no response.
fn failed_before_response(
    e: reqwest::Error,
    info: &RequestInfo,
    attempt: u32,
    key: Option<ApiKey>,
    started: Instant,
) -> AttemptFailure {
    let kind = classify(&e);
    tracing::debug!(attempt, kind = ?kind, "attempt failed before a response");
    AttemptFailure {
        kind: FailureKind::of_transport(kind),
        error: transport_error(kind, info, describe_reqwest(&e), Some(e)),
        retry_after: None,
        key,
        status: None,
        headers: None,
        elapsed: started.elapsed(),
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

/// Reads the body, refusing one over `max` bytes: at once when its declared length is larger
/// (hyper's framing holds a body to its declared length), otherwise as soon as the chunks read
/// add up to more. A body that came in one chunk is returned as it is; others are joined once at
/// the end. The future holds one chunk's future and the chunks read, so that it stays small inside
/// every call's future.
async fn read_body(
    resp: &mut reqwest::Response,
    max: usize,
) -> std::result::Result<Bytes, BodyError> {
    let too_large = || {
        (
            TransportErrorKind::ResponseTooLarge,
            format!("the response body is larger than {max} bytes"),
            None,
        )
    };
    let failed = |e: reqwest::Error| {
        let kind = if e.is_timeout() {
            TransportErrorKind::Timeout
        } else {
            TransportErrorKind::Request
        };
        let msg = format!("reading the response body failed: {}", describe_reqwest(&e));
        (kind, msg, Some(e))
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut first: Option<Bytes> = None;
    let mut more: Vec<Bytes> = Vec::new();
    let mut len: usize = 0;
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        len = len.saturating_add(chunk.len());
        if len > max {
            return Err(too_large());
        }
        if first.is_none() {
            first = Some(chunk);
        } else {
            more.push(chunk);
        }
    }
    let Some(first) = first else {
        return Ok(Bytes::new());
    };
    if more.is_empty() {
        return Ok(first);
    }
    let mut body = BytesMut::with_capacity(len);
    body.extend_from_slice(&first);
    for chunk in more {
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn with_attempts(mut e: Error, attempts: u32) -> Error {
    match &mut e {
        Error::Api(a) => a.attempts = attempts,
        Error::Transport(t) => t.attempts = attempts,
        _ => {}
    }
    e
}
