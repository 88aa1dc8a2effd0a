//! Pages and the streams that walk them.
//!
//! Every list call can return one [`Page`] (`.send()`), a [`PageStream`] of pages (`.pages()`) or
//! an [`ItemStream`] of items (`.items()`). Both streams are real [`futures::Stream`]s, `Send`,
//! `'static` and `Unpin`, so they can be stored, spawned and used with `StreamExt`/`TryStreamExt`.
//!
//! The streams are lazy: nothing is sent until the first poll, and the next page is requested only
//! when the consumer has drained the last one (or, with prefetch on, one page ahead, in a task that
//! is cancelled when the stream is dropped). They end on the last page: SGT's `has_more == false`,
//! Sepolo's `hasMore == false`, SiliconWit's `offset + count >= total`. A cursor the server already
//! handed out, or `has_more` without a cursor, ends the stream with [`Error::Protocol`] instead of
//! looping forever or silently dropping the rest. An error is yielded once and ends the stream.
//!
//! ```no_run
//! # async fn demo(pages: iot_sdk::ItemStream<u32>) -> iot_sdk::Result<()> {
//! use futures::TryStreamExt;
//! let mut items = pages;
//! while let Some(item) = items.try_next().await? {
//!     println!("{item}");
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::{Error, ProtocolError, Result};
use crate::transport::ResponseMeta;

/// Where the next page starts.
///
/// Serializable, so that a job can store where it stands. The format is stable (a change to it
/// is a breaking change): externally tagged, lowercase, `{"cursor": "…"}` or `{"offset": 42}`.
/// A stored cursor is only as good as the server's promise: cursors are short-lived, so store
/// one for a restart within minutes, not for days.
///
/// ```
/// use iot_sdk::PageToken;
/// let t = PageToken::Offset(42);
/// assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"offset":42}"#);
/// let back: PageToken = serde_json::from_str(r#"{"cursor":"c_9"}"#).unwrap();
/// assert_eq!(back, PageToken::Cursor("c_9".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageToken {
    /// An opaque cursor, sent back verbatim (SGT, Sepolo).
    Cursor(String),
    /// An item offset (SiliconWit).
    Offset(u64),
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    items: Vec<T>,
    next: Option<PageToken>,
    total: Option<u64>,
    meta: ResponseMeta,
}

impl<T> Page<T> {
    /// A page. `next` is `None` on the last page.
    pub(crate) fn new(
        items: Vec<T>,
        next: Option<PageToken>,
        total: Option<u64>,
        meta: ResponseMeta,
    ) -> Self {
        Page {
            items,
            next,
            total,
            meta,
        }
    }

    /// The items of this page.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Takes the items.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }

    /// Whether there is a page after this one.
    pub fn has_more(&self) -> bool {
        self.next.is_some()
    }

    /// Where the next page starts, if there is one.
    pub fn next_token(&self) -> Option<&PageToken> {
        self.next.as_ref()
    }

    /// The cursor of the next page, for cursor-paged APIs.
    pub fn next_cursor(&self) -> Option<&str> {
        match &self.next {
            Some(PageToken::Cursor(c)) => Some(c),
            _ => None,
        }
    }

    /// The offset of the next page, for offset-paged APIs.
    pub fn next_offset(&self) -> Option<u64> {
        match self.next {
            Some(PageToken::Offset(o)) => Some(o),
            _ => None,
        }
    }

