//! The list engine: one way to declare a list, and one engine that pages it.
//!
//! A list is a path, a query type `Q` (a vendor's `Serialize` filter struct, whose fields in
//! declared order are the query string), the vendor's [`Paging`] and its [`Envelope`]. On top of
//! the filters the engine adds, in this order: the page size, the time window of a windowed list
//! (before the page size where the vendor's [`Paging::window_first`] says so), and the cursor or
//! offset. Four ways of paging run on it:
//!
//! | paging | where | how |
//! |---|---|---|
//! | cursor | SGT, Sepolo | the next page's cursor from the envelope, until there is none |
//! | windowed | SGT telemetry, Sepolo telemetry, cycles, service | `[from, to)` split into windows ([`crate::window`]), each paged by cursor, chained in order |
//! | offset | SiliconWit | `offset + count` until `total`, each item once ([`Dedup`]) |
//! | concurrent offset | SiliconWit `.concurrent(n)` | the same pages `n` at a time; on a changed `total`, a sequential re-read |
//!
//! [`Envelope`]: crate::envelope::Envelope

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::call::{CallOptions, Runner};
use crate::envelope::{Envelope, RawPage};
use crate::error::{Error, ProtocolError, Result};
use crate::paging::{FetchPage, ItemStream, Page, PageStream, PageToken};
use crate::transport::{Request, ResponseMeta, Transport};
use crate::vendor::Vendor;
use crate::window::{check_range, windows};

