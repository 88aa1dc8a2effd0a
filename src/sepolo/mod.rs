//! The Sepolo API: organization-scoped assets, devices, telemetry and PointGuard cycles,
//! movements, incidents, service reports, visits and appointments, customers, vendors, parts
//! and reporting.
//!
//! ```no_run
//! # async fn demo() -> iot_sdk::Result<()> {
//! use futures::TryStreamExt;
//! use iot_sdk::sepolo::{Client, Scope};
//!
//! let sepolo = Client::from_env()?; // SEPOLO_API_KEY, optional SEPOLO_BASE_URL
//! let me = sepolo.require_scopes(&[Scope::AssetsRead, Scope::TelemetryRead]).await?;
//! println!("organization {}", me.organization_id);
//! let assets: Vec<_> = sepolo.assets().list().page_size(500).items().try_collect().await?;
//! # Ok(()) }
//! ```
//!
//! Single objects come back bare, lists as `{data, nextCursor, hasMore}` (paged with `pageSize`
//! ≤ 500 and `cursor`), and `reporting/telemetry-daily` as a bare array. Time windows are
//! capped per endpoint (31 days for telemetry and cycles, 366 for visits, appointments and
//! reports); longer ranges are split and streamed as one ordered sequence.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::future::BoxFuture;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::auth::{ApiKey, Auth};
use crate::call::{Call, CallOptions};
use crate::env::{env_required, env_value};
use crate::error::{Error, Result};
use crate::paging::{CursorEnvelope, ItemStream, Page, PageStream, cursor_pages};
use crate::rate_limit::{AllCalls, Bucket, RateLimit};
use crate::transport::{Request, ResponseMeta, Transport, TransportBuilder};
use crate::vendor::ErrorBody;
use crate::window::{check_range, windows};

pub mod assets;
pub mod commercial;
pub mod devices;
pub mod incidents;
pub mod me;
pub mod reporting;
pub mod service;

pub use assets::{Asset, AssetStatusFilter, Assets};
pub use commercial::{Customer, InventoryPart, Vendor};
pub use devices::{Cycle, Device, Devices, Movement, MovementSignature, TelemetrySample};
pub use incidents::Incident;
pub use me::{Me, MissingScope, Scope};
pub use reporting::{AssetsSummary, Combine, ServicePerformance, TelemetryDaily, WindowedReport};
pub use service::{
    Appointment, CreatedServiceReport, NewServiceReport, ServiceReport, ServiceVisit,
};

/// The production base URL.
pub const PRODUCTION_URL: &str = "https://api.sepolo.app";
/// The largest `pageSize` a list accepts.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The header the organization key is sent in by default.
pub const API_KEY_HEADER: &str = "X-Sepolo-Api-Key";

/// Sepolo publishes no rate limits (`/me` reports `requestsPerMinute: null`): [`ClientBuilder::pacing`]
/// paces nothing until [`ClientBuilder::pacing_buckets`] is given your organization's numbers.
pub const BUCKETS: &[Bucket<AllCalls>] = &[];

/// Sepolo, as the core sees it.
pub(crate) struct Sepolo;

impl crate::vendor::Vendor for Sepolo {
    type Bucket = AllCalls;
    const NAME: &'static str = "sepolo";
    const SAFE_STATUSES: &'static [u16] = &[];
    const BUCKETS: &'static [Bucket<AllCalls>] = BUCKETS;
    const REQUEST_ID_POINTERS: &'static [&'static str] = &["/requestId", "/request_id"];

    fn bucket_for(_: &reqwest::Method, _: &str) -> AllCalls {
        AllCalls
    }

    /// `{error: "forbidden", message: "…"}`, or `{error}` alone.
    fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
        ErrorBody::flat(body, &["message"])
    }
}

