//! A simulator of the SiliconWit API (`/v1`, read-only).
//!
//! ```no_run
//! # async fn run() -> Result<(), iot_sdk_sim::Error> {
//! use iot_sdk_sim::{Faults, siliconwit::{Plan, SiliconWitSimulator}};
//!
//! let sim = SiliconWitSimulator::builder()
//!     .api_key("swk_test_key")
//!     .plan(Plan::starter().data_retention_days(7))
//!     .device_count(1_000)
//!     .faults(Faults::none().error_rate(0.1))
//!     .seed(42)
//!     .start()
//!     .await?;
//! // With `iot-sdk`: `siliconwit::Client::builder().api_key(sim.api_key()).base_url(sim.base_url())`,
//! // whose `usage()` then reports the 1,000 devices.
//! assert!(sim.base_url().ends_with("/v1"));
//! assert_eq!(sim.device_ids().len(), 1_000);
//! # Ok(())
//! # }
//! ```
//!
//! # What it serves
//!
//! The nine endpoints of the SiliconWit table, with the spec's bodies: `{data}` for one object,
//! `{data, pagination{total, limit, offset}}` for the device and alert lists, `{data, query}` for
//! historical telemetry, and `{"error": "text"}` for every error.
//!
//! - **Auth**: `Authorization: Bearer <key>` with the configured key (which must start with
//!   `swk_`), else 401 `Missing or invalid API key`. A suspended account
//!   ([`SiliconWitSimulatorBuilder::suspended`]) answers every call 403 `Account suspended`; the
//!   free plan answers 403 `API access is not available on free plan`.
//! - **Rate limits** per key, from the [`Plan`]: a per-minute token bucket (burst = the
//!   per-minute limit) and a daily quota that resets at midnight UTC, both scaled by
//!   [`SiliconWitSimulatorBuilder::rate_limit_scale`]. Every response, errors included, carries
//!   `X-Request-Id`, `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Daily-Limit` and
//!   `X-RateLimit-Daily-Remaining` (no reset header: the spec lists none). Over either limit:
//!   429 `Rate limit exceeded` with `Retry-After` (seconds until a token is back, or until
//!   midnight UTC for the daily quota). A request refused by the per-minute limit is not counted
//!   against the daily one. Requests without a valid key count against one anonymous caller.
//! - **Devices** in creation order (the list order, stable while paging; added devices come
//!   last): the spec's `dev_a1b2c3d4` first, then generated ones (`dev_` and eight hex digits)
//!   whose type cycles through `sensor` (`temperature`, `humidity`), `door_sensor` (`door`:
//!   `"open"`/`"closed"`, `battery`, `temperature`) and `energy_meter` (`power_w`, `voltage`).
//!   Device *i* (from 0) is paused when `i % 5 == 4` and never reported when `i % 7 == 3`
//!   (`last_seen` null, latest telemetry `{"data": null}`).
//! - **Telemetry**: one reading every 15 minutes (on multiples of 15 minutes since the epoch),
//!   from a device's creation to now (to its pause for a paused device), computed on the fly from
//!   the seed: the same reading has the same id and values every time it is read. History is
//!   newest first; its `range` is capped to the longest of `1h`, `6h`, `24h`, `7d`, `30d` that fits
//!   in the plan's retention, and `query` echoes the requested and the effective range.
//! - **Alerts** on devices 0, 1 and 3 of every five (those on the third disabled), the first
//!   being the spec's `alert_abc123`, whose trigger history (60 events) ends with the spec's
//!   `evt_001`; conditions use all six operators, severities `info`, `warning`, `critical`.
//! - **Account**: usage consistent with the devices and alerts (`data_points_24h` counts the
//!   readings of the last 24 hours), and the metadata of the key (`key_prefix`: its first eight
//!   characters, at most half of it) beside one revoked key. The device limit is reported, not enforced.
//!
//! Validation: `limit` outside `1..=100` (`1..=1000` for telemetry), a negative or non-numeric
//! `offset`, an unknown `status` or `range`, or a parameter given twice is a 400. An unknown path
//! is a 404, another method than GET (or HEAD) a 405. Timestamps are RFC 3339 UTC, whole seconds.
//!
//! With the default of five devices, the data matches the spec's usage example: 5 devices (4
//! active, 1 paused), 3 alerts (2 active), starter plan with 10 devices and 30 days of retention.

