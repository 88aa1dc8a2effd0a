//! Rate-limit state, parsed from the headers of every response (errors included).
//!
//! | header | field |
//! |---|---|
//! | `X-RateLimit-Limit` | [`RateLimit::limit`] |
//! | `X-RateLimit-Remaining` | [`RateLimit::remaining`] |
//! | `X-RateLimit-Reset` (epoch seconds) | [`RateLimit::reset_at`], and [`RateLimit::reset_after`] computed against the response's `Date` header |
//! | `X-RateLimit-Daily-Limit` (SiliconWit) | [`RateLimit::daily_limit`] |
//! | `X-RateLimit-Daily-Remaining` (SiliconWit) | [`RateLimit::daily_remaining`] |
//! | `Retry-After` (seconds or HTTP-date) | [`RateLimit::retry_after`] |
//!
//! A malformed header is ignored (the field stays `None`); parsing never fails and never panics.
//! The reset delay is computed from the server's own `Date` header, not the local clock, so a
//! skewed local clock cannot make a client wait for hours or not at all.
//!
//! # Client-side pacing
//!
//! Off by default. When a client is built with pacing on, every request first takes a token from
//! the vendor's published bucket for its kind of call ([`Bucket`]: a rate and a burst, e.g. SGT
//! writes: 120 a minute, burst 30), waiting when the bucket is empty, so that a bulk job runs near
//! the allowed rate without provoking 429s. Each response's `X-RateLimit-Remaining` also lowers
//! the bucket to what the server says is left, so that several processes sharing one key, whose
//! traffic the server counts but this client cannot see, still stay under the limit.
//!
//! Who decides is a [`Limiter`](crate::limiter::Limiter): in-process token buckets by default
//! ([`LocalLimiter`](crate::limiter::LocalLimiter)), or one shared by every process using the
//! same key (the `redis` feature's `RedisLimiter`); see [`crate::limiter`].
//!
//! Buckets are named by the vendor's [`BucketKind`], a closed set: a bucket the vendor does not
//! publish cannot be configured by mistake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};

/// Values of `X-RateLimit-Reset` below this are read as "seconds from now" rather than as a Unix
/// timestamp (1e9 is September 2001), since some gateways send a delta.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// The response headers the SDK reads, found in one pass over the header map (a response has a
/// handful of headers; a lookup by name hashes the name, ten of them cost more than one walk).
/// Each slot holds the first value of its header, as `HeaderMap::get` would give.
#[derive(Debug, Default)]
pub(crate) struct KnownHeaders<'h> {
    pub(crate) limit: Option<&'h HeaderValue>,
    pub(crate) remaining: Option<&'h HeaderValue>,
    pub(crate) reset: Option<&'h HeaderValue>,
    pub(crate) daily_limit: Option<&'h HeaderValue>,
    pub(crate) daily_remaining: Option<&'h HeaderValue>,
    pub(crate) retry_after: Option<&'h HeaderValue>,
    pub(crate) date: Option<&'h HeaderValue>,
    pub(crate) request_id: Option<&'h HeaderValue>,
    pub(crate) etag: Option<&'h HeaderValue>,
    pub(crate) deprecation: Option<&'h HeaderValue>,
    pub(crate) sunset: Option<&'h HeaderValue>,
}

impl<'h> KnownHeaders<'h> {
    /// Walks `headers` once (names are lower case in a `HeaderMap`).
    pub(crate) fn scan(headers: &'h HeaderMap) -> Self {
        let mut k = KnownHeaders::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "x-ratelimit-limit" => &mut k.limit,
                "x-ratelimit-remaining" => &mut k.remaining,
                "x-ratelimit-reset" => &mut k.reset,
                "x-ratelimit-daily-limit" => &mut k.daily_limit,
                "x-ratelimit-daily-remaining" => &mut k.daily_remaining,
                "retry-after" => &mut k.retry_after,
                "date" => &mut k.date,
                "x-request-id" => &mut k.request_id,
                "etag" => &mut k.etag,
                "deprecation" => &mut k.deprecation,
                "sunset" => &mut k.sunset,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        k
    }
}

