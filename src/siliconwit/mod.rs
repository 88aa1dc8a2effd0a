//! The SiliconWit API: devices, telemetry, alerts and account data (read-only).
//!
//! ```no_run
//! # async fn demo() -> iot_sdk::Result<()> {
//! use futures::TryStreamExt;
//! use iot_sdk::siliconwit::{Client, DeviceStatus, TelemetryRange};
//!
//! let sw = Client::from_env()?; // SILICONWIT_API_KEY, optional SILICONWIT_BASE_URL
//! let active: Vec<_> = sw.devices().list().status(DeviceStatus::Active).items().try_collect().await?;
//! for d in &active {
//!     let history = sw.devices().telemetry(&d.id).range(TelemetryRange::Days7).send().await?;
//!     if history.was_capped() {
//!         println!("{}: the plan's retention capped the range to {:?}", d.id, history.query.range);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Single objects come as `{data}`, lists as `{data, pagination{total, limit, offset}}` paged by
//! offset (`limit` ≤ 100), historical telemetry as `{data, query}`. Errors are `{error: "text"}`;
//! responses carry per-minute and daily rate-limit headers.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::List;
use crate::auth::{ApiKey, Auth};
use crate::call::Call;
use crate::envelope::{Envelope, One, RawPage};
use crate::error::Result;
use crate::list::{Paging, TokenParam};
use crate::rate_limit::{AllCalls, Bucket, RateLimit};
use crate::transport::{Request, Segment, Transport, TransportBuilder};
use crate::vendor::Vendor;

pub mod account;
pub mod alerts;
pub mod devices;

pub use account::{AccountUsage, ApiKeyInfo};
pub use alerts::{Alert, AlertCondition, AlertEvent, AlertValue, Alerts, Operator, Severity};
pub use devices::{
    Device, DeviceFilter, DeviceStatus, Devices, EffectiveQuery, Metrics, Reading,
    TelemetryHistory, TelemetryRange,
};

/// The production base URL.
pub const PRODUCTION_URL: &str = "https://api.siliconwit.io/v1";
/// The largest `limit` of the device and alert lists and of alert history.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Pages fetched at once by [`List::concurrent`] unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// The Starter plan's per-minute limit, the default for [`ClientBuilder::pacing`]; use
/// [`plan_bucket`] with your plan's number (Business 300, Scale 600).
pub const BUCKETS: &[Bucket<AllCalls>] = &[plan_bucket(60)];

/// A pacing bucket for a plan's per-minute limit, for [`ClientBuilder::pacing_buckets`].
pub const fn plan_bucket(per_minute: u32) -> Bucket<AllCalls> {
    Bucket::new(AllCalls, per_minute, Duration::from_secs(60), per_minute)
}

/// SiliconWit, as the core sees it.
pub(crate) struct SiliconWit;

/// SiliconWit's description. Its error body is the core's default reading, here
/// `{error: "Device not found"}`, a sentence with no code; the request id comes in
/// `X-Request-Id`.
impl Vendor for SiliconWit {
    type Bucket = AllCalls;
    const BUCKETS: &'static [Bucket<AllCalls>] = BUCKETS;
    const NAME: &'static str = "siliconwit";
    const PAGING: &'static Paging = &PAGING;
    type Wire = Wire;

    fn bucket_for(_: &reqwest::Method, _: &str) -> AllCalls {
        AllCalls
    }
}

id_type!(
    /// A device id (`dev_a1b2c3d4`).
    DeviceId,
    "dev_"
);
id_type!(
    /// An alert id (`alert_abc123`).
    AlertId,
    "alert_"
);

/// The SiliconWit wire format: one object is `{data}`; a page is `{data, pagination{total,
/// limit, offset}}`.
pub(crate) struct Wire;

impl Envelope for Wire {
    const ONE: One = One::Data;
    type Page<T: DeserializeOwned + Send + 'static> = OffsetEnvelope<T>;

    fn open_page<T: DeserializeOwned + Send + 'static>(wire: OffsetEnvelope<T>) -> RawPage<T> {
        RawPage {
            items: wire.data,
            next_cursor: None,
            total: Some(wire.pagination.total),
            echoed_offset: wire.pagination.offset,
        }
    }
}

/// How SiliconWit pages: `limit` (at most [`MAX_PAGE_SIZE`]) and an `offset`.
pub(crate) const PAGING: Paging = Paging {
    page_size_param: "limit",
    max_page_size: MAX_PAGE_SIZE,
    token: TokenParam::Offset("offset"),
    window_first: false,
};

/// A SiliconWit client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) transport: Transport,
}