    /// The total number of items, when the API reports it (SiliconWit).
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The response's metadata: status, request id, rate limit, ETag, deprecation.
    pub fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// Fetches the page that starts at a token (`None`: the first page).
pub(crate) type FetchPage<T> =
    Arc<dyn Fn(Option<PageToken>) -> BoxFuture<'static, Result<Page<T>>> + Send + Sync>;

/// Aborts a spawned prefetch when dropped.
struct Prefetch<T>(tokio::task::JoinHandle<Result<Page<T>>>);

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum State<T> {
    /// The next page to ask for.
    Ready(Option<PageToken>),
    Fetching(BoxFuture<'static, Result<Page<T>>>),
    Prefetching(Prefetch<T>),
    /// Pages produced by a vendor's own stream (concurrent offset paging).
    Custom(BoxStream<'static, Result<Page<T>>>),
    /// An error to yield on the next poll, then ended.
    Failed(Error),
    /// This segment is exhausted; the next chained segment (if any) follows.
    Done,
    /// Terminal: an error was yielded, nothing follows.
    Ended,
}

/// The segments that follow this one (windows of a long time range), built lazily.
type Rest<T> = Box<dyn Iterator<Item = PageStream<T>> + Send>;

/// A stream of pages. Created by a list builder's `.pages()`.
#[must_use = "streams do nothing unless polled"]
pub struct PageStream<T> {
    fetch: FetchPage<T>,
    state: State<T>,
    seen: SeenTokens,
    prefetch: bool,
    rest: Option<Rest<T>>,
}

/// The page tokens a stream has been given, kept as 64-bit fingerprints (keyed per stream), so
/// that a server repeating a cursor is caught without keeping every cursor in memory: 8 bytes a
/// page, whatever the cursor's length.
struct SeenTokens {
    hasher: RandomState,
    fingerprints: HashSet<u64>,
}

impl SeenTokens {
    fn new() -> Self {
        SeenTokens {
            hasher: RandomState::new(),
            fingerprints: HashSet::new(),
        }
    }

    /// `false` when `token` was seen before.
    fn insert(&mut self, token: &PageToken) -> bool {
        self.fingerprints.insert(self.hasher.hash_one(token))
    }

    fn len(&self) -> usize {
        self.fingerprints.len()
    }
}

impl<T> fmt::Debug for PageStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Fetching(_) => "fetching",
            State::Prefetching(_) => "prefetching",
            State::Custom(_) => "custom",
            State::Failed(_) => "failed",
            State::Done => "done",
            State::Ended => "ended",
        };
        f.debug_struct("PageStream")
            .field("state", &state)
            .field("pages_seen", &self.seen.len())
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

// No field is ever pinned: futures are boxed, the join handle is Unpin.
impl<T> Unpin for PageStream<T> {}

impl<T: Send + 'static> PageStream<T> {
    pub(crate) fn new(fetch: FetchPage<T>, first: Option<PageToken>) -> Self {
        let mut seen = SeenTokens::new();
        if let Some(t) = &first {
            seen.insert(t);
        }
        PageStream {
            fetch,
            state: State::Ready(first),
            seen,
            prefetch: false,
            rest: None,
        }
    }

    /// The pages of each stream in turn, as one stream: the windows of a long time range. The
    /// streams are made lazily, as the previous one ends; an error ends the whole sequence.
    pub(crate) fn chain<I>(streams: I) -> Self
    where
        I: IntoIterator<Item = PageStream<T>>,
        I::IntoIter: Send + 'static,
    {
        let mut iter = streams.into_iter();
        match iter.next() {
            Some(mut first) => {
                first.rest = Some(Box::new(iter));
                first
            }
            None => PageStream::empty(),
        }
    }

    /// Pages from a vendor's own stream. An error from it ends the stream.
    pub(crate) fn from_stream(stream: BoxStream<'static, Result<Page<T>>>) -> Self {
        let mut s = PageStream::empty();
        s.state = State::Custom(stream);
        s
    }

    /// A stream with no pages.
    pub(crate) fn empty() -> Self {
        let mut s = PageStream::failed(ProtocolError::new("unreachable").into());
        s.state = State::Done;
        s
    }

    /// The first page, for a list's `.send()`. A stream that ends without any page (a range
    /// with no window) is reported as `InvalidInput`, which is the only way that can happen.
    pub(crate) async fn first(mut self) -> Result<Page<T>> {
        use futures::TryStreamExt;
        self.try_next()
            .await?
            .ok_or_else(|| Error::invalid_input("the request covers nothing: no page to fetch"))
    }

    /// A stream that yields `err` once and ends: bad input found before anything was sent.
    pub(crate) fn failed(err: Error) -> Self {
        let fetch: FetchPage<T> = Arc::new(|_| Box::pin(async { unreachable_page() }));
        PageStream {
            fetch,
            state: State::Failed(err),
            seen: SeenTokens::new(),
            prefetch: false,
            rest: None,
        }
    }

    /// Fetch the next page in the background while the current one is consumed. At most one page
    /// is fetched ahead; the fetch is cancelled when the stream is dropped. Needs a Tokio runtime.
    pub fn prefetch(mut self, on: bool) -> Self {
        self.prefetch = on;
        self
    }

    /// A stream of the items of these pages, in order.
    pub fn items(self) -> ItemStream<T> {
        ItemStream {
            pages: self,
            buffer: Vec::new().into_iter(),
        }
    }

    /// Checks the page's next token and decides what comes after it.
    fn after(&mut self, page: &Page<T>) -> State<T> {
        match &page.next {
            None => State::Done,
            Some(PageToken::Cursor(c)) if c.is_empty() => State::Failed(protocol(
                page,
                "the server said there are more pages but sent an empty cursor",
            )),
            Some(token) => {
                // Only server-issued cursors can loop; offsets are computed by the SDK, which
                // may step back on purpose (see the offset reader in `list.rs`).
                let server_token = matches!(token, PageToken::Cursor(_));
                if server_token && !self.seen.insert(token) {
                    return State::Failed(protocol(
                        page,
                        &format!(
                            "the server repeated a page token ({}); stopping instead of looping",
                            describe(token)
                        ),
                    ));
                }
                if self.prefetch {
                    let fut = (self.fetch)(Some(token.clone()));
                    State::Prefetching(Prefetch(tokio::spawn(fut)))
                } else {
                    State::Ready(Some(token.clone()))
                }
            }
        }
    }
}

/// The fetcher of a failed stream is never called; if it were, it would say so instead of panicking.
fn unreachable_page<T>() -> Result<Page<T>> {
    Err(ProtocolError::new("internal: a failed page stream was polled again").into())
}

/// Names a page token in an error. A cursor is server text (it could echo anything, a
/// credential included), so it is named by a fingerprint, never shown.
fn describe(token: &PageToken) -> String {
    use std::hash::{Hash, Hasher};
    match token {
        PageToken::Cursor(c) => {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            c.hash(&mut h);
            format!(
                "a cursor (fingerprint {:016x}, {} bytes)",
                h.finish(),
                c.len()
            )
        }
        PageToken::Offset(o) => format!("offset {o}"),
    }
}

fn protocol<T>(page: &Page<T>, msg: &str) -> Error {
    let mut e = ProtocolError::new(msg);
    e.request_id = page.meta.request_id.clone();
    e.request = page.meta.request.clone();
    e.into()
}

impl<T: Send + 'static> Stream for PageStream<T> {
    type Item = Result<Page<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let result = match &mut this.state {
                State::Ended => return Poll::Ready(None),
                State::Done => {
                    let Some(next) = this.rest.as_mut().and_then(Iterator::next) else {
                        this.state = State::Ended;
                        return Poll::Ready(None);
                    };
                    this.fetch = next.fetch;
                    this.state = next.state;
                    this.seen = next.seen;
                    this.prefetch |= next.prefetch;
                    continue;
                }
                State::Failed(_) => {
                    let State::Failed(e) = std::mem::replace(&mut this.state, State::Ended) else {
                        return Poll::Ready(None);
                    };
                    return Poll::Ready(Some(Err(e)));
                }
                State::Ready(token) => {
                    let fut = (this.fetch)(token.take());
                    this.state = State::Fetching(fut);
                    continue;
                }
                State::Fetching(fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                },
                State::Custom(stream) => match stream.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        this.state = State::Done;
                        continue;
                    }
                    Poll::Ready(Some(Ok(page))) => return Poll::Ready(Some(Ok(page))),
                    Poll::Ready(Some(Err(e))) => {
                        this.state = State::Ended;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                State::Prefetching(handle) => match Pin::new(&mut handle.0).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(r)) => r,
                    Poll::Ready(Err(join)) => Err(Error::Protocol(Box::new(ProtocolError::new(
                        format!("the page prefetch task failed: {join}"),
                    )))),
                },
            };
            return match result {
                Ok(page) => {
                    this.state = this.after(&page);
                    Poll::Ready(Some(Ok(page)))
                }
                Err(e) => {
                    this.state = State::Ended;
                    Poll::Ready(Some(Err(e)))
                }
            };
        }
    }
}

