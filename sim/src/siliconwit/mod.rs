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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::server::{
    Canned, Core, Failure, LimitHeaders, Settings, Simulator, SimulatorBuilder, Vendor,
    json_response,
};
use crate::{
    Bucket, DailyDecision, DailyQuota, Error, ParamError, RateDecision, RateLimiter, Result,
    bearer_token, lock,
};
use data::Data;

/// The most devices a simulator generates.
const MAX_DEVICES: usize = 100_000;
/// The `Content-Type` of every JSON body.
const JSON: &str = "application/json";

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

/// Builds and starts a [`SiliconWitSimulator`]: the settings every simulator has (see
/// [`SimulatorBuilder`]; its `api_key` must start with `swk_`) and those below. Get one from
/// [`SiliconWitSimulator::builder`].
pub type SiliconWitSimulatorBuilder = SimulatorBuilder<SiliconWitOptions>;

/// The SiliconWit settings of a [`SiliconWitSimulatorBuilder`], set through its methods.
#[derive(Debug, Clone)]
pub struct SiliconWitOptions {
    plan: Plan,
    suspended: bool,
    device_count: usize,
}

impl Default for SimulatorBuilder<SiliconWitOptions> {
    fn default() -> Self {
        SimulatorBuilder::with(
            Settings::new("swk_sim_key", 0x5357_4954),
            SiliconWitOptions {
                plan: Plan::starter(),
                suspended: false,
                device_count: 5,
            },
        )
    }
}

impl SimulatorBuilder<SiliconWitOptions> {
    /// The account's plan (default [`Plan::starter`]): rate limits, retention, device limit.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.options.plan = plan;
        self
    }

    /// A suspended account answers every call 403 `Account suspended` (default `false`).
    pub fn suspended(mut self, suspended: bool) -> Self {
        self.options.suspended = suspended;
        self
    }

    /// How many devices the account has (default 5, at most 100,000), the first being the spec's
    /// `dev_a1b2c3d4`. See the [module docs](self) for which are paused or silent.
    pub fn device_count(mut self, devices: usize) -> Self {
        self.options.device_count = devices;
        self
    }

    /// Generates the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (a key not starting with `swk_` or with
    /// whitespace, a scale that is not finite and positive, over 100,000 devices);
    /// [`Error::Bind`] when the port cannot be bound.
    pub async fn start(self) -> Result<SiliconWitSimulator> {
        let SimulatorBuilder { settings, options } = self;
        let key = &settings.api_key;
        if !key.starts_with("swk_") || key.len() <= 4 || key.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "simulator API key must start with 'swk_' and have no whitespace",
            ));
        }
        settings.check()?;
        if options.device_count > MAX_DEVICES {
            return Err(Error::invalid(
                "simulator device_count must be at most 100,000",
            ));
        }
        let started = data::now();
        let data = Data::seed(settings.seed, options.device_count, started).map_err(Error::Data)?;
        let per_minute = options.plan.per_minute.max(1);
        let core = Core::new(&settings);
        let state = Arc::new(SiliconWitState {
            key: settings.api_key.clone(),
            plan: options.plan,
            suspended: options.suspended,
            started,
            minute: Bucket::new("minute", per_minute, Duration::from_secs(60), per_minute),
            data: Mutex::new(data),
            key_last_used: Mutex::new(None),
            limiter: RateLimiter::new(settings.rate_limit_scale),
            daily: DailyQuota::new(settings.rate_limit_scale),
            core: core.clone(),
        });
        crate::server::start(settings, core, state, routes(), "/v1").await
    }
}

/// A running SiliconWit simulator: the handle of [`Simulator`] with the SiliconWit methods
/// below. The server stops when this is dropped (or on [`Simulator::shutdown`]).
pub type SiliconWitSimulator = Simulator<SiliconWitState>;

impl Simulator<SiliconWitState> {
    /// A builder with the defaults (key `swk_sim_key`, starter plan, 5 devices, no faults, the
    /// spec's rate limits, any free port).
    pub fn builder() -> SiliconWitSimulatorBuilder {
        SiliconWitSimulatorBuilder::default()
    }

    /// The account's plan.
    pub fn plan(&self) -> &Plan {
        &self.state.plan
    }

    /// The ids of the devices, in list order.
    pub fn device_ids(&self) -> Vec<String> {
        lock(&self.state.data)
            .devices
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }

    /// Test hook: adds an active `sensor` device named `name` at the end of the list and returns
    /// its id. It has no telemetry until the next 15-minute boundary.
    pub fn add_device(&self, name: impl Into<String>) -> String {
        lock(&self.state.data).add_device(name.into(), data::now())
    }

