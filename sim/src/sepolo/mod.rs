//! A simulator of the Sepolo API (`/api/v1`, all 23 endpoints).
//!
//! ```no_run
//! # async fn run() -> Result<(), iot_sdk_sim::Error> {
//! use iot_sdk_sim::{Faults, sepolo::SepoloSimulator};
//!
//! let sim = SepoloSimulator::builder()
//!     .api_key("sep_test_key")
//!     .key_with_scopes("sep_read_only", &["assets.read", "devices.read"])
//!     .organization_size(500)
//!     .faults(Faults::none())
//!     .seed(42)
//!     .start()
//!     .await?;
//! // The base URL is the origin: a client appends `/api/v1/...` itself
//! // (with `iot-sdk`: `sepolo::Client::builder().base_url(sim.base_url())`).
//! assert!(sim.base_url().starts_with("http://127.0.0.1:"));
//! # Ok(())
//! # }
//! ```
//!
//! # What it serves
//!
//! Every endpoint of the Sepolo table with the spec's shapes: single objects bare, lists as
//! `{data, nextCursor, hasMore}` (every list, visits, appointments and vendors included),
//! `reporting/telemetry-daily` as a bare array, errors as `{error, message}` (`validation` 400,
//! `unauthorized` 401, `forbidden` 403, `not_found` 404, `rate_limited` 429, `server_error`
//! 500). `X-Request-Id` and `X-RateLimit-Limit`/`-Remaining`/`-Reset` are on every response.
//!
//! - **Auth**: `X-Sepolo-Api-Key: <key>` or `Authorization: Bearer <key>` (the header wins when
//!   both are sent). The main key has every scope; keys added with
//!   [`SepoloSimulatorBuilder::key_with_scopes`] only theirs. A missing scope is 403 with the
//!   spec's message, `The API key does not include the <scope> scope.`
//! - **Rate limit** (Sepolo publishes none; this is the simulator's choice): one bucket per key
//!   of 600 requests a minute with bursts of 120, scaled by
//!   [`SepoloSimulatorBuilder::rate_limit_scale`]; over it, 429 with `Retry-After`. `/me`
//!   reports the per-minute number. Requests without a valid key share one anonymous bucket.
//! - **Paging**: `pageSize` 1 to 500 (default 100; 0, over 500 or not a number is 400) and an
//!   opaque `cursor` (a cursor of another list is 400). Lists are ordered by a unique key and
//!   paged after the last key served, so items added or removed while a list is read never make
//!   it repeat or skip the others. Assets, devices, customers, vendors and parts are ordered by
//!   id; incidents, visits, appointments and reports by time, then id; telemetry by `stamp`
//!   (then `telemetryType`); cycles and movements by start; samples by index.
//! - **Time windows** are half-open, `[from, to)`. Telemetry, cycles and movements require
//!   `from` and `to` (or `fromUtc`/`toUtc`; `from`/`to` win), at most 31 days apart for
//!   telemetry and cycles; the others take optional `fromUtc`/`toUtc`, at most 366 days apart
//!   for visits, appointments, service-performance and telemetry-daily. A missing side is
//!   unbounded, except telemetry-daily, whose window defaults to the 30 days before `toUtc`
//!   (or now). `from >= to` is 400. Timestamps are RFC 3339; a date-time without a zone or a
//!   bare date is read as UTC.
//! - **Filters**: assets `updatedSince` (strictly after), `groupId`, `customerId`, `status`
//!   (`active`, `inactive`, `all`; default `all`); devices `updatedSince`, `groupId`, `status`
//!   (1 Online, 2 Offline, 3 Maintenance); telemetry `metrics` (comma-separated: only those
//!   metric fields are written and only samples carrying one of them are listed),
//!   `telemetryType` (0 environment, 1 PointGuard), `cycleId`; movements `minDurationSeconds`;
//!   incidents `deviceId`, `state` (1 Open, 2 Acknowledged, 3 Resolved); service reports
//!   `assetId`, `deviceId`, `state` (1 Draft, 2 Submitted, 3 Completed); appointments `userId`;
//!   customers `externalSystem`; parts `vendorId`, `status`. UUID parameters must be UUIDs and
//!   integer ones integers, else 400. Unknown parameters are ignored.
//! - **Data**: the spec's examples (`fixtures/sepolo/`) plus a generated organization of
//!   [`SepoloSimulatorBuilder::organization_size`] assets with devices (about 30 % of them
//!   PointGuard), customers, vendors, parts, incidents, visits, appointments and reports, with
//!   history from 2025-01-01 to now (appointments up to 120 days ahead). Every device has environment samples (`temperature`,
//!   `humidity`) every 5 minutes; PointGuard devices have 2 to 5 cycles a day of 100 to 200
//!   `current` samples, 10 ms apart, each sample carrying its cycle metadata. A cycle's summary
//!   is computed from its samples: `samples` is their number, `start`/`stop` their first and
//!   last `stamp`, `averageCurrent` their exact mean, `peakCurrent` their maximum. Movements are
//!   one per cycle; `shapeJson` is a JSON string. Telemetry-daily aggregates the environment
//!   samples of each device and UTC day (288 on a full day); service-performance counts the
//!   visits starting in the window, the assets summary sums the completed visits' costs. The
//!   spec's example cycle `cyc_20260527_120000` of `SEP-DEVICE-001` and its movement are served
//!   as the spec shows them.
//! - **Service reports**: `POST /api/v1/service-reports` (scope `service_reports.write`) takes
//!   a JSON object with a UUID `assetId` of an existing asset (else 400), keeps every other field
//!   and answers 201 `{serviceReportId}`; the report is then listed and readable, with
//!   `createdUtc` set to the time of creation.
//!
//! Fields the spec does not show (`parentAssetId`, `groupId`, `customerId`, `updatedUtc`,
//! `status`, `deviceType`, `createdUtc`, `estimatedCost`, movement `start`/`stop`/`cycleId`…)
//! are the simulator's own, added where a filter or an aggregate needs them.

