//! # iot-sdk-sim
//!
//! In-process simulators of the SGT Systems, Sepolo and SiliconWit IoT platform REST APIs.
//!
//! Each simulator is a real HTTP server on `127.0.0.1` (an ephemeral port unless one is given),
//! running on the caller's tokio runtime, that implements every endpoint of its vendor's spec
//! with the spec's envelopes, error bodies, limits and headers:
//!
//! | simulator | serves | seeded from |
//! |---|---|---|
//! | [`sgt::SgtSimulator`] | `/v1/…` and `/oauth2/token` | `fixtures/sgt/` plus a generated fleet |
//! | [`sepolo::SepoloSimulator`] | `/api/v1/…`, with per-key scopes | `fixtures/sepolo/` plus a generated organization |
//! | [`siliconwit::SiliconWitSimulator`] | `/v1/…`, with plans, retention and daily quotas | `fixtures/siliconwit/` plus a generated account |
//!
//! Point a client's base URL at the simulator's `base_url()` and it behaves like the real API,
//! offline and deterministic for a given seed (the clients of the `iot-sdk` crate take it as
//! their `base_url`; this crate does not depend on them). The binary of this crate serves one
//! until Ctrl-C, for curl or any other language: `cargo run -p iot-sdk-sim -- <vendor> --port
//! 8080 --key K` (`--help` lists the options).
//!
//! What every simulator shares, written once for all three:
//!
//! - [`SimulatorBuilder`]: the settings every simulator has (`api_key`, `faults`,
//!   `rate_limit_scale`, `seed`, `port`), beside each vendor's own; `start()` fails with
//!   [`Error::Bind`] when the port cannot be bound and [`Error::InvalidSetting`] for a bad
//!   setting.
//! - [`Simulator`]: the running server (`base_url`, `addr`, `api_key`, `stats`, `set_faults`,
//!   `shutdown`), with each vendor's own methods.
//! - A test-only route `<base URL>/_sim/echo` on every simulator (not part of any vendor's API):
//!   any method, answered with the request as received (credential headers left out), or with
//!   the vendor's error body for `?status=<400..=599>`; for testing calls a client does not
//!   model.
//! - [`Faults`]: fault injection for tests — a fraction of requests answered 500/502/503, a
//!   fraction whose connection is dropped, and added latency. A fault is decided *before* any
//!   processing: an injected error or a dropped connection never changes the simulator's state,
//!   so a client that retries it can still be checked for exactly-once effects.
//! - Rate limits with real headers: token buckets keyed by (credential, bucket), scaled for tests
//!   by a `rate_limit_scale` factor, answering `429` with `Retry-After` when exceeded; daily
//!   quotas that reset at midnight UTC (SiliconWit).
//! - [`Stats`]: counters of what the server saw.
//!
//! The server stops when its handle is dropped, or gracefully with `shutdown().await`.
//!
//! The simulators read the vendors' example bodies from the repository's `fixtures/` directory
//! at compile time (`include_str!("../../../fixtures/…")`): the crate builds inside this
//! repository; packaging it on its own (`cargo package`) would first need the fixtures copied
//! into `sim/`.
//!
//! ```no_run
//! # async fn run() -> Result<(), iot_sdk_sim::Error> {
//! use iot_sdk_sim::{Faults, sgt::SgtSimulator};
//!
//! let sim = SgtSimulator::builder()
//!     .api_key("sgt_test_key")
//!     .faults(Faults::none().error_rate(0.1))
//!     .start()
//!     .await?;
//! println!("SGT simulator at {}", sim.base_url());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod error;
pub mod sepolo;
mod server;
pub mod sgt;
pub mod siliconwit;

pub use error::{Error, Result};
pub use server::{Simulator, SimulatorBuilder};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};

