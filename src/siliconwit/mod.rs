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

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::auth::{ApiKey, Auth};
use crate::call::{Call, CallOptions};
use crate::env::{env_required, env_value};
use crate::error::{Error, ProtocolError, Result};
use crate::paging::{FetchPage, ItemStream, Page, PageStream, PageToken};
use crate::rate_limit::{AllCalls, Bucket, RateLimit};
use crate::transport::{Request, ResponseMeta, Transport, TransportBuilder};
use crate::vendor::{ErrorBody, Vendor};

pub mod account;
pub mod alerts;
pub mod devices;

pub use account::{AccountUsage, ApiKeyInfo};
pub use alerts::{Alert, AlertCondition, AlertEvent, AlertValue, Alerts, Operator, Severity};
pub use devices::{
    Device, DeviceStatus, Devices, EffectiveQuery, Metrics, Reading, TelemetryHistory,
    TelemetryRange,
};

/// The production base URL.
pub const PRODUCTION_URL: &str = "https://api.siliconwit.io/v1";
/// The largest `limit` of the device and alert lists and of alert history.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Pages fetched at once by [`OffsetList::concurrent`] unless told otherwise.
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

impl Vendor for SiliconWit {
    type Bucket = AllCalls;
    const NAME: &'static str = "siliconwit";
    const SAFE_STATUSES: &'static [u16] = &[];
    const BUCKETS: &'static [Bucket<AllCalls>] = BUCKETS;
    const REQUEST_ID_POINTERS: &'static [&'static str] = &["/request_id", "/requestId"];

    fn bucket_for(_: &reqwest::Method, _: &str) -> AllCalls {
        AllCalls
    }

    /// `{error: "Device not found"}`: a sentence, no code.
    fn error_body(body: &serde_json::Map<String, serde_json::Value>) -> Option<ErrorBody> {
        ErrorBody::flat(body, &["message"])
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

/// `{data: T}`. `data` is required even when `T` is an `Option` (`{"data": null}` is `None`, a
/// body without `data` is a decode error), as the spec always sends it.
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(crate) struct Data<T> {
    #[serde(deserialize_with = "serde::Deserialize::deserialize")]
    pub(crate) data: T,
}

/// Sends `req` and unwraps `{data}`.
pub(crate) fn unwrap_data<T: DeserializeOwned + Send + 'static>(
    t: Transport,
    req: Request,
) -> BoxFuture<'static, Result<(T, ResponseMeta)>> {
    Box::pin(async move {
        let (d, meta) = t.send_json::<Data<T>>(req).await?;
        Ok((d.data, meta))
    })
}

pub(crate) fn check_limit(limit: Option<u32>, max: u32) -> Result<()> {
    match limit {
        Some(0) => Err(Error::invalid_input("limit must be at least 1")),
        Some(l) if l > max => Err(Error::invalid_input(format!(
            "limit {l} is over the maximum of {max}"
        ))),
        _ => Ok(()),
    }
}

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
        let mut b = Client::builder().api_key(env_required(&get, "SILICONWIT_API_KEY")?);
        if let Some(u) = env_value(&get, "SILICONWIT_BASE_URL") {
            b = b.base_url(u);
        }
        b.build()
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
        self.get(&["account", "usage"])
    }

    /// `GET /v1/account/keys`: metadata of the account's API keys (never the keys).
    pub fn api_keys(&self) -> Call<Vec<ApiKeyInfo>> {
        self.get(&["account", "keys"])
    }

    /// The rate-limit state of the latest response (per-minute and daily).
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.transport.last_rate_limit()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &url::Url {
        self.transport.base_url()
    }

    pub(crate) fn get<T: DeserializeOwned + Send + 'static>(&self, segments: &[&str]) -> Call<T> {
        let req = Ok(Request::new(Method::GET, segments.iter().copied()));
        Call::new(self.transport.clone(), req, unwrap_data)
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
struct OffsetEnvelope<T> {
    data: Vec<T>,
    pagination: Pagination,
}

#[derive(Deserialize)]
struct Pagination {
    total: u64,
    #[serde(default)]
    offset: Option<u64>,
}

