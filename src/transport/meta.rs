//! What a response says about itself beyond its body: request id, rate limit, ETag, deprecation.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap};

use super::{Transport, lock};
use crate::auth::Redactor;
use crate::error::RequestInfo;
use crate::rate_limit::RateLimit;

/// Endpoints warned about as deprecated, at most (one warning per endpoint per client).
const MAX_WARNED_ENDPOINTS: usize = 1024;

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

impl Transport {
    /// The metadata of a response, also kept as the client's latest rate-limit state, with a
    /// warning the first time an endpoint is marked deprecated.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn meta(
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
                .or_else(|| {
                    request_id_in_body(body, self.inner.vendor.request_id_pointers)
                        .and_then(|id| redactor.untrusted_id(&id))
                }),
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

/// A request id inside a JSON object body, at the first of the vendor's `pointers` that holds a
/// string, for responses without `X-Request-Id`.
fn request_id_in_body(body: &[u8], pointers: &[&str]) -> Option<String> {
    use serde_json::Value;
    if pointers.is_empty() {
        return None;
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    pointers
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str).map(str::to_owned))
}