mod assets;
mod data;
mod devices;
mod incidents;
mod input;
mod reporting;
mod service;
mod signals;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::server::{
    ANONYMOUS, Bearer, Canned, Core, Failure, Settings, Simulator, SimulatorBuilder, Vendor,
    bearer, json_response,
};
use crate::{Bucket, Error, ParamError, Params, RateDecision, RateLimiter, Result, fnv1a, lock};
use data::{Data, TimeKey};

/// The simulator's rate limit per key (Sepolo publishes none).
const REQUESTS: Bucket = Bucket::new("requests", 600, Duration::from_secs(60), 120);

/// The `Content-Type` of every JSON body.
const JSON: &str = "application/json; charset=utf-8";

/// The largest organization the builder accepts.
const MAX_ORGANIZATION: usize = 100_000;

/// Every scope the API knows, as granted to the main key.
pub const ALL_SCOPES: [&str; 14] = [
    "public_api.read",
    "assets.read",
    "devices.read",
    "telemetry.read",
    "movements.read",
    "incidents.read",
    "service_reports.read",
    "service_reports.write",
    "service_visits.read",
    "appointments.read",
    "reporting.read",
    "customers.read",
    "vendors.read",
    "inventory.read",
];

/// An accepted API key and what it may do.
#[derive(Clone)]
pub(crate) struct KeyInfo {
    key: String,
    scopes: Vec<String>,
    client_name: String,
}

impl std::fmt::Debug for KeyInfo {
    /// The client name and scopes, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyInfo")
            .field("client_name", &self.client_name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl KeyInfo {
    /// `clientId`: the key's prefix (up to its last `_`) and a hash of it, never the key.
    fn client_id(&self) -> String {
        let prefix = self
            .key
            .rfind('_')
            .and_then(|i| self.key.get(..=i))
            .unwrap_or("sep_");
        format!("{prefix}{:016x}", fnv1a(self.key.as_bytes()))
    }
}

/// Builds and starts a [`SepoloSimulator`]: the settings every simulator has (see
/// [`SimulatorBuilder`]; its `api_key` is the main key, granted every scope) and those below.
/// Get one from [`SepoloSimulator::builder`].
pub type SepoloSimulatorBuilder = SimulatorBuilder<SepoloOptions>;

/// The Sepolo settings of a [`SepoloSimulatorBuilder`], set through its methods.
#[derive(Clone)]
pub struct SepoloOptions {
    restricted: Vec<KeyInfo>,
    organization_size: usize,
}

impl std::fmt::Debug for SepoloOptions {
    /// Everything but the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SepoloOptions")
            .field("restricted_keys", &self.restricted.len())
            .field("organization_size", &self.organization_size)
            .finish()
    }
}

impl Default for SimulatorBuilder<SepoloOptions> {
    fn default() -> Self {
        SimulatorBuilder::with(
            Settings::new("sep_sim_key", 0x5345_504f),
            SepoloOptions {
                restricted: Vec::new(),
                organization_size: 50,
            },
        )
    }
}

impl SimulatorBuilder<SepoloOptions> {
    /// Another accepted key, granted only `scopes`: scope names (`"assets.read"`) or
    /// `iot_sdk::sepolo::Scope` values (of the `iot-sdk` crate), anything that displays as the
    /// scope's name. May be called several times; a key given twice keeps the last scopes.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), iot_sdk_sim::Error> {
    /// use iot_sdk_sim::sepolo::SepoloSimulator;
    /// let sim = SepoloSimulator::builder()
    ///     .key_with_scopes("sep_portal", &["assets.read", "service_visits.read"])
    ///     .start()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn key_with_scopes<I>(mut self, key: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        let key = key.into();
        let restricted = &mut self.options.restricted;
        restricted.retain(|k| k.key != key);
        let number = restricted.len() + 1;
        restricted.push(KeyInfo {
            key,
            scopes: scopes.into_iter().map(|s| s.to_string()).collect(),
            client_name: format!("Restricted integration {number}"),
        });
        self
    }