/// One fetched page: its items, the `total` it reported, its metadata.
type RawPage<T> = (Vec<T>, u64, ResponseMeta);

/// Items that carry a stable id, so that offset paging can drop repeats.
pub trait Identified {
    /// The item's id.
    fn id(&self) -> &str;
}

/// An offset-paged list: `.send()` for one page, `.pages()`/`.items()` to stream to `total`.
///
/// Offset paging over a list that changes is fragile; this is what the SDK does about it:
/// - an item already yielded (same id) is never yielded again, whatever the server returns;
/// - when `total` shrinks between pages (items were removed), the page that shows it is
///   dropped and read again from that many items earlier, so items that shifted left are
///   neither skipped nor yielded out of order;
/// - in [`OffsetList::concurrent`] mode, if any page reports a different `total` than the
///   first, the list is read again sequentially from the start, skipping items already yielded.
///
/// A removal and an insertion between the same two pages that leave `total` unchanged can still
/// shift one item past a page boundary unseen: offset paging cannot detect that. Ten pages in a
/// row holding nothing new end the stream with [`Error::Protocol`], so a server that repeats
/// itself under a huge `total` is not followed to the end.
#[must_use = "a list does nothing until sent or streamed"]
pub struct OffsetList<T, K> {
    client: Client,
    segments: Vec<String>,
    params: Vec<(&'static str, String)>,
    limit: Option<u32>,
    offset: u64,
    concurrency: Option<usize>,
    opts: CallOptions,
    _marker: PhantomData<fn() -> (T, K)>,
}

impl<T, K> fmt::Debug for OffsetList<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffsetList")
            .field("path", &self.segments.join("/"))
            .field("params", &self.params)
            .field("limit", &self.limit)
            .field("offset", &self.offset)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// What the sequential pager remembers between pages.
struct OffsetState {
    total: Option<u64>,
    seen: HashSet<String>,
    /// Consecutive pages that held only items already yielded.
    stale_pages: u32,
}

/// After this many consecutive pages of nothing but repeats, the server is not making progress
/// (or is misbehaving): the stream ends with a protocol error instead of paging on to `total`.
const MAX_STALE_PAGES: u32 = 10;

impl<T, K> OffsetList<T, K>
where
    T: DeserializeOwned + Identified + Send + 'static,
    K: 'static,
{
    pub(crate) fn new(client: &Client, segments: &[&str]) -> Self {
        OffsetList {
            client: client.clone(),
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            params: Vec::new(),
            limit: None,
            offset: 0,
            concurrency: None,
            opts: CallOptions::default(),
            _marker: PhantomData,
        }
    }

    pub(crate) fn param(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        self.params.retain(|(n, _)| *n != name);
        self.params.push((name, value.to_string()));
        self
    }

    /// Items per page, 1 to 100 (default 50 on the server).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Items to skip before the first page. (Negative offsets cannot be expressed.)
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Once the first page has told the total, fetch the remaining pages `n` at a time
    /// (at least 1). Items are still yielded in order.
    pub fn concurrent(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    call_options!();

    fn fetch_one(
        &self,
    ) -> impl Fn(u64) -> BoxFuture<'static, Result<RawPage<T>>> + Send + Sync + 'static {
        let t = self.client.transport.clone();
        let segments = self.segments.clone();
        let params = self.params.clone();
        let limit = self.limit;
        let opts = self.opts.clone();
        move |offset| {
            let t = t.clone();
            let segments = segments.clone();
            let mut params = params.clone();
            let opts = opts.clone();
            Box::pin(async move {
                if let Some(l) = limit {
                    params.push(("limit", l.to_string()));
                }
                params.push(("offset", offset.to_string()));
                let req = Request::new(Method::GET, segments).query(&params)?;
                let (env, meta) = t.send_json::<OffsetEnvelope<T>>(opts.apply(req)).await?;
                if env.pagination.offset.is_some_and(|o| o != offset) {
                    tracing::debug!(asked = offset, got = ?env.pagination.offset, "server echoed another offset");
                }
                Ok((env.data, env.pagination.total, meta))
            })
        }
    }

    /// The page at `offset`.
    pub async fn send(self) -> Result<Page<T>> {
        check_limit(self.limit, MAX_PAGE_SIZE)?;
        let (items, total, meta) = (self.fetch_one())(self.offset).await?;
        let end = self.offset.saturating_add(items.len() as u64);
        let next = (end < total && !items.is_empty()).then_some(PageToken::Offset(end));
        Ok(Page::new(items, next, Some(total), meta))
    }

    /// Every page from `offset` to the end (`offset + count >= total`).
    pub fn pages(self) -> PageStream<T> {
        if let Err(e) = check_limit(self.limit, MAX_PAGE_SIZE) {
            return PageStream::failed(e);
        }
        match self.concurrency {
            Some(n) => self.concurrent_pages(n),
            None => self.sequential_pages(),
        }
    }

    /// Every item, in order.
    pub fn items(self) -> ItemStream<T> {
        self.pages().items()
    }

    fn sequential_pages(self) -> PageStream<T> {
        let fetch_one = Arc::new(self.fetch_one());
        let state = Arc::new(Mutex::new(OffsetState {
            total: None,
            seen: HashSet::new(),
            stale_pages: 0,
        }));
        let start = self.offset;
        let fetch: FetchPage<T> = Arc::new(move |token| {
            let fetch_one = fetch_one.clone();
            let state = state.clone();
            Box::pin(async move {
                let offset = match token {
                    Some(PageToken::Offset(o)) => o,
                    _ => start,
                };
                let (items, total, meta) = fetch_one(offset).await?;
                let fetched = items.len() as u64;
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                let shrunk = st.total.map_or(0, |before| before.saturating_sub(total));
                st.total = Some(total);
                if shrunk > 0 && offset > start {
                    // Items before this page were removed since the last one: everything shifted
                    // left, and up to `shrunk` items slid past this page's start unseen. Drop
                    // this page and read again from that far back (repeats are dropped by id),
                    // which keeps the order. `total` only shrinks finitely often, so this ends.
                    let back = offset.saturating_sub(shrunk).max(start);
                    return Ok(Page::new(
                        Vec::new(),
                        Some(PageToken::Offset(back)),
                        Some(total),
                        meta,
                    ));
                }
                let fresh: Vec<T> = items
                    .into_iter()
                    .filter(|i| st.seen.insert(i.id().to_owned()))
                    .collect();
                st.stale_pages = if fresh.is_empty() && fetched > 0 {
                    st.stale_pages.saturating_add(1)
                } else {
                    0
                };
                if st.stale_pages >= MAX_STALE_PAGES {
                    let mut e = ProtocolError::new(format!(
                        "{MAX_STALE_PAGES} pages in a row held only items already seen \
                         (offset {offset} of a total of {total}); stopping"
                    ));
                    e.request_id = meta.request_id.clone();
                    e.request = meta.request.clone();
                    return Err(e.into());
                }
                // An offset at the end of `u64` has nothing after it: the list ends there.
                let end = offset.saturating_add(fetched);
                let next = (fetched > 0 && end < total).then_some(PageToken::Offset(end));
                Ok(Page::new(fresh, next, Some(total), meta))
            })
        });
        PageStream::new(fetch, None)
    }

    fn concurrent_pages(self, concurrency: usize) -> PageStream<T> {
        let start = self.offset;
        let fallback = OffsetList::<T, K> {
            client: self.client.clone(),
            segments: self.segments.clone(),
            params: self.params.clone(),
            limit: self.limit,
            offset: start,
            concurrency: None,
            opts: self.opts.clone(),
            _marker: PhantomData,
        };
        let fetch_one = Arc::new(self.fetch_one());
        let stream = async_pages(fetch_one, start, concurrency, fallback);
        PageStream::from_stream(stream)
    }
}

/// Concurrent offset paging: the first page gives `total` and the page size; the other offsets
/// are fetched `concurrency` at a time and yielded in order. A changed `total` anywhere makes the
/// rest come from a sequential re-read that skips ids already yielded.
fn async_pages<T, K, F>(
    fetch_one: Arc<F>,
    start: u64,
    concurrency: usize,
    fallback: OffsetList<T, K>,
) -> futures::stream::BoxStream<'static, Result<Page<T>>>
where
    T: DeserializeOwned + Identified + Send + 'static,
    K: 'static,
    F: Fn(u64) -> BoxFuture<'static, Result<RawPage<T>>> + Send + Sync + 'static,
{
    use futures::FutureExt;
    let first = {
        let fetch_one = fetch_one.clone();
        async move { fetch_one(start).await }
    };
    first
        .map(
            move |first| -> futures::stream::BoxStream<'static, Result<Page<T>>> {
                let (items, total, meta) = match first {
                    Ok(v) => v,
                    Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
                };
                let size = items.len() as u64;
                let mut seen: HashSet<String> = items.iter().map(|i| i.id().to_owned()).collect();
                let first_page = Page::new(items, None, Some(total), meta);
                if size == 0 || start.saturating_add(size) >= total {
                    return futures::stream::once(async { Ok(first_page) }).boxed();
                }
                let offsets = (1..)
                    .map_while(move |k: u64| k.checked_mul(size)?.checked_add(start))
                    .take_while(move |o| *o < total);
                let fetch = fetch_one.clone();
                let rest = futures::stream::iter(offsets)
                    .map(move |o| fetch(o))
                    .buffered(concurrency);
                let changed = Arc::new(Mutex::new(false));
                let flag = changed.clone();
                let mut stale_pages = 0u32;
                let pages = rest
                    .map(move |page| {
                        let (items, page_total, meta) = page?;
                        if page_total != total {
                            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
                        }
                        let fetched = items.len();
                        let fresh: Vec<T> = items
                            .into_iter()
                            .filter(|i| seen.insert(i.id().to_owned()))
                            .collect();
                        stale_pages = if fresh.is_empty() && fetched > 0 {
                            stale_pages.saturating_add(1)
                        } else {
                            0
                        };
                        if stale_pages >= MAX_STALE_PAGES {
                            let mut e = ProtocolError::new(format!(
                                "{MAX_STALE_PAGES} pages in a row held only items already seen \
                                 (a total of {page_total}); stopping"
                            ));
                            e.request_id = meta.request_id.clone();
                            e.request = meta.request.clone();
                            return Err(e.into());
                        }
                        Ok((fresh, page_total, meta))
                    })
                    // Stop taking concurrent pages as soon as the list is known to have changed.
                    .take_while({
                        let changed = changed.clone();
                        move |_| {
                            let c = *changed.lock().unwrap_or_else(|p| p.into_inner());
                            futures::future::ready(!c)
                        }
                    })
                    .map_ok(|(items, page_total, meta)| {
                        Page::new(items, None, Some(page_total), meta)
                    });
                let yielded_ids = Arc::new(Mutex::new(HashSet::<String>::new()));
                let record = yielded_ids.clone();
                let head = futures::stream::once(async { Ok(first_page) })
                    .chain(pages)
                    .inspect_ok(move |p: &Page<T>| {
                        let mut ids = record.lock().unwrap_or_else(|p| p.into_inner());
                        ids.extend(p.items().iter().map(|i| i.id().to_owned()));
                    });
                let tail = futures::stream::once(async move {
                    let list_changed = *changed.lock().unwrap_or_else(|p| p.into_inner());
                    if !list_changed {
                        return futures::stream::empty().boxed();
                    }
                    tracing::info!(
                        "the list changed while paging concurrently: re-reading sequentially"
                    );
                    let already: HashSet<String> = yielded_ids
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    fallback
                        .sequential_pages()
                        .map_ok(move |p| {
                            let total = p.total();
                            let meta = p.meta().clone();
                            let items: Vec<T> = p
                                .into_items()
                                .into_iter()
                                .filter(|i| !already.contains(i.id()))
                                .collect();
                            Page::new(items, None, total, meta)
                        })
                        .boxed()
                })
                .flatten();
                head.chain(tail).boxed()
            },
        )
        .flatten_stream()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(check_limit(Some(100), 100).is_ok());
        assert!(matches!(
            check_limit(Some(101), 100),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            check_limit(Some(0), 100),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(plan_bucket(300).limit, 300);
    }
}
