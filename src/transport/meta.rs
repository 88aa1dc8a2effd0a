//! What a response says about itself beyond its body: request id, rate limit, ETag, deprecation.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};

use super::{Transport, lock};
use crate::auth::Redactor;
use crate::error::RequestInfo;
use crate::rate_limit::{KnownHeaders, RateLimit};

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
        let known = KnownHeaders::scan(headers);
        // Header values are visible ASCII (`to_str`), but may still echo a credential.
        let text = |value: Option<&HeaderValue>| {
            value
                .and_then(|v| v.to_str().ok())
                .map(|s| redactor.text(s.trim()))
                .filter(|s| !s.is_empty())
        };
        let rate_limit = RateLimit::from_known(&known, received);
        if !rate_limit.is_empty() {
            *lock(&self.inner.last_rate_limit) = Some(rate_limit.clone());
        }
        let meta = ResponseMeta {
            status: status.as_u16(),
            request_id: known
                .request_id
                .and_then(|v| v.to_str().ok())
                .and_then(|id| redactor.untrusted_id(id))
                .or_else(|| {
                    request_id_in_body(body, self.inner.vendor.request_id_pointers)
                        .and_then(|id| redactor.untrusted_id(&id))
                }),
            rate_limit,
            etag: known
                .etag
                .and_then(|v| v.to_str().ok())
                .map(|e| redactor.text(e)),
            deprecation: text(known.deprecation),
            sunset: text(known.sunset),
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
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    pointers.iter().find_map(|p| string_at(body, p))
}

/// The string at JSON pointer `pointer` (`/meta/request_id`) in `body`, as
/// `serde_json::Value::pointer` would find it (the last of duplicate keys wins), but read in one
/// pass without building the tree: every value off the path is skipped. `None` when the body is
/// not valid JSON or holds no string there.
pub(crate) fn string_at(body: &[u8], pointer: &str) -> Option<String> {
    use serde::de::DeserializeSeed;
    let path: Vec<String> = match pointer.strip_prefix('/') {
        Some(rest) => rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
        None if pointer.is_empty() => Vec::new(),
        None => return None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = PathSeed(&path).deserialize(&mut de).ok()?;
    de.end().ok()?;
    found
}

/// Follows `path` into a JSON value; yields the string at its end.
struct PathSeed<'a>(&'a [String]);

impl<'de> serde::de::DeserializeSeed<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PathSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.is_empty().then(|| v.to_owned()))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // An array index in the path (`/items/0`) is followed like `Value::pointer` does.
        let index = match self.0.split_first() {
            Some((head, _)) if is_index(head) => head.parse::<usize>().ok(),
            _ => None,
        };
        let mut found = None;
        let mut i: usize = 0;
        loop {
            if Some(i) == index {
                match seq.next_element_seed(PathSeed(self.0.get(1..).unwrap_or_default()))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                break;
            }
            i = i.saturating_add(1);
        }
        Ok(found)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let Some((head, rest)) = self.0.split_first() else {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(None);
        };
        while let Some(matches) = map.next_key_seed(KeyIs(head))? {
            if matches {
                found = map.next_value_seed(PathSeed(rest))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A path token `Value::pointer` reads as an array index: digits, no leading zero.
fn is_index(token: &str) -> bool {
    !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_digit())
        && (token == "0" || !token.starts_with('0'))
}

/// Whether an object key is the one the path names, compared without allocating.
struct KeyIs<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}