    /// How many assets to generate beside the spec's four (default 50, at most 100,000);
    /// devices, customers, vendors, parts, users, incidents, visits, appointments and reports
    /// are generated in proportion.
    pub fn organization_size(mut self, assets: usize) -> Self {
        self.options.organization_size = assets;
        self
    }

    /// Seeds the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (an empty key, a scale that is not
    /// finite and positive, an organization over 100,000 assets); [`Error::Bind`] when the port
    /// cannot be bound.
    pub async fn start(self) -> Result<SepoloSimulator> {
        let SimulatorBuilder { settings, options } = self;
        settings.check()?;
        if options.restricted.iter().any(|k| k.key.trim().is_empty()) {
            return Err(Error::invalid("simulator API keys must not be empty"));
        }
        if options.organization_size > MAX_ORGANIZATION {
            return Err(Error::invalid(
                "simulator organization_size must be at most 100,000",
            ));
        }
        let data = Data::seed(settings.seed, options.organization_size, data::now())
            .map_err(Error::Data)?;
        let mut keys = vec![KeyInfo {
            key: settings.api_key.clone(),
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            client_name: "Partner API".to_owned(),
        }];
        keys.extend(
            options
                .restricted
                .into_iter()
                .filter(|k| k.key != settings.api_key),
        );
        let core = Core::new(&settings);
        let state = Arc::new(SepoloState {
            keys: keys.into_iter().map(Arc::new).collect(),
            per_minute: (f64::from(REQUESTS.limit) * settings.rate_limit_scale)
                .round()
                .max(1.0) as u64,
            seed: settings.seed,
            data: Mutex::new(data),
            limiter: RateLimiter::new(settings.rate_limit_scale),
            core: core.clone(),
        });
        crate::server::start(settings, core, state, routes(), "").await
    }
}

/// A running Sepolo simulator: the handle of [`Simulator`] (its base URL is the origin, the
/// client appends `/api/v1`). The server stops when this is dropped (or on
/// [`Simulator::shutdown`]).
pub type SepoloSimulator = Simulator<SepoloState>;

impl Simulator<SepoloState> {
    /// A builder with the defaults (key `sep_sim_key` with every scope, 50 generated assets, no
    /// faults, 600 requests a minute per key, any free port).
    pub fn builder() -> SepoloSimulatorBuilder {
        SepoloSimulatorBuilder::default()
    }

    /// The organization id every key belongs to.
    pub fn organization_id(&self) -> &str {
        data::ORGANIZATION_ID
    }
}

/// The state of a running Sepolo simulator, shared by its handlers and its middleware (opaque;
/// the type parameter of [`SepoloSimulator`]).
pub struct SepoloState {
    keys: Vec<Arc<KeyInfo>>,
    per_minute: u64,
    seed: u64,
    data: Mutex<Data>,
    limiter: RateLimiter,
    core: Arc<Core>,
}

