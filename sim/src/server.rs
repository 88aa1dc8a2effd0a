//! What every simulator shares, written once: the builder's common settings, the running-server
//! handle, startup and graceful shutdown, and the middleware that gives each request its id,
//! faults, credentials check, rate limits, error envelope and counters.
//!
//! A vendor module supplies a [`Vendor`]: how it reads a credential, which limits a request
//! counts against, what else it checks before a handler runs, and how its error body looks. It
//! then adds only its routes, data and handlers.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[cfg(doc)]
use crate::Params;
use crate::{Error, Faults, ParamError, Result, Stats, lock, request_id};

/// The rate-limit key of callers without valid credentials.
pub(crate) const ANONYMOUS: &str = "anonymous";

// ---------------------------------------------------------------------------------------------
// The builder
// ---------------------------------------------------------------------------------------------

/// The settings every simulator has.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) api_key: String,
    pub(crate) faults: Faults,
    pub(crate) rate_limit_scale: f64,
    pub(crate) seed: u64,
    pub(crate) port: u16,
}

impl std::fmt::Debug for Settings {
    /// Everything but the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("faults", &self.faults)
            .field("rate_limit_scale", &self.rate_limit_scale)
            .field("seed", &self.seed)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// A vendor's defaults: its key and seed, no faults, the published limits, any free port.
    pub(crate) fn new(api_key: &str, seed: u64) -> Self {
        Settings {
            api_key: api_key.to_owned(),
            faults: Faults::none(),
            rate_limit_scale: 1.0,
            seed,
            port: 0,
        }
    }

    /// The checks every simulator makes before it starts.
    pub(crate) fn check(&self) -> Result<()> {
        if self.api_key.trim().is_empty() {
            return Err(Error::invalid("simulator API keys must not be empty"));
        }
        if !(self.rate_limit_scale.is_finite() && self.rate_limit_scale > 0.0) {
            return Err(Error::invalid(
                "simulator rate_limit_scale must be finite and positive",
            ));
        }
        Ok(())
    }
}

/// Builds and starts a simulator: the settings every simulator shares (here) and those of one
/// vendor (`O`, set through the methods of [`SgtSimulatorBuilder`](crate::sgt::SgtSimulatorBuilder),
/// [`SepoloSimulatorBuilder`](crate::sepolo::SepoloSimulatorBuilder) or
/// [`SiliconWitSimulatorBuilder`](crate::siliconwit::SiliconWitSimulatorBuilder)).
///
/// The `Debug` output never shows a key.
#[derive(Debug, Clone)]
#[must_use]
pub struct SimulatorBuilder<O> {
    pub(crate) settings: Settings,
    pub(crate) options: O,
}

impl<O> SimulatorBuilder<O> {
    pub(crate) fn with(settings: Settings, options: O) -> Self {
        SimulatorBuilder { settings, options }
    }

    /// The API key the simulator accepts (each vendor has a default; see its builder).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.settings.api_key = key.into();
        self
    }

    /// Faults to inject (default none): errors, dropped connections, latency. They can be
    /// changed later with [`Simulator::set_faults`].
    pub fn faults(mut self, faults: Faults) -> Self {
        self.settings.faults = faults;
        self
    }

    /// Multiplies the rate limits (default 1.0, the published numbers; 100.0 is 100 times
    /// more permissive, 0.1 ten times stricter). Must be finite and positive.
    pub fn rate_limit_scale(mut self, scale: f64) -> Self {
        self.settings.rate_limit_scale = scale;
        self
    }

    /// The seed of the generated data and of the fault decisions (default fixed, so two
    /// simulators built alike serve the same data).
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = seed;
        self
    }

    /// The port on 127.0.0.1 to listen on (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.settings.port = port;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// The running simulator
// ---------------------------------------------------------------------------------------------

