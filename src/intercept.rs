//! Interceptors: your own code around every call and every attempt, on any vendor's client.
//!
//! An [`Interceptor`] is registered on a client's builder (`.interceptor(..)`, on
//! `sgt::ClientBuilder`, `sepolo::ClientBuilder` and `siliconwit::ClientBuilder` alike) and is
//! called by the core for every request that client sends, modelled or
//! [raw](crate::raw):
//!
//! | hook | when | sees |
//! |---|---|---|
//! | [`Interceptor::before_attempt`] | before each attempt (before any client-side pacing wait) | method, path, attempt number, the headers **without** the credential, which it may change |
//! | [`Interceptor::before_send_sensitive`] | right before each attempt goes on the wire | the request **as sent**: URL with query, credential header. Sensitive: see below |
//! | [`Interceptor::after_attempt`] | after each response or transport failure | status, response headers (credentials stripped), elapsed time, the error, whether a retry follows and after which delay |
//! | [`Interceptor::after_call`] | once, when the call ends | the outcome, the number of attempts, the total time |
//!
//! **Order**: interceptors run in the order they were registered, for every hook. The first
//! one that fails stops the hook chain.
//!
//! **Failures**: a hook that returns an error or panics fails the call with
//! [`Error::Interceptor`] (the panic is caught; nothing the client shares is locked while a hook
//! runs, so nothing is poisoned and the client stays usable). A failing `after_call` fails a call
//! that had succeeded; when the call had already failed, its own error is kept and the hook's is
//! logged.
//!
//! **Why the hooks are synchronous**: they run on the hot path of every attempt, and a
//! synchronous method costs nothing when it does nothing (no boxed future per attempt). Work
//! that needs to wait (exporting metrics) belongs on a channel or a background task the
//! interceptor feeds. A client without interceptors pays for none of this: no allocation,
//! clone or call per attempt.
//!
//! **Credentials**: `before_attempt` sees the headers before the SDK adds the credential, and
//! `after_attempt` sees response headers with `Authorization`, `X-Sepolo-Api-Key`,
//! `Set-Cookie` and any header whose value holds the key removed. Only
//! `before_send_sensitive` sees the request as sent, key included: do not log it.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use iot_sdk::intercept::{AttemptEnd, AttemptStart, HookResult, Interceptor};
//!
//! /// Adds a correlation header and counts the retries.
//! #[derive(Default)]
//! struct Tagging {
//!     retries: AtomicU64,
//! }
//!
//! impl Interceptor for Tagging {
//!     fn name(&self) -> &str {
//!         "tagging"
//!     }
//!     fn before_attempt(&self, a: &mut AttemptStart<'_>) -> HookResult {
//!         a.headers_mut().insert("x-correlation-id", "job-42".parse()?);
//!         Ok(())
//!     }
//!     fn after_attempt(&self, a: &AttemptEnd<'_>) -> HookResult {
//!         if a.retry_delay().is_some() {
//!             self.retries.fetch_add(1, Ordering::Relaxed);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let client = iot_sdk::sgt::Client::builder()
//!     .api_key("sgt_live_example")
//!     .interceptor(Tagging::default())
//!     .build()?;
//! # let _ = client; Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::auth::Redactor;
use crate::error::{Error, InterceptorError, RequestInfo};
use crate::transport::ResponseMeta;

/// What a hook returns: `Err` fails the call with [`Error::Interceptor`].
pub type HookResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Code run around every call and attempt of a client. Every method has a default that does
/// nothing; implement those you need. See the [module docs](self) for order and failures.
pub trait Interceptor: Send + Sync + 'static {
    /// A name for errors and logs (by default the type's name).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Before each attempt: may add, change or remove headers. The credential is not among
    /// them (it is added after this hook).
    fn before_attempt(&self, attempt: &mut AttemptStart<'_>) -> HookResult {
        let _ = attempt;
        Ok(())
    }

    /// **Sensitive**: the request exactly as it goes on the wire, with the query string and the
    /// credential header in clear. For request signing or debugging against a local server;
    /// never log what it sees.
    fn before_send_sensitive(&self, request: &reqwest::Request) -> HookResult {
        let _ = request;
        Ok(())
    }

    /// After each attempt, whether it got a response or failed before one.
    fn after_attempt(&self, attempt: &AttemptEnd<'_>) -> HookResult {
        let _ = attempt;
        Ok(())
    }

    /// Once, when the call ends, with its outcome.
    fn after_call(&self, call: &CallEnd<'_>) -> HookResult {
        let _ = call;
        Ok(())
    }
}

/// An attempt about to be sent, for [`Interceptor::before_attempt`].
#[derive(Debug)]
pub struct AttemptStart<'a> {
    pub(crate) vendor: &'static str,
    pub(crate) request: &'a RequestInfo,
    pub(crate) attempt: u32,
    pub(crate) headers: &'a mut HeaderMap,
}

impl AttemptStart<'_> {
    /// The vendor: `sgt`, `sepolo` or `siliconwit`.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// The method and path (no query).
    pub fn request(&self) -> &RequestInfo {
        self.request
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The headers to send, without the credential.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The headers to send, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.headers
    }
}