/// A snapshot of the rate-limit headers of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window (`X-RateLimit-Limit`).
    pub limit: Option<u64>,
    /// Requests left in the current window (`X-RateLimit-Remaining`).
    pub remaining: Option<u64>,
    /// When the window resets (`X-RateLimit-Reset`).
    pub reset_at: Option<DateTime<Utc>>,
    /// How long until the window resets, measured against the response's `Date` header (or the
    /// local clock when the server sent no `Date`). Zero when the reset is already past.
    pub reset_after: Option<Duration>,
    /// Requests allowed per day (`X-RateLimit-Daily-Limit`).
    pub daily_limit: Option<u64>,
    /// Requests left today (`X-RateLimit-Daily-Remaining`).
    pub daily_remaining: Option<u64>,
    /// How long the server asked the client to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl RateLimit {
    /// Parses the headers of a response. `received` is when it arrived (the local clock, used only
    /// when the response has no valid `Date` header).
    pub fn from_headers(headers: &HeaderMap, received: SystemTime) -> Self {
        Self::from_known(&KnownHeaders::scan(headers), received)
    }

    /// [`RateLimit::from_headers`] on headers already found.
    pub(crate) fn from_known(h: &KnownHeaders<'_>, received: SystemTime) -> Self {
        // The server's clock is read (its `Date` parsed) only when a header needs it.
        let now = || h.date.and_then(http_date).unwrap_or(received);
        let (reset_at, reset_after) = match header_u64(h.reset) {
            Some(v) if v < EPOCH_THRESHOLD => {
                let after = Duration::from_secs(v);
                (to_datetime(now().checked_add(after)), Some(after))
            }
            Some(v) => {
                let at = UNIX_EPOCH.checked_add(Duration::from_secs(v));
                let after = at.map(|at| at.duration_since(now()).unwrap_or(Duration::ZERO));
                (to_datetime(at), after)
            }
            None => (None, None),
        };
        RateLimit {
            limit: header_u64(h.limit),
            remaining: header_u64(h.remaining),
            reset_at,
            reset_after,
            daily_limit: header_u64(h.daily_limit),
            daily_remaining: header_u64(h.daily_remaining),
            retry_after: h
                .retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now())),
        }
    }

    /// `true` when no rate-limit header was present.
    pub fn is_empty(&self) -> bool {
        *self == RateLimit::default()
    }

    /// `true` when the per-window or daily allowance is used up.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0) || self.daily_remaining == Some(0)
    }
}

/// Parses `Retry-After`: delta-seconds (a non-negative integer, or a non-negative decimal, which
/// some servers send), or an HTTP-date, which is turned into a delay from `now` (the server's
/// `Date` when known). A date in the past is a zero delay. A negative, non-numeric or otherwise
/// malformed value is `None`. A value too large for a `u64` saturates (the retry loop then refuses
/// to wait that long), so an absurd header can never cause an overflow.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = v.parse().ok()?;
        return Duration::try_from_secs_f64(secs)
            .ok()
            .or(Some(Duration::from_secs(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The closed set of pacing buckets one vendor publishes: a value names one bucket, so a bucket
/// the vendor does not have cannot be named. A vendor with several buckets has its own enum (see
/// the vendor module's `BUCKETS`); a vendor with one budget for every call uses [`AllCalls`].
pub trait BucketKind: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// The bucket's short name, shown in traces (`read`, `ingest`).
    fn name(self) -> &'static str;
}

/// The one bucket of a vendor that publishes a single budget for every call (Sepolo,
/// SiliconWit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AllCalls;

impl BucketKind for AllCalls {
    fn name(self) -> &'static str {
        "all"
    }
}

/// A published rate limit of one of a vendor's buckets `K`: `limit` requests per `per`,
/// absorbing bursts of up to `burst`.
///
/// ```
/// use std::time::Duration;
/// use iot_sdk::{AllCalls, Bucket};
///
/// // A plan of 300 calls a minute.
/// let plan = Bucket::new(AllCalls, 300, Duration::from_secs(60), 300);
/// assert_eq!(plan.name(), "all");
/// ```
///
/// A bucket is named by a kind, never by a string, so a misspelt one does not compile:
///
/// ```compile_fail
/// let b = iot_sdk::Bucket::new("raed", 600, std::time::Duration::from_secs(60), 120);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket<K> {
    /// Which of the vendor's buckets this is.
    pub kind: K,
    /// Requests (or units, see the vendor module) allowed per `per`.
    pub limit: u32,
    /// The window `limit` is counted over.
    pub per: Duration,
    /// How many may be sent at once after a quiet period.
    pub burst: u32,
}