/// A running simulator: its address, counters and faults, and the means to stop it. The server
/// stops when this is dropped (or on [`Simulator::shutdown`]).
///
/// `S` is the vendor's state, which adds the vendor's own methods: see
/// [`SgtSimulator`](crate::sgt::SgtSimulator), [`SepoloSimulator`](crate::sepolo::SepoloSimulator)
/// and [`SiliconWitSimulator`](crate::siliconwit::SiliconWitSimulator).
pub struct Simulator<S> {
    base_url: String,
    api_key: String,
    server: Server,
    core: Arc<Core>,
    pub(crate) state: Arc<S>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Simulator<S> {
    /// The address and what the vendor's state shows (never a key, token or the data).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("base_url", &self.base_url)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<S> Simulator<S> {
    /// The API base URL to point a client at (`http://127.0.0.1:PORT`, with the vendor's path
    /// prefix where its clients expect one).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The main API key (the builder's `api_key`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Counters of what the server has seen so far.
    pub fn stats(&self) -> Stats {
        lock(&self.core.stats).clone()
    }

    /// Replaces the injected faults, from the next request on.
    pub fn set_faults(&self, faults: Faults) {
        self.core.faults.set(faults);
    }

    /// Stops the server gracefully: no new connections, in-flight requests finish (up to 10 s).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// What the middleware and the handle share: faults, counters and the id generator.
#[derive(Debug)]
pub(crate) struct Core {
    faults: FaultInjector,
    stats: Mutex<Stats>,
    /// Request ids and every other random id of the vendor (one seeded sequence).
    pub(crate) ids: Mutex<fastrand::Rng>,
}

impl Core {
    pub(crate) fn new(settings: &Settings) -> Arc<Core> {
        Arc::new(Core {
            faults: FaultInjector::new(settings.faults, settings.seed),
            stats: Mutex::new(Stats::default()),
            ids: Mutex::new(fastrand::Rng::with_seed(settings.seed ^ 0x0072_6571_6964)),
        })
    }

    /// Updates the counters.
    pub(crate) fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }
}

/// Binds `127.0.0.1:port`, serves `routes` for vendor `state` behind the shared middleware on
/// the current tokio runtime, and returns the handle (base URL = origin + `path_prefix`).
pub(crate) async fn start<V: Vendor>(
    settings: Settings,
    core: Arc<Core>,
    state: Arc<V>,
    routes: Router<Arc<V>>,
    path_prefix: &str,
) -> Result<Simulator<V>> {
    let router = routes
        .route(&format!("{path_prefix}/_sim/echo"), any(echo::<V>))
        .fallback(unknown_route::<V>)
        .layer(from_fn_with_state(state.clone(), middleware::<V>))
        .with_state(state.clone());
    let server = Server::start(router, settings.port).await?;
    Ok(Simulator {
        base_url: format!("http://{}{path_prefix}", server.addr),
        api_key: settings.api_key,
        server,
        core,
        state,
    })
}

/// A running server: its address, and the means to stop it. Dropping it stops the server.
#[derive(Debug)]
struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = ephemeral) and serves `router` on the current tokio runtime.
    async fn start(router: Router, port: u16) -> Result<Server> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let bind = |source| Error::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // Resolves on an explicit shutdown and when the handle (the sender) is dropped.
                let _ = rx.await;
            };
            // An accept error other than a per-connection one ends the server; nothing to do then.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Server {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops accepting connections, lets in-flight requests finish (for up to 10 s, then aborts
    /// them) and waits for the server task to end.
    async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// What to do with a request, decided before it is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultAction {
    /// Process it.
    Pass,
    /// Answer with this 5xx status.
    Error(StatusCode),
    /// Close the connection without a response.
    Drop,
}

/// Decides faults for requests, from a seeded random source.
#[derive(Debug)]
struct FaultInjector {
    faults: Mutex<Faults>,
    rng: Mutex<fastrand::Rng>,
}

impl FaultInjector {
    fn new(faults: Faults, seed: u64) -> Self {
        FaultInjector {
            faults: Mutex::new(faults),
            rng: Mutex::new(fastrand::Rng::with_seed(seed ^ 0x6661_756c_7473)),
        }
    }