/// Where a list says where its next page starts.
#[allow(
    dead_code,
    reason = "some vendors need it and others do not; it is dead only in a build without them"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenParam {
    /// An opaque cursor from the previous page, in this query parameter.
    Cursor(&'static str),
    /// An item offset, in this query parameter (always sent, `0` on the first page).
    Offset(&'static str),
}

/// How a vendor pages its lists: each vendor declares one as a const in its `mod.rs`.
#[derive(Debug)]
pub(crate) struct Paging {
    /// The query parameter of the page size (`limit`, `pageSize`).
    pub(crate) page_size_param: &'static str,
    /// The largest page size the vendor accepts.
    pub(crate) max_page_size: u32,
    /// Cursor or offset, and its parameter.
    pub(crate) token: TokenParam,
    /// Whether a windowed list's `from`/`to` come before the page size in the query string.
    pub(crate) window_first: bool,
}

impl Paging {
    /// Checks a page size against this vendor's maximum.
    pub(crate) fn check(&self, size: Option<u32>) -> Result<()> {
        check_page_size(self.page_size_param, size, self.max_page_size)
    }
}

/// Accepts `1..=max` (and no size at all), refuses `0` and anything over `max` with
/// [`Error::InvalidInput`]: never a silent clamp. The one page-size check of the crate.
pub(crate) fn check_page_size(param: &str, size: Option<u32>, max: u32) -> Result<()> {
    match size {
        Some(0) => Err(Error::invalid_input(format!("{param} must be at least 1"))),
        Some(n) if n > max => Err(Error::invalid_input(format!(
            "{param} {n} is over the maximum of {max}"
        ))),
        _ => Ok(()),
    }
}

/// An instant as a query value: RFC 3339, UTC as `Z`, as many fraction digits as needed.
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A windowed list's time filter: its parameter names, the longest window one request may span,
/// and the range asked for.
#[derive(Debug, Clone)]
struct Window {
    from_param: &'static str,
    to_param: &'static str,
    max: Option<TimeDelta>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The item id offset paging deduplicates by.
type ItemId<T> = fn(&T) -> &str;

/// A list: `.send()` for one page, `.pages()` or `.items()` to stream every page, lazily.
///
/// `T` is the item, `Q` the vendor's typed filter (its setters are methods of `List<T, Q>` in
/// the vendor's module: `sgt.events().list().severity(..)`). The methods here are common to
/// every list of every vendor.
///
/// ```no_run
/// # use serde::Serialize;
/// # async fn demo<T, Q>(list: iot_sdk::List<T, Q>) -> iot_sdk::Result<()>
/// # where T: Send + 'static, Q: Serialize + Clone + Send + Sync + 'static {
/// use futures::TryStreamExt;
/// use std::time::Duration;
/// // For example `sgt.events().list().severity(Severity::Critical)`.
/// let list = list.limit(100).with_timeout(Duration::from_secs(10));
/// let first = list.clone().send().await?;
/// println!("{} items, more: {}", first.items().len(), first.has_more());
/// let all: Vec<T> = list.items().try_collect().await?;
/// # Ok(()) }
/// ```
///
/// Offset-paged lists (SiliconWit) are fragile over a list that changes; this is what the SDK
/// does about it:
/// - an item already yielded (same id) is never yielded again, whatever the server returns;
/// - when `total` shrinks between pages (items were removed), the page that shows it is
///   dropped and read again from that many items earlier, so items that shifted left are
///   neither skipped nor yielded out of order;
/// - in [`List::concurrent`] mode, if any page reports a different `total` than the first, the
///   list is read again sequentially from the start, skipping items already yielded.
///
/// A removal and an insertion between the same two pages that leave `total` unchanged can still
/// shift one item past a page boundary unseen: offset paging cannot detect that. Ten pages in a
/// row holding nothing new end the stream with [`Error::Protocol`], so a server that repeats
/// itself under a huge `total` is not followed to the end.
#[must_use = "a list does nothing until sent or streamed"]
pub struct List<T, Q> {
    transport: Transport,
    segments: Vec<String>,
    query: Q,
    paging: &'static Paging,
    run: Runner<RawPage<T>>,
    item_id: Option<ItemId<T>>,
    window: Option<Window>,
    page_size: Option<u32>,
    start: Option<PageToken>,
    concurrency: Option<usize>,
    refused: Option<String>,
    opts: CallOptions,
}

impl<T, Q: fmt::Debug> fmt::Debug for List<T, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("path", &self.segments.join("/"))
            .field("query", &self.query)
            .field("window", &self.window)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl<T, Q: Clone> Clone for List<T, Q> {
    fn clone(&self) -> Self {
        List {
            transport: self.transport.clone(),
            segments: self.segments.clone(),
            query: self.query.clone(),
            paging: self.paging,
            run: self.run,
            item_id: self.item_id,
            window: self.window.clone(),
            page_size: self.page_size,
            start: self.start.clone(),
            concurrency: self.concurrency,
            refused: self.refused.clone(),
            opts: self.opts.clone(),
        }
    }
}

impl<T, Q> List<T, Q>
where
    T: Send + 'static,
    Q: Serialize + Send + Sync + 'static,
{
    /// A list of `GET segments?query` of vendor `V`: paged as its [`Vendor::PAGING`] says, each
    /// page decoded by its [`Vendor::Wire`].
    pub(crate) fn new<V: Vendor>(transport: Transport, segments: Vec<String>, query: Q) -> Self
    where
        T: DeserializeOwned,
    {
        Self::paged(
            transport,
            segments,
            query,
            V::PAGING,
            <V::Wire as Envelope>::list::<T>,
        )
    }

    /// A list paged as `paging` says, each page fetched and decoded by `run` (a raw list,
    /// whose vendor is known only through its transport).
    pub(crate) fn paged(
        transport: Transport,
        segments: Vec<String>,
        query: Q,
        paging: &'static Paging,
        run: Runner<RawPage<T>>,
    ) -> Self {
        List {
            transport,
            segments,
            query,
            paging,
            run,
            item_id: None,
            window: None,
            page_size: None,
            start: None,
            concurrency: None,
            refused: None,
            opts: CallOptions::default(),
        }
    }

    /// Declares the list's time filter: its parameter names and the longest window a request
    /// may span (`None`: any). Ranges longer than that are split and streamed in order.
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    pub(crate) fn windowed(
        mut self,
        from_param: &'static str,
        to_param: &'static str,
        max: Option<TimeDelta>,
    ) -> Self {
        self.window = Some(Window {
            from_param,
            to_param,
            max,
            range: None,
        });
        self
    }

    /// Sets the time range of a windowed list (`[from, to)`).
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    pub(crate) fn range(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        if let Some(w) = &mut self.window {
            w.range = Some((from, to));
        }
        self
    }

    /// The id offset paging deduplicates by (offset lists only).
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    pub(crate) fn dedup_by(mut self, id: ItemId<T>) -> Self {
        self.item_id = Some(id);
        self
    }

    /// Changes the typed filter: how a vendor's filter setters are written.
    pub(crate) fn filter(mut self, set: impl FnOnce(&mut Q)) -> Self {
        set(&mut self.query);
        self
    }

    /// Input found wrong before anything is sent: every page stream yields it as
    /// [`Error::InvalidInput`] (after the page-size check).
    #[allow(
        dead_code,
        reason = "some vendors need it and others do not; it is dead only in a build without them"
    )]
    pub(crate) fn refuse(mut self, problem: Option<String>) -> Self {
        self.refused = problem;
        self
    }

    /// Items per page, from 1 to the vendor's maximum (SGT and Sepolo 500, SiliconWit 100):
    /// Sepolo's `pageSize`, SGT's and SiliconWit's `limit`. Over the maximum, or 0, is an
    /// [`Error::InvalidInput`] before anything is sent, never a silent clamp.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    /// The same as [`List::page_size`], under the name SGT and SiliconWit give it.
    pub fn limit(self, limit: u32) -> Self {
        self.page_size(limit)
    }

    /// Starts at a cursor from an earlier page (cursors are short-lived: do not store them).
    /// With a split time range, it is the first window's cursor. An offset-paged list refuses
    /// it with [`Error::InvalidInput`].
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.start = Some(PageToken::Cursor(cursor.into()));
        self
    }

    /// Items to skip before the first page, for offset-paged lists (SiliconWit). A cursor-paged
    /// list refuses it with [`Error::InvalidInput`].
    pub fn offset(mut self, offset: u64) -> Self {
        self.start = Some(PageToken::Offset(offset));
        self
    }

    /// Once the first page has told the total, fetch the remaining pages `n` at a time (at
    /// least 1); items are still yielded in order. Offset-paged lists only: a cursor-paged list
    /// needs each page's cursor before it can ask for the next, so there this does nothing.
    pub fn concurrent(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    call_options!();

    /// The first page (or the page at `cursor` or `offset`).
    pub async fn send(self) -> Result<Page<T>> {
        match self.paging.token {
            TokenParam::Offset(_) => {
                let (start, fetcher) = self.prepare_offset()?;
                let (raw, meta) = fetcher.fetch(None, Some(&PageToken::Offset(start))).await?;
                let total = raw.total.unwrap_or_default();
                let end = start.saturating_add(raw.items.len() as u64);
                let next = (end < total && !raw.items.is_empty()).then_some(PageToken::Offset(end));
                Ok(Page::new(raw.items, next, raw.total, meta))
            }
            TokenParam::Cursor(_) => self.pages().first().await,
        }
    }

    /// Every page, lazily; a time range longer than the endpoint allows is fetched window by
    /// window, as one ordered sequence.
    pub fn pages(self) -> PageStream<T> {
        match self.paging.token {
            TokenParam::Offset(_) => {
                let (id, concurrency) = (self.item_id, self.concurrency);
                match self.prepare_offset() {
                    Err(e) => PageStream::failed(e),
                    Ok((start, fetcher)) => {
                        let fetch = offset_fetcher(fetcher);
                        match concurrency {
                            Some(n) => concurrent_offset_pages(fetch, start, n, id),
                            None => offset_pages(fetch, start, id, HashSet::new()),
                        }
                    }
                }
            }
            TokenParam::Cursor(_) => self.cursor_pages().unwrap_or_else(PageStream::failed),
        }
    }

    /// Every item, lazily, page after page.
    pub fn items(self) -> ItemStream<T> {
        self.pages().items()
    }

    /// The checks every list makes before sending anything.
    fn check(&self) -> Result<()> {
        self.paging.check(self.page_size)?;
        match &self.refused {
            Some(problem) => Err(Error::invalid_input(problem.clone())),
            None => Ok(()),
        }
    }

    fn fetcher(self) -> Arc<Fetcher<T, Q>> {
        Arc::new(Fetcher {
            transport: self.transport,
            segments: self.segments,
            query: self.query,
            paging: self.paging,
            run: self.run,
            window_params: self.window.map(|w| (w.from_param, w.to_param)),
            page_size: self.page_size,
            opts: self.opts,
        })
    }

    fn prepare_offset(self) -> Result<(u64, Arc<Fetcher<T, Q>>)> {
        self.check()?;
        let start = match &self.start {
            None => 0,
            Some(PageToken::Offset(o)) => *o,
            Some(PageToken::Cursor(_)) => {
                return Err(Error::invalid_input(
                    "this list is paged by offset: it takes no cursor",
                ));
            }
        };
        Ok((start, self.fetcher()))
    }

    fn cursor_pages(mut self) -> Result<PageStream<T>> {
        self.check()?;
        let mut first = match self.start.take() {
            None => None,
            Some(PageToken::Cursor(c)) => Some(c),
            Some(PageToken::Offset(_)) => {
                return Err(Error::invalid_input(
                    "this list is paged by cursor: it takes no offset",
                ));
            }
        };
        let range = self
            .window
            .as_ref()
            .and_then(|w| w.range.map(|r| (r, w.max)));
        let fetcher = self.fetcher();
        let Some(((from, to), max)) = range else {
            return Ok(cursor_stream(fetcher, None, first));
        };
        check_range(from, to)?;
        let max = max.unwrap_or(TimeDelta::MAX);
        Ok(PageStream::chain(windows(from, to, max).map(
            move |window| cursor_stream(fetcher.clone(), Some(window), first.take()),
        )))
    }
}

/// What every page request of one list shares.
struct Fetcher<T, Q> {
    transport: Transport,
    segments: Vec<String>,
    query: Q,
    paging: &'static Paging,
    run: Runner<RawPage<T>>,
    window_params: Option<(&'static str, &'static str)>,
    page_size: Option<u32>,
    opts: CallOptions,
}

impl<T: Send + 'static, Q: Serialize> Fetcher<T, Q> {
    /// `GET segments?<filters>&<page size>&<window>&<cursor or offset>` (window and page size
    /// swapped where the vendor says so).
    fn request(
        &self,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
        token: Option<&PageToken>,
    ) -> Result<Request> {
        let req = Request::new(Method::GET, self.segments.clone()).query(&self.query)?;
        let with_size = |req: Request| match self.page_size {
            Some(n) => req.append_query(self.paging.page_size_param, &n.to_string()),
            None => req,
        };
        let with_window = |req: Request| match (self.window_params, window) {
            (Some((from_param, to_param)), Some((from, to))) => req
                .append_query(from_param, &stamp(from))
                .append_query(to_param, &stamp(to)),
            _ => req,
        };
        let req = if self.paging.window_first {
            with_size(with_window(req))
        } else {
            with_window(with_size(req))
        };
        Ok(match (self.paging.token, token) {
            (TokenParam::Cursor(param), Some(PageToken::Cursor(c))) => req.append_query(param, c),
            (TokenParam::Offset(param), Some(PageToken::Offset(o))) => {
                req.append_query(param, &o.to_string())
            }
            _ => req,
        })
    }

    async fn fetch(
        &self,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
        token: Option<&PageToken>,
    ) -> Result<(RawPage<T>, ResponseMeta)> {
        let req = self.request(window, token)?;
        (self.run)(self.transport.clone(), self.opts.apply(req)).await
    }
}