impl std::fmt::Debug for SepoloState {
    /// The number of keys only: no keys or (possibly large) data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SepoloState")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// The name the handlers know the state by.
pub(crate) type Shared = SepoloState;

impl Shared {
    /// A fresh UUID for a new resource.
    fn new_uuid(&self) -> String {
        data::uuid(&mut lock(&self.core.ids))
    }
}

type SharedState = State<Arc<Shared>>;

/// The authenticated caller, for handlers that need it (`/me`).
#[derive(Debug, Clone)]
struct Principal(Arc<KeyInfo>);

fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/assets", get(assets::list))
        .route("/api/v1/assets/{asset_id}", get(assets::get))
        .route("/api/v1/assets/{asset_id}/children", get(assets::children))
        .route(
            "/api/v1/reporting/assets-summary",
            get(reporting::assets_summary),
        )
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/devices/{device_id}", get(devices::get))
        .route(
            "/api/v1/devices/{device_id}/telemetry",
            get(devices::telemetry),
        )
        .route(
            "/api/v1/devices/{device_id}/pointguard/cycles",
            get(devices::cycles),
        )
        .route(
            "/api/v1/devices/{device_id}/pointguard/cycles/{cycle_id}/samples",
            get(devices::cycle_samples),
        )
        .route(
            "/api/v1/devices/{device_id}/movements",
            get(devices::movements),
        )
        .route(
            "/api/v1/devices/{device_id}/movements/{movement_id}/signature",
            get(devices::signature),
        )
        .route("/api/v1/incidents", get(incidents::list))
        .route(
            "/api/v1/service-reports",
            get(service::reports).post(service::create_report),
        )
        .route("/api/v1/service-reports/{report_id}", get(service::report))
        .route("/api/v1/service-visits", get(service::visits))
        .route("/api/v1/appointments", get(service::appointments))
        .route(
            "/api/v1/reporting/service-performance",
            get(reporting::service_performance),
        )
        .route("/api/v1/customers", get(service::customers))
        .route("/api/v1/vendors", get(service::vendors))
        .route("/api/v1/inventory/parts", get(service::parts))
        .route(
            "/api/v1/reporting/telemetry-daily",
            get(reporting::telemetry_daily),
        )
}

/// The scope an endpoint requires, by method and path; `None` for paths that are no endpoint.
fn required_scope(method: &Method, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/v1/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    Some(match segments.as_slice() {
        ["me"] => "public_api.read",
        ["assets"] | ["assets", _] | ["assets", _, "children"] => "assets.read",
        [
            "reporting",
            "assets-summary" | "service-performance" | "telemetry-daily",
        ] => "reporting.read",
        ["devices"] | ["devices", _] => "devices.read",
        ["devices", _, "telemetry"]
        | ["devices", _, "pointguard", "cycles"]
        | ["devices", _, "pointguard", "cycles", _, "samples"] => "telemetry.read",
        ["devices", _, "movements"] | ["devices", _, "movements", _, "signature"] => {
            "movements.read"
        }
        ["incidents"] => "incidents.read",
        ["service-reports"] if *method == Method::POST => "service_reports.write",
        ["service-reports"] | ["service-reports", _] => "service_reports.read",
        ["service-visits"] => "service_visits.read",
        ["appointments"] => "appointments.read",
        ["customers"] => "customers.read",
        ["vendors"] => "vendors.read",
        ["inventory", "parts"] => "inventory.read",
        _ => return None,
    })
}

/// `GET /api/v1/me`: the key's identity, organization and scopes.
async fn me(
    State(s): SharedState,
    axum::Extension(Principal(key)): axum::Extension<Principal>,
) -> Res {
    Ok(ok(json!({
        "organizationId": data::ORGANIZATION_ID,
        "clientId": key.client_id(),
        "clientName": key.client_name,
        "scopes": key.scopes,
        "version": "v1",
        "rateLimit": { "requestsPerMinute": s.per_minute, "requestsPerDay": null },
        "allowedGroupIds": [],
        "allowedCustomerIds": [],
    })))
}

// ---------------------------------------------------------------------------------------------
// Responses and errors
// ---------------------------------------------------------------------------------------------

/// An error answer in the spec's shape, `{error, message}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiErr {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl ApiErr {
    pub(crate) fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiErr {
            status,
            error,
            message: message.into(),
        }
    }

    /// 400 `validation`.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        ApiErr::new(StatusCode::BAD_REQUEST, "validation", message)
    }

    /// 404 `not_found` for one resource of the organization.
    pub(crate) fn not_found(kind: &str, id: &str) -> Self {
        ApiErr::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The {kind} '{id}' was not found in this organization."),
        )
    }
}

