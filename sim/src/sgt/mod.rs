//! A simulator of the SGT Systems API (`/v1`, plus the OAuth2 token endpoint).
//!
//! ```no_run
//! # async fn run() -> Result<(), iot_sdk_sim::Error> {
//! use std::time::Duration;
//! use iot_sdk_sim::{Faults, sgt::SgtSimulator};
//!
//! let sim = SgtSimulator::builder()
//!     .api_key("sgt_test_key")
//!     .tenant("acme-industries")
//!     .fleet_size(10_000)
//!     .faults(Faults::none())
//!     .rate_limit_scale(1.0)
//!     .report_delay(Duration::from_millis(200))
//!     .seed(42)
//!     .start()
//!     .await?;
//! assert!(sim.base_url().ends_with("/v1"));
//! # Ok(())
//! # }
//! ```
//!
//! # What it serves
//!
//! Every endpoint of the SGT table, with the spec's envelope (`{data, meta{request_id, served_by,
//! took_ms, pagination?}}`), error body (`{error{code, message, details, request_id}}`) and status
//! table, `X-Request-Id` and `X-RateLimit-*` on every response, errors included.
//!
//! - **Auth**: `Authorization: Bearer <key>` with a configured key or an access token from the
//!   token endpoint, else 401 `unauthenticated`; `X-SGT-Tenant`, when sent, must equal the key's
//!   tenant, else 403 `forbidden`.
//! - **Rate limits** per credential: read (GET, HEAD) 600/min burst 120; write (POST, PATCH,
//!   DELETE) 120/min burst 30; `POST /telemetry/ingest` 10,000 readings/min burst 2,000, costing
//!   one unit per reading (at least 1); `POST /reports` 30/hour burst 5. All scaled by
//!   [`SgtSimulatorBuilder::rate_limit_scale`]. `X-RateLimit-Reset` is when the bucket is full
//!   again. Unauthenticated requests share the buckets of one anonymous caller; the token
//!   endpoint uses a write bucket of its own.
//! - **Devices**: the fixtures' devices (`dev_42`, `dev_43`) plus a generated fleet
//!   (`dev_1`, `dev_2`, … skipping taken numbers), listed in natural id order (`dev_2` before
//!   `dev_10`). Filters `site`, `type`, `status`, `tag` (repeatable, all must match),
//!   `updated_since` (strictly after), AND-combined, also accepted by `/devices/count`.
//! - **Telemetry**: for every seeded device, readings of `power_kw`, `temperature_c`,
//!   `humidity_pct` and `voltage_v` every 15 minutes from 2025-01-01T00:00:00Z to now, computed on
//!   the fly from the seed, plus what was ingested. A reading ingested with `supersedes: true`
//!   replaces the earlier readings of its device, metric and `ts` (generated or stored); one
//!   without it is appended, so a duplicate stays visible.
//! - **Events**, **reports** (queued, then `running` until the report delay has passed, then
//!   `ready`), **webhooks** (secret shown on create and on rotation only), and the OAuth2
//!   authorization-code (PKCE S256) and refresh-token grants at [`SgtSimulator::token_url`].
//!
//! Timestamps are RFC 3339 in UTC, with milliseconds when they are not whole seconds. Signed
//! URLs (exports, reports) point at `*.sgt-sim.invalid` hosts: they look real but lead nowhere.

mod data;
mod devices;
mod events;
mod input;
mod oauth;
mod reports;
mod telemetry;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{
    FaultAction, FaultInjector, Faults, ParamError, RateDecision, RateLimiter, Server, Stats,
    dropped_connection, lock, request_id,
};
use crate::{Bucket, Error, Result};
use data::Data;

/// The `meta.served_by` of every response.
const SERVED_BY: &str = "sim-sgt-1";
/// Request bodies larger than this are refused with 400 (axum's default body limit, which the
/// handlers' extractors apply too).
const MAX_BODY: usize = 2 * 1024 * 1024;

const READ: Bucket = Bucket::new("read", 600, Duration::from_secs(60), 120);
const WRITE: Bucket = Bucket::new("write", 120, Duration::from_secs(60), 30);
const INGEST: Bucket = Bucket::new("ingest", 10_000, Duration::from_secs(60), 2_000);
const REPORTS: Bucket = Bucket::new("reports", 30, Duration::from_secs(3600), 5);

/// The rate-limit key of callers without valid credentials.
const ANONYMOUS: &str = "anonymous";

