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

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::server::{
    ANONYMOUS, Bearer, Canned, Core, Failure, Settings, Simulator, SimulatorBuilder, Vendor,
    bearer, json_response,
};
use crate::{Bucket, Error, ParamError, RateDecision, RateLimiter, Result, lock};
use data::Data;

/// The `meta.served_by` of every response.
const SERVED_BY: &str = "sim-sgt-1";
/// Request bodies larger than this are refused with 400 (axum's default body limit, which the
/// handlers' extractors apply too).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// The `Content-Type` of every JSON body.
const JSON: &str = "application/json";

const READ: Bucket = Bucket::new("read", 600, Duration::from_secs(60), 120);
const WRITE: Bucket = Bucket::new("write", 120, Duration::from_secs(60), 30);
const INGEST: Bucket = Bucket::new("ingest", 10_000, Duration::from_secs(60), 2_000);
const REPORTS: Bucket = Bucket::new("reports", 30, Duration::from_secs(3600), 5);

/// Builds and starts an [`SgtSimulator`]: the settings every simulator has (see
/// [`SimulatorBuilder`]) and those below. Get one from [`SgtSimulator::builder`].
pub type SgtSimulatorBuilder = SimulatorBuilder<SgtOptions>;

/// The SGT settings of an [`SgtSimulatorBuilder`], set through its methods.
#[derive(Clone)]
pub struct SgtOptions {
    extra_keys: Vec<String>,
    tenant: String,
    fleet_size: usize,
    report_delay: Duration,
    token_ttl: Duration,
}

impl std::fmt::Debug for SgtOptions {
    /// Everything but the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SgtOptions")
            .field("extra_keys", &self.extra_keys.len())
            .field("tenant", &self.tenant)
            .field("fleet_size", &self.fleet_size)
            .field("report_delay", &self.report_delay)
            .field("token_ttl", &self.token_ttl)
            .finish()
    }
}

impl Default for SimulatorBuilder<SgtOptions> {
    fn default() -> Self {
        SimulatorBuilder::with(
            Settings::new("sgt_sim_key", 0x5347_5453),
            SgtOptions {
                extra_keys: Vec::new(),
                tenant: "acme-industries".to_owned(),
                fleet_size: 50,
                report_delay: Duration::from_secs(2),
                token_ttl: Duration::from_secs(3600),
            },
        )
    }
}

impl SimulatorBuilder<SgtOptions> {
    /// Another accepted API key, bound to the same tenant. May be called several times.
    pub fn extra_key(mut self, key: impl Into<String>) -> Self {
        self.options.extra_keys.push(key.into());
        self
    }

    /// The tenant the keys are bound to (default `acme-industries`): an `X-SGT-Tenant` header
    /// with another value is answered 403.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.options.tenant = tenant.into();
        self
    }

    /// How many devices to generate beside the fixtures' two (default 50, at most 1,000,000).
    pub fn fleet_size(mut self, devices: usize) -> Self {
        self.options.fleet_size = devices;
        self
    }

    /// How long after its creation a report becomes `ready` (default 2 s).
    pub fn report_delay(mut self, delay: Duration) -> Self {
        self.options.report_delay = delay;
        self
    }

    /// How long an access token from the token endpoint is accepted (default 3600 s, the
    /// `expires_in` of the token response).
    pub fn token_ttl(mut self, ttl: Duration) -> Self {
        self.options.token_ttl = ttl;
        self
    }

    /// Seeds the data, binds the port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for an invalid setting (an empty key or tenant, a scale that
    /// is not finite and positive, a fleet over 1,000,000); [`Error::Bind`] when the port
    /// cannot be bound.
    pub async fn start(self) -> Result<SgtSimulator> {
        let SimulatorBuilder { settings, options } = self;
        settings.check()?;
        if options.extra_keys.iter().any(|k| k.trim().is_empty()) {
            return Err(Error::invalid("simulator API keys must not be empty"));
        }
        if options.tenant.trim().is_empty() {
            return Err(Error::invalid("simulator tenant must not be empty"));
        }
        if options.fleet_size > 1_000_000 {
            return Err(Error::invalid(
                "simulator fleet_size must be at most 1,000,000",
            ));
        }
        let data = Data::seed(settings.seed, options.fleet_size).map_err(Error::Data)?;
        let mut keys = vec![settings.api_key.clone()];
        keys.extend(options.extra_keys);
        let core = Core::new(&settings);
        let state = Arc::new(SgtState {
            tenant: options.tenant,
            keys,
            report_delay: options.report_delay,
            token_ttl: options.token_ttl,
            seed: settings.seed,
            data: Mutex::new(data),
            limiter: RateLimiter::new(settings.rate_limit_scale),
            core: core.clone(),
            token_url: OnceLock::new(),
        });
        let sim = crate::server::start(settings, core, state.clone(), routes(), "/v1").await?;
        let _ = state
            .token_url
            .set(format!("http://{}/oauth2/token", sim.addr()));
        Ok(sim)
    }
}