/// How one attempt ended, for [`Interceptor::after_attempt`].
#[derive(Debug)]
pub struct AttemptEnd<'a> {
    pub(crate) vendor: &'static str,
    pub(crate) request: &'a RequestInfo,
    pub(crate) attempt: u32,
    pub(crate) status: Option<u16>,
    pub(crate) headers: Option<&'a HeaderMap>,
    pub(crate) elapsed: Duration,
    pub(crate) error: Option<&'a Error>,
    pub(crate) retry_delay: Option<Duration>,
}

impl AttemptEnd<'_> {
    /// The vendor: `sgt`, `sepolo` or `siliconwit`.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// The method and path (no query).
    pub fn request(&self) -> &RequestInfo {
        self.request
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The response status; `None` when the attempt failed before a response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The response headers, credentials stripped; `None` without a response.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers
    }

    /// From sending the request to having read the response body (or failing).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The attempt's error (an error status, a transport failure); `None` on success.
    pub fn error(&self) -> Option<&Error> {
        self.error
    }

    /// `Some(delay)` when the SDK will try again after `delay`; `None` when this attempt was
    /// the last (success, or a failure not retried).
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_delay
    }
}

/// How a call ended, for [`Interceptor::after_call`].
#[derive(Debug)]
pub struct CallEnd<'a> {
    pub(crate) vendor: &'static str,
    pub(crate) request: &'a RequestInfo,
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
    pub(crate) outcome: std::result::Result<&'a ResponseMeta, &'a Error>,
}

impl CallEnd<'_> {
    /// The vendor: `sgt`, `sepolo` or `siliconwit`.
    pub fn vendor(&self) -> &'static str {
        self.vendor
    }

    /// The method and path (no query).
    pub fn request(&self) -> &RequestInfo {
        self.request
    }

    /// Attempts made (0 when a hook failed before the first was sent).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// From the start of the first attempt to the end of the last, retry waits included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The success response's metadata, or the call's error. (A body that then fails to decode
    /// is reported by the call itself, not here.)
    pub fn outcome(&self) -> std::result::Result<&ResponseMeta, &Error> {
        self.outcome
    }
}

/// A client's interceptors, in registration order. Empty costs nothing.
#[derive(Clone, Default)]
pub(crate) struct Interceptors(Arc<[Arc<dyn Interceptor>]>);

impl fmt::Debug for Interceptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|i| i.name()))
            .finish()
    }
}

impl Interceptors {
    pub(crate) fn new(list: Vec<Arc<dyn Interceptor>>) -> Self {
        Interceptors(list.into())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs `hook` on each interceptor in order; the first error or panic is the call's error.
    pub(crate) fn run(
        &self,
        hook: &'static str,
        request: &RequestInfo,
        redactor: &Redactor,
        mut f: impl FnMut(&dyn Interceptor) -> HookResult,
    ) -> Result<(), Error> {
        for i in self.0.iter() {
            guarded(i.name(), hook, request, redactor, || f(i.as_ref()))?;
        }
        Ok(())
    }
}

/// Runs caller code under `catch_unwind`: an error or a panic becomes [`Error::Interceptor`].
pub(crate) fn guarded<T>(
    name: &str,
    hook: &'static str,
    request: &RequestInfo,
    redactor: &Redactor,
    f: impl FnOnce() -> std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<T, Error> {
    let (message, panicked) = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(e)) => (e.to_string(), false),
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            (text, true)
        }
    };
    let e = InterceptorError {
        name: redactor.text(name),
        hook,
        message: crate::error::snippet(&redactor.text(&message), 500),
        panicked,
        request: request.clone(),
    };
    tracing::warn!(interceptor = %e.name, hook, panicked, "an interceptor failed the call");
    Err(e.into())
}

/// Headers that carry a credential, whatever their value.
static CREDENTIAL_HEADERS: [reqwest::header::HeaderName; 4] = [
    reqwest::header::AUTHORIZATION,
    reqwest::header::PROXY_AUTHORIZATION,
    reqwest::header::HeaderName::from_static("x-sepolo-api-key"),
    reqwest::header::SET_COOKIE,
];

/// The response headers an interceptor and [`ResponseMeta::headers`] may see: without
/// credential headers, and without any header whose value holds a key the request carried.
/// Changes the map in place. The usual response has neither: one pass over the headers finds
/// that, and nothing is looked up, removed or allocated.
pub(crate) fn strip_credentials(headers: &mut HeaderMap, redactor: &Redactor) {
    let dirty = headers
        .iter()
        .any(|(n, v)| CREDENTIAL_HEADERS.contains(n) || redactor.finds_in(v.as_bytes()));
    if !dirty {
        return;
    }
    for name in &CREDENTIAL_HEADERS {
        headers.remove(name);
    }
    let leaks = headers.iter().any(|(_, v)| redactor.finds_in(v.as_bytes()));
    if leaks {
        let names: Vec<reqwest::header::HeaderName> = headers
            .iter()
            .filter(|(_, v)| redactor.finds_in(v.as_bytes()))
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            headers.remove(n);
        }
    }
}