/// Builds and starts an [`SgtSimulator`]. Get one from [`SgtSimulator::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SgtSimulatorBuilder {
    api_key: String,
    extra_keys: Vec<String>,
    tenant: String,
    fleet_size: usize,
    faults: Faults,
    rate_limit_scale: f64,
    report_delay: Duration,
    token_ttl: Duration,
    seed: u64,
    port: u16,
}

impl Default for SgtSimulatorBuilder {
    fn default() -> Self {
        SgtSimulatorBuilder {
            api_key: "sgt_sim_key".to_owned(),
            extra_keys: Vec::new(),
            tenant: "acme-industries".to_owned(),
            fleet_size: 50,
            faults: Faults::none(),
            rate_limit_scale: 1.0,
            report_delay: Duration::from_secs(2),
            token_ttl: Duration::from_secs(3600),
            seed: 0x5347_5453,
            port: 0,
        }
    }
}

impl SgtSimulatorBuilder {
    /// The API key the simulator accepts as a bearer token (default `sgt_sim_key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Another accepted API key, bound to the same tenant. May be called several times.
    pub fn extra_key(mut self, key: impl Into<String>) -> Self {
        self.extra_keys.push(key.into());
        self
    }

    /// The tenant the keys are bound to (default `acme-industries`): an `X-SGT-Tenant` header
    /// with another value is answered 403.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// How many devices to generate beside the fixtures' two (default 50, at most 1,000,000).
    pub fn fleet_size(mut self, devices: usize) -> Self {
        self.fleet_size = devices;
        self
    }

    sim_builder_common!(SgtSimulator);

    /// How long after its creation a report becomes `ready` (default 2 s).
    pub fn report_delay(mut self, delay: Duration) -> Self {
        self.report_delay = delay;
        self
    }

    /// How long an access token from the token endpoint is accepted (default 3600 s, the
    /// `expires_in` of the token response).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.token_ttl = ttl;
        self
    }

    /// Seeds the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (an empty key or tenant, a scale that is not
    /// finite and positive, a fleet over 1,000,000); [`Error::Bind`] when the port cannot be bound.
    pub async fn start(self) -> Result<SgtSimulator> {
        if self.api_key.trim().is_empty() || self.extra_keys.iter().any(|k| k.trim().is_empty()) {
            return Err(Error::invalid("simulator API keys must not be empty"));
        }
        if self.tenant.trim().is_empty() {
            return Err(Error::invalid("simulator tenant must not be empty"));
        }
        if !(self.rate_limit_scale.is_finite() && self.rate_limit_scale > 0.0) {
            return Err(Error::invalid(
                "simulator rate_limit_scale must be finite and positive",
            ));
        }
        if self.fleet_size > 1_000_000 {
            return Err(Error::invalid(
                "simulator fleet_size must be at most 1,000,000",
            ));
        }
        let data = Data::seed(self.seed, self.fleet_size).map_err(Error::Data)?;
        let mut keys = vec![self.api_key.clone()];
        keys.extend(self.extra_keys.iter().cloned());
        let shared = Arc::new(Shared {
            tenant: self.tenant.clone(),
            keys,
            report_delay: self.report_delay,
            token_ttl: self.token_ttl,
            seed: self.seed,
            data: Mutex::new(data),
            limiter: RateLimiter::new(self.rate_limit_scale),
            faults: FaultInjector::new(self.faults, self.seed),
            stats: Mutex::new(Stats::default()),
            ids: Mutex::new(fastrand::Rng::with_seed(self.seed ^ 0x0072_6571_6964)),
        });
        let server = Server::start(router(shared.clone()), self.port).await?;
        let origin = server.origin();
        Ok(SgtSimulator {
            base_url: format!("{origin}/v1"),
            token_url: format!("{origin}/oauth2/token"),
            api_key: self.api_key,
            server,
            shared,
        })
    }
}

/// A running SGT simulator. The server stops when this is dropped (or on
/// [`SgtSimulator::shutdown`]).
pub struct SgtSimulator {
    base_url: String,
    token_url: String,
    api_key: String,
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SgtSimulator {
    /// The address and tenant only: no keys, tokens or (possibly huge) data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SgtSimulator")
            .field("base_url", &self.base_url)
            .field("tenant", &self.shared.tenant)
            .finish_non_exhaustive()
    }
}