id_type!(
    /// An asset id (a UUID).
    AssetId,
    ""
);
id_type!(
    /// A device id (`SEP-DEVICE-001`).
    DeviceId,
    ""
);
id_type!(
    /// A PointGuard cycle id (`cyc_20260527_120000`).
    CycleId,
    "cyc_"
);
id_type!(
    /// A movement id (a UUID).
    MovementId,
    ""
);
id_type!(
    /// A service report id (a UUID).
    ServiceReportId,
    ""
);
id_type!(
    /// A user id (a UUID).
    UserId,
    ""
);
id_type!(
    /// A vendor id (a UUID).
    VendorId,
    ""
);

/// Sepolo's list envelope: `{data, nextCursor, hasMore}`. `data` and `hasMore` are in every
/// list response of the spec and are required: a `200` of `{}` or `{"message": "maintenance"}` is
/// a decode error naming the missing field, never a silently empty last page. `nextCursor` is
/// `null` on the last page.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<T> {
    data: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
    has_more: bool,
}

impl<T: DeserializeOwned + Send + 'static> CursorEnvelope<T> for Envelope<T> {
    fn into_page(self) -> (Vec<T>, Option<String>) {
        // `hasMore` without a cursor becomes an empty cursor: a protocol error, not a silent end.
        let next = self.has_more.then(|| self.next_cursor.unwrap_or_default());
        (self.data, next)
    }
}

/// Sends `req` and decodes the bare body.
pub(crate) fn bare<T: DeserializeOwned + Send + 'static>(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
    Box::pin(async move { t.send_json::<T>(req).await })
}

pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A Sepolo client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) transport: Transport,
}

impl Client {
    /// A builder: set a key, then `build()`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            inner: TransportBuilder::new::<Sepolo>(PRODUCTION_URL),
            key: None,
            bearer: false,
        }
    }

    /// A production client with the organization key in `X-Sepolo-Api-Key`.
    pub fn new(api_key: impl Into<ApiKey>) -> Result<Self> {
        Client::builder().api_key(api_key).build()
    }

    /// A client from `SEPOLO_API_KEY` (required) and `SEPOLO_BASE_URL` (optional).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut b = Client::builder().api_key(env_required(&get, "SEPOLO_API_KEY")?);
        if let Some(u) = env_value(&get, "SEPOLO_BASE_URL") {
            b = b.base_url(u);
        }
        b.build()
    }

    /// `GET /api/v1/me`: who the key is, its organization, scopes and data boundaries.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let me = sepolo.me().await?;
    /// println!("{} ({}): {:?}", me.client_name.unwrap_or_default(), me.organization_id, me.scopes);
    /// # Ok(()) }
    /// ```
    pub fn me(&self) -> Call<Me> {
        let req = Ok(Request::new(Method::GET, ["api", "v1", "me"]));
        Call::new(self.transport.clone(), req, bare)
    }

    /// Reads `me()` and fails with [`Error::Config`] naming every scope in `needed` that the key
    /// lacks, so a job can check its key before doing any work.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sepolo::Scope;
    /// sepolo.require_scopes(&[Scope::ServiceVisitsRead, Scope::ReportingRead]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn require_scopes(&self, needed: &[Scope]) -> Result<Me> {
        let me = self.me().await?;
        let missing = me.missing_scopes(needed);
        if missing.is_empty() {
            Ok(me)
        } else {
            let names: Vec<&str> = missing.iter().map(Scope::as_str).collect();
            Err(Error::config(format!(
                "the Sepolo API key lacks the scopes: {}",
                names.join(", ")
            )))
        }
    }

    /// Assets, their children and the assets summary.
    pub fn assets(&self) -> Assets {
        Assets::new(self.clone())
    }

    /// Devices, their telemetry, PointGuard cycles and movements.
    pub fn devices(&self) -> Devices {
        Devices::new(self.clone())
    }

    /// `GET /api/v1/incidents`.
    pub fn incidents(&self) -> List<Incident, incidents::IncidentsList> {
        List::new(self, &["incidents"]).time_filter("fromUtc", "toUtc", None)
    }

    /// Service reports, visits and appointments.
    pub fn service(&self) -> service::Service {
        service::Service::new(self.clone())
    }

    /// `GET /api/v1/customers`.
    pub fn customers(&self) -> List<Customer, commercial::CustomersList> {
        List::new(self, &["customers"])
    }

    /// `GET /api/v1/vendors`.
    pub fn vendors(&self) -> List<Vendor, commercial::VendorsList> {
        List::new(self, &["vendors"])
    }

    /// `GET /api/v1/inventory/parts`.
    pub fn inventory_parts(&self) -> List<InventoryPart, commercial::PartsList> {
        List::new(self, &["inventory", "parts"])
    }

    /// Ready-made aggregates: assets summary, service performance, daily telemetry.
    pub fn reporting(&self) -> reporting::Reporting {
        reporting::Reporting::new(self.clone())
    }

    /// The rate-limit state of the latest response that carried rate-limit headers.
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.transport.last_rate_limit()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &url::Url {
        self.transport.base_url()
    }

    pub(crate) fn get<T: DeserializeOwned + Send + 'static>(&self, segments: &[&str]) -> Call<T> {
        let req = Ok(Request::new(Method::GET, api_path(segments)));
        Call::new(self.transport.clone(), req, bare)
    }
}

