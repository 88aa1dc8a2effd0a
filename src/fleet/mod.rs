//! One fleet across the three vendors: common models, one trait the three clients implement,
//! a [`Fleet`] that streams the union of any number of clients, and resumable exports.
//!
//! ```no_run
//! use chrono::{Duration, Utc};
//! use futures::StreamExt;
//! use iot_sdk::fleet::{Fleet, MetricFilter, Source};
//! use iot_sdk::{sepolo, sgt, siliconwit};
//!
//! # async fn demo() -> iot_sdk::Result<()> {
//! let fleet = Fleet::new()
//!     .with_source(Source::new(sgt::Client::from_env()?).metrics(MetricFilter::only(["power_kw"])))
//!     .with(sepolo::Client::from_env()?)
//!     .with(siliconwit::Client::from_env()?);
//! let mut devices = fleet.devices();
//! while let Some(item) = devices.next().await {
//!     match item {
//!         Ok(d) => println!("{} {} {} {:?}", d.vendor, d.id, d.status, d.name),
//!         Err(failed) => eprintln!("{failed}"), // one source failed; the others go on
//!     }
//! }
//! let to = Utc::now();
//! let report = fleet.export(to - Duration::days(7), to).csv("fleet-export").await?;
//! println!("{} readings, {} failures", report.rows, report.failures.len());
//! # Ok(()) }
//! ```
//!
//! # The trait
//!
//! [`FleetSource`] is implemented by `sgt::Client`, `sepolo::Client` and `siliconwit::Client`
//! (each with its vendor feature), on each vendor's own list engine, windowing and paging, so
//! each client's retries and rate limits (and pacing, if enabled) apply unchanged.
//!
//! | method | SGT | Sepolo | SiliconWit |
//! |---|---|---|---|
//! | [`FleetSource::fleet_devices`] | `GET /devices`, `limit` 500 | `GET /devices`, `pageSize` 500 | `GET /devices`, `limit` 100, offset |
//! | [`FleetSource::fleet_readings`] | `GET /telemetry` per named metric, 31-day windows | `GET /devices/{id}/telemetry`, 31-day windows, `metrics` hint | one `GET /devices/{id}/telemetry` (`range` covering `from`, `limit` 1,000) |
//! | [`FleetSource::fleet_latest`] | the last reading of each named metric in the last 24 h, else 31 days | the last value of each metric in the last 24 h, else 31 days | `GET /devices/{id}/telemetry/latest` |
//! | metric filter | required: SGT is queried per metric | server hint plus a client-side filter | client-side |
//!
//! # How each vendor maps
//!
//! Devices:
//!
//! | field | SGT `Device` | Sepolo `Device` | SiliconWit `Device` |
//! |---|---|---|---|
//! | `id` | `id` | `deviceId` | `id` |
//! | `name` | `name` | `deviceName` | `name` |
//! | `status` | `online` → online, `offline` → offline, `provisioning` → inactive, other → unknown | `statusText` (undocumented, sent by the simulator): `Online` → online, `Offline` → offline, `Maintenance`/`Inactive`/`Disabled` → inactive; else unknown | `paused` → inactive; `active` and `last_seen` within [`SILICONWIT_ONLINE_WITHIN`] → online, else offline; other → unknown |
//! | `vendor_status` | the status as sent | `statusText`, else `status` (a number) | the status as sent |
//! | `last_seen` | none (SGT has no such field) | `lastSeenUtc` when sent | `last_seen` |
//! | `site` | `site` | `assetId` when sent | none |
//!
//! Readings:
//!
//! | field | SGT `Reading` | Sepolo `TelemetrySample` | SiliconWit `Reading` |
//! |---|---|---|---|
//! | one reading per | reading | non-null numeric metric of a sample: `current`, then every other numeric field (`temperature`, `humidity`, …) in name order; cycle metadata (`cycleId`, `cycleSample*`, `telemetryType`) is not a metric | non-null entry of `data`, in name order; non-numbers (`"door": "open"`) too, with `value` empty and `raw` set |
//! | `metric` | `metric` | the field name | the key in `data` |
//! | `ts` | `ts` | `stamp` | `time` |
//! | `value` | `value` | the number | the number, or a numeric string |
//! | `unit` | from the metric name's suffix (`_kw` kW, `_w` W, `_kwh` kWh, `_v` V, `_a` A, `_c` °C, `_pct` %, `_hz` Hz) | `current`: A (the spec); others from the suffix | from the suffix |
//!
//! Within one device and range, readings come in the vendor's time order: SGT metric after
//! metric (each in time order), Sepolo and SiliconWit sample after sample (SiliconWit's newest
//! first answer is put in time order).
//!
//! SiliconWit's telemetry has no time range, only a look-back (`1h` … `30d`) from now, capped to
//! the plan's retention, and at most 1,000 readings: a range it cannot serve whole (older than
//! the look-back, or with more than 1,000 readings between its start and now) fails with an
//! [`OutOfReach`] error (in [`Error::Vendor`]) rather than a silent gap.
//!
//! # The union and the export
//!
//! [`Fleet`] streams devices and readings of every source at once, with bounded concurrency
//! across sources; an item is `Err(`[`SourceError`]`)` when one source (or one device) failed,
//! and the stream goes on with the others: the caller decides whether to stop. [`Export`] writes
//! readings to CSV (or, with the feature `parquet`, to Parquet) with a checkpoint that lets a
//! run after a crash continue where the last one stopped; a window a vendor can never serve is
//! reported as unreachable, not retried forever; see [`Export`].