impl SgtSimulator {
    /// A builder with the defaults (key `sgt_sim_key`, tenant `acme-industries`, 50 generated
    /// devices, no faults, the spec's rate limits, reports ready after 2 s, any free port).
    pub fn builder() -> SgtSimulatorBuilder {
        SgtSimulatorBuilder::default()
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The OAuth2 token endpoint, `http://127.0.0.1:PORT/oauth2/token`.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The main API key (the builder's `api_key`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The tenant the keys are bound to.
    pub fn tenant(&self) -> &str {
        &self.shared.tenant
    }

    /// Counters of what the server has seen so far.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Telemetry readings accepted by ingest since the start (a superseding reading counts too).
    pub fn readings_stored(&self) -> u64 {
        lock(&self.shared.stats).readings_stored
    }

    /// The readings of `device_id` and `metric` that ingest stored, in the order they arrived,
    /// as (`ts`, `value`). Duplicates stay visible (a reading sent twice is here twice), except
    /// those a `supersedes: true` reading replaced. Generated readings are not included.
    pub fn stored_readings(&self, device_id: &str, metric: &str) -> Vec<(DateTime<Utc>, f64)> {
        lock(&self.shared.data).stored_readings(device_id, metric)
    }

    /// Registers a PKCE `code_challenge` (S256: the unpadded base64url SHA-256 of the verifier)
    /// and returns the authorization code to exchange for a token at [`Self::token_url`] with
    /// `grant_type=authorization_code`. This stands in for the browser leg of the flow. A code
    /// can be exchanged once.
    pub fn authorize(&self, code_challenge: &str) -> String {
        let code = {
            let mut ids = lock(&self.shared.ids);
            format!(
                "sgt_ac_{}",
                super::ulid_like(super::epoch_millis(), 16, &mut ids)
            )
        };
        lock(&self.shared.data)
            .auth_codes
            .insert(code.clone(), code_challenge.to_owned());
        code
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
    tenant: String,
    keys: Vec<String>,
    report_delay: Duration,
    token_ttl: Duration,
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

    /// A fresh id body (ULID-like, 14 characters) for a new resource.
    fn new_id(&self) -> String {
        super::ulid_like(super::epoch_millis(), 4, &mut lock(&self.ids))
    }

    /// Random URL-safe characters, for secrets and tokens.
    fn random_token(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = lock(&self.ids);
        (0..len)
            .map(|_| {
                let i = rng.usize(..ALPHABET.len());
                char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
            })
            .collect()
    }
}

type SharedState = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/devices", get(devices::list).post(devices::create))
        .route("/v1/devices/count", get(devices::count))
        .route(
            "/v1/devices/{id}",
            get(devices::get)
                .patch(devices::update)
                .delete(devices::delete),
        )
        .route("/v1/devices/{id}/commands", post(devices::command))
        .route("/v1/telemetry", get(telemetry::query))
        .route("/v1/telemetry/ingest", post(telemetry::ingest))
        .route("/v1/telemetry/aggregate", get(telemetry::aggregate))
        .route("/v1/telemetry/export", get(telemetry::export))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}/ack", post(events::ack))
        .route("/v1/events/{id}/clear", post(events::clear))
        .route("/v1/events/{id}/comment", post(events::comment))
        .route("/v1/reports", get(reports::list).post(reports::create))
        .route("/v1/reports/{id}", get(reports::get))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/v1/webhooks/{id}",
            patch(webhooks::update).delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/oauth2/token", post(oauth::token))
        .fallback(unknown_route)
        .layer(from_fn_with_state(shared.clone(), middleware))
        .with_state(shared)
}

async fn unknown_route(uri: Uri) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No route for '{}'.", uri.path()),
        json!({ "path": uri.path() }),
    )
}

// ---------------------------------------------------------------------------------------------
// Replies and errors: handlers return these; the middleware renders them with the request id.
// ---------------------------------------------------------------------------------------------

/// A successful answer, rendered into the envelope by the middleware.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: StatusCode,
    /// `None` for 204.
    data: Option<Value>,
    pagination: Option<Value>,
    etag: Option<String>,
    location: Option<String>,
}

impl Reply {
    fn with_status(status: StatusCode, data: Value) -> Self {
        Reply {
            status,
            data: Some(data),
            pagination: None,
            etag: None,
            location: None,
        }
    }

    pub(crate) fn ok(data: Value) -> Self {
        Reply::with_status(StatusCode::OK, data)
    }

    pub(crate) fn created(data: Value) -> Self {
        Reply::with_status(StatusCode::CREATED, data)
    }

    pub(crate) fn accepted(data: Value) -> Self {
        Reply::with_status(StatusCode::ACCEPTED, data)
    }