mod account;
mod alerts;
mod data;
mod devices;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    DailyDecision, DailyQuota, FaultAction, FaultInjector, Faults, ParamError, RateDecision,
    RateLimiter, Server, Stats, bearer_token, dropped_connection, lock, request_id,
};
use crate::{Bucket, Error, Result};
use data::Data;

/// The rate-limit key of callers without a valid key.
const ANONYMOUS: &str = "anonymous";
/// The most devices a simulator generates.
const MAX_DEVICES: usize = 100_000;

/// A subscription plan: rate limits, device limit and telemetry retention.
///
/// The rate limits are the spec's; device limits (but the starter's 10) and retention periods
/// (but the starter's 30 days) are invented, the spec lists none. Adjust them with
/// [`Plan::device_limit`] and [`Plan::data_retention_days`], e.g. to see retention capping:
///
/// ```
/// use iot_sdk_sim::siliconwit::Plan;
///
/// let plan = Plan::starter().data_retention_days(7);
/// assert_eq!((plan.per_minute, plan.daily, plan.data_retention_days), (60, 10_000, 7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The plan's name as `/account/usage` reports it (`starter`, `business`, …).
    pub name: &'static str,
    /// Requests allowed per minute (`X-RateLimit-Limit`, before scaling).
    pub per_minute: u32,
    /// Requests allowed per UTC day (`X-RateLimit-Daily-Limit`, before scaling).
    pub daily: u32,
    /// Devices the plan allows (reported in usage; not enforced).
    pub device_limit: u64,
    /// Days of telemetry kept: longer telemetry ranges are capped to it.
    pub data_retention_days: u32,
}

impl Plan {
    /// The free plan: every API call is answered 403.
    pub fn free() -> Self {
        Plan {
            name: "free",
            per_minute: 10,
            daily: 100,
            device_limit: 3,
            data_retention_days: 7,
        }
    }

    /// Starter: 60 a minute, 10,000 a day, 10 devices, 30 days of retention (the default).
    pub fn starter() -> Self {
        Plan {
            name: "starter",
            per_minute: 60,
            daily: 10_000,
            device_limit: 10,
            data_retention_days: 30,
        }
    }

    /// Business: 300 a minute, 50,000 a day, 100 devices, 90 days of retention.
    pub fn business() -> Self {
        Plan {
            name: "business",
            per_minute: 300,
            daily: 50_000,
            device_limit: 100,
            data_retention_days: 90,
        }
    }

    /// Scale: 600 a minute, 100,000 a day, 1,000 devices, 365 days of retention.
    pub fn scale() -> Self {
        Plan {
            name: "scale",
            per_minute: 600,
            daily: 100_000,
            device_limit: 1_000,
            data_retention_days: 365,
        }
    }

    /// Enterprise, with limits "set by admin": 10,000 devices, 365 days of retention.
    pub fn enterprise(per_minute: u32, daily: u32) -> Self {
        Plan {
            name: "enterprise",
            per_minute,
            daily,
            device_limit: 10_000,
            data_retention_days: 365,
        }
    }

    /// The plan called `name` (`free`, `starter`, `business`, `scale`), if any.
    pub fn named(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "free" => Some(Plan::free()),
            "starter" => Some(Plan::starter()),
            "business" => Some(Plan::business()),
            "scale" => Some(Plan::scale()),
            _ => None,
        }
    }

    /// Sets the devices allowed.
    #[must_use]
    pub fn device_limit(mut self, devices: u64) -> Self {
        self.device_limit = devices;
        self
    }

    /// Sets the days of telemetry kept (at least 1).
    #[must_use]
    pub fn data_retention_days(mut self, days: u32) -> Self {
        self.data_retention_days = days.max(1);
        self
    }
}

impl Default for Plan {
    /// [`Plan::starter`].
    fn default() -> Self {
        Plan::starter()
    }
}