/// `["api", "v1", …segments]`.
pub(crate) fn api_path(segments: &[&str]) -> Vec<String> {
    ["api", "v1"]
        .iter()
        .chain(segments)
        .map(|s| (*s).to_owned())
        .collect()
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    inner: TransportBuilder,
    key: Option<ApiKey>,
    bearer: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("inner", &self.inner)
            .field("key", &self.key)
            .field("bearer", &self.bearer)
            .finish()
    }
}

impl ClientBuilder {
    /// The organization API key (`sep_live_…`), sent as `X-Sepolo-Api-Key` unless
    /// [`Self::send_key_as_bearer`] is set.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends the key as `Authorization: Bearer <key>` instead of `X-Sepolo-Api-Key` (both are
    /// accepted by the API).
    #[must_use]
    pub fn send_key_as_bearer(mut self, bearer: bool) -> Self {
        self.bearer = bearer;
        self
    }

    common_builder_methods!(AllCalls);

    /// Builds the client.
    pub fn build(mut self) -> Result<Client> {
        let key = self.key.take().ok_or_else(|| {
            Error::config("no credentials: set the Sepolo API key on the builder")
        })?;
        let auth = if self.bearer {
            Auth::bearer(key)
        } else {
            Auth::header(API_KEY_HEADER, key)?
        };
        self.inner.auth(auth);
        Ok(Client {
            transport: self.inner.build()?,
        })
    }
}

/// The time filter of a list: parameter names, the range, and the longest window per request.
#[derive(Debug, Clone)]
struct WindowSpec {
    from_name: &'static str,
    to_name: &'static str,
    max: Option<TimeDelta>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A Sepolo list: `.send()` for one page, `.pages()` or `.items()` to stream every page. The
/// marker `K` says which list it is, and so which filters it offers.
#[must_use = "a list does nothing until sent or streamed"]
pub struct List<T, K> {
    client: Client,
    segments: Vec<String>,
    params: Vec<(&'static str, String)>,
    window: Option<WindowSpec>,
    page_size: Option<u32>,
    cursor: Option<String>,
    opts: CallOptions,
    _marker: PhantomData<fn() -> (T, K)>,
}

impl<T, K> fmt::Debug for List<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("path", &self.segments.join("/"))
            .field("params", &self.params)
            .field("window", &self.window)
            .field("page_size", &self.page_size)
            .finish_non_exhaustive()
    }
}