    pub(crate) fn no_content() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            data: None,
            pagination: None,
            etag: None,
            location: None,
        }
    }

    /// A list page: `meta.pagination {limit, next, has_more}`.
    pub(crate) fn page(items: Vec<Value>, limit: usize, next: Option<String>) -> Self {
        let mut reply = Reply::ok(Value::Array(items));
        reply.pagination = Some(json!({
            "limit": limit,
            "has_more": next.is_some(),
            "next": next,
        }));
        reply
    }

    pub(crate) fn etag(mut self, etag: &str) -> Self {
        self.etag = Some(etag.to_owned());
        self
    }

    pub(crate) fn location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// An error answer in the spec's shape, rendered by the middleware.
#[derive(Debug, Clone)]
pub(crate) struct ApiErr {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
}

impl ApiErr {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: Value,
    ) -> Self {
        ApiErr {
            status,
            code,
            message: message.into(),
            details,
        }
    }

    /// 400 `invalid_request`.
    pub(crate) fn invalid(message: impl Into<String>, details: Value) -> Self {
        ApiErr::new(StatusCode::BAD_REQUEST, "invalid_request", message, details)
    }

    /// 422 `validation_failed` about one body field.
    pub(crate) fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
            json!({ "field": field }),
        )
    }

    /// 404 `not_found` for a resource other than a device.
    pub(crate) fn not_found(kind: &str, id_field: &str, id: &str) -> Self {
        ApiErr::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No {kind} with id '{id}'."),
            json!({ id_field: id }),
        )
    }

    /// 409 `conflict` for a stale `If-Match`.
    pub(crate) fn stale(current_etag: &str) -> Self {
        ApiErr::new(
            StatusCode::CONFLICT,
            "conflict",
            "The resource was changed since it was read: If-Match does not match its current ETag.",
            json!({ "current_etag": current_etag }),
        )
    }
}

impl From<ParamError> for ApiErr {
    fn from(e: ParamError) -> Self {
        ApiErr::invalid(e.message, json!({ "parameter": e.param }))
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// A body outside the envelope (the OAuth2 token endpoint), rendered as is.
#[derive(Debug, Clone)]
pub(crate) struct RawJson {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for RawJson {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

pub(crate) type Res = std::result::Result<Reply, ApiErr>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn render_error(err: &ApiErr, request_id: &str) -> Response {
    json_response(
        err.status,
        &json!({
            "error": {
                "code": err.code,
                "message": err.message,
                "details": err.details,
                "request_id": request_id,
            }
        }),
    )
}

/// Turns what a handler (or axum itself) answered into the final response.
fn render(resp: Response, request_id: &str, started: Instant) -> Response {
    if let Some(reply) = resp.extensions().get::<Reply>() {
        let Some(data) = &reply.data else {
            return reply.status.into_response();
        };
        let mut meta = json!({
            "request_id": request_id,
            "served_by": SERVED_BY,
            "took_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        if let (Some(p), Some(m)) = (&reply.pagination, meta.as_object_mut()) {
            m.insert("pagination".to_owned(), p.clone());
        }
        let mut out = json_response(reply.status, &json!({ "data": data, "meta": meta }));
        if let Some(v) = reply
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            out.headers_mut().insert(header::ETAG, v);
        }
        if let Some(v) = reply
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            out.headers_mut().insert(header::LOCATION, v);
        }
        return out;
    }
    if let Some(err) = resp.extensions().get::<ApiErr>() {
        return render_error(err, request_id);
    }
    if let Some(raw) = resp.extensions().get::<RawJson>() {
        let mut out = json_response(raw.status, &raw.body);
        out.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return out;
    }
    // Something axum answered by itself: a method the route does not have, a path parameter or
    // body it could not extract. Give it the spec's error shape.
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed on this path.",
        ),
        StatusCode::NOT_FOUND => ("not_found", "No such resource."),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "The request body is too large."),
        s if s.is_server_error() => ("internal_error", "Unexpected server error."),
        _ => ("invalid_request", "The request could not be read."),
    };
    // Stay within the spec's status table: other client errors (413, 415…) are 400s.
    let status = match status {
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => status,
        s if s.is_server_error() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut out = render_error(&ApiErr::new(status, code, message, json!({})), request_id);
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The middleware: request id, faults, auth, rate limit, envelope, headers, stats.
// ---------------------------------------------------------------------------------------------

/// Which bucket a request counts against.
fn bucket_for(method: &Method, path: &str) -> &'static Bucket {
    if *method == Method::POST && path == "/v1/telemetry/ingest" {
        &INGEST
    } else if *method == Method::POST && path == "/v1/reports" {
        &REPORTS
    } else if *method == Method::GET || *method == Method::HEAD {
        &READ
    } else {
        &WRITE
    }
}

/// Checks the bearer credential and the tenant header; the rate-limit key of the caller.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> std::result::Result<String, ApiErr> {
    let unauthenticated = |message: &str| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            message,
            json!({}),
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthenticated(
            "Missing credentials: send 'Authorization: Bearer <API key>'.",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthenticated("The Authorization header must be 'Bearer <API key>'."))?;

