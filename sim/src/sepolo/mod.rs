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
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{
    FaultAction, FaultInjector, Faults, ParamError, Params, RateDecision, RateLimiter, Server,
    Stats, dropped_connection, fnv1a, lock, request_id,
};
use crate::{Bucket, Error, Result};
use data::{Data, TimeKey};

/// The simulator's rate limit per key (Sepolo publishes none).
const REQUESTS: Bucket = Bucket::new("requests", 600, Duration::from_secs(60), 120);

/// The rate-limit key of callers without a valid key.
const ANONYMOUS: &str = "anonymous";

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
struct KeyInfo {
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

/// Builds and starts a [`SepoloSimulator`]. Get one from [`SepoloSimulator::builder`].
#[derive(Clone)]
#[must_use]
pub struct SepoloSimulatorBuilder {
    api_key: String,
    restricted: Vec<KeyInfo>,
    organization_size: usize,
    faults: Faults,
    rate_limit_scale: f64,
    seed: u64,
    port: u16,
}

impl std::fmt::Debug for SepoloSimulatorBuilder {
    /// Everything but the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SepoloSimulatorBuilder")
            .field("restricted_keys", &self.restricted.len())
            .field("organization_size", &self.organization_size)
            .field("faults", &self.faults)
            .field("rate_limit_scale", &self.rate_limit_scale)
            .field("seed", &self.seed)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Default for SepoloSimulatorBuilder {
    fn default() -> Self {
        SepoloSimulatorBuilder {
            api_key: "sep_sim_key".to_owned(),
            restricted: Vec::new(),
            organization_size: 50,
            faults: Faults::none(),
            rate_limit_scale: 1.0,
            seed: 0x5345_504f,
            port: 0,
        }
    }
}

impl SepoloSimulatorBuilder {
    /// The main API key, granted every scope (default `sep_sim_key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Another accepted key, granted only `scopes`: scope names (`"assets.read"`) or
    /// `iot_sdk::sepolo::Scope` values (of the `iot-sdk` crate), anything that displays as the scope's name. May be called several times; a key given twice keeps the last scopes.
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
        self.restricted.retain(|k| k.key != key);
        let number = self.restricted.len() + 1;
        self.restricted.push(KeyInfo {
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
        self.organization_size = assets;
        self
    }

    sim_builder_common!(SepoloSimulator);

    /// Seeds the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (an empty key, a scale that is not finite and
    /// positive, an organization over 100,000 assets); [`Error::Bind`] when the port cannot be bound.
    pub async fn start(self) -> Result<SepoloSimulator> {
        if self.api_key.trim().is_empty() || self.restricted.iter().any(|k| k.key.trim().is_empty())
        {
            return Err(Error::invalid("simulator API keys must not be empty"));
        }
        if !(self.rate_limit_scale.is_finite() && self.rate_limit_scale > 0.0) {
            return Err(Error::invalid(
                "simulator rate_limit_scale must be finite and positive",
            ));
        }
        if self.organization_size > MAX_ORGANIZATION {
            return Err(Error::invalid(
                "simulator organization_size must be at most 100,000",
            ));
        }
        let data =
            Data::seed(self.seed, self.organization_size, data::now()).map_err(Error::Data)?;
        let mut keys = vec![KeyInfo {
            key: self.api_key.clone(),
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            client_name: "Partner API".to_owned(),
        }];
        keys.extend(
            self.restricted
                .into_iter()
                .filter(|k| k.key != self.api_key),
        );
        let shared = Arc::new(Shared {
            keys: keys.into_iter().map(Arc::new).collect(),
            per_minute: (f64::from(REQUESTS.limit) * self.rate_limit_scale)
                .round()
                .max(1.0) as u64,
            seed: self.seed,
            data: Mutex::new(data),
            limiter: RateLimiter::new(self.rate_limit_scale),
            faults: FaultInjector::new(self.faults, self.seed),
            stats: Mutex::new(Stats::default()),
            ids: Mutex::new(fastrand::Rng::with_seed(self.seed ^ 0x0072_6571_6964)),
        });
        let server = Server::start(router(shared.clone()), self.port).await?;
        Ok(SepoloSimulator {
            base_url: server.origin(),
            api_key: self.api_key,
            server,
            shared,
        })
    }
}

/// A running Sepolo simulator. The server stops when this is dropped (or on
/// [`SepoloSimulator::shutdown`]).
pub struct SepoloSimulator {
    base_url: String,
    api_key: String,
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SepoloSimulator {
    /// The address only: no keys or (possibly large) data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SepoloSimulator")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SepoloSimulator {
    /// A builder with the defaults (key `sep_sim_key` with every scope, 50 generated assets, no
    /// faults, 600 requests a minute per key, any free port).
    pub fn builder() -> SepoloSimulatorBuilder {
        SepoloSimulatorBuilder::default()
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a path: the client appends
    /// `/api/v1/...`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The main API key (the builder's `api_key`), which has every scope.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The organization id every key belongs to.
    pub fn organization_id(&self) -> &str {
        data::ORGANIZATION_ID
    }

    /// Counters of what the server has seen so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
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
    keys: Vec<Arc<KeyInfo>>,
    per_minute: u64,
    seed: u64,
    data: Mutex<Data>,
    limiter: RateLimiter,
    faults: FaultInjector,
    stats: Mutex<Stats>,
    ids: Mutex<fastrand::Rng>,
}

impl Shared {
    fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }

    /// A fresh UUID for a new resource.
    fn new_uuid(&self) -> String {
        data::uuid(&mut lock(&self.ids))
    }
}

type SharedState = State<Arc<Shared>>;

/// The authenticated caller, for handlers that need it (`/me`).
#[derive(Debug, Clone)]
struct Principal(Arc<KeyInfo>);

fn router(shared: Arc<Shared>) -> Router {
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
        .fallback(unknown_route)
        .layer(from_fn_with_state(shared.clone(), middleware))
        .with_state(shared)
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

async fn unknown_route(uri: Uri) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No endpoint at '{}'.", uri.path()),
    )
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

/// Marks a response the simulator rendered itself (so the middleware leaves it alone).
#[derive(Debug, Clone, Copy)]
struct Rendered;

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

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({ "error": self.error, "message": self.message }),
        )
    }
}

pub(crate) type Res = std::result::Result<Response, ApiErr>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.extensions_mut().insert(Rendered);
    resp
}

