//! The SGT Systems API: devices, telemetry, events and alarms, reports, webhooks, OAuth2.
//!
//! ```no_run
//! # async fn demo() -> iot_sdk::Result<()> {
//! use futures::TryStreamExt;
//! use iot_sdk::sgt::{Client, DeviceStatus};
//!
//! let sgt = Client::builder()
//!     .api_key(std::env::var("SGT_API_KEY").unwrap_or_default())
//!     .tenant("acme-industries")
//!     .user_agent("acme-erp-sync/1.4.2")
//!     .build()?;
//!
//! let device = sgt.devices().get("dev_42").await?;
//! let mut online = sgt.devices().list().status(DeviceStatus::Online).limit(200).items();
//! while let Some(d) = online.try_next().await? {
//!     println!("{} {}", d.id, d.name);
//! }
//! # let _ = device; Ok(()) }
//! ```
//!
//! Every response is the envelope `{data, meta}`; the SDK hands back `data` and keeps the rest in
//! [`crate::ResponseMeta`] (`send_with_meta()`). Lists page with an opaque cursor
//! (`limit` ≤ 500). Retries follow the spec's table: 500 and 502 are documented as safe to retry,
//! so they are retried on every method; 504 and timeouts only on idempotent calls.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{ApiKey, Auth, TokenSource};
use crate::env::env_value;
use crate::envelope::{Envelope, One, RawPage};
use crate::error::{Error, ErrorCode, Result};
use crate::list::{List, Paging, TokenParam};
use crate::rate_limit::{Bucket, BucketKind, RateLimit};
use crate::transport::{Transport, TransportBuilder};
use crate::vendor::{ErrorBody, Vendor, text};

pub mod devices;
pub mod sink;
#[cfg(feature = "store-forward")]
#[cfg_attr(docsrs, doc(cfg(feature = "store-forward")))]
pub mod store;
pub mod telemetry;

pub use devices::{
    CommandReceipt, Device, DeviceCommand, DeviceCount, DeviceFilter, DeviceStatus, DeviceUpdate,
    Devices, NewDevice,
};
pub use sink::{
    DEFAULT_LINGER, DEFAULT_SINK_BATCH, DEFAULT_SINK_CAPACITY, IngestReport, IngestReports,
    IngestSink, IngestSinkBuilder, SinkError, SinkStats,
};
#[cfg(feature = "store-forward")]
pub use store::{DEFAULT_MAX_READINGS, FullPolicy, Queue, QueueOptions};
pub use telemetry::{
    AggregateFn, AggregatePoint, AggregateTelemetry, Export, ExportFormat, Ingest, IngestError,
    IngestProgress, IngestSummary, Interval, Reading, RejectedReading, Telemetry, TelemetryFilter,
};

/// The production base URL.
pub const PRODUCTION_URL: &str = "https://api.sgtsystems.com/v1";
/// The sandbox base URL.
pub const SANDBOX_URL: &str = "https://api.sandbox.sgtsystems.com/v1";
/// The OAuth2 token endpoint.
pub const TOKEN_URL: &str = "https://auth.sgtsystems.com/oauth2/token";
/// The largest `limit` a list accepts.
pub const MAX_PAGE_SIZE: u32 = 500;

/// SGT's rate-limit buckets (see [`BUCKETS`]).
///
/// ```
/// use std::time::Duration;
/// use iot_sdk::Bucket;
/// use iot_sdk::sgt::{Client, RateBucket};
///
/// // A plan with twice the published read rate; other calls are not paced.
/// let builder = Client::builder().pacing_buckets(vec![Bucket::new(
///     RateBucket::Read,
///     1200,
///     Duration::from_secs(60),
///     240,
/// )]);
/// # let _ = builder;
/// ```
///
/// Another vendor's bucket is refused at compile time:
///
/// ```compile_fail
/// use std::time::Duration;
/// let b = iot_sdk::Bucket::new(iot_sdk::AllCalls, 60, Duration::from_secs(60), 60);
/// let builder = iot_sdk::sgt::Client::builder().pacing_buckets(vec![b]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateBucket {
    /// GET and HEAD.
    Read,
    /// POST, PATCH and DELETE, except ingest and report runs.
    Write,
    /// `POST /telemetry/ingest`, one unit per reading.
    Ingest,
    /// `POST /reports`.
    Reports,
}