    let principal = if shared.keys.iter().any(|k| k == token) {
        format!("key:{token}")
    } else if lock(&shared.data).access_token_valid(token, Instant::now()) {
        format!("token:{token}")
    } else {
        return Err(unauthenticated(
            "Invalid or expired API key or access token.",
        ));
    };

    if let Some(tenant) = headers.get("x-sgt-tenant") {
        if tenant.to_str().ok().map(str::trim) != Some(shared.tenant.as_str()) {
            return Err(ApiErr::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "This key is bound to tenant '{}'; X-SGT-Tenant names another.",
                    shared.tenant
                ),
                json!({ "tenant": tenant.to_str().unwrap_or("") }),
            ));
        }
    }
    Ok(principal)
}

/// The number of readings in an ingest body (the ingest cost), or 1 when it does not parse.
fn ingest_cost(body: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("readings").and_then(Value::as_array).map(Vec::len))
        .map_or(1, |n| u64::try_from(n).unwrap_or(u64::MAX).max(1))
}

async fn middleware(State(shared): SharedState, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(&mut lock(&shared.ids));
    shared.stat(|s| s.requests += 1);

    let latency = shared.faults.get().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let is_token_endpoint = path == "/oauth2/token";
    let bucket = bucket_for(&method, &path);
    let auth = if is_token_endpoint {
        Ok("oauth".to_owned())
    } else {
        authenticate(&shared, req.headers())
    };
    let key = auth.as_deref().unwrap_or(ANONYMOUS).to_owned();

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
            let (code, message) = match status {
                StatusCode::BAD_GATEWAY => (
                    "bad_gateway",
                    "Upstream component returned an unexpected response.",
                ),
                StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Temporary outage."),
                _ => ("internal_error", "Unexpected server error."),
            };
            let err = ApiErr::new(status, code, message, json!({ "simulated": true }));
            let decision = shared.limiter.peek(&key, bucket);
            return finish(
                &shared,
                render_error(&err, &request_id),
                &decision,
                &request_id,
            );
        }
        FaultAction::Pass => {}
    }

    if let Err(err) = auth {
        let decision = shared.limiter.check(ANONYMOUS, bucket, 1);
        return finish(
            &shared,
            render_error(&err, &request_id),
            &decision,
            &request_id,
        );
    }

    // Ingest costs one unit per reading, so its body is read before the rate check.
    let (req, cost) = if bucket.name == INGEST.name {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(bytes) => {
                let cost = ingest_cost(&bytes);
                (Request::from_parts(parts, Body::from(bytes)), cost)
            }
            Err(_) => {
                let err = ApiErr::invalid(
                    format!("The request body could not be read or is over {MAX_BODY} bytes."),
                    json!({}),
                );
                let decision = shared.limiter.peek(&key, bucket);
                return finish(
                    &shared,
                    render_error(&err, &request_id),
                    &decision,
                    &request_id,
                );
            }
        }
    } else {
        (req, 1)
    };

    let decision = shared.limiter.check(&key, bucket, cost);
    if !decision.allowed {
        shared.stat(|s| s.rate_limited += 1);
        let retry_after = decision.retry_after.unwrap_or(1);
        let err = ApiErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "Rate limit of the '{}' bucket exceeded; retry after {retry_after} s.",
                bucket.name
            ),
            json!({ "bucket": bucket.name, "retry_after": retry_after }),
        );
        return finish(
            &shared,
            render_error(&err, &request_id),
            &decision,
            &request_id,
        );
    }

    let resp = next.run(req).await;
    let resp = render(resp, &request_id, started);
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
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sgt\""),
        );
    }
    let status = resp.status().as_u16();
    shared.stat(|s| *s.statuses.entry(status).or_insert(0) += 1);
    resp
}
