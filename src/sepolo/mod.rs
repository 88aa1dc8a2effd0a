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

use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::List;
use crate::auth::{ApiKey, Auth};
use crate::call::Call;
use crate::envelope::{Envelope, One, RawPage};
use crate::error::{Error, Result};
pub(crate) use crate::list::stamp;
use crate::list::{Paging, TokenParam};
use crate::rate_limit::{AllCalls, Bucket, RateLimit};
use crate::transport::{Request, Transport, TransportBuilder};

pub mod assets;
pub mod commercial;
pub mod devices;
pub mod incidents;
pub mod me;
pub mod reporting;
pub mod service;

pub use assets::{Asset, AssetFilter, AssetStatusFilter, Assets};
pub use commercial::{Customer, CustomerFilter, InventoryPart, PartFilter, Vendor};
pub use devices::{
    Cycle, Device, DeviceFilter, Devices, Movement, MovementFilter, MovementSignature,
    TelemetryFilter, TelemetrySample,
};
pub use incidents::{Incident, IncidentFilter};
pub use me::{Me, MissingScope, Scope};
pub use reporting::{AssetsSummary, Combine, ServicePerformance, TelemetryDaily, WindowedReport};
pub use service::{
    Appointment, AppointmentFilter, CreatedServiceReport, NewServiceReport, ServiceReport,
    ServiceReportFilter, ServiceVisit,
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

/// Sepolo's description. Its error body is the core's default reading,
/// `{error: "forbidden", message: "…"}` (or `{error}` alone); no 5xx is promised safe to retry;
/// no request id is documented.
impl crate::vendor::Vendor for Sepolo {
    const NAME: &'static str = "sepolo";
    type Wire = Wire;
    const PAGING: &'static Paging = &PAGING;
    type Bucket = AllCalls;
    const BUCKETS: &'static [Bucket<AllCalls>] = BUCKETS;

    fn bucket_for(_: &reqwest::Method, _: &str) -> AllCalls {
        AllCalls
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

/// The Sepolo wire format: a single object comes bare; a page is `{data, nextCursor, hasMore}`.
pub(crate) struct Wire;

impl Envelope for Wire {
    const ONE: One = One::Bare;
    type Page<T: DeserializeOwned + Send + 'static> = ListEnvelope<T>;

    fn open_page<T: DeserializeOwned + Send + 'static>(wire: ListEnvelope<T>) -> RawPage<T> {
        // `hasMore` without a cursor becomes an empty cursor: a protocol error, not a silent end.
        RawPage {
            items: wire.data,
            next_cursor: wire.has_more.then(|| wire.next_cursor.unwrap_or_default()),
            total: None,
            echoed_offset: None,
        }
    }
}

/// How Sepolo pages: `pageSize` (at most [`MAX_PAGE_SIZE`]) and an opaque `cursor`; a time
/// window comes after `pageSize` in the query string.
pub(crate) const PAGING: Paging = Paging {
    page_size_param: "pageSize",
    max_page_size: MAX_PAGE_SIZE,
    token: TokenParam::Cursor("cursor"),
    window_first: false,
};

/// Sepolo's list envelope. `data` and `hasMore` are in every list response of the spec and are
/// required: a `200` of `{}` or `{"message": "maintenance"}` is a decode error naming the missing
/// field, never a silently empty last page. `nextCursor` is `null` on the last page.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListEnvelope<T> {
    data: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
    has_more: bool,
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
        Client::builder().with_env_lookup(&get, "SEPOLO")?.build()
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
        let req = Ok(Request::new(Method::GET, segments!["api", "v1", "me"]));
        Call::new(self.transport.clone(), req, Wire::call)
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
    pub fn incidents(&self) -> List<Incident, IncidentFilter> {
        self.list(&["incidents"], IncidentFilter::default())
            .windowed("fromUtc", "toUtc", None)
    }

    /// Service reports, visits and appointments.
    pub fn service(&self) -> service::Service {
        service::Service::new(self.clone())
    }

    /// `GET /api/v1/customers`.
    pub fn customers(&self) -> List<Customer, CustomerFilter> {
        self.list(&["customers"], CustomerFilter::default())
    }

    /// `GET /api/v1/vendors`.
    pub fn vendors(&self) -> List<Vendor, ()> {
        self.list(&["vendors"], ())
    }

    /// `GET /api/v1/inventory/parts`.
    pub fn inventory_parts(&self) -> List<InventoryPart, PartFilter> {
        self.list(&["inventory", "parts"], PartFilter::default())
    }

    /// Ready-made aggregates: assets summary, service performance, daily telemetry.
    pub fn reporting(&self) -> reporting::Reporting {
        reporting::Reporting::new(self.clone())
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
    /// # async fn demo(client: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
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

    pub(crate) fn get<T: DeserializeOwned + Send + 'static>(&self, segments: &[&str]) -> Call<T> {
        let req = Ok(Request::new(Method::GET, api_path(segments)));
        Call::new(self.transport.clone(), req, Wire::call)
    }

    /// A list of `GET /api/v1/segments?query`, paged the Sepolo way.
    pub(crate) fn list<T, Q>(&self, segments: &[&str], query: Q) -> List<T, Q>
    where
        T: DeserializeOwned + Send + 'static,
        Q: serde::Serialize + Send + Sync + 'static,
    {
        let path = api_path(segments);
        List::new::<Sepolo>(self.transport.clone(), path, query)
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
        let e: ListEnvelope<u32> = serde_json::from_str(r#"{"data":[1],"hasMore":true}"#).unwrap();
        let page = Wire::open_page(e);
        assert_eq!(
            (page.items, page.next_cursor),
            (vec![1], Some(String::new()))
        );
        let e: ListEnvelope<u32> =
            serde_json::from_str(r#"{"data":[],"nextCursor":"x","hasMore":false}"#).unwrap();
        let page = Wire::open_page(e);
        assert_eq!((page.items, page.next_cursor), (vec![], None));
    }
}