impl BucketKind for RateBucket {
    fn name(self) -> &'static str {
        match self {
            RateBucket::Read => "read",
            RateBucket::Write => "write",
            RateBucket::Ingest => "ingest",
            RateBucket::Reports => "reports",
        }
    }
}

/// The published rate-limit buckets, for [`ClientBuilder::pacing`]: `read` (GET, HEAD) 600/min
/// burst 120; `write` (POST, PATCH, DELETE) 120/min burst 30; `ingest` 10,000 readings/min burst
/// 2,000 (an ingest request costs one unit per reading); `reports` 30/hour burst 5.
pub const BUCKETS: &[Bucket<RateBucket>] = &[
    Bucket::new(RateBucket::Read, 600, Duration::from_secs(60), 120),
    Bucket::new(RateBucket::Write, 120, Duration::from_secs(60), 30),
    Bucket::new(RateBucket::Ingest, 10_000, Duration::from_secs(60), 2_000),
    Bucket::new(RateBucket::Reports, 30, Duration::from_secs(3600), 5),
];

/// SGT Systems, as the core sees it.
pub(crate) struct Sgt;

impl Vendor for Sgt {
    type Wire = Wire;
    const PAGING: &'static Paging = &PAGING;
    type Bucket = RateBucket;
    const NAME: &'static str = "sgt";
    // The spec's table: 500 "safe to retry with backoff", 502 "retry with backoff".
    const SAFE_STATUSES: &'static [u16] = &[500, 502];
    const BUCKETS: &'static [Bucket<RateBucket>] = BUCKETS;
    // Every envelope carries `meta.request_id`; an error body `error.request_id`.
    const REQUEST_ID_POINTERS: &'static [&'static str] = &["/meta/request_id", "/error/request_id"];

    fn bucket_for(method: &Method, path: &str) -> RateBucket {
        let path = path.trim_end_matches('/');
        if *method == Method::GET || *method == Method::HEAD {
            RateBucket::Read
        } else if path.ends_with("/telemetry/ingest") {
            RateBucket::Ingest
        } else if *method == Method::POST && path.ends_with("/reports") {
            RateBucket::Reports
        } else {
            RateBucket::Write
        }
    }

    /// `{error: {code, message, details, request_id}}`.
    fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
        let e = body.get("error")?.as_object()?;
        Some(ErrorBody {
            code: text(e.get("code")),
            message: text(e.get("message")),
            details: e.get("details").filter(|d| !d.is_null()).cloned(),
            request_id: text(e.get("request_id")),
        })
    }

    /// `device_not_found` is a not-found.
    fn error_code(code: &str) -> ErrorCode {
        match code.trim() {
            "device_not_found" => ErrorCode::NotFound,
            other => ErrorCode::parse(other),
        }
    }
}

id_type!(
    /// A device id (`dev_42`).
    DeviceId,
    "dev_"
);
id_type!(
    /// A site or location id (`site_dhaka_wh1`).
    SiteId,
    "site_"
);
id_type!(
    /// An alarm instance id (`alm_01HW3K9F2X`).
    AlarmId,
    "alm_"
);
id_type!(
    /// An event id (`evt_01HW3K9F2X`).
    EventId,
    "evt_"
);
id_type!(
    /// A report run id (`rpt_01HW3K9F2X`).
    ReportId,
    "rpt_"
);
id_type!(
    /// A webhook endpoint id (`wh_01HW3K9F2X`).
    WebhookId,
    "wh_"
);
id_type!(
    /// A request id (`req_01HW3K9F2X`), as in `X-Request-Id`.
    RequestId,
    "req_"
);