/// The pages of one cursor-paged stream (one window of a windowed list).
fn cursor_stream<T, Q>(
    fetcher: Arc<Fetcher<T, Q>>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    first: Option<String>,
) -> PageStream<T>
where
    T: Send + 'static,
    Q: Serialize + Send + Sync + 'static,
{
    let fetch: FetchPage<T> = Arc::new(move |token| {
        let fetcher = fetcher.clone();
        Box::pin(async move {
            let (raw, meta) = fetcher.fetch(window, token.as_ref()).await?;
            let next = raw.next_cursor.map(PageToken::Cursor);
            Ok(Page::new(raw.items, next, raw.total, meta))
        })
    });
    PageStream::new(fetch, first.map(PageToken::Cursor))
}

/// Fetches the offset page at an offset: its items, the `total` it reported, its metadata.
pub(crate) type FetchOffset<T> =
    Arc<dyn Fn(u64) -> BoxFuture<'static, Result<OffsetPage<T>>> + Send + Sync>;

/// One fetched offset page.
pub(crate) struct OffsetPage<T> {
    pub(crate) items: Vec<T>,
    pub(crate) total: u64,
    pub(crate) meta: ResponseMeta,
}

fn offset_fetcher<T, Q>(fetcher: Arc<Fetcher<T, Q>>) -> FetchOffset<T>
where
    T: Send + 'static,
    Q: Serialize + Send + Sync + 'static,
{
    Arc::new(move |offset| {
        let fetcher = fetcher.clone();
        Box::pin(async move {
            let (raw, meta) = fetcher
                .fetch(None, Some(&PageToken::Offset(offset)))
                .await?;
            if raw.echoed_offset.is_some_and(|o| o != offset) {
                tracing::debug!(asked = offset, got = ?raw.echoed_offset, "server echoed another offset");
            }
            let Some(total) = raw.total else {
                let mut e = ProtocolError::new("an offset-paged list answered without a total");
                e.request_id = meta.request_id.clone();
                e.request = meta.request.clone();
                return Err(e.into());
            };
            Ok(OffsetPage {
                items: raw.items,
                total,
                meta,
            })
        })
    })
}

