//! A prepared single-request call: `.send()`, `.send_with_meta()`, or just `.await`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::IF_MATCH;

use crate::error::{Error, Result};
use crate::retry::{RetryPolicy, RetryRules};
use crate::transport::{Request, ResponseMeta, Transport};

/// Per-call overrides of the client's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallOptions {
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) retry_rules: RetryRules,
    pub(crate) timeout: Option<Duration>,
}

impl CallOptions {
    pub(crate) fn apply(&self, mut req: Request) -> Request {
        req.set_options(self.retry.as_ref(), &self.retry_rules, self.timeout);
        req
    }
}

/// Sends a request and turns the response into `T` (the vendor's envelope handling).
pub(crate) type Runner<T> = fn(Transport, Request) -> BoxFuture<'static, Result<(T, ResponseMeta)>>;

/// One API call, ready to send. Nothing is sent until it is awaited.
///
/// ```no_run
/// # async fn demo(call: iot_sdk::Call<u64>) -> iot_sdk::Result<()> {
/// use std::time::Duration;
/// let value = call.with_timeout(Duration::from_secs(5)).send().await?;
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is sent or awaited"]
pub struct Call<T> {
    transport: Transport,
    request: Result<Request>,
    opts: CallOptions,
    run: Runner<T>,
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("request", &self.request.as_ref().map(Request::describe))
            .field("opts", &self.opts)
            .finish()
    }
}

impl<T: Send + 'static> Call<T> {
    /// A call of `request` (or the error building it produced, returned when sent).
    pub(crate) fn new(transport: Transport, request: Result<Request>, run: Runner<T>) -> Self {
        Call {
            transport,
            request,
            opts: CallOptions::default(),
            run,
        }
    }

    call_options!();

    /// Sends `If-Match: <etag>`: the call then succeeds only if the resource's ETag is still
    /// `etag`, and otherwise fails with a conflict ([`crate::Error::is_conflict`]). A conditional
    /// call is safe to repeat, so it is retried like a `PUT`. An ETag that is not a valid header
    /// value is an [`crate::Error::InvalidInput`] when the call is sent.
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        let etag = etag.into();
        self.request = self
            .request
            .and_then(|r| r.header(IF_MATCH, &etag))
            .map(|r| r.idempotent(true));
        self
    }

    /// Sends the call.
    pub fn send(self) -> CallFuture<T> {
        CallFuture(match self.request {
            Ok(req) => Running::Sending((self.run)(self.transport, self.opts.apply(req))),
            Err(e) => Running::Refused(Some(e)),
        })
    }

    /// Sends the call and also returns the response's metadata (request id, rate limit, ETag).
    pub async fn send_with_meta(self) -> Result<(T, ResponseMeta)> {
        let req = self.opts.apply(self.request?);
        (self.run)(self.transport, req).await
    }
}

impl<T: Send + 'static> IntoFuture for Call<T> {
    type Output = Result<T>;
    type IntoFuture = CallFuture<T>;

    fn into_future(self) -> Self::IntoFuture {
        self.send()
    }
}

/// The future of a sent [`Call`] ([`Call::send`], or `.await` on the call): its value, without
/// the response's metadata.
///
/// It is the request's own future, not another boxed layer around it.
#[must_use = "a call does nothing until it is awaited"]
pub struct CallFuture<T>(Running<T>);

enum Running<T> {
    /// The request was refused before sending (an invalid id, say); the error, until taken.
    Refused(Option<Error>),
    Sending(BoxFuture<'static, Result<(T, ResponseMeta)>>),
}

impl<T> fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallFuture")
    }
}

impl<T> Future for CallFuture<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Running::Sending(f) => f.as_mut().poll(cx).map(|r| r.map(|(v, _)| v)),
            Running::Refused(e) => Poll::Ready(Err(e.take().unwrap_or_else(|| {
                Error::invalid_input("this call's future was polled again after it completed")
            }))),
        }
    }
}

/// Makes sure `Call` futures stay `Send`.
#[allow(dead_code)]
fn assert_send<T: Send + 'static>(c: Call<T>) -> impl Future<Output = Result<T>> + Send {
    c.send()
}