/// Builds and starts a [`SiliconWitSimulator`]. Get one from [`SiliconWitSimulator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SiliconWitSimulatorBuilder {
    api_key: String,
    plan: Plan,
    suspended: bool,
    device_count: usize,
    faults: Faults,
    rate_limit_scale: f64,
    seed: u64,
    port: u16,
}

impl Default for SiliconWitSimulatorBuilder {
    fn default() -> Self {
        SiliconWitSimulatorBuilder {
            api_key: "swk_sim_key".to_owned(),
            plan: Plan::starter(),
            suspended: false,
            device_count: 5,
            faults: Faults::none(),
            rate_limit_scale: 1.0,
            seed: 0x5357_4954,
            port: 0,
        }
    }
}

impl SiliconWitSimulatorBuilder {
    /// The API key the simulator accepts as a bearer token (default `swk_sim_key`; it must
    /// start with `swk_`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// The account's plan (default [`Plan::starter`]): rate limits, retention, device limit.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// A suspended account answers every call 403 `Account suspended` (default `false`).
    pub fn suspended(mut self, suspended: bool) -> Self {
        self.suspended = suspended;
        self
    }

    /// How many devices the account has (default 5, at most 100,000), the first being the spec's
    /// `dev_a1b2c3d4`. See the [module docs](self) for which are paused or silent.
    pub fn device_count(mut self, devices: usize) -> Self {
        self.device_count = devices;
        self
    }

    sim_builder_common!(SiliconWitSimulator);

    /// Generates the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (a key not starting with `swk_` or with
    /// whitespace, a scale that is not finite and positive, over 100,000 devices); [`Error::Bind`]
    /// when the port cannot be bound.
    pub async fn start(self) -> Result<SiliconWitSimulator> {
        if !self.api_key.starts_with("swk_")
            || self.api_key.len() <= 4
            || self.api_key.chars().any(char::is_whitespace)
        {
            return Err(Error::invalid(
                "simulator API key must start with 'swk_' and have no whitespace",
            ));
        }
        if !(self.rate_limit_scale.is_finite() && self.rate_limit_scale > 0.0) {
            return Err(Error::invalid(
                "simulator rate_limit_scale must be finite and positive",
            ));
        }
        if self.device_count > MAX_DEVICES {
            return Err(Error::invalid(
                "simulator device_count must be at most 100,000",
            ));
        }
        let started = data::now();
        let data = Data::seed(self.seed, self.device_count, started).map_err(Error::Data)?;
        let per_minute = self.plan.per_minute.max(1);
        let shared = Arc::new(Shared {
            key: self.api_key.clone(),
            plan: self.plan,
            suspended: self.suspended,
            started,
            minute: Bucket::new("minute", per_minute, Duration::from_secs(60), per_minute),
            data: Mutex::new(data),
            key_last_used: Mutex::new(None),
            limiter: RateLimiter::new(self.rate_limit_scale),
            daily: DailyQuota::new(self.rate_limit_scale),
            faults: FaultInjector::new(self.faults, self.seed),
            stats: Mutex::new(Stats::default()),
            ids: Mutex::new(fastrand::Rng::with_seed(self.seed ^ 0x0072_6571_6964)),
        });
        let server = Server::start(router(shared.clone()), self.port).await?;
        Ok(SiliconWitSimulator {
            base_url: format!("{}/v1", server.origin()),
            server,
            shared,
        })
    }
}

/// A running SiliconWit simulator. The server stops when this is dropped (or on
/// [`SiliconWitSimulator::shutdown`]).
pub struct SiliconWitSimulator {
    base_url: String,
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SiliconWitSimulator {
    /// The address and plan only: no key or data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiliconWitSimulator")
            .field("base_url", &self.base_url)
            .field("plan", &self.shared.plan.name)
            .finish_non_exhaustive()
    }
}

impl SiliconWitSimulator {
    /// A builder with the defaults (key `swk_sim_key`, starter plan, 5 devices, no faults, the
    /// spec's rate limits, any free port).
    pub fn builder() -> SiliconWitSimulatorBuilder {
        SiliconWitSimulatorBuilder::default()
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.key
    }