impl<K: BucketKind> Bucket<K> {
    /// A bucket of `limit` per `per`, with `burst`.
    pub const fn new(kind: K, limit: u32, per: Duration, burst: u32) -> Self {
        Bucket {
            kind,
            limit,
            per,
            burst,
        }
    }

    /// The bucket's short name (`read`, `all`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The bucket as the pacer keeps it.
    pub(crate) fn erase(&self) -> PaceBucket {
        PaceBucket::new(self.kind.name(), self.limit, self.per, self.burst)
    }
}

/// A bucket as a [`Limiter`](crate::limiter::Limiter) sees it: a [`Bucket`] with its kind
/// reduced to its name (`read`, `all`), so that one limiter serves every vendor.
///
/// ```
/// use std::time::Duration;
/// use iot_sdk::PaceBucket;
///
/// let b = PaceBucket::new("read", 600, Duration::from_secs(60), 120);
/// assert_eq!(b.rate_per_sec(), 10.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceBucket {
    name: &'static str,
    limit: u32,
    per: Duration,
    burst: u32,
}

impl PaceBucket {
    /// `limit` units per `per`, bursts of up to `burst`, under the name `name`.
    pub const fn new(name: &'static str, limit: u32, per: Duration, burst: u32) -> Self {
        PaceBucket {
            name,
            limit,
            per,
            burst,
        }
    }

    /// The bucket's name, the same in every process (it keys a shared limiter's state).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Units allowed per [`Self::per`].
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window [`Self::limit`] is counted over.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Units that may go at once after a quiet period.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The most units a client lets the bucket hold: the burst (at least 1) less
    /// [`ARRIVAL_MARGIN`]'s worth of units, so that the server's own bucket always keeps that
    /// much slack for requests that arrive a little earlier than planned. Every limiter of this
    /// crate, the shared one included, caps its bucket here.
    pub fn capacity(&self) -> f64 {
        let burst = f64::from(self.burst.max(1));
        let slack = (self.rate_per_sec() * ARRIVAL_MARGIN.as_secs_f64()).min(burst);
        if slack.is_finite() {
            burst - slack
        } else {
            burst
        }
    }

    /// Units added per second (infinite for a zero window).
    pub fn rate_per_sec(&self) -> f64 {
        let secs = self.per.as_secs_f64();
        if secs > 0.0 {
            f64::from(self.limit) / secs
        } else {
            f64::INFINITY
        }
    }

    /// This bucket's share when `workers` processes divide it: the limit and the burst divided
    /// (rounded down, at least 1), so that together they never exceed it.
    pub fn divided(&self, workers: u32) -> Self {
        let w = workers.max(1);
        PaceBucket {
            limit: self.limit.checked_div(w).unwrap_or(self.limit).max(1),
            burst: self.burst.checked_div(w).unwrap_or(self.burst).max(1),
            ..*self
        }
    }
}

/// How much earlier than its place in the schedule a request may reach the server. Requests
/// leave the client evenly spaced, but arrive with varying latency (the first one also opens
/// the connection): one that arrives early finds the server's bucket a fraction of a token short
/// and is refused with a `429`. The client therefore keeps this much of the rate in hand (at
/// SGT's 600 reads a minute, a fifth of a token; at a bench's 50 a second, one token); the cost
/// is this much time once per run, never per call.
pub const ARRIVAL_MARGIN: Duration = Duration::from_millis(20);

/// An HTTP-date header value (`Date`), as a time; `None` when it is not one.
pub(crate) fn http_date(v: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(v.to_str().ok()?.trim()).ok()
}

fn header_u64(value: Option<&HeaderValue>) -> Option<u64> {
    value?.to_str().ok()?.trim().parse().ok()
}