/// A stream of items across pages. Created by a list builder's `.items()` or
/// [`PageStream::items`].
#[must_use = "streams do nothing unless polled"]
pub struct ItemStream<T> {
    pages: PageStream<T>,
    /// The rest of the current page, in place (no item is moved until it is yielded).
    buffer: std::vec::IntoIter<T>,
}

impl<T> fmt::Debug for ItemStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemStream")
            .field("pages", &self.pages)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl<T> Unpin for ItemStream<T> {}

impl<T: Send + 'static> ItemStream<T> {
    /// See [`PageStream::prefetch`].
    pub fn prefetch(mut self, on: bool) -> Self {
        self.pages = self.pages.prefetch(on);
        self
    }
}

impl<T: Send + 'static> Stream for ItemStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.buffer.next() {
                return Poll::Ready(Some(Ok(item)));
            }
            match Pin::new(&mut this.pages).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(page))) => this.buffer = page.items.into_iter(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{StreamExt, TryStreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn meta() -> ResponseMeta {
        ResponseMeta::default()
    }

    /// A cursor-paged list of `n` numbers, `per` a page, counting fetches.
    fn numbers(n: u32, per: u32, calls: Arc<AtomicUsize>) -> FetchPage<u32> {
        Arc::new(move |token| {
            calls.fetch_add(1, Ordering::SeqCst);
            let start = match token {
                None => 0,
                Some(PageToken::Cursor(c)) => c.parse::<u32>().unwrap(),
                Some(PageToken::Offset(_)) => unreachable!(),
            };
            let end = (start + per).min(n);
            let next = (end < n).then(|| PageToken::Cursor(end.to_string()));
            Box::pin(async move { Ok(Page::new((start..end).collect(), next, None, meta())) })
        })
    }

    fn assert_traits<S: Stream + Send + Unpin + 'static>(_: &S) {}

    #[tokio::test]
    async fn items_in_order_lazy_and_complete() {
        let calls = Arc::new(AtomicUsize::new(0));
        let stream = PageStream::new(numbers(1000, 7, calls.clone()), None).items();
        assert_traits(&stream);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "nothing sent before polling"
        );
        let items: Vec<u32> = stream.try_collect().await.unwrap();
        assert_eq!(items, (0..1000).collect::<Vec<_>>());
        assert_eq!(calls.load(Ordering::SeqCst), 143); // ceil(1000 / 7)
    }

    #[tokio::test]
    async fn asks_for_the_next_page_only_when_drained() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut items = PageStream::new(numbers(100, 10, calls.clone()), None).items();
        for _ in 0..10 {
            items.next().await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        items.next().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn prefetch_fetches_one_ahead_and_yields_the_same() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut pages = PageStream::new(numbers(100, 10, calls.clone()), None).prefetch(true);
        let first = pages.next().await.unwrap().unwrap();
        assert_eq!(first.items(), &(0..10).collect::<Vec<_>>()[..]);
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one page ahead, no more");
        let rest: Vec<u32> = pages.map_ok(|p| p.into_items()).try_concat().await.unwrap();
        assert_eq!(rest, (10..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn dropping_the_stream_cancels_the_prefetch() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        let fetch: FetchPage<u32> = Arc::new(move |token| {
            let tx = tx.clone();
            Box::pin(async move {
                if token.is_none() {
                    return Ok(Page::new(
                        vec![1],
                        Some(PageToken::Cursor("a".into())),
                        None,
                        meta(),
                    ));
                }
                struct Guard(tokio::sync::mpsc::UnboundedSender<&'static str>);
                impl Drop for Guard {
                    fn drop(&mut self) {
                        let _ = self.0.send("dropped");
                    }
                }
                let _g = Guard(tx.clone());
                let _ = tx.send("started");
                futures::future::pending::<()>().await;
                unreachable!()
            })
        });
        let mut pages = PageStream::new(fetch, None).prefetch(true);
        pages.next().await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some("started"));
        drop(pages);
        assert_eq!(rx.recv().await, Some("dropped"));
    }

    #[tokio::test]
    async fn repeated_cursor_is_an_error_not_a_loop() {
        let fetch: FetchPage<u32> = Arc::new(|_| {
            Box::pin(async {
                Ok(Page::new(
                    vec![1],
                    Some(PageToken::Cursor("same".into())),
                    None,
                    meta(),
                ))
            })
        });
        let got: Vec<Result<u32>> = PageStream::new(fetch, None).items().collect().await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(*got[0].as_ref().unwrap(), 1);
        assert_eq!(*got[1].as_ref().unwrap(), 1);
        let err = got[2].as_ref().unwrap_err();
        assert!(matches!(err, Error::Protocol(_)), "{err}");
        let shown = err.to_string();
        assert!(
            shown.contains("repeated a page token (a cursor (fingerprint ")
                && shown.contains(", 4 bytes)"),
            "{shown}"
        );
        // A cursor can carry session state: it is named, never shown.
        assert!(!shown.contains("same"), "{shown}");
    }

    #[tokio::test]
    async fn empty_cursor_with_more_is_an_error() {
        let fetch: FetchPage<u32> = Arc::new(|_| {
            Box::pin(async {
                Ok(Page::new(
                    vec![1],
                    Some(PageToken::Cursor(String::new())),
                    None,
                    meta(),
                ))
            })
        });
        let got: Vec<Result<u32>> = PageStream::new(fetch, None).items().collect().await;
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Err(Error::Protocol(_))));
    }

    #[tokio::test]
    async fn chain_concatenates_lazily_and_an_error_ends_everything() {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let windows = (0..3u32).map(move |w| {
            counter.fetch_add(1, Ordering::SeqCst);
            let fetch: FetchPage<u32> = Arc::new(move |token| {
                Box::pin(async move {
                    let p = match token {
                        None => Page::new(
                            vec![w * 10, w * 10 + 1],
                            Some(PageToken::Cursor("c".into())),
                            None,
                            meta(),
                        ),
                        Some(_) => Page::new(vec![w * 10 + 2], None, None, meta()),
                    };
                    Ok(p)
                })
            });
            PageStream::new(fetch, None)
        });
        let mut items = PageStream::chain(windows).items();
        assert_eq!(
            built.load(Ordering::SeqCst),
            1,
            "only the first window is built up front"
        );
        let mut got = Vec::new();
        while let Some(i) = items.try_next().await.unwrap() {
            got.push(i);
        }
        assert_eq!(got, vec![0, 1, 2, 10, 11, 12, 20, 21, 22]);
        assert_eq!(built.load(Ordering::SeqCst), 3);

        // The same cursor in different windows is not a repeat; an error in window 2 ends it all.
        let windows = (0..3u32).map(|w| {
            let fetch: FetchPage<u32> = Arc::new(move |_| {
                Box::pin(async move {
                    if w == 1 {
                        Err(Error::invalid_input("window 1 failed"))
                    } else {
                        Ok(Page::new(vec![w], None, None, meta()))
                    }
                })
            });
            PageStream::new(fetch, None)
        });
        let got: Vec<Result<u32>> = PageStream::chain(windows).items().collect().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].is_err());
        let none: Vec<Result<u32>> = PageStream::chain(Vec::new()).items().collect().await;
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn error_mid_stream_is_yielded_once_and_ends_it() {
        let fetch: FetchPage<u32> = Arc::new(|token| {
            Box::pin(async move {
                match token {
                    None => Ok(Page::new(
                        vec![1, 2],
                        Some(PageToken::Offset(2)),
                        Some(10),
                        meta(),
                    )),
                    Some(_) => Err(Error::invalid_input("boom")),
                }
            })
        });
        let got: Vec<Result<u32>> = PageStream::new(fetch, None).items().collect().await;
        assert_eq!(got.len(), 3);
        assert!(matches!(got[2], Err(Error::InvalidInput(_))));
    }
}