    /// Test hook: removes device `id` and its alerts (later devices move one place up the list).
    /// `false` when there is no such device.
    pub fn remove_device(&self, id: &str) -> bool {
        lock(&self.state.data).remove_device(id)
    }
}

/// The state of a running SiliconWit simulator, shared by its handlers and its middleware
/// (opaque; the type parameter of [`SiliconWitSimulator`]).
pub struct SiliconWitState {
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
    core: Arc<Core>,
}

impl std::fmt::Debug for SiliconWitState {
    /// The plan only: no key or data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiliconWitState")
            .field("plan", &self.plan.name)
            .finish_non_exhaustive()
    }
}

/// The name the handlers know the state by.
pub(crate) type Shared = SiliconWitState;

impl Shared {
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
}

/// The per-minute and daily state of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    minute: RateDecision,
    daily: DailyDecision,
}

impl Limits {
    /// Refused by the daily quota (retry after midnight UTC) or the per-minute bucket.
    fn refused(&self) -> bool {
        !self.daily.allowed || !self.minute.allowed
    }
}

impl LimitHeaders for Limits {
    /// The four headers of the spec, and `Retry-After` when refused.
    fn apply(&self, headers: &mut HeaderMap) {
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

fn routes() -> Router<Arc<Shared>> {
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
}

// ---------------------------------------------------------------------------------------------
// Answers: handlers return these.
// ---------------------------------------------------------------------------------------------

/// A 200 with a JSON body.
pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body, JSON)
}

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

impl From<ApiErr> for Failure {
    fn from(e: ApiErr) -> Self {
        Failure::new(e.status, "", e.message, Value::Null)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        Failure::from(self).into_response()
    }
}

pub(crate) type Res = std::result::Result<Response, ApiErr>;

// ---------------------------------------------------------------------------------------------
// What SiliconWit adds to the shared middleware: one bearer key, a per-minute bucket and a
// daily quota from the plan, the account's state, the `{"error": "text"}` body.
// ---------------------------------------------------------------------------------------------

impl Vendor for SiliconWitState {
    type Caller = String;
    type Limits = Limits;
    const CONTENT_TYPE: &'static str = JSON;
    const CHALLENGE: Option<&'static str> = Some("Bearer realm=\"siliconwit\"");

    fn core(&self) -> &Core {
        &self.core
    }

    fn error_body(failure: &Failure, _request_id: &str) -> Value {
        json!({ "error": failure.message })
    }

    fn canned(kind: Canned) -> (&'static str, &'static str) {
        let message = match kind {
            Canned::FaultInternal | Canned::Internal => "Internal server error",
            Canned::FaultBadGateway => "Bad gateway",
            Canned::FaultUnavailable => "Service temporarily unavailable",
            Canned::NotFound => "Not found",
            Canned::MethodNotAllowed => "Method not allowed",
            Canned::TooLarge | Canned::BadRequest => "Bad request",
        };
        ("", message)
    }

    fn unknown_route(_path: &str) -> Failure {
        ApiErr::not_found("Not found").into()
    }

    fn param_error(e: ParamError) -> Failure {
        ApiErr::from(e).into()
    }

    fn authenticate(&self, req: &Request) -> std::result::Result<String, Failure> {
        if bearer_token(req.headers()) == Some(self.key.as_str()) {
            Ok(self.key.clone())
        } else {
            Err(ApiErr::new(StatusCode::UNAUTHORIZED, "Missing or invalid API key").into())
        }
    }

    fn rate_key(caller: &String) -> String {
        caller.clone()
    }

    fn peek(&self, key: &str, _req: &Request) -> Limits {
        Limits {
            minute: self.limiter.peek(key, &self.minute),
            daily: self.daily.peek(key, self.plan.daily),
        }
    }

    async fn admit(
        &self,
        caller: std::result::Result<String, Failure>,
        key: String,
        req: Request,
    ) -> std::result::Result<(Request, Limits), (Failure, Limits)> {
        // Unauthenticated requests count against the anonymous caller's limits too.
        let limits = self.take(&key);
        if let Err(failure) = caller {
            return Err((failure, limits));
        }
        *lock(&self.key_last_used) = Some(data::now());
        let refusal = if limits.refused() {
            self.core.stat(|s| s.rate_limited += 1);
            Some((StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded"))
        } else if self.suspended {
            Some((StatusCode::FORBIDDEN, "Account suspended"))
        } else if self.plan.name == Plan::free().name {
            Some((
                StatusCode::FORBIDDEN,
                "API access is not available on free plan",
            ))
        } else {
            None
        };
        match refusal {
            Some((status, message)) => Err((ApiErr::new(status, message).into(), limits)),
            None => Ok((req, limits)),
        }
    }
}