/// A running SGT simulator: the handle of [`Simulator`] with the SGT methods below. The server
/// stops when this is dropped (or on [`Simulator::shutdown`]).
pub type SgtSimulator = Simulator<SgtState>;

impl Simulator<SgtState> {
    /// A builder with the defaults (key `sgt_sim_key`, tenant `acme-industries`, 50 generated
    /// devices, no faults, the spec's rate limits, reports ready after 2 s, any free port).
    pub fn builder() -> SgtSimulatorBuilder {
        SgtSimulatorBuilder::default()
    }

    /// The OAuth2 token endpoint, `http://127.0.0.1:PORT/oauth2/token`.
    pub fn token_url(&self) -> &str {
        self.state.token_url.get().map_or("", String::as_str)
    }

    /// The tenant the keys are bound to.
    pub fn tenant(&self) -> &str {
        &self.state.tenant
    }

    /// Telemetry readings accepted by ingest since the start (a superseding reading counts too).
    pub fn readings_stored(&self) -> u64 {
        self.stats().readings_stored
    }

    /// The readings of `device_id` and `metric` that ingest stored, in the order they arrived,
    /// as (`ts`, `value`). Duplicates stay visible (a reading sent twice is here twice), except
    /// those a `supersedes: true` reading replaced. Generated readings are not included.
    pub fn stored_readings(&self, device_id: &str, metric: &str) -> Vec<(DateTime<Utc>, f64)> {
        lock(&self.state.data).stored_readings(device_id, metric)
    }

    /// How many times ingest stored each (device, metric, `ts`): a reading sent twice counts
    /// 2. Readings a `supersedes: true` reading replaced are gone, as in
    /// [`Self::stored_readings`]. For exactly-once checks.
    pub fn stored_counts(&self) -> std::collections::HashMap<(String, String, DateTime<Utc>), u64> {
        let data = lock(&self.state.data);
        let mut counts = std::collections::HashMap::new();
        for ((device, metric), series) in &data.stored {
            for r in series {
                *counts
                    .entry((device.clone(), metric.clone(), r.ts))
                    .or_insert(0) += 1;
            }
        }
        counts
    }

    /// Registers a PKCE `code_challenge` (S256: the unpadded base64url SHA-256 of the verifier)
    /// and returns the authorization code to exchange for a token at [`Self::token_url`] with
    /// `grant_type=authorization_code`. This stands in for the browser leg of the flow. A code
    /// can be exchanged once.
    pub fn authorize(&self, code_challenge: &str) -> String {
        let code = {
            let mut ids = lock(&self.state.core.ids);
            format!(
                "sgt_ac_{}",
                crate::ulid_like(crate::epoch_millis(), 16, &mut ids)
            )
        };
        lock(&self.state.data)
            .auth_codes
            .insert(code.clone(), code_challenge.to_owned());
        code
    }
}

/// The state of a running SGT simulator, shared by its handlers and its middleware (opaque; the
/// type parameter of [`SgtSimulator`]).
pub struct SgtState {
    tenant: String,
    keys: Vec<String>,
    report_delay: Duration,
    token_ttl: Duration,
    seed: u64,
    data: Mutex<Data>,
    limiter: RateLimiter,
    core: Arc<Core>,
    token_url: OnceLock<String>,
}

impl std::fmt::Debug for SgtState {
    /// The tenant only: no keys, tokens or (possibly huge) data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SgtState")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The name the handlers know the state by.
pub(crate) type Shared = SgtState;

impl Shared {
    fn stat(&self, f: impl FnOnce(&mut crate::Stats)) {
        self.core.stat(f);
    }

    /// A fresh id body (ULID-like, 14 characters) for a new resource.
    fn new_id(&self) -> String {
        crate::ulid_like(crate::epoch_millis(), 4, &mut lock(&self.core.ids))
    }