/// Faults injected into a simulator's responses, for testing retries and timeouts.
///
/// Rates are fractions of requests in `0.0..=1.0`; the setters clamp to that range (NaN is 0).
/// Every request first waits `latency`; then, with probability `drop_rate`, its connection is
/// dropped without a response, or else, with probability `error_rate`, it is answered with a
/// 500, 502 or 503 in the vendor's error shape. Both happen **before** the request is processed:
/// nothing is stored, counted against a rate limit or changed.
///
/// ```
/// use std::time::Duration;
/// use iot_sdk_sim::Faults;
///
/// let faults = Faults::none().error_rate(0.2).latency(Duration::from_millis(50));
/// assert_eq!(faults.error_rate, 0.2);
/// assert_eq!(faults.drop_rate, 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Faults {
    /// Fraction of requests answered 500, 502 or 503 before any processing.
    pub error_rate: f64,
    /// Delay added before every request is handled (or faulted).
    pub latency: Duration,
    /// Fraction of requests whose connection is closed without any response, before any
    /// processing.
    pub drop_rate: f64,
    /// Fraction of requests that are processed (a write is stored) and whose response is then
    /// lost: the connection closes without it. The client cannot tell whether the request
    /// took effect; this is the fault that makes an ingest "unconfirmed" yet stored.
    pub lost_response_rate: f64,
    /// An outage: every request is answered `503 Service Unavailable` with `Retry-After: 1`,
    /// before any processing, until the faults are replaced.
    pub unavailable: bool,
}

impl Faults {
    /// No faults: no errors, no latency, no dropped connections.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Sets the fraction of requests answered 500/502/503 (clamped to `0.0..=1.0`).
    #[must_use]
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = clamp_rate(rate);
        self
    }

    /// Sets the delay added before every request.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the fraction of requests whose connection is dropped (clamped to `0.0..=1.0`).
    #[must_use]
    pub fn drop_rate(mut self, rate: f64) -> Self {
        self.drop_rate = clamp_rate(rate);
        self
    }

    /// Sets the fraction of requests processed and then answered with a dropped connection
    /// (clamped to `0.0..=1.0`).
    #[must_use]
    pub fn lost_response_rate(mut self, rate: f64) -> Self {
        self.lost_response_rate = clamp_rate(rate);
        self
    }

    /// An outage of the whole API (`true`): every request is answered 503, nothing processed.
    #[must_use]
    pub fn unavailable(mut self, down: bool) -> Self {
        self.unavailable = down;
        self
    }
}

fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// Counters of what a simulator has seen since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Every request received, faulted ones included.
    pub requests: u64,
    /// Requests answered with an injected 5xx or dropped (see [`Faults`]).
    pub faults_injected: u64,
    /// Of [`Stats::faults_injected`], the connections dropped without a response (before or,
    /// for [`Faults::lost_response_rate`], after processing).
    pub connections_dropped: u64,
    /// Of [`Stats::connections_dropped`], the requests processed whose response was lost.
    pub responses_lost: u64,
    /// Requests answered 429 by the rate limiter.
    pub rate_limited: u64,
    /// Telemetry ingest requests that reached the handler (vendors with an ingest endpoint).
    pub ingest_requests: u64,
    /// Telemetry readings accepted by ingest, in all (a superseding reading counts too).
    pub readings_stored: u64,
    /// Responses sent, by HTTP status code (dropped connections have none).
    pub statuses: BTreeMap<u16, u64>,
}

impl Stats {
    /// How many responses had `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }
}

/// Locks a mutex, recovering the data if a previous holder panicked: a simulator must keep
/// serving whatever happened to one request.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------------------------

/// The outcome of a rate-limit check, and the headers that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateDecision {
    /// Whether the request may proceed.
    pub(crate) allowed: bool,
    /// `X-RateLimit-Limit`: the (scaled) units allowed per window.
    pub(crate) limit: u64,
    /// `X-RateLimit-Remaining`: whole units left in the bucket after this request.
    pub(crate) remaining: u64,
    /// `X-RateLimit-Reset`: epoch seconds at which the bucket is full again.
    pub(crate) reset: u64,
    /// `Retry-After` in whole seconds (at least 1), when not allowed.
    pub(crate) retry_after: Option<u64>,
}