    /// Replaces the faults (takes effect from the next request).
    fn set(&self, faults: Faults) {
        *lock(&self.faults) = faults;
    }

    /// The current faults.
    fn get(&self) -> Faults {
        *lock(&self.faults)
    }

    /// Rolls the dice for one request.
    fn decide(&self) -> FaultAction {
        let faults = self.get();
        if faults.unavailable {
            return FaultAction::Error(StatusCode::SERVICE_UNAVAILABLE);
        }
        if faults.drop_rate <= 0.0 && faults.error_rate <= 0.0 {
            return FaultAction::Pass;
        }
        let mut rng = lock(&self.rng);
        if rng.f64() < faults.drop_rate {
            return FaultAction::Drop;
        }
        if rng.f64() < faults.error_rate {
            let status = match rng.u8(0..3) {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return FaultAction::Error(status);
        }
        FaultAction::Pass
    }

    /// Rolls the dice, after a request was processed, for losing its response.
    fn lose_response(&self) -> bool {
        let rate = self.get().lost_response_rate;
        rate > 0.0 && lock(&self.rng).f64() < rate
    }
}

/// A response whose body fails at once: hyper then closes the connection without writing the
/// response head, so the client sees the connection end with no response at all.
fn dropped_connection() -> Response {
    let failing = futures::stream::iter([Err::<Bytes, std::io::Error>(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "simulated dropped connection",
    ))]);
    Response::new(Body::from_stream(failing))
}

// ---------------------------------------------------------------------------------------------
// Errors and the vendor's envelope
// ---------------------------------------------------------------------------------------------

/// An error answer, before the vendor's envelope is put around it: what every vendor's error
/// type converts into. Handlers return it (through their vendor's error type) as an extension;
/// the middleware renders it with [`Vendor::error_body`] and the request id.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    /// The vendor's error code (`not_found`); unused by vendors whose body has none.
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// Structured details; unused by vendors whose body has none.
    pub(crate) details: Value,
}

impl Failure {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: Value,
    ) -> Self {
        Failure {
            status,
            code,
            message: message.into(),
            details,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// Marks a response whose body is final (so the middleware leaves it alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rendered;

/// The errors the shared plumbing answers by itself; each vendor words them its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canned {
    /// An injected 500.
    FaultInternal,
    /// An injected 502.
    FaultBadGateway,
    /// An injected 503.
    FaultUnavailable,
    /// A 404 axum answered (a path parameter it could not decode).
    NotFound,
    /// A 405: the path exists, the method does not.
    MethodNotAllowed,
    /// A request body over the limit (answered 400).
    TooLarge,
    /// Any other request axum could not read (answered 400).
    BadRequest,
    /// A 5xx axum answered (answered 500).
    Internal,
}

/// A JSON response with the vendor's content type, marked final.
pub(crate) fn json_response(
    status: StatusCode,
    body: &Value,
    content_type: &'static str,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.extensions_mut().insert(Rendered);
    resp
}

fn error_response<V: Vendor>(failure: &Failure, request_id: &str) -> Response {
    json_response(
        failure.status,
        &V::error_body(failure, request_id),
        V::CONTENT_TYPE,
    )
}

/// `<base URL>/_sim/echo`, any method: **a test-only route of the simulators, not part of any
/// vendor's API**, for testing calls the SDK does not model (raw calls). It answers 200 with
/// `{method, path, query: {k: v}, headers: {name: value}, body}` (the request as received;
/// credential headers — `Authorization`, `X-Sepolo-Api-Key`, `Cookie` — left out; `body` the
/// JSON body or `null`), marked with the vendor's content type and, like every route, its
/// request id and rate-limit headers. With `?status=<400..=599>` it answers that status with
/// the vendor's error body instead (code from the status: `invalid_request`, `not_found`,
/// `conflict`, `validation_failed`, `rate_limited`, `internal_error`, `unavailable`, else
/// `error`), so a test sees the vendor's error normalization.
async fn echo<V: Vendor>(
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let status = query
        .iter()
        .find(|(k, _)| k == "status")
        .and_then(|(_, v)| v.parse::<u16>().ok())
        .filter(|s| (400..=599).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok());
    if let Some(status) = status {
        let code = match status.as_u16() {
            400 => "invalid_request",
            404 => "not_found",
            409 => "conflict",
            422 => "validation_failed",
            429 => "rate_limited",
            500 => "internal_error",
            503 => "unavailable",
            _ => "error",
        };
        let message = format!("simulated {} from the echo route", status.as_u16());
        return Failure::new(status, code, message, json!({})).into_response();
    }
    let hidden = ["authorization", "x-sepolo-api-key", "cookie"];
    let echoed: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(n, _)| !hidden.contains(&n.as_str()))
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), Value::from(v.to_str().ok()?))))
        .collect();
    let query: serde_json::Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    json_response(
        StatusCode::OK,
        &json!({
            "method": method.as_str(),
            "path": uri.path(),
            "query": query,
            "headers": echoed,
            "body": body,
        }),
        V::CONTENT_TYPE,
    )
}