impl From<ParamError> for ApiErr {
    fn from(e: ParamError) -> Self {
        ApiErr::validation(e.message)
    }
}

impl From<ApiErr> for Failure {
    fn from(e: ApiErr) -> Self {
        Failure::new(e.status, e.error, e.message, Value::Null)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        Failure::from(self).into_response()
    }
}

pub(crate) type Res = std::result::Result<Response, ApiErr>;

/// 200 with a bare JSON body.
pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body, JSON)
}

/// A list page: `{data, nextCursor, hasMore}`.
pub(crate) fn page(items: Vec<Value>, next: Option<String>) -> Response {
    ok(json!({
        "data": items,
        "hasMore": next.is_some(),
        "nextCursor": next,
    }))
}

/// Takes up to `size` items from `iter` (already filtered, ordered and started after the
/// cursor): the page and, when more follow, the position of its last item for the next cursor.
pub(crate) fn take_page<T>(
    mut iter: impl Iterator<Item = T>,
    size: usize,
    position: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let items: Vec<T> = iter.by_ref().take(size).collect();
    let next = match items.last() {
        Some(last) if iter.next().is_some() => Some(position(last)),
        _ => None,
    };
    (items, next)
}

/// A page of a time-ordered list: the items whose time lies in `[from, to)` (an absent side is
/// unbounded), after the cursor's `millis:id` position, that pass `keep`.
pub(crate) fn time_page<T>(
    map: &BTreeMap<TimeKey, T>,
    params: &Params,
    kind: &str,
    (from, to): input::Window,
    keep: impl Fn(&T) -> bool,
    to_json: impl Fn(&T) -> Value,
) -> Res {
    let size = input::page_size(params)?;
    let after = input::cursor(params, kind)?
        .map(|p| input::time_id_position(&p))
        .transpose()?;
    let from_key = from.map(|f| (f.timestamp_millis(), String::new()));
    let lower = match (after, from_key) {
        (Some(a), Some(f)) if a < f => Bound::Included(f),
        (Some(a), _) => Bound::Excluded(a),
        (None, Some(f)) => Bound::Included(f),
        (None, None) => Bound::Unbounded,
    };
    let upper = to.map_or(Bound::Unbounded, |t| {
        Bound::Excluded((t.timestamp_millis(), String::new()))
    });
    // `BTreeMap::range` panics on crossed bounds: such a range is simply empty.
    if let (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u)) = (&lower, &upper) {
        if l >= u {
            return Ok(page(Vec::new(), None));
        }
    }
    let matching = map.range((lower, upper)).filter(|(_, v)| keep(v));
    let (items, next) = take_page(matching, size, |((ms, id), _)| {
        input::make_cursor(kind, &format!("{ms}:{id}"))
    });
    Ok(page(
        items.into_iter().map(|(_, v)| to_json(v)).collect(),
        next,
    ))
}

// ---------------------------------------------------------------------------------------------
// What Sepolo adds to the shared middleware: its key header or a bearer token, per-key scopes,
// one bucket per key, the `{error, message}` body.
// ---------------------------------------------------------------------------------------------

/// The key a request presents: `X-Sepolo-Api-Key`, else an `Authorization: Bearer` token.
fn presented_key(headers: &HeaderMap) -> std::result::Result<&str, ApiErr> {
    let unauthorized =
        |message: &str| ApiErr::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    if let Some(v) = headers.get("x-sepolo-api-key") {
        return v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("The X-Sepolo-Api-Key header is empty or not valid."));
    }
    match bearer(headers) {
        Bearer::Token(token) => Ok(token),
        Bearer::Missing => Err(unauthorized(
            "An API key is required: send it in the X-Sepolo-Api-Key header or as a bearer token.",
        )),
        Bearer::Malformed => Err(unauthorized(
            "The Authorization header must be 'Bearer <API key>'.",
        )),
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> std::result::Result<Arc<KeyInfo>, ApiErr> {
    let key = presented_key(headers)?;
    shared
        .keys
        .iter()
        .find(|k| k.key == key)
        .cloned()
        .ok_or_else(|| {
            ApiErr::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The API key is not valid.",
            )
        })
}

impl Vendor for SepoloState {
    type Caller = Arc<KeyInfo>;
    type Limits = RateDecision;
    const CONTENT_TYPE: &'static str = JSON;
    const CHALLENGE: Option<&'static str> = None;