    /// The account's plan.
    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// Counters of what the server has seen so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// The ids of the devices, in list order.
    pub fn device_ids(&self) -> Vec<String> {
        lock(&self.shared.data)
            .devices
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }

    /// Test hook: adds an active `sensor` device named `name` at the end of the list and returns
    /// its id. It has no telemetry until the next 15-minute boundary.
    pub fn add_device(&self, name: impl Into<String>) -> String {
        lock(&self.shared.data).add_device(name.into(), data::now())
    }

    /// Test hook: removes device `id` and its alerts (later devices move one place up the list).
    /// `false` when there is no such device.
    pub fn remove_device(&self, id: &str) -> bool {
        lock(&self.shared.data).remove_device(id)
    }

    /// Replaces the injected faults, from the next request on.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults.set(faults);
    }

    /// Stops the server gracefully: no new connections, in-flight requests finish (up to 10 s).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// State shared by the handlers and the middleware.
#[derive(Debug)]
pub(crate) struct Shared {
    key: String,
    plan: Plan,
    suspended: bool,
    /// When the simulator started (the revoked key's dates are relative to it).
    started: DateTime<Utc>,
    /// The plan's per-minute bucket.
    minute: Bucket,
    data: Mutex<Data>,
    key_last_used: Mutex<Option<DateTime<Utc>>>,
    limiter: RateLimiter,
    daily: DailyQuota,
    faults: FaultInjector,
    stats: Mutex<Stats>,
    ids: Mutex<fastrand::Rng>,
}

impl Shared {
    fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    /// Takes one request from `key`'s daily quota and per-minute bucket, or from neither.
    fn take(&self, key: &str) -> Limits {
        let daily = self.daily.check(key, self.plan.daily);
        if !daily.allowed {
            let minute = self.limiter.peek(key, &self.minute);
            return Limits { minute, daily };
        }
        let minute = self.limiter.check(key, &self.minute, 1);
        if minute.allowed {
            return Limits { minute, daily };
        }
        self.daily.refund(key);
        let daily = self.daily.peek(key, self.plan.daily);
        Limits { minute, daily }
    }

    /// `key`'s limits, taking nothing.
    fn peek(&self, key: &str) -> Limits {
        Limits {
            minute: self.limiter.peek(key, &self.minute),
            daily: self.daily.peek(key, self.plan.daily),
        }
    }
}

/// The per-minute and daily state of one request.
#[derive(Debug, Clone, Copy)]
struct Limits {
    minute: RateDecision,
    daily: DailyDecision,
}

impl Limits {
    /// Refused by the daily quota (retry after midnight UTC) or the per-minute bucket.
    fn refused(&self) -> bool {
        !self.daily.allowed || !self.minute.allowed
    }

    /// The four headers of the spec, and `Retry-After` when refused.
    fn apply(&self, resp: &mut Response) {
        let headers = resp.headers_mut();
        self.minute.apply(headers);
        // The spec lists no reset header for SiliconWit.
        headers.remove("x-ratelimit-reset");
        self.daily.apply(headers);
        if !self.daily.allowed {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.daily.reset_after),
            );
        }
    }
}

type SharedState = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/devices", get(devices::list))
        .route("/v1/devices/{id}", get(devices::get))
        .route("/v1/devices/{id}/telemetry/latest", get(devices::latest))
        .route("/v1/devices/{id}/telemetry", get(devices::telemetry))
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/alerts/{id}", get(alerts::get))
        .route("/v1/alerts/{id}/history", get(alerts::history))
        .route("/v1/account/usage", get(account::usage))
        .route("/v1/account/keys", get(account::keys))
        .fallback(unknown_route)
        .layer(from_fn_with_state(shared.clone(), middleware))
        .with_state(shared)
}

async fn unknown_route(_uri: Uri) -> ApiErr {
    ApiErr::new(StatusCode::NOT_FOUND, "Not found")
}

// ---------------------------------------------------------------------------------------------
// Answers: handlers return these.
// ---------------------------------------------------------------------------------------------

