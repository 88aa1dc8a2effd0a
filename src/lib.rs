//! # iot-sdk
//!
//! A typed, async Rust client for three IoT platform REST APIs, in one crate:
//!
//! | module | vendor | auth | paging |
//! |---|---|---|---|
//! | [`sgt`] | SGT Systems: devices, telemetry, alarms, reports, webhooks, OAuth2 | bearer key or OAuth2 token, `X-SGT-Tenant` | cursor, `limit` ≤ 500 |
//! | [`sepolo`] | Sepolo: assets, devices, PointGuard telemetry, incidents, service, commercial, reporting | `X-Sepolo-Api-Key` or bearer | cursor, `pageSize` ≤ 500 |
//! | [`siliconwit`] | SiliconWit: devices, telemetry, alerts, account | bearer `swk_…` | offset, `limit` ≤ 100 |
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use iot_sdk::sgt::{Client, DeviceStatus};
//!
//! # async fn demo() -> iot_sdk::Result<()> {
//! let sgt = Client::builder()
//!     .api_key(std::env::var("SGT_API_KEY").unwrap_or_default())
//!     .tenant("acme-industries")
//!     .build()?;
//! let device = sgt.devices().get("dev_42").await?;
//! let mut online = sgt.devices().list().status(DeviceStatus::Online).limit(200).items();
//! while let Some(d) = online.try_next().await? {
//!     println!("{} {}", d.id, d.name);
//! }
//! println!("rate limit: {:?}", sgt.last_rate_limit());
//! # let _ = device; Ok(()) }
//! ```
//!
//! Every vendor module stands on one core:
//!
//! - [`Error`]: one error type that names the request, status, vendor code, message and request
//!   id; never a key.
//! - [`ApiKey`] and [`Auth`]: keys as secrets, sent as a bearer token or a named header, or
//!   through a [`TokenSource`] (OAuth2).
//! - [`RetryPolicy`] and [`RetryBudget`]: which failures retry for which methods, full-jitter
//!   exponential delays, `Retry-After` with a cap, a total time budget and a client-wide token
//!   bucket against retry storms.
//! - [`RateLimit`]: the rate-limit headers of every response, reset computed against the
//!   server's `Date`; optional client-side pacing with the vendor's [`Bucket`]s, decided by a
//!   [`Limiter`]: in-process by default, or shared by many processes through Redis.
//! - [`List`]: every list of every vendor, one generic type over the vendor's typed filter;
//!   cursor, offset, windowed and concurrent-offset paging on one engine.
//! - [`Page`], [`PageStream`], [`ItemStream`]: the pages and items of a list as lazy `Stream`s.
//! - [`Call`]: a prepared request: `.send()`, `.send_with_meta()` ([`ResponseMeta`]) or `.await`.
//! - [`intercept`]: your own code around every call and attempt ([`intercept::Interceptor`]);
//!   [`RetryRule`]: your own retry decisions, per client and per call.
//! - [`raw`]: `client.raw()`, endpoints the SDK does not model yet, with everything above.
//! - Tracing spans `iot_sdk.request` and `iot_sdk.attempt` with OpenTelemetry HTTP client field
//!   names (`http.request.method`, `server.address`, `url.path`, `http.response.status_code`,
//!   `http.request.resend_count`, `error.type`), at `DEBUG`.
//!
//! ## Tracing
//!
//! Every call is a `DEBUG` span `iot_sdk.request` and every attempt a span `iot_sdk.attempt`
//! inside it, with the field names of the OpenTelemetry HTTP client semantic conventions, so a
//! `tracing-opentelemetry` layer exports them as HTTP client spans; any subscriber shows them:
//!
//! ```
//! tracing_subscriber::fmt()
//!     .with_max_level(tracing::Level::DEBUG)
//!     .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
//!     .init();
//! // Each call now logs, on close: iot_sdk.request{http.request.method=GET server.address=…
//! //   url.path=/v1/devices/dev_42 http.response.status_code=200 http.request.resend_count=0 …}
//! ```
//!
//! Without API keys, the simulators of the companion crate `iot-sdk-sim` serve every endpoint of
//! the three APIs on 127.0.0.1, for examples and for your own tests.
//!
//! ## Feature flags
//!
//! | feature | default | what it enables |
//! |---|---|---|
//! | `sgt` | yes | the SGT Systems client |
//! | `sepolo` | yes | the Sepolo client |
//! | `siliconwit` | yes | the SiliconWit client |
//! | `rustls` | yes | TLS through rustls |
//! | `native-tls` | no | TLS through the platform's library |
//! | `store-forward` | no | the SGT ingest sink's durable SQLite queue (`sgt::Queue`) |
//! | `fleet` | yes | [`fleet`]: one fleet across the vendors, resumable CSV exports |
//! | `redis` | no | `RedisLimiter`: one key's pacing shared by many processes through Redis |
#![deny(missing_docs)]
#![forbid(unsafe_code)]
// Numbers from a server or a caller (offsets, totals, counts, header values) must never make an
// operation panic on overflow: every integer operation in the library is checked or saturating.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod auth;
mod call;
mod env;
mod envelope;
pub mod error;
pub mod intercept;
pub mod limiter;
mod list;
pub mod paging;
pub mod rate_limit;
pub mod raw;
pub mod retry;
mod timestamp;
pub(crate) mod transport;
mod vendor;
mod window;

// The core has no caller without a vendor: a build with none is a mistake, said plainly.
#[cfg(not(any(feature = "sgt", feature = "sepolo", feature = "siliconwit")))]
compile_error!("iot-sdk needs at least one vendor feature: `sgt`, `sepolo` or `siliconwit`");

#[cfg(feature = "sgt")]
#[cfg_attr(docsrs, doc(cfg(feature = "sgt")))]
pub mod sgt;

#[cfg(feature = "sepolo")]
#[cfg_attr(docsrs, doc(cfg(feature = "sepolo")))]
pub mod sepolo;

#[cfg(feature = "siliconwit")]
#[cfg_attr(docsrs, doc(cfg(feature = "siliconwit")))]
pub mod siliconwit;

#[cfg(feature = "fleet")]
#[cfg_attr(docsrs, doc(cfg(feature = "fleet")))]
pub mod fleet;

pub use auth::{ApiKey, Auth, TokenSource};
pub use call::{Call, CallFuture};
pub use error::{
    ApiError, DecodeError, Error, ErrorCode, InterceptorError, ProtocolError, RequestInfo, Result,
    TransportError, TransportErrorKind,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use limiter::RedisLimiter;
pub use limiter::{Limiter, LimiterFallback, LocalLimiter};
pub use list::List;
pub use paging::{ItemStream, Page, PageStream, PageToken};
pub use rate_limit::{AllCalls, Bucket, BucketKind, PaceBucket, RateLimit};
pub use retry::{RetryBudget, RetryPolicy, RetryRule};
pub use transport::ResponseMeta;

#[cfg(test)]
mod tests;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