// Events, reports, webhooks and OAuth2.
pub mod events;
pub mod oauth;
pub mod reports;
pub mod webhooks;

pub use events::{Event, EventComment, EventFilter, Events, Severity};
pub use oauth::{OAuthClient, OAuthConfig, OAuthSession, PkcePair, TokenSet};
pub use reports::{
    CreateReport, NewReport, Report, ReportRun, ReportStatus, Reports, WaitForReport,
};
pub use webhooks::{
    CreatedWebhook, NewWebhook, UpdatedWebhook, Webhook, WebhookSecret, WebhookTestResult,
    WebhookUpdate, Webhooks,
};

/// A signed, short-lived download URL (exports, reports). It grants access by itself, so its
/// `Debug` leaves out the query string that carries the signature; [`SignedUrl::expose`] gives
/// the whole URL to hand to a downloader.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SignedUrl(String);

impl SignedUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        SignedUrl(url.into())
    }

    /// The whole URL, signature included.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without its query string (safe to log).
    pub fn without_signature(&self) -> &str {
        self.0.split(['?', '#']).next().unwrap_or_default()
    }
}

impl std::fmt::Debug for SignedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.len() > self.without_signature().len() {
            write!(f, "SignedUrl({}?[REDACTED])", self.without_signature())
        } else {
            write!(f, "SignedUrl({})", self.0)
        }
    }
}

/// The SGT wire format: one object is `{data, meta}` (`data` required; the metadata the SDK
/// reads comes from the headers); a page is `{data: [...], meta: {pagination: {next,
/// has_more}}}`.
pub(crate) struct Wire;

impl Envelope for Wire {
    const ONE: One = One::Data;
    type Page<T: DeserializeOwned + Send + 'static> = ListEnvelope<T>;

    fn open_page<T: DeserializeOwned + Send + 'static>(wire: ListEnvelope<T>) -> RawPage<T> {
        // `has_more` without `next` becomes an empty cursor, which the pager reports as a
        // protocol error rather than silently ending the list.
        let p = wire.meta.pagination;
        RawPage {
            items: wire.data,
            next_cursor: p.has_more.then(|| p.next.unwrap_or_default()),
            total: None,
            echoed_offset: None,
        }
    }
}

/// How SGT pages: `limit` (at most [`MAX_PAGE_SIZE`]) and an opaque `cursor`; a time window
/// comes before `limit` in the query string.
pub(crate) const PAGING: Paging = Paging {
    page_size_param: "limit",
    max_page_size: MAX_PAGE_SIZE,
    token: TokenParam::Cursor("cursor"),
    window_first: true,
};

/// The SGT list envelope. The spec says every list response carries `meta.pagination`, so
/// `data`, `meta`, `pagination` and `has_more` are required: a `200` without them is a decode
/// error naming the missing field, never a silently empty last page.
#[derive(serde::Deserialize)]
pub(crate) struct ListEnvelope<T> {
    data: Vec<T>,
    meta: ListMeta,
}

#[derive(serde::Deserialize)]
struct ListMeta {
    pagination: Pagination,
}

#[derive(serde::Deserialize)]
struct Pagination {
    #[serde(default)]
    next: Option<String>,
    has_more: bool,
}

/// An SGT client. Cheap to clone: clones share the connection pool, retry budget and
/// rate-limit state.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) transport: Transport,
}