/// Marks a response whose body the simulator wrote (so the middleware leaves it alone).
#[derive(Debug, Clone, Copy)]
struct Rendered;

/// A 200 with a JSON body.
pub(crate) fn ok(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.extensions_mut().insert(Rendered);
    resp
}

/// An error in the spec's shape, `{"error": "text"}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiErr {
    status: StatusCode,
    message: String,
}

impl ApiErr {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiErr {
            status,
            message: message.into(),
        }
    }

    /// 400, for invalid parameters.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiErr::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404, for a resource that does not exist (or is not the caller's).
    pub(crate) fn not_found(message: &str) -> Self {
        ApiErr::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<ParamError> for ApiErr {
    fn from(e: ParamError) -> Self {
        ApiErr::bad_request(e.message)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({ "error": self.message }))).into_response();
        resp.extensions_mut().insert(Rendered);
        resp
    }
}

pub(crate) type Res = std::result::Result<Response, ApiErr>;

/// Gives what axum answered by itself (a method the route does not have, a path it could not
/// decode) the spec's error shape.
fn reshape(resp: Response) -> Response {
    let status = resp.status();
    if resp.extensions().get::<Rendered>().is_some()
        || !(status.is_client_error() || status.is_server_error())
    {
        return resp;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Internal server error",
        _ => "Bad request",
    };
    let status = match status {
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => status,
        s if s.is_server_error() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut out = ApiErr::new(status, message).into_response();
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The middleware: request id, faults, auth, rate limits, account state, headers, stats.
// ---------------------------------------------------------------------------------------------

async fn middleware(State(shared): SharedState, req: Request, next: Next) -> Response {
    let request_id = request_id(&mut lock(&shared.ids));
    shared.stat(|s| s.requests += 1);

    let latency = shared.faults.get().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let authenticated = bearer_token(req.headers()) == Some(shared.key.as_str());
    let key = if authenticated {
        shared.key.clone()
    } else {
        ANONYMOUS.to_owned()
    };

    match shared.faults.decide() {
        FaultAction::Drop => {
            shared.stat(|s| {
                s.faults_injected += 1;
                s.connections_dropped += 1;
            });
            return dropped_connection();
        }
        FaultAction::Error(status) => {
            shared.stat(|s| s.faults_injected += 1);
            let message = match status {
                StatusCode::BAD_GATEWAY => "Bad gateway",
                StatusCode::SERVICE_UNAVAILABLE => "Service temporarily unavailable",
                _ => "Internal server error",
            };
            let resp = ApiErr::new(status, message).into_response();
            return finish(&shared, resp, &shared.peek(&key), &request_id);
        }
        FaultAction::Pass => {}
    }

    let limits = shared.take(&key);
    if !authenticated {
        let resp = ApiErr::new(StatusCode::UNAUTHORIZED, "Missing or invalid API key");
        return finish(&shared, resp.into_response(), &limits, &request_id);
    }
    *lock(&shared.key_last_used) = Some(data::now());
    if limits.refused() {
        shared.stat(|s| s.rate_limited += 1);
        let resp = ApiErr::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
        return finish(&shared, resp.into_response(), &limits, &request_id);
    }
    if shared.suspended {
        let resp = ApiErr::new(StatusCode::FORBIDDEN, "Account suspended");
        return finish(&shared, resp.into_response(), &limits, &request_id);
    }
    if shared.plan.name == Plan::free().name {
        let resp = ApiErr::new(
            StatusCode::FORBIDDEN,
            "API access is not available on free plan",
        );
        return finish(&shared, resp.into_response(), &limits, &request_id);
    }

    let resp = reshape(next.run(req).await);
    finish(&shared, resp, &limits, &request_id)
}

/// Adds `X-Request-Id` and the rate-limit headers, and counts the status.
fn finish(shared: &Shared, mut resp: Response, limits: &Limits, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    limits.apply(&mut resp);
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"siliconwit\""),
        );
    }
    let status = resp.status().as_u16();
    shared.stat(|s| *s.statuses.entry(status).or_insert(0) += 1);
    resp
}