async fn unknown_route<V: Vendor>(uri: Uri) -> Failure {
    V::unknown_route(uri.path())
}

/// Gives what axum answered by itself (a method the route lacks, a path parameter or body it
/// could not extract) the vendor's error shape, within the spec's status tables: 404 and 405
/// stay, a 5xx is a 500, every other client error a 400.
fn normalize<V: Vendor>(resp: Response, request_id: &str) -> Response {
    let status = resp.status();
    if resp.extensions().get::<Rendered>().is_some()
        || !(status.is_client_error() || status.is_server_error())
    {
        return resp;
    }
    let (kind, status) = match status {
        StatusCode::NOT_FOUND => (Canned::NotFound, status),
        StatusCode::METHOD_NOT_ALLOWED => (Canned::MethodNotAllowed, status),
        s if s.is_server_error() => (Canned::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        StatusCode::PAYLOAD_TOO_LARGE => (Canned::TooLarge, StatusCode::BAD_REQUEST),
        _ => (Canned::BadRequest, StatusCode::BAD_REQUEST),
    };
    let (code, message) = V::canned(kind);
    let mut out = error_response::<V>(&Failure::new(status, code, message, json!({})), request_id);
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// What an `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bearer<'a> {
    /// No `Authorization` header.
    Missing,
    /// One that is not `Bearer <non-empty token>` (scheme case-insensitive).
    Malformed,
    /// The token.
    Token(&'a str),
}

/// Reads the `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Missing;
    };
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            let token = rest.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        })
        .map_or(Bearer::Malformed, Bearer::Token)
}

// ---------------------------------------------------------------------------------------------
// The vendor, and the middleware that runs every request through it
// ---------------------------------------------------------------------------------------------

/// Rate-limit state of one request, written as response headers.
pub(crate) trait LimitHeaders {
    /// Writes the headers (and `Retry-After` when the request was refused).
    fn apply(&self, headers: &mut HeaderMap);
}

