//! The HTTP layer every vendor module stands on.
//!
//! A vendor describes a call as a [`Request`] (method, path segments, query, body, idempotency) and
//! hands it to [`Transport::send_json`]. The transport builds the URL (percent-encoding every
//! segment, refusing empty, `.` and `..` ones), adds the credentials and default headers, sends it,
//! retries per the [`RetryPolicy`], parses rate-limit headers and metadata from every response, turns
//! error statuses into [`ApiError`]s and decodes success bodies with field paths in errors. Vendors
//! never re-implement any of that.

mod builder;
mod decode;
mod hooks;
mod meta;
mod request;
mod send;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{Auth, Redactor};
use crate::error::{Error, RequestInfo, Result};
use crate::limiter::Pacer;
use crate::rate_limit::RateLimit;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::vendor::Profile;

pub(crate) use builder::TransportBuilder;
#[allow(
    unused_imports,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
pub(crate) use builder::parse_base_url;
pub use meta::ResponseMeta;
#[cfg(test)]
pub(crate) use meta::string_at;
use request::Target;
pub(crate) use request::{Request, Segment, check_segment};
/// The SDK's own product token, sent in `User-Agent`.
pub(crate) const SDK_USER_AGENT: &str = concat!("iot-sdk/", env!("CARGO_PKG_VERSION"));

/// A success response with its body read.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) body: Bytes,
    pub(crate) meta: ResponseMeta,
    /// The credentials the request carried, so that error text echoing them can be redacted.
    pub(super) redactor: Redactor,
    /// How long the attempt that got it took.
    pub(super) elapsed: Duration,
}

/// A configured HTTP client for one vendor. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    vendor: Profile,
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    /// The header of a static key, built once; `None` for a token source.
    static_auth: Option<(HeaderName, HeaderValue)>,
    /// Redacts the static key; attempts that carry other secrets build their own.
    redactor: Redactor,
    default_headers: HeaderMap,
    retry: RetryPolicy,
    budget: RetryBudget,
    timeout: Duration,
    /// Whether `http` applies `timeout` itself (a client this crate built).
    client_has_timeout: bool,
    max_response_bytes: usize,
    pacer: Option<Pacer>,
    last_rate_limit: Mutex<Option<RateLimit>>,
    warned: Mutex<HashSet<String>>,
    interceptors: crate::intercept::Interceptors,
    retry_rules: crate::retry::RetryRules,
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
            .field("interceptors", &i.interceptors)
            .field("retry_rules", &i.retry_rules)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The vendor this client talks to.
    pub(crate) fn profile(&self) -> &Profile {
        &self.inner.vendor
    }

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
        req: &Request,
    ) -> Result<(T, ResponseMeta)> {
        let sensitive = req.sensitive_response;
        let resp = self.send(req).await?;
        let value = decode::decode_body(&resp, sensitive)?;
        Ok((value, resp.meta))
    }

    /// Sends a call; `Ok` only for a 2xx response.
    ///
    /// The request is borrowed: it lives once, in the outermost future (a call's runner), and
    /// every layer below refers to it instead of keeping (and copying) a copy of its own.
    pub(crate) async fn send(&self, req: &Request) -> Result<Response> {
        let url = self.url(req)?;
        let info = RequestInfo::of(&req.method, url.path());
        let span = hooks::call_span(self.inner.vendor.name, &req.method, &url);
        let started = std::time::Instant::now();
        let mut attempts = 0;
        let result = {
            let sending = std::pin::pin!(self.send_with_retries(req, &url, &info, &mut attempts));
            hooks::in_span(&span, sending).await
        };
        hooks::record_call(&span, &result, attempts);
        self.after_call(&info, attempts, started, result)
    }

    /// The URL of a call: the base URL plus percent-encoded segments, plus the query.
    pub(crate) fn url(&self, req: &Request) -> Result<Url> {
        let mut url = match &req.target {
            Target::Absolute(u) => Url::clone(u),
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
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