impl<T, K> Clone for List<T, K> {
    fn clone(&self) -> Self {
        List {
            client: self.client.clone(),
            segments: self.segments.clone(),
            params: self.params.clone(),
            window: self.window.clone(),
            page_size: self.page_size,
            cursor: self.cursor.clone(),
            opts: self.opts.clone(),
            _marker: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + Send + 'static, K> List<T, K> {
    pub(crate) fn new(client: &Client, segments: &[&str]) -> Self {
        List {
            client: client.clone(),
            segments: api_path(segments),
            params: Vec::new(),
            window: None,
            page_size: None,
            cursor: None,
            opts: CallOptions::default(),
            _marker: PhantomData,
        }
    }

    /// Declares the list's time filter: its parameter names and window cap.
    pub(crate) fn time_filter(
        mut self,
        from: &'static str,
        to: &'static str,
        max: Option<TimeDelta>,
    ) -> Self {
        self.window = Some(WindowSpec {
            from_name: from,
            to_name: to,
            max,
            range: None,
        });
        self
    }

    /// Sets the time range (for lists whose range is optional, or required and given up front).
    pub(crate) fn range(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        if let Some(w) = &mut self.window {
            w.range = Some((from, to));
        }
        self
    }

    pub(crate) fn param(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        self.params.retain(|(n, _)| *n != name);
        self.params.push((name, value.to_string()));
        self
    }

    /// Items per page, 1 to 500 (over is an `InvalidInput` error, never a silent clamp).
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Starts at a cursor from an earlier page (with a split range: the first window's).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    call_options!();

    /// The first page.
    pub async fn send(self) -> Result<Page<T>> {
        self.pages().first().await
    }

    /// Every page, in order; a range longer than the endpoint allows is fetched window by window.
    pub fn pages(self) -> PageStream<T> {
        match self.page_size {
            Some(0) => {
                return PageStream::failed(Error::invalid_input("pageSize must be at least 1"));
            }
            Some(n) if n > MAX_PAGE_SIZE => {
                return PageStream::failed(Error::invalid_input(format!(
                    "pageSize {n} is over the maximum of {MAX_PAGE_SIZE}"
                )));
            }
            _ => {}
        }
        let mut base = self.params;
        if let Some(n) = self.page_size {
            base.push(("pageSize", n.to_string()));
        }
        let (client, segments, opts) = (self.client, self.segments, self.opts);
        let stream = move |params: Vec<(&'static str, String)>, cursor: Option<String>| {
            cursor_pages::<T, Envelope<T>, _>(
                client.transport.clone(),
                segments.clone(),
                params,
                "cursor",
                cursor,
                opts.clone(),
            )
        };
        match self.window {
            Some(WindowSpec {
                from_name,
                to_name,
                max,
                range: Some((from, to)),
            }) => {
                if let Err(e) = check_range(from, to) {
                    return PageStream::failed(e);
                }
                let max = max.unwrap_or(TimeDelta::MAX);
                let mut first_cursor = self.cursor;
                PageStream::chain(windows(from, to, max).map(move |(from, to)| {
                    let mut params = base.clone();
                    params.push((from_name, stamp(from)));
                    params.push((to_name, stamp(to)));
                    stream(params, first_cursor.take())
                }))
            }
            _ => stream(base, self.cursor),
        }
    }

    /// Every item, in order.
    pub fn items(self) -> ItemStream<T> {
        self.pages().items()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_env_and_key_placement() {
        assert!(matches!(
            Client::from_lookup(|_| None),
            Err(Error::Config(_))
        ));
        let c = Client::from_lookup(|n| match n {
            "SEPOLO_API_KEY" => Some("sep_live_x".into()),
            "SEPOLO_BASE_URL" => Some("http://127.0.0.1:1".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:1/");
        assert!(format!("{c:?}").contains("x-sepolo-api-key: [REDACTED]"));
        let c = Client::builder()
            .api_key("k")
            .send_key_as_bearer(true)
            .build()
            .unwrap();
        assert!(format!("{c:?}").contains("Auth::Bearer([REDACTED])"));
        assert!(matches!(Client::builder().build(), Err(Error::Config(_))));
    }

    #[test]
    fn envelope_has_more_without_cursor_is_an_empty_cursor() {
        let e: Envelope<u32> = serde_json::from_str(r#"{"data":[1],"hasMore":true}"#).unwrap();
        assert_eq!(e.into_page(), (vec![1], Some(String::new())));
        let e: Envelope<u32> =
            serde_json::from_str(r#"{"data":[],"nextCursor":"x","hasMore":false}"#).unwrap();
        assert_eq!(e.into_page(), (vec![], None));
    }
}