/// What one vendor's simulator adds to the shared plumbing.
pub(crate) trait Vendor: Send + Sync + Sized + 'static {
    /// Who an authenticated request comes from.
    type Caller: Send;
    /// The rate-limit state of one request.
    type Limits: LimitHeaders + Send;
    /// The `Content-Type` of the vendor's JSON bodies.
    const CONTENT_TYPE: &'static str;
    /// The `WWW-Authenticate` of a 401, if the vendor sends one.
    const CHALLENGE: Option<&'static str>;

    /// The shared faults, counters and ids.
    fn core(&self) -> &Core;

    /// The vendor's error body for `failure`.
    fn error_body(failure: &Failure, request_id: &str) -> Value;

    /// The code and message of an error the plumbing answers by itself.
    fn canned(kind: Canned) -> (&'static str, &'static str);

    /// The 404 of a path that is no endpoint.
    fn unknown_route(path: &str) -> Failure;

    /// The 400 of an invalid query parameter (a [`Params`] that did not parse or validate).
    fn param_error(e: ParamError) -> Failure;

    /// Reads and checks the request's credential (before any fault, so that a fault's rate-limit
    /// headers are the caller's).
    fn authenticate(&self, req: &Request) -> std::result::Result<Self::Caller, Failure>;

    /// The rate-limit key of an authenticated caller.
    fn rate_key(caller: &Self::Caller) -> String;

    /// `key`'s limits for `req`, taking nothing (for an injected fault).
    fn peek(&self, key: &str, req: &Request) -> Self::Limits;

    /// Everything between the fault decision and the handler: the refusal of a request without
    /// valid credentials, rate limits and quotas, the vendor's own checks. `Ok` passes the
    /// request (with any extension the handlers need) on; `Err` answers it.
    fn admit(
        &self,
        caller: std::result::Result<Self::Caller, Failure>,
        key: String,
        req: Request,
    ) -> impl Future<Output = std::result::Result<(Request, Self::Limits), (Failure, Self::Limits)>> + Send;

    /// Turns what a handler answered into the final response, where the vendor renders late
    /// (an envelope with the request id); the default leaves it as it is.
    fn render(&self, resp: Response, _request_id: &str, _started: Instant) -> Response {
        resp
    }
}

/// Request id, latency, faults, credentials, limits, rendering, headers, counters.
async fn middleware<V: Vendor>(State(vendor): State<Arc<V>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let core = vendor.core();
    let request_id = request_id(&mut lock(&core.ids));
    core.stat(|s| s.requests += 1);

    let latency = core.faults.get().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let caller = vendor.authenticate(&req);
    let key = caller
        .as_ref()
        .map_or_else(|_| ANONYMOUS.to_owned(), V::rate_key);

    match core.faults.decide() {
        FaultAction::Drop => {
            core.stat(|s| {
                s.faults_injected += 1;
                s.connections_dropped += 1;
            });
            return dropped_connection();
        }
        FaultAction::Error(status) => {
            core.stat(|s| s.faults_injected += 1);
            let kind = match status {
                StatusCode::BAD_GATEWAY => Canned::FaultBadGateway,
                StatusCode::SERVICE_UNAVAILABLE => Canned::FaultUnavailable,
                _ => Canned::FaultInternal,
            };
            let (code, message) = V::canned(kind);
            let failure = Failure::new(status, code, message, json!({ "simulated": true }));
            let limits = vendor.peek(&key, &req);
            let mut resp = error_response::<V>(&failure, &request_id);
            if core.faults.get().unavailable {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return finish::<V>(core, resp, &limits, &request_id);
        }
        FaultAction::Pass => {}
    }

    let (req, limits) = match vendor.admit(caller, key, req).await {
        Ok(admitted) => admitted,
        Err((failure, limits)) => {
            let resp = error_response::<V>(&failure, &request_id);
            return finish::<V>(core, resp, &limits, &request_id);
        }
    };

    let resp = next.run(req).await;
    let failure = match resp.extensions().get::<ParamError>() {
        Some(e) => Some(V::param_error(e.clone())),
        None => resp.extensions().get::<Failure>().cloned(),
    };
    let resp = match failure {
        Some(failure) => error_response::<V>(&failure, &request_id),
        None => normalize::<V>(vendor.render(resp, &request_id, started), &request_id),
    };
    if core.faults.lose_response() {
        core.stat(|s| {
            s.faults_injected += 1;
            s.connections_dropped += 1;
            s.responses_lost += 1;
        });
        return dropped_connection();
    }
    finish::<V>(core, resp, &limits, &request_id)
}

/// Adds `X-Request-Id`, the rate-limit headers and the 401 challenge, and counts the status.
fn finish<V: Vendor>(
    core: &Core,
    mut resp: Response,
    limits: &V::Limits,
    request_id: &str,
) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    limits.apply(resp.headers_mut());
    if let (StatusCode::UNAUTHORIZED, Some(challenge)) = (resp.status(), V::CHALLENGE) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    let status = resp.status().as_u16();
    core.stat(|s| *s.statuses.entry(status).or_insert(0) += 1);
    resp
}