impl Client {
    /// A builder: set a key (or token source), then `build()`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            inner: TransportBuilder::new::<Sgt>(PRODUCTION_URL),
            tenant: None,
        }
    }

    /// A production client with an API key and default settings.
    pub fn new(api_key: impl Into<ApiKey>) -> Result<Self> {
        Client::builder().api_key(api_key).build()
    }

    /// A client from the environment: `SGT_API_KEY` (required), `SGT_TENANT` and `SGT_BASE_URL`
    /// (optional).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// A builder preset from the environment (as [`Client::from_env`]), to add settings such as
    /// pacing or a retry policy before building.
    pub fn from_env_builder() -> Result<ClientBuilder> {
        Self::builder_from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Self::builder_from_lookup(get)?.build()
    }

    fn builder_from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ClientBuilder> {
        let b = Client::builder().with_env_lookup(&get, "SGT")?;
        Ok(match env_value(&get, "SGT_TENANT") {
            Some(tenant) => b.tenant(tenant),
            None => b,
        })
    }

    /// Devices: list, register, read, update, delete, commands, count.
    pub fn devices(&self) -> Devices {
        Devices::new(self.clone())
    }

    /// Telemetry: query, ingest, aggregate, export.
    pub fn telemetry(&self) -> Telemetry {
        Telemetry::new(self.clone())
    }

    /// The rate-limit state of the latest response that carried rate-limit headers.
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.transport.last_rate_limit()
    }

    /// Raw calls: an endpoint this SDK does not model yet, with the client's base URL,
    /// credentials, retries, pacing, error normalization and everything else of a modelled
    /// call (see [`crate::raw`]).
    ///
    /// ```no_run
    /// # async fn demo(client: iot_sdk::sgt::Client) -> iot_sdk::Result<()> {
    /// let body: serde_json::Value = client.raw().get(["devices"]).query_pair("limit", "5").decode().await?;
    /// # let _ = body; Ok(()) }
    /// ```
    pub fn raw(&self) -> crate::raw::Raw {
        crate::raw::Raw::new(self.transport.clone())
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &url::Url {
        self.transport.base_url()
    }

    /// Events and alarms: list, acknowledge, clear, comment.
    pub fn events(&self) -> Events {
        Events::new(self.clone())
    }

    /// Report runs: create (202), read, list, and wait until ready.
    pub fn reports(&self) -> Reports {
        Reports::new(self.clone())
    }

    /// Webhook subscriptions: list, register, update, delete, test.
    pub fn webhooks(&self) -> Webhooks {
        Webhooks::new(self.clone())
    }

    /// A list of `GET segments?query`, paged the SGT way.
    pub(crate) fn list<T, Q>(&self, segments: &[&str], query: Q) -> List<T, Q>
    where
        T: DeserializeOwned + Send + 'static,
        Q: Serialize + Send + Sync + 'static,
    {
        let segments = segments.iter().map(|s| (*s).to_owned()).collect();
        List::new::<Sgt>(self.transport.clone(), segments, query)
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    inner: TransportBuilder,
    tenant: Option<String>,
}

impl ClientBuilder {
    /// Authenticates with an API key, sent as `Authorization: Bearer <key>`.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.inner.auth(Auth::bearer(key));
        self
    }

    /// Authenticates with tokens from `source` (an OAuth2 session), refreshed once on a 401.
    #[must_use]
    pub fn token_source(mut self, source: Arc<dyn TokenSource>) -> Self {
        self.inner.auth(Auth::token_source(source));
        self
    }

    /// Authenticates with an OAuth2 session (see [`oauth`]): its access token, refreshed before
    /// it expires and once on a 401. The same as `token_source(session)`.
    ///
    /// ```no_run
    /// # fn demo(session: std::sync::Arc<iot_sdk::sgt::OAuthSession>) -> iot_sdk::Result<()> {
    /// let sgt = iot_sdk::sgt::Client::builder().oauth(session).build()?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn oauth(self, session: Arc<OAuthSession>) -> Self {
        self.token_source(session)
    }

    /// Sends `X-SGT-Tenant` on every request: required for multi-tenant keys; for a
    /// single-tenant key it must match the key's tenant or every call is refused with 403.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Uses the sandbox ([`SANDBOX_URL`]).
    #[must_use]
    pub fn sandbox(self) -> Self {
        self.base_url(SANDBOX_URL)
    }

    common_builder_methods!(RateBucket);

    /// Builds the client. Fails with [`Error::Config`] without a key, with a bad base URL or
    /// tenant, or when the HTTP client cannot be built.
    pub fn build(mut self) -> Result<Client> {
        if let Some(t) = self.tenant.take() {
            if t.trim().is_empty() {
                return Err(Error::config("the tenant is empty"));
            }
            self.inner.header("X-SGT-Tenant", t);
        }
        Ok(Client {
            transport: self.inner.build()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_for(method: &Method, path: &str) -> &'static str {
        Sgt::bucket_for(method, path).name()
    }

    #[test]
    fn buckets_by_method_and_path() {
        assert_eq!(bucket_for(&Method::GET, "/v1/devices"), "read");
        assert_eq!(bucket_for(&Method::HEAD, "/v1/devices"), "read");
        assert_eq!(bucket_for(&Method::POST, "/v1/devices"), "write");
        assert_eq!(bucket_for(&Method::PATCH, "/v1/devices/dev_1"), "write");
        assert_eq!(bucket_for(&Method::DELETE, "/v1/webhooks/wh_1"), "write");
        assert_eq!(bucket_for(&Method::POST, "/v1/telemetry/ingest"), "ingest");
        assert_eq!(bucket_for(&Method::POST, "/v1/reports"), "reports");
        assert_eq!(bucket_for(&Method::GET, "/v1/reports"), "read");
    }

    /// SGT's description reads its own error body, keeps `device_not_found` as sent while
    /// treating it as a not-found, and finds the request id in `meta` or `error`.
    #[test]
    fn the_description_reads_sgt_error_bodies() {
        let body = serde_json::json!({"error": {"code": "device_not_found", "message": "m",
            "details": {"device_id": "dev_42"}, "request_id": "req_1"}});
        let parsed = Sgt::error_body(body.as_object().unwrap()).unwrap();
        assert_eq!(parsed.code.as_deref(), Some("device_not_found"));
        assert_eq!(parsed.message.as_deref(), Some("m"));
        assert_eq!(parsed.request_id.as_deref(), Some("req_1"));
        assert_eq!(
            parsed.details,
            Some(serde_json::json!({"device_id": "dev_42"}))
        );
        assert_eq!(Sgt::error_code("device_not_found"), ErrorCode::NotFound);
        assert_eq!(Sgt::error_code("conflict"), ErrorCode::Conflict);
        // Sepolo's flat shape is not SGT's.
        let flat = serde_json::json!({"error": "forbidden", "message": "m"});
        assert_eq!(Sgt::error_body(flat.as_object().unwrap()), None);
        assert_eq!(
            Sgt::REQUEST_ID_POINTERS,
            ["/meta/request_id", "/error/request_id"]
        );
    }

    #[test]
    fn from_env_needs_a_key_and_reads_the_rest() {
        let err = Client::from_lookup(|_| None).unwrap_err();
        assert!(
            matches!(err, Error::Config(ref m) if m.contains("SGT_API_KEY")),
            "{err}"
        );
        let c = Client::from_lookup(|n| match n {
            "SGT_API_KEY" => Some("k".into()),
            "SGT_TENANT" => Some("acme".into()),
            "SGT_BASE_URL" => Some("http://127.0.0.1:9/v1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9/v1");
        let c = Client::from_lookup(|n| (n == "SGT_API_KEY").then(|| "k".into())).unwrap();
        assert_eq!(c.base_url().as_str(), PRODUCTION_URL);
    }

    #[test]
    fn limits() {
        assert!(PAGING.check(None).is_ok());
        assert!(PAGING.check(Some(500)).is_ok());
        assert!(matches!(
            PAGING.check(Some(501)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(PAGING.check(Some(0)), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn sandbox_and_bad_tenant() {
        let c = Client::builder().api_key("k").sandbox().build().unwrap();
        assert_eq!(c.base_url().as_str(), SANDBOX_URL);
        let e = Client::builder().api_key("k").tenant("bad\ntenant").build();
        assert!(matches!(e, Err(Error::Config(_))));
        let e = Client::builder().api_key("k").tenant(" ").build();
        assert!(matches!(e, Err(Error::Config(_))));
    }
}