/// After this many consecutive pages of nothing but repeats, the server is not making progress
/// (or is misbehaving): the stream ends with a protocol error instead of paging on to `total`.
pub(crate) const MAX_STALE_PAGES: u32 = 10;

/// What offset paging remembers so that each item is yielded once, and so that a server that
/// only repeats itself is not followed forever. Used by the sequential and concurrent readers.
pub(crate) struct Dedup<T> {
    id: Option<ItemId<T>>,
    /// Ids this reader has seen (a page with none new is stale).
    seen: HashSet<String>,
    /// Ids yielded before this reader started (a re-read after a concurrent read): dropped,
    /// but not counted as stale.
    skip: HashSet<String>,
    /// Consecutive pages that held only items already seen.
    stale_pages: u32,
}

impl<T> Dedup<T> {
    pub(crate) fn new(id: Option<ItemId<T>>, skip: HashSet<String>) -> Self {
        Dedup {
            id,
            seen: HashSet::new(),
            skip,
            stale_pages: 0,
        }
    }

    /// The items of a page not yet yielded, in order. After [`MAX_STALE_PAGES`] pages in a row
    /// with nothing new, a protocol error (`at` says where, for the message).
    pub(crate) fn fresh(
        &mut self,
        items: Vec<T>,
        meta: &ResponseMeta,
        at: impl FnOnce() -> String,
    ) -> Result<Vec<T>> {
        let Some(id) = self.id else {
            return Ok(items);
        };
        let fetched = items.len();
        let new: Vec<T> = items
            .into_iter()
            .filter(|i| self.seen.insert(id(i).to_owned()))
            .collect();
        self.stale_pages = if new.is_empty() && fetched > 0 {
            self.stale_pages.saturating_add(1)
        } else {
            0
        };
        if self.stale_pages >= MAX_STALE_PAGES {
            let mut e = ProtocolError::new(format!(
                "{MAX_STALE_PAGES} pages in a row held only items already seen ({}); stopping",
                at()
            ));
            e.request_id = meta.request_id.clone();
            e.request = meta.request.clone();
            return Err(e.into());
        }
        Ok(new
            .into_iter()
            .filter(|i| !self.skip.contains(id(i)))
            .collect())
    }
}