impl server::LimitHeaders for RateDecision {
    /// Writes `X-RateLimit-Limit`, `-Remaining`, `-Reset` and, when refused, `Retry-After`.
    fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
        if let Some(secs) = self.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct BucketState {
    tokens: f64,
    at: Instant,
}

/// A server-side rate limit: `limit` units per `per`, with bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// The name shown in 429 bodies (`read`, `write`, `ingest`, `reports`…).
    pub(crate) name: &'static str,
    /// Units allowed per `per`, before scaling.
    pub(crate) limit: u32,
    /// The window `limit` is counted over.
    pub(crate) per: Duration,
    /// Units available at once after a quiet period, before scaling.
    pub(crate) burst: u32,
}

impl Bucket {
    /// A bucket of `limit` per `per`, with `burst`.
    pub(crate) const fn new(name: &'static str, limit: u32, per: Duration, burst: u32) -> Self {
        Bucket {
            name,
            limit,
            per,
            burst,
        }
    }
}

/// Token buckets (the spec's "leaky bucket with burst") keyed by (credential, bucket name).
///
/// A bucket holds up to `burst × scale` units and refills at `limit × scale` per window. A
/// request of cost `c` needs `min(c, capacity)` units and takes `c` (so a request larger than the
/// burst is allowed on a full bucket and leaves it in debt, rather than never passing).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    scale: f64,
    buckets: Mutex<HashMap<(String, &'static str), BucketState>>,
}

impl RateLimiter {
    /// `scale` multiplies every limit and burst: 1.0 is the published numbers, 100.0 is 100
    /// times more permissive, 0.01 makes buckets tiny for tests.
    pub(crate) fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        RateLimiter {
            scale,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self, bucket: &Bucket) -> f64 {
        (f64::from(bucket.burst) * self.scale).max(1.0)
    }

    fn rate_per_sec(&self, bucket: &Bucket) -> f64 {
        let secs = bucket.per.as_secs_f64().max(0.001);
        (f64::from(bucket.limit) * self.scale / secs).max(1e-9)
    }

    /// Takes `cost` units from `key`'s `bucket`, if it has them.
    pub(crate) fn check(&self, key: &str, bucket: &Bucket, cost: u64) -> RateDecision {
        self.take(key, bucket, cost, true)
    }

    /// Reports `key`'s `bucket` without taking anything (for responses that were not counted,
    /// such as injected faults).
    pub(crate) fn peek(&self, key: &str, bucket: &Bucket) -> RateDecision {
        self.take(key, bucket, 0, false)
    }