mod export;
mod model;
mod union;

#[cfg(feature = "sepolo")]
mod sepolo;
#[cfg(feature = "sgt")]
mod sgt;
#[cfg(feature = "siliconwit")]
mod siliconwit;

mod checkpoint;
#[cfg(feature = "parquet")]
mod parquet_sink;

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::{Error, Result};

#[doc(hidden)]
pub use export::{CrashPhase, CrashPoint};
pub use export::{
    Export, ExportFormat, ExportProgress, ExportReport, UnitFailure, UnreachableUnit,
};
pub use model::{
    FleetDevice, FleetReading, FleetStatus, MetricFilter, VendorDevice, VendorKind, VendorReading,
};
pub use union::{DeviceLatest, Fleet, FleetStream, Source, SourceError, Sourced};

/// A SiliconWit device that is `active` counts as online when it reported within this long.
pub const SILICONWIT_ONLINE_WITHIN: TimeDelta = TimeDelta::minutes(30);

/// What a vendor client offers a fleet: its devices, the latest readings of a device, and a
/// device's readings over any range, in the common models. Implemented by the three clients.
pub trait FleetSource: Send + Sync + 'static {
    /// The vendor.
    fn vendor_kind(&self) -> VendorKind;

    /// Every device, lazily, page after page.
    fn fleet_devices(&self) -> BoxStream<'static, Result<FleetDevice>>;

    /// The latest reading of each metric of a device (that passes `metrics`).
    fn fleet_latest(
        &self,
        device_id: &str,
        metrics: &MetricFilter,
    ) -> BoxFuture<'static, Result<Vec<FleetReading>>>;

    /// A device's readings in `[from, to)`, lazily, in the vendor's order (see the module docs).
    fn fleet_readings(
        &self,
        device_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        metrics: &MetricFilter,
    ) -> BoxStream<'static, Result<FleetReading>>;
}

/// A range of readings a vendor cannot serve whole (SiliconWit: older than its look-back, or
/// more than 1,000 readings between its start and now). In [`Error::Vendor`]; get it with
/// `err.vendor::<OutOfReach>()`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutOfReach {
    /// The vendor.
    pub vendor: VendorKind,
    /// The device.
    pub device_id: String,
    /// The start of the range asked for.
    pub from: DateTime<Utc>,
    /// The oldest instant whose readings the answer covered.
    pub reachable_from: DateTime<Utc>,
}

impl fmt::Display for OutOfReach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cannot serve the readings of {} from {}: its answer reaches back to {} only",
            self.vendor, self.device_id, self.from, self.reachable_from
        )
    }
}

impl std::error::Error for OutOfReach {}

impl From<OutOfReach> for Error {
    fn from(e: OutOfReach) -> Self {
        Error::Vendor(Box::new(e))
    }
}

/// The look-backs of [`latest_by_lookback`]: the last day, then the 31 days before.
#[allow(
    dead_code,
    reason = "used by some vendors and not others; dead only in a build without them"
)]
const LATEST_LOOKBACK: [TimeDelta; 2] = [TimeDelta::days(1), TimeDelta::days(31)];

/// The latest readings of a vendor without a "latest" endpoint: `window(from, to)` reads what
/// to keep of one window, first the last day, then the 31 days before; the first window with
/// any reading answers (none in either: empty).
#[allow(
    dead_code,
    reason = "used by some vendors and not others; dead only in a build without them"
)]
pub(crate) async fn latest_by_lookback<T, F, Fut>(mut window: F) -> Result<Vec<T>>
where
    F: FnMut(DateTime<Utc>, DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>>>,
{
    let mut to = Utc::now();
    for back in LATEST_LOOKBACK {
        let from = to
            .checked_sub_signed(back)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let found = window(from, to).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        to = from;
    }
    Ok(Vec::new())
}

/// A failed stream of one item.
#[allow(
    dead_code,
    reason = "used by some vendors and not others; dead only in a build without them"
)]
pub(crate) fn failed<T: Send + 'static>(e: Error) -> BoxStream<'static, Result<T>> {
    use futures::StreamExt;
    futures::stream::once(futures::future::ready(Err(e))).boxed()
}