/// 200 with a bare JSON body.
pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
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

/// Gives what axum answered by itself (a method the route lacks, a body it could not read) the
/// spec's error shape, within its status table.
fn normalize(resp: Response) -> Response {
    if resp.extensions().get::<Rendered>().is_some() {
        return resp;
    }
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let err = match status {
        StatusCode::NOT_FOUND => ApiErr::new(status, "not_found", "No such resource."),
        StatusCode::METHOD_NOT_ALLOWED => ApiErr::new(
            status,
            "method_not_allowed",
            "This method is not allowed on this path.",
        ),
        s if s.is_server_error() => ApiErr::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "An unexpected error occurred.",
        ),
        _ => ApiErr::validation("The request could not be read."),
    };
    let mut out = err.into_response();
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The middleware: request id, faults, auth, rate limit, scopes, headers, stats.
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
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "An API key is required: send it in the X-Sepolo-Api-Key header or as a bearer token.",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("The Authorization header must be 'Bearer <API key>'."))
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

async fn middleware(State(shared): SharedState, mut req: Request, next: Next) -> Response {
    let request_id = request_id(&mut lock(&shared.ids));
    shared.stat(|s| s.requests += 1);

    let latency = shared.faults.get().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let auth = authenticate(&shared, req.headers());
    let rate_key = match &auth {
        Ok(k) => format!("key:{}", k.key),
        Err(_) => ANONYMOUS.to_owned(),
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
            let (error, message) = match status {
                StatusCode::BAD_GATEWAY => ("bad_gateway", "The upstream service failed."),
                StatusCode::SERVICE_UNAVAILABLE => (
                    "service_unavailable",
                    "The service is temporarily unavailable.",
                ),
                _ => ("server_error", "An unexpected error occurred."),
            };
            let decision = shared.limiter.peek(&rate_key, &REQUESTS);
            let resp = ApiErr::new(status, error, message).into_response();
            return finish(&shared, resp, &decision, &request_id);
        }
        FaultAction::Pass => {}
    }

    let key = match auth {
        Ok(key) => key,
        Err(err) => {
            let decision = shared.limiter.check(ANONYMOUS, &REQUESTS, 1);
            return finish(&shared, err.into_response(), &decision, &request_id);
        }
    };

    let decision = shared.limiter.check(&rate_key, &REQUESTS, 1);
    if !decision.allowed {
        shared.stat(|s| s.rate_limited += 1);
        let retry_after = decision.retry_after.unwrap_or(1);
        let err = ApiErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests for this API key; retry after {retry_after} s."),
        );
        return finish(&shared, err.into_response(), &decision, &request_id);
    }

    if let Some(scope) = required_scope(req.method(), req.uri().path()) {
        if !key.scopes.iter().any(|s| s == scope) {
            let err = ApiErr::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("The API key does not include the {scope} scope."),
            );
            return finish(&shared, err.into_response(), &decision, &request_id);
        }
    }

    req.extensions_mut().insert(Principal(key));
    let resp = normalize(next.run(req).await);
    finish(&shared, resp, &decision, &request_id)
}

/// Adds `X-Request-Id` and the rate-limit headers, and counts the status.
fn finish(
    shared: &Shared,
    mut resp: Response,
    decision: &RateDecision,
    request_id: &str,
) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    decision.apply(resp.headers_mut());
    let status = resp.status().as_u16();
    shared.stat(|s| *s.statuses.entry(status).or_insert(0) += 1);
    resp
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