    fn take(&self, key: &str, bucket: &Bucket, cost: u64, consume: bool) -> RateDecision {
        let now = Instant::now();
        let capacity = self.capacity(bucket);
        let rate = self.rate_per_sec(bucket);
        let mut buckets = lock(&self.buckets);
        let state = buckets
            .entry((key.to_owned(), bucket.name))
            .or_insert(BucketState {
                tokens: capacity,
                at: now,
            });
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(capacity);
        state.at = now;

        // Costs are small integers; the conversion is exact below 2^53.
        let cost = cost as f64;
        let needed = cost.min(capacity);
        let allowed = !consume || state.tokens >= needed;
        if consume && allowed {
            state.tokens -= cost;
        }
        let tokens = state.tokens;
        drop(buckets);

        let epoch_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let to_full = ((capacity - tokens).max(0.0) / rate).ceil();
        let retry_after = (!allowed).then(|| ((needed - tokens) / rate).ceil().max(1.0) as u64);
        RateDecision {
            allowed,
            limit: (f64::from(bucket.limit) * self.scale).round().max(1.0) as u64,
            remaining: tokens.max(0.0).floor() as u64,
            reset: (epoch_now + to_full).ceil() as u64,
            retry_after,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers, cursors, hashing
// ---------------------------------------------------------------------------------------------

/// Crockford's base-32 alphabet (no I, L, O, U): URL-safe and unambiguous.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A ULID-like identifier body: 10 characters of milliseconds since the epoch, then `random`
/// characters from `rng`. Sorts by time, like the vendors' ids (`req_01HW3K9F2X…`).
pub(crate) fn ulid_like(millis: u64, random: usize, rng: &mut fastrand::Rng) -> String {
    let mut out = String::with_capacity(10 + random);
    for i in (0..10).rev() {
        out.push(crockford_char(millis >> (i * 5)));
    }
    for _ in 0..random {
        out.push(crockford_char(rng.u64(..)));
    }
    out
}

fn crockford_char(v: u64) -> char {
    // `v & 31` is below 32, the alphabet's length.
    char::from(CROCKFORD.get((v & 31) as usize).copied().unwrap_or(b'0'))
}

/// Milliseconds since the Unix epoch, by the local clock.
pub(crate) fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A request id: `req_` and 16 URL-safe characters (time-ordered, then random).
pub(crate) fn request_id(rng: &mut fastrand::Rng) -> String {
    format!("req_{}", ulid_like(epoch_millis(), 6, rng))
}

/// Encodes a cursor: the lower-case hex of `position`. Opaque and URL-safe.
pub(crate) fn encode_cursor(position: &str) -> String {
    let mut out = String::with_capacity(position.len() * 2);
    for b in position.bytes() {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    out
}

fn hex_digit(v: u8) -> char {
    char::from(
        b"0123456789abcdef"
            .get(usize::from(v & 0x0f))
            .copied()
            .unwrap_or(b'0'),
    )
}

/// Decodes a cursor made by [`encode_cursor`]; `None` for anything else (a 400 for the caller).
pub(crate) fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || cursor.len() % 2 != 0 {
        return None;
    }
    let bytes = cursor
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((hex_value(*hi)? << 4) | hex_value(*lo)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// 64-bit FNV-1a: a small, stable hash for ETags and deterministic generated data.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

// ---------------------------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------------------------

/// A problem with one query parameter, for the vendor to render in its error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamError {
    /// The parameter, or empty for the query string as a whole.
    pub(crate) param: String,
    /// What is wrong, for a person.
    pub(crate) message: String,
}

impl ParamError {
    pub(crate) fn new(param: &str, message: impl Into<String>) -> Self {
        ParamError {
            param: param.to_owned(),
            message: message.into(),
        }
    }
}

impl axum::response::IntoResponse for ParamError {
    /// A 400 carrying the error, which the middleware renders in the vendor's shape.
    fn into_response(self) -> axum::response::Response {
        let mut resp = axum::http::StatusCode::BAD_REQUEST.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// A parsed query string. As a handler argument it is the request's query, parsed (an invalid
/// one is answered 400 in the vendor's shape before the handler runs).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Params {
    type Rejection = ParamError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> std::result::Result<Self, ParamError> {
        Params::parse(parts.uri.query())
    }
}

impl Params {
    /// Parses a raw (percent-encoded) query string; `None` is an empty one.
    pub(crate) fn parse(raw: Option<&str>) -> std::result::Result<Params, ParamError> {
        match raw {
            None | Some("") => Ok(Params::default()),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(Params)
                .map_err(|_| ParamError::new("", "The query string is not valid.")),
        }
    }

    /// A parameter that may appear at most once. An empty value counts as absent.
    pub(crate) fn one(&self, name: &str) -> std::result::Result<Option<&str>, ParamError> {
        let mut found = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(ParamError::new(
                name,
                format!("Parameter '{name}' may be given only once."),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// A parameter that must be present once.
    pub(crate) fn required(&self, name: &str) -> std::result::Result<&str, ParamError> {
        self.one(name)?
            .ok_or_else(|| ParamError::new(name, format!("Parameter '{name}' is required.")))
    }

    /// Every value of a repeatable parameter.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A page size: `default` when absent, else an integer in `1..=max`.
    pub(crate) fn limit(
        &self,
        name: &str,
        default: usize,
        max: usize,
    ) -> std::result::Result<usize, ParamError> {
        match self.one(name)? {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ParamError::new(
                    name,
                    format!("Parameter '{name}' must be an integer from 1 to {max}."),
                )),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Daily quotas and bearer tokens (added with the SiliconWit simulator; vendor-neutral)
// ---------------------------------------------------------------------------------------------

/// The outcome of a daily-quota check, and the headers that describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DailyDecision {
    /// Whether the request may proceed.
    pub(crate) allowed: bool,
    /// `X-RateLimit-Daily-Limit`: the (scaled) requests allowed per UTC day.
    pub(crate) limit: u64,
    /// `X-RateLimit-Daily-Remaining`: requests left today after this one.
    pub(crate) remaining: u64,
    /// Whole seconds until the quota resets at the next midnight UTC (at least 1): the
    /// `Retry-After` of a refusal.
    pub(crate) reset_after: u64,
}

impl DailyDecision {
    /// Writes `X-RateLimit-Daily-Limit` and `X-RateLimit-Daily-Remaining`.
    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert("x-ratelimit-daily-limit", HeaderValue::from(self.limit));
        headers.insert(
            "x-ratelimit-daily-remaining",
            HeaderValue::from(self.remaining),
        );
    }
}

const SECS_PER_DAY: u64 = 86_400;

/// Fixed-window daily quotas keyed by credential: `limit × scale` requests per UTC day (at least
/// 1), all of them available again at midnight UTC. Unlike [`RateLimiter`]'s buckets nothing
/// refills during the day.
#[derive(Debug)]
pub(crate) struct DailyQuota {
    scale: f64,
    /// key → (day number since the epoch, requests counted that day).
    used: Mutex<HashMap<String, (u64, u64)>>,
}

impl DailyQuota {
    /// `scale` multiplies every limit, as [`RateLimiter::new`]'s does.
    pub(crate) fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        DailyQuota {
            scale,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key` against `limit` a day, if any is left.
    pub(crate) fn check(&self, key: &str, limit: u32) -> DailyDecision {
        self.at(key, limit, 1, epoch_millis() / 1000)
    }

    /// Reports `key`'s quota without counting anything.
    pub(crate) fn peek(&self, key: &str, limit: u32) -> DailyDecision {
        self.at(key, limit, 0, epoch_millis() / 1000)
    }

    /// Gives back one request counted today (when another limit refused it after all).
    pub(crate) fn refund(&self, key: &str) {
        let today = epoch_millis() / 1000 / SECS_PER_DAY;
        if let Some((day, count)) = lock(&self.used).get_mut(key) {
            if *day == today {
                *count = count.saturating_sub(1);
            }
        }
    }

    fn at(&self, key: &str, limit: u32, cost: u64, now_secs: u64) -> DailyDecision {
        let limit = (f64::from(limit) * self.scale).round().max(1.0) as u64;
        let today = now_secs / SECS_PER_DAY;
        let mut used = lock(&self.used);
        let entry = used.entry(key.to_owned()).or_insert((today, 0));
        if entry.0 != today {
            *entry = (today, 0);
        }
        let allowed = entry.1.saturating_add(cost) <= limit;
        if allowed {
            entry.1 = entry.1.saturating_add(cost);
        }
        let count = entry.1;
        drop(used);
        DailyDecision {
            allowed,
            limit,
            remaining: limit.saturating_sub(count),
            reset_after: (SECS_PER_DAY - now_secs % SECS_PER_DAY).max(1),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), if there is
/// a non-empty one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    match server::bearer(headers) {
        server::Bearer::Token(token) => Some(token),
        server::Bearer::Missing | server::Bearer::Malformed => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tagged cursors (vendor-neutral; first used by the Sepolo simulator)
// ---------------------------------------------------------------------------------------------

/// Encodes a position in a list of `kind` as an opaque cursor: [`encode_cursor`] of
/// `kind:position`, so a cursor of one list is refused by another.
pub(crate) fn tagged_cursor(kind: &str, position: &str) -> String {
    encode_cursor(&format!("{kind}:{position}"))
}

impl Params {
    /// Parameter `name` as a cursor made by [`tagged_cursor`] for `kind`: its position, `None`
    /// when absent, or an error for anything this list did not issue.
    pub(crate) fn tagged_cursor(
        &self,
        name: &str,
        kind: &str,
    ) -> std::result::Result<Option<String>, ParamError> {
        let Some(raw) = self.one(name)? else {
            return Ok(None);
        };
        decode_cursor(raw)
            .and_then(|s| {
                s.strip_prefix(kind)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(str::to_owned)
            })
            .map(Some)
            .ok_or_else(|| {
                ParamError::new(
                    name,
                    format!("Parameter '{name}' is not a cursor this list issued."),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for s in ["", "dev_42", "t:1735689600000:3", "ünïcode"] {
            if s.is_empty() {
                assert_eq!(decode_cursor(&encode_cursor(s)), None);
            } else {
                assert_eq!(decode_cursor(&encode_cursor(s)).as_deref(), Some(s));
            }
        }
        assert_eq!(encode_cursor("dev_42"), "6465765f3432");
        for bad in ["abc", "zz", "eyJpZCI6ImRldl80MyJ9", "ff"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_ids_have_the_documented_shape() {
        let mut rng = fastrand::Rng::with_seed(1);
        let id = request_id(&mut rng);
        assert!(id.starts_with("req_"));
        assert_eq!(id.len(), 20);
        assert!(id[4..].bytes().all(|b| CROCKFORD.contains(&b)));
    }

    #[test]
    fn buckets_refuse_after_the_burst_and_say_when_to_come_back() {
        let limiter = RateLimiter::new(1.0);
        let bucket = Bucket::new("reports", 30, Duration::from_secs(3600), 5);
        for i in 0..5 {
            let d = limiter.check("k", &bucket, 1);
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
            assert_eq!(d.limit, 30);
        }
        let d = limiter.check("k", &bucket, 1);
        assert!(!d.allowed);
        // 30 an hour is one every 120 s.
        assert!(matches!(d.retry_after, Some(119..=120)), "{d:?}");
        // Another key has its own bucket.
        assert!(limiter.check("other", &bucket, 1).allowed);
        // A peek takes nothing.
        assert_eq!(limiter.peek("other", &bucket).remaining, 4);
    }

    #[test]
    fn a_cost_above_the_burst_passes_on_a_full_bucket() {
        let limiter = RateLimiter::new(0.01);
        let bucket = Bucket::new("ingest", 10_000, Duration::from_secs(60), 2_000);
        assert!(limiter.check("k", &bucket, 1_000).allowed);
        let d = limiter.check("k", &bucket, 1);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn params_reject_repeats_and_bad_limits() {
        let p = Params::parse(Some("limit=501&tag=a&tag=b&x=1&x=2")).unwrap_or_default();
        assert!(p.limit("limit", 100, 500).is_err());
        assert_eq!(p.all("tag"), ["a", "b"]);
        assert!(p.one("x").is_err());
        assert_eq!(p.one("missing"), Ok(None));
        assert!(p.required("missing").is_err());
    }
    #[test]
    fn daily_quotas_count_per_utc_day_and_refund() {
        let quota = DailyQuota::new(1.0);
        let noon = 20_000 * SECS_PER_DAY + 43_200;
        for left in (0..3).rev() {
            let d = quota.at("k", 3, 1, noon);
            assert!(d.allowed);
            assert_eq!((d.limit, d.remaining, d.reset_after), (3, left, 43_200));
        }
        assert!(!quota.at("k", 3, 1, noon).allowed);
        assert!(quota.at("other", 3, 1, noon).allowed);
        // Midnight UTC starts a new day.
        let d = quota.at("k", 3, 1, noon + 43_200);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_after), (2, SECS_PER_DAY));
        // A small scale still allows one a day.
        assert_eq!(DailyQuota::new(0.0001).at("k", 3, 0, noon).limit, 1);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("bearer  swk_x "));
        assert_eq!(bearer_token(&h), Some("swk_x"));
        h.insert("authorization", HeaderValue::from_static("Basic eDp5"));
        assert_eq!(bearer_token(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
    }
}