impl Client {
    /// A builder: set a key, then `build()`.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            inner: TransportBuilder::new::<SiliconWit>(PRODUCTION_URL),
        }
    }

    /// A production client with a `swk_…` key.
    pub fn new(api_key: impl Into<ApiKey>) -> Result<Self> {
        Client::builder().api_key(api_key).build()
    }

    /// A client from `SILICONWIT_API_KEY` (required) and `SILICONWIT_BASE_URL` (optional).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        Client::builder()
            .with_env_lookup(&get, "SILICONWIT")?
            .build()
    }

    /// Devices and their telemetry.
    pub fn devices(&self) -> Devices {
        Devices::new(self.clone())
    }

    /// Alerts and their trigger history.
    pub fn alerts(&self) -> Alerts {
        Alerts::new(self.clone())
    }

    /// `GET /v1/account/usage`: plan, device counts, telemetry volume, alerts.
    ///
    /// ```no_run
    /// # async fn demo(sw: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
    /// let usage = sw.usage().await?;
    /// println!("{} plan, {} of {} devices", usage.plan.plan, usage.devices.total, usage.devices.limit);
    /// # Ok(()) }
    /// ```
    pub fn usage(&self) -> Call<AccountUsage> {
        self.get(segments!["account", "usage"])
    }

    /// `GET /v1/account/keys`: metadata of the account's API keys (never the keys).
    pub fn api_keys(&self) -> Call<Vec<ApiKeyInfo>> {
        self.get(segments!["account", "keys"])
    }

    /// The rate-limit state of the latest response (per-minute and daily).
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.transport.last_rate_limit()
    }

    /// Raw calls: an endpoint this SDK does not model yet, with the client's base URL,
    /// credentials, retries, pacing, error normalization and everything else of a modelled
    /// call (see [`crate::raw`]).
    ///
    /// ```no_run
    /// # async fn demo(client: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
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

    pub(crate) fn get<T: DeserializeOwned + Send + 'static, const N: usize>(
        &self,
        segments: [Segment; N],
    ) -> Call<T> {
        let req = Ok(Request::new(Method::GET, segments));
        Call::new(self.transport.clone(), req, Wire::call)
    }

    /// A list of `GET segments?query`, offset-paged the SiliconWit way, each item yielded once.
    pub(crate) fn list<T, Q>(&self, segments: &[&str], query: Q) -> List<T, Q>
    where
        T: DeserializeOwned + Identified + Send + 'static,
        Q: serde::Serialize + Send + Sync + 'static,
    {
        let segments = segments.iter().map(|s| (*s).to_owned()).collect();
        List::new::<SiliconWit>(self.transport.clone(), segments, query)
            .dedup_by(<T as Identified>::id)
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    inner: TransportBuilder,
}

impl ClientBuilder {
    /// The API key (`swk_…`), sent as `Authorization: Bearer`.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.inner.auth(Auth::bearer(key));
        self
    }

    common_builder_methods!(AllCalls);

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        Ok(Client {
            transport: self.inner.build()?,
        })
    }
}

/// `{data, pagination{total, limit, offset}}`. `data` and `pagination.total` are required: a
/// `200` without them is a decode error naming the field, never a silently empty last page.
#[derive(Deserialize)]
pub(crate) struct OffsetEnvelope<T> {
    data: Vec<T>,
    pagination: Pagination,
}

#[derive(Deserialize)]
pub(crate) struct Pagination {
    total: u64,
    #[serde(default)]
    offset: Option<u64>,
}

/// Items that carry a stable id, so that offset paging can drop repeats.
pub trait Identified {
    /// The item's id.
    fn id(&self) -> &str;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    /// SiliconWit's description reads `{error: "sentence"}` as the message, for any text.
    #[test]
    fn the_description_reads_siliconwit_error_bodies() {
        use proptest::prelude::*;
        proptest!(|(message in "\\PC{0,80}")| {
            let body = serde_json::json!({"error": message});
            let parsed = SiliconWit::error_body(body.as_object().unwrap()).unwrap();
            prop_assert_eq!(parsed.code, None);
            prop_assert_eq!(parsed.message.as_deref(), Some(message.as_str()));
            let nested = serde_json::json!({"error": {"message": message}});
            prop_assert_eq!(SiliconWit::error_body(nested.as_object().unwrap()), None);
        });
    }

    #[test]
    fn from_env_and_limits() {
        assert!(matches!(
            Client::from_lookup(|_| None),
            Err(Error::Config(_))
        ));
        let c =
            Client::from_lookup(|n| (n == "SILICONWIT_API_KEY").then(|| "swk_x".into())).unwrap();
        assert_eq!(c.base_url().as_str(), PRODUCTION_URL);
        assert!(PAGING.check(Some(100)).is_ok());
        assert!(matches!(
            PAGING.check(Some(101)),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(PAGING.check(Some(0)), Err(Error::InvalidInput(_))));
        assert_eq!(plan_bucket(300).limit, 300);
    }
}