    fn core(&self) -> &Core {
        &self.core
    }

    fn error_body(failure: &Failure, _request_id: &str) -> Value {
        json!({ "error": failure.code, "message": failure.message })
    }

    fn canned(kind: Canned) -> (&'static str, &'static str) {
        match kind {
            Canned::FaultInternal | Canned::Internal => {
                ("server_error", "An unexpected error occurred.")
            }
            Canned::FaultBadGateway => ("bad_gateway", "The upstream service failed."),
            Canned::FaultUnavailable => (
                "service_unavailable",
                "The service is temporarily unavailable.",
            ),
            Canned::NotFound => ("not_found", "No such resource."),
            Canned::MethodNotAllowed => (
                "method_not_allowed",
                "This method is not allowed on this path.",
            ),
            Canned::TooLarge | Canned::BadRequest => {
                ("validation", "The request could not be read.")
            }
        }
    }

    fn unknown_route(path: &str) -> Failure {
        ApiErr::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No endpoint at '{path}'."),
        )
        .into()
    }

    fn param_error(e: ParamError) -> Failure {
        ApiErr::from(e).into()
    }

    fn authenticate(&self, req: &Request) -> std::result::Result<Arc<KeyInfo>, Failure> {
        authenticate(self, req.headers()).map_err(Failure::from)
    }

    fn rate_key(caller: &Arc<KeyInfo>) -> String {
        format!("key:{}", caller.key)
    }

    fn peek(&self, key: &str, _req: &Request) -> RateDecision {
        self.limiter.peek(key, &REQUESTS)
    }

    async fn admit(
        &self,
        caller: std::result::Result<Arc<KeyInfo>, Failure>,
        rate_key: String,
        mut req: Request,
    ) -> std::result::Result<(Request, RateDecision), (Failure, RateDecision)> {
        let key = match caller {
            Ok(key) => key,
            Err(failure) => return Err((failure, self.limiter.check(ANONYMOUS, &REQUESTS, 1))),
        };
        let decision = self.limiter.check(&rate_key, &REQUESTS, 1);
        if !decision.allowed {
            self.core.stat(|s| s.rate_limited += 1);
            let retry_after = decision.retry_after.unwrap_or(1);
            let err = ApiErr::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many requests for this API key; retry after {retry_after} s."),
            );
            return Err((err.into(), decision));
        }
        if let Some(scope) = required_scope(req.method(), req.uri().path()) {
            if !key.scopes.iter().any(|s| s == scope) {
                let err = ApiErr::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("The API key does not include the {scope} scope."),
                );
                return Err((err.into(), decision));
            }
        }
        req.extensions_mut().insert(Principal(key));
        Ok((req, decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_scope() {
        let get = Method::GET;
        let cases = [
            ("/api/v1/me", "public_api.read"),
            ("/api/v1/assets/x/children", "assets.read"),
            ("/api/v1/reporting/telemetry-daily", "reporting.read"),
            ("/api/v1/devices/D", "devices.read"),
            ("/api/v1/devices/D/telemetry", "telemetry.read"),
            (
                "/api/v1/devices/D/pointguard/cycles/c/samples",
                "telemetry.read",
            ),
            ("/api/v1/devices/D/movements/m/signature", "movements.read"),
            ("/api/v1/service-reports/r", "service_reports.read"),
            ("/api/v1/inventory/parts", "inventory.read"),
        ];
        for (path, scope) in cases {
            assert_eq!(required_scope(&get, path), Some(scope), "{path}");
        }
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/service-reports"),
            Some("service_reports.write")
        );
        assert_eq!(required_scope(&get, "/api/v1/nowhere"), None);
        assert_eq!(required_scope(&get, "/api/v2/me"), None);
    }

    #[test]
    fn client_ids_do_not_reveal_the_key() {
        let k = KeyInfo {
            key: "sep_live_secret".to_owned(),
            scopes: Vec::new(),
            client_name: String::new(),
        };
        let id = k.client_id();
        assert!(id.starts_with("sep_live_"));
        assert!(!id.contains("secret"));
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn pages_stop_at_the_size_and_say_where() {
        let (items, next) = take_page(1..=5, 2, |i| i.to_string());
        assert_eq!((items, next.as_deref()), (vec![1, 2], Some("2")));
        let (items, next) = take_page(1..=2, 2, |i| i.to_string());
        assert_eq!((items, next), (vec![1, 2], None));
    }
}