/// What the sequential offset reader remembers between pages.
struct OffsetState<T> {
    total: Option<u64>,
    dedup: Dedup<T>,
}

/// Sequential offset paging from `start` to `total`; `skip` holds ids yielded earlier.
pub(crate) fn offset_pages<T: Send + 'static>(
    fetch_one: FetchOffset<T>,
    start: u64,
    id: Option<ItemId<T>>,
    skip: HashSet<String>,
) -> PageStream<T> {
    let state = Arc::new(Mutex::new(OffsetState {
        total: None,
        dedup: Dedup::new(id, skip),
    }));
    let fetch: FetchPage<T> = Arc::new(move |token| {
        let fetch_one = fetch_one.clone();
        let state = state.clone();
        Box::pin(async move {
            let offset = match token {
                Some(PageToken::Offset(o)) => o,
                _ => start,
            };
            let OffsetPage { items, total, meta } = fetch_one(offset).await?;
            let fetched = items.len() as u64;
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            let shrunk = st.total.map_or(0, |before| before.saturating_sub(total));
            st.total = Some(total);
            if shrunk > 0 && offset > start {
                // Items before this page were removed since the last one: everything shifted
                // left, and up to `shrunk` items slid past this page's start unseen. Drop this
                // page and read again from that far back (repeats are dropped by id), which
                // keeps the order. `total` only shrinks finitely often, so this ends.
                let back = offset.saturating_sub(shrunk).max(start);
                return Ok(Page::new(
                    Vec::new(),
                    Some(PageToken::Offset(back)),
                    Some(total),
                    meta,
                ));
            }
            let fresh = st.dedup.fresh(items, &meta, || {
                format!("offset {offset} of a total of {total}")
            })?;
            // An offset at the end of `u64` has nothing after it: the list ends there.
            let end = offset.saturating_add(fetched);
            let next = (fetched > 0 && end < total).then_some(PageToken::Offset(end));
            Ok(Page::new(fresh, next, Some(total), meta))
        })
    });
    PageStream::new(fetch, None)
}