    /// Random URL-safe characters, for secrets and tokens.
    fn random_token(&self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = lock(&self.core.ids);
        (0..len)
            .map(|_| {
                let i = rng.usize(..ALPHABET.len());
                char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
            })
            .collect()
    }
}

type SharedState = State<Arc<Shared>>;

fn routes() -> Router<Arc<Shared>> {
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
}

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

impl From<ApiErr> for Failure {
    fn from(e: ApiErr) -> Self {
        Failure::new(e.status, e.code, e.message, e.details)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        Failure::from(self).into_response()
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

fn render_reply(reply: &Reply, request_id: &str, started: Instant) -> Response {
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
    let mut out = json_response(reply.status, &json!({ "data": data, "meta": meta }), JSON);
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
    out
}

// ---------------------------------------------------------------------------------------------
// What SGT adds to the shared middleware: bearer keys and tokens, the tenant header, four
// buckets (ingest costing one unit per reading), the `{error{…}}` body, the late envelope.
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
    let token = match bearer(headers) {
        Bearer::Token(token) => token,
        Bearer::Missing => {
            return Err(unauthenticated(
                "Missing credentials: send 'Authorization: Bearer <API key>'.",
            ));
        }
        Bearer::Malformed => {
            return Err(unauthenticated(
                "The Authorization header must be 'Bearer <API key>'.",
            ));
        }
    };

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

impl Vendor for SgtState {
    type Caller = String;
    type Limits = RateDecision;
    const CONTENT_TYPE: &'static str = JSON;
    const CHALLENGE: Option<&'static str> = Some("Bearer realm=\"sgt\"");

    fn core(&self) -> &Core {
        &self.core
    }

    fn error_body(failure: &Failure, request_id: &str) -> Value {
        json!({
            "error": {
                "code": failure.code,
                "message": failure.message,
                "details": failure.details,
                "request_id": request_id,
            }
        })
    }

    fn canned(kind: Canned) -> (&'static str, &'static str) {
        match kind {
            Canned::FaultInternal | Canned::Internal => {
                ("internal_error", "Unexpected server error.")
            }
            Canned::FaultBadGateway => (
                "bad_gateway",
                "Upstream component returned an unexpected response.",
            ),
            Canned::FaultUnavailable => ("unavailable", "Temporary outage."),
            Canned::NotFound => ("not_found", "No such resource."),
            Canned::MethodNotAllowed => (
                "method_not_allowed",
                "This method is not allowed on this path.",
            ),
            Canned::TooLarge => ("invalid_request", "The request body is too large."),
            Canned::BadRequest => ("invalid_request", "The request could not be read."),
        }
    }

    fn unknown_route(path: &str) -> Failure {
        Failure::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No route for '{path}'."),
            json!({ "path": path }),
        )
    }

    fn param_error(e: ParamError) -> Failure {
        ApiErr::from(e).into()
    }

    fn authenticate(&self, req: &Request) -> std::result::Result<String, Failure> {
        if req.uri().path() == "/oauth2/token" {
            return Ok("oauth".to_owned());
        }
        authenticate(self, req.headers()).map_err(Failure::from)
    }

    fn rate_key(caller: &String) -> String {
        caller.clone()
    }

    fn peek(&self, key: &str, req: &Request) -> RateDecision {
        self.limiter
            .peek(key, bucket_for(req.method(), req.uri().path()))
    }

    async fn admit(
        &self,
        caller: std::result::Result<String, Failure>,
        key: String,
        req: Request,
    ) -> std::result::Result<(Request, RateDecision), (Failure, RateDecision)> {
        let bucket = bucket_for(req.method(), req.uri().path());
        if let Err(failure) = caller {
            return Err((failure, self.limiter.check(ANONYMOUS, bucket, 1)));
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
                    return Err((err.into(), self.limiter.peek(&key, bucket)));
                }
            }
        } else {
            (req, 1)
        };

        let decision = self.limiter.check(&key, bucket, cost);
        if !decision.allowed {
            self.stat(|s| s.rate_limited += 1);
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
            return Err((err.into(), decision));
        }
        Ok((req, decision))
    }

    fn render(&self, resp: Response, request_id: &str, started: Instant) -> Response {
        if let Some(reply) = resp.extensions().get::<Reply>() {
            return render_reply(reply, request_id, started);
        }
        if let Some(raw) = resp.extensions().get::<RawJson>() {
            let mut out = json_response(raw.status, &raw.body, JSON);
            out.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return out;
        }
        resp
    }
}