fn to_datetime(t: Option<SystemTime>) -> Option<DateTime<Utc>> {
    let secs = t?.duration_since(UNIX_EPOCH).ok()?.as_secs();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn parses_every_header() {
        let h = headers(&[
            ("x-ratelimit-limit", "600"),
            ("x-ratelimit-remaining", "572"),
            ("x-ratelimit-reset", "1716549600"),
            ("x-ratelimit-daily-limit", "10000"),
            ("x-ratelimit-daily-remaining", "9876"),
            ("retry-after", "7"),
            // 1716549540 = 60 s before the reset.
            ("date", "Fri, 24 May 2024 11:19:00 GMT"),
        ]);
        // The local clock is an hour off: the server's Date must win.
        let rl = RateLimit::from_headers(&h, at(1716549540 + 3600));
        assert_eq!(rl.limit, Some(600));
        assert_eq!(rl.remaining, Some(572));
        assert_eq!(rl.daily_limit, Some(10000));
        assert_eq!(rl.daily_remaining, Some(9876));
        assert_eq!(rl.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(rl.reset_after, Some(Duration::from_secs(60)));
        assert_eq!(rl.reset_at.unwrap().timestamp(), 1716549600);
        assert!(!rl.is_exhausted());
    }

    #[test]
    fn reset_without_date_uses_local_clock_and_past_reset_is_zero() {
        let h = headers(&[("x-ratelimit-reset", "1716549600")]);
        let rl = RateLimit::from_headers(&h, at(1716549590));
        assert_eq!(rl.reset_after, Some(Duration::from_secs(10)));
        let rl = RateLimit::from_headers(&h, at(1716549700));
        assert_eq!(rl.reset_after, Some(Duration::ZERO));
    }

    #[test]
    fn small_reset_is_a_delta() {
        let h = headers(&[("x-ratelimit-reset", "30")]);
        let rl = RateLimit::from_headers(&h, at(1_700_000_000));
        assert_eq!(rl.reset_after, Some(Duration::from_secs(30)));
        assert_eq!(rl.reset_at.unwrap().timestamp(), 1_700_000_030);
    }

    #[test]
    fn garbage_is_ignored() {
        let h = headers(&[
            ("x-ratelimit-limit", "six hundred"),
            ("x-ratelimit-remaining", "-1"),
            ("x-ratelimit-reset", "99999999999999999999999"),
            ("x-ratelimit-daily-limit", ""),
            ("x-ratelimit-daily-remaining", "1.5"),
            ("retry-after", "soon"),
            ("date", "yesterday"),
        ]);
        let rl = RateLimit::from_headers(&h, at(1_700_000_000));
        assert!(rl.is_empty(), "{rl:?}");
        // Non-UTF-8 header bytes are ignored too.
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-limit",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert!(RateLimit::from_headers(&h, SystemTime::now()).is_empty());
        // The largest representable reset does not overflow.
        let h = headers(&[("x-ratelimit-reset", &u64::MAX.to_string())]);
        let _ = RateLimit::from_headers(&h, SystemTime::now());
    }

    #[test]
    fn exhausted_when_either_allowance_is_zero() {
        let h = headers(&[("x-ratelimit-daily-remaining", "0")]);
        assert!(RateLimit::from_headers(&h, SystemTime::now()).is_exhausted());
    }

    #[test]
    fn retry_after_forms() {
        let now = at(1716549540); // Fri, 24 May 2024 11:19:00 GMT
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Fri, 24 May 2024 11:20:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date in the past: no wait.
        assert_eq!(
            parse_retry_after("Fri, 24 May 2024 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("5s", now), None);
        assert_eq!(parse_retry_after("1.2.3", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse_retry_after(&"9".repeat(400), now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    proptest::proptest! {
        /// The one-pass scan finds, for every header the SDK reads, what `HeaderMap::get` finds
        /// (the first value), whatever the mix, order and repetition of headers.
        #[test]
        fn known_headers_scan_matches_get(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                        "x-ratelimit-daily-limit", "x-ratelimit-daily-remaining", "retry-after",
                        "date", "x-request-id", "etag", "deprecation", "sunset", "content-type",
                        "x-ratelimit-limit-extra", "server",
                    ]),
                    "[ -~]{0,12}",
                ),
                0..24,
            )
        ) {
            let mut h = HeaderMap::new();
            for (name, value) in &pairs {
                h.append(*name, HeaderValue::from_str(value).unwrap());
            }
            let k = KnownHeaders::scan(&h);
            for (name, found) in [
                ("x-ratelimit-limit", k.limit),
                ("x-ratelimit-remaining", k.remaining),
                ("x-ratelimit-reset", k.reset),
                ("x-ratelimit-daily-limit", k.daily_limit),
                ("x-ratelimit-daily-remaining", k.daily_remaining),
                ("retry-after", k.retry_after),
                ("date", k.date),
                ("x-request-id", k.request_id),
                ("etag", k.etag),
                ("deprecation", k.deprecation),
                ("sunset", k.sunset),
            ] {
                proptest::prop_assert_eq!(found, h.get(name), "{}", name);
            }
        }
    }
}