/// Concurrent offset paging: the first page gives `total` and the page size; the other offsets
/// are fetched `concurrency` at a time and yielded in order. A changed `total` anywhere makes the
/// rest come from a sequential re-read ([`offset_pages`]) that skips ids already yielded.
pub(crate) fn concurrent_offset_pages<T: Send + 'static>(
    fetch_one: FetchOffset<T>,
    start: u64,
    concurrency: usize,
    id: Option<ItemId<T>>,
) -> PageStream<T> {
    let first = fetch_one(start);
    let stream = first
        .map(move |first| -> BoxStream<'static, Result<Page<T>>> {
            let OffsetPage { items, total, meta } = match first {
                Ok(v) => v,
                Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
            };
            let size = items.len() as u64;
            let mut dedup = Dedup::new(id, HashSet::new());
            let first_page = dedup
                .fresh(items, &meta, || format!("a total of {total}"))
                .map(|items| Page::new(items, None, Some(total), meta));
            if size == 0 || start.saturating_add(size) >= total {
                return futures::stream::once(async { first_page }).boxed();
            }
            let offsets = (1..)
                .map_while(move |k: u64| k.checked_mul(size)?.checked_add(start))
                .take_while(move |o| *o < total);
            let fetch = fetch_one.clone();
            let changed = Arc::new(Mutex::new(false));
            let flag = changed.clone();
            let pages = futures::stream::iter(offsets)
                .map(move |o| fetch(o))
                .buffered(concurrency)
                .map(move |page| {
                    let OffsetPage {
                        items,
                        total: page_total,
                        meta,
                    } = page?;
                    if page_total != total {
                        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    }
                    let fresh = dedup.fresh(items, &meta, || format!("a total of {page_total}"))?;
                    Ok(Page::new(fresh, None, Some(page_total), meta))
                })
                // Stop taking concurrent pages as soon as the list is known to have changed.
                .take_while({
                    let changed = changed.clone();
                    move |_| {
                        let c = *changed.lock().unwrap_or_else(|p| p.into_inner());
                        futures::future::ready(!c)
                    }
                });
            let yielded = Arc::new(Mutex::new(HashSet::<String>::new()));
            let record = yielded.clone();
            let head = futures::stream::once(async { first_page })
                .chain(pages)
                .inspect_ok(move |p: &Page<T>| {
                    if let Some(id) = id {
                        let mut ids = record.lock().unwrap_or_else(|p| p.into_inner());
                        ids.extend(p.items().iter().map(|i| id(i).to_owned()));
                    }
                });
            let tail = futures::stream::once(async move {
                let list_changed = *changed.lock().unwrap_or_else(|p| p.into_inner());
                if !list_changed {
                    return futures::stream::empty().boxed();
                }
                tracing::info!(
                    "the list changed while paging concurrently: re-reading sequentially"
                );
                let already = yielded.lock().unwrap_or_else(|p| p.into_inner()).clone();
                offset_pages(fetch_one, start, id, already)
                    .map_ok(|p| {
                        let total = p.total();
                        let meta = p.meta().clone();
                        Page::new(p.into_items(), None, total, meta)
                    })
                    .boxed()
            })
            .flatten();
            head.chain(tail).boxed()
        })
        .flatten_stream()
        .boxed();
    PageStream::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::{Strategy, any, prop, prop_assert, prop_assert_eq, proptest};

    use super::*;
    use crate::tests::{builder_at, proptest_config};

    /// A filter of every kind of field a vendor's filter has, in a fixed declared order.
    #[derive(Debug, Clone, Default, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Filter {
        #[serde(skip_serializing_if = "Option::is_none")]
        updated_since: Option<DateTime<Utc>>,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        group_id: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        acknowledged: Option<bool>,
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        // Year 0 to 9999, any nanosecond.
        (-62_167_219_200i64..253_402_300_799, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
    }

    fn filter() -> impl Strategy<Value = Filter> {
        (
            prop::option::of(instant()),
            prop::option::of(".{0,12}"),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(updated_since, kind, group_id, acknowledged)| Filter {
                updated_since,
                kind,
                group_id,
                acknowledged,
            })
    }

    fn never(_: Transport, _: Request) -> BoxFuture<'static, Result<(RawPage<u32>, ResponseMeta)>> {
        Box::pin(async { Err(Error::invalid_input("not sent in this test")) })
    }

    fn fetcher(
        paging: &'static Paging,
        query: Filter,
        size: Option<u32>,
        window: bool,
    ) -> Fetcher<u32, Filter> {
        Fetcher {
            transport: builder_at("http://127.0.0.1:9/v1").build().unwrap(),
            segments: vec!["things".into()],
            query,
            paging,
            run: never,
            window_params: window.then_some(("fromUtc", "toUtc")),
            page_size: size,
            opts: CallOptions::default(),
        }
    }

    const CURSOR_AFTER: Paging = Paging {
        page_size_param: "pageSize",
        max_page_size: 500,
        token: TokenParam::Cursor("cursor"),
        window_first: false,
    };
    const CURSOR_WINDOW_FIRST: Paging = Paging {
        page_size_param: "limit",
        max_page_size: 500,
        token: TokenParam::Cursor("cursor"),
        window_first: true,
    };
    const OFFSET: Paging = Paging {
        page_size_param: "limit",
        max_page_size: 100,
        token: TokenParam::Offset("offset"),
        window_first: false,
    };

    fn pair(k: &str, v: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair(k, v)
            .finish()
    }

    proptest! {
        #![proptest_config(proptest_config())]

        /// 1..=max passes, 0 and anything over max are refused, whatever the numbers.
        #[test]
        fn the_page_size_check_accepts_exactly_one_to_max(size in any::<u32>(), max in 1u32..) {
            let got = check_page_size("pageSize", Some(size), max);
            prop_assert_eq!(got.is_ok(), (1..=max).contains(&size));
            if let Err(e) = got {
                prop_assert!(matches!(e, Error::InvalidInput(ref m) if m.starts_with("pageSize")), "{e}");
            }
            prop_assert!(check_page_size("limit", None, max).is_ok());
        }

        /// A window bound is written as chrono's serde writes a `DateTime<Utc>` field, so a
        /// time filter reads the same as a typed `DateTime` field of a filter struct.
        #[test]
        fn a_stamp_is_what_serde_writes(t in instant()) {
            let via_serde = serde_urlencoded::to_string([("t", t)]).unwrap();
            prop_assert_eq!(via_serde, pair("t", &stamp(t)));
        }

        /// The query string is serde_urlencoded of the filter, in declared order, then the
        /// page size, the window (before the page size where the vendor says so) and the
        /// cursor or offset.
        #[test]
        fn the_query_is_the_filter_then_the_engine_params(
            query in filter(),
            size in prop::option::of(1u32..=500),
            window in prop::option::of((instant(), instant())),
            cursor in prop::option::of("[ -~]{1,16}"),
            offset in any::<u64>(),
            paging in 0..3u8,
        ) {
            let paging: &'static Paging = match paging {
                0 => &CURSOR_AFTER,
                1 => &CURSOR_WINDOW_FIRST,
                _ => &OFFSET,
            };
            let filter_part = serde_urlencoded::to_string(&query).unwrap();
            let f = fetcher(paging, query, size, window.is_some());
            let token = match paging.token {
                TokenParam::Cursor(_) => cursor.clone().map(PageToken::Cursor),
                TokenParam::Offset(_) => Some(PageToken::Offset(offset)),
            };
            let req = f.request(window, token.as_ref()).unwrap();
            let url = f.transport.url(&req).unwrap();

            let mut expected: Vec<String> = Vec::new();
            if !filter_part.is_empty() {
                expected.push(filter_part);
            }
            let size_part = size.map(|n| pair(paging.page_size_param, &n.to_string()));
            let window_part = window.map(|(a, b)| format!("{}&{}", pair("fromUtc", &stamp(a)), pair("toUtc", &stamp(b))));
            if paging.window_first {
                expected.extend(window_part);
                expected.extend(size_part);
            } else {
                expected.extend(size_part);
                expected.extend(window_part);
            }
            match (paging.token, &token) {
                (TokenParam::Cursor(p), Some(PageToken::Cursor(c))) => expected.push(pair(p, c)),
                (TokenParam::Offset(p), Some(PageToken::Offset(o))) => expected.push(pair(p, &o.to_string())),
                _ => {}
            }
            let expected = expected.join("&");
            prop_assert_eq!(url.query().unwrap_or_default(), expected.as_str());
        }

        /// Whatever pages a server sends (ids repeated within and across pages, a total that
        /// does not match), the sequential and the concurrent offset readers yield each id at
        /// most once, end, and, when they end without an error, yield every id they were sent.
        #[test]
        fn offset_readers_yield_each_id_once_and_stop(
            pages in prop::collection::vec(prop::collection::vec(0u8..40, 0..8), 1..12),
            total in 0u64..400,
            concurrency in 1usize..5,
            concurrent in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let calls = Arc::new(AtomicUsize::new(0));
            let served = Arc::new(Mutex::new(HashSet::<String>::new()));
            let fetch: FetchOffset<String> = {
                let (calls, served, pages) = (calls.clone(), served.clone(), pages.clone());
                Arc::new(move |_offset| {
                    // The k-th request gets the k-th page; past the end, the last page again
                    // (a server that repeats itself).
                    let k = calls.fetch_add(1, Ordering::SeqCst);
                    let page = pages.get(k).or(pages.last()).cloned().unwrap_or_default();
                    let items: Vec<String> = page.iter().map(|i| format!("id{i}")).collect();
                    served.lock().unwrap().extend(items.iter().cloned());
                    Box::pin(async move {
                        if k > 5_000 {
                            return Err(Error::invalid_input("runaway"));
                        }
                        Ok(OffsetPage { items, total, meta: ResponseMeta::default() })
                    })
                })
            };
            let id: ItemId<String> = |s| s.as_str();
            let stream = if concurrent {
                concurrent_offset_pages(fetch, 0, concurrency, Some(id))
            } else {
                offset_pages(fetch, 0, Some(id), HashSet::new())
            };
            let got: Vec<Result<String>> = runtime.block_on(stream.items().collect());
            let mut yielded = HashSet::new();
            let mut ended_ok = true;
            for item in &got {
                match item {
                    Ok(i) => prop_assert!(yielded.insert(i.clone()), "{i} yielded twice"),
                    Err(e) => {
                        ended_ok = false;
                        prop_assert!(matches!(e, Error::Protocol(_)), "{e}");
                        prop_assert!(e.to_string().contains("pages in a row held only items already seen"), "{e}");
                    }
                }
            }
            prop_assert!(calls.load(Ordering::SeqCst) <= 5_000, "the reader did not stop");
            if ended_ok && !concurrent {
                // Sequential: what was served was yielded (the reader read until the end).
                prop_assert_eq!(&yielded, &*served.lock().unwrap());
            }
        }
    }

    /// Each id once also across a concurrent read that falls back to a sequential re-read.
    #[tokio::test]
    async fn a_reread_skips_what_was_yielded_without_counting_it_stale() {
        let mut dedup = Dedup::new(
            Some((|s: &String| s.as_str()) as ItemId<String>),
            ["a".to_owned()].into(),
        );
        let meta = ResponseMeta::default();
        let page = || vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            dedup.fresh(page(), &meta, String::new).unwrap(),
            vec!["b".to_owned()]
        );
        for _ in 1..MAX_STALE_PAGES {
            assert!(dedup.fresh(page(), &meta, String::new).unwrap().is_empty());
        }
        let err = dedup.fresh(page(), &meta, || "here".into()).unwrap_err();
        assert!(err.to_string().contains("(here); stopping"), "{err}");
    }
}
