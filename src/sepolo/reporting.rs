//! Ready-made aggregates: `reporting/assets-summary`, `reporting/service-performance` and
//! `reporting/telemetry-daily` (a bare JSON array, not an envelope).

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Client, DeviceId, Wire, api_path, stamp};
use crate::call::{Call, CallOptions};
use crate::envelope::{self, Envelope};
use crate::error::Result;
use crate::transport::Request;
use crate::window::{check_range, windows};

/// The longest window one reporting request accepts.
pub const MAX_REPORTING_WINDOW: TimeDelta = TimeDelta::days(366);

/// Asset counts and maintenance cost totals (`PublicApiAssetsSummaryDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssetsSummary {
    /// All assets.
    pub total_assets: u64,
    /// Active assets.
    pub active_assets: u64,
    /// Inactive assets.
    pub inactive_assets: u64,
    /// Assets with a device.
    pub with_devices: u64,
    /// Assets overdue for service.
    pub overdue_service: u64,
    /// Total maintenance cost.
    pub total_maintenance_cost: f64,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Visit counts and cost totals for a window (`PublicApiServicePerformanceDto`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServicePerformance {
    /// Visits in the window.
    pub total_visits: u64,
    /// Completed visits.
    pub completed_visits: u64,
    /// Open visits.
    pub open_visits: u64,
    /// Estimated cost.
    pub estimated_cost: f64,
    /// Actual cost.
    pub actual_cost: f64,
}

impl ServicePerformance {
    /// Adds another window's totals to this one (windows do not overlap, so counts and costs
    /// add up).
    fn add(&mut self, other: &ServicePerformance) {
        self.total_visits = self.total_visits.saturating_add(other.total_visits);
        self.completed_visits = self.completed_visits.saturating_add(other.completed_visits);
        self.open_visits = self.open_visits.saturating_add(other.open_visits);
        self.estimated_cost += other.estimated_cost;
        self.actual_cost += other.actual_cost;
    }
}

/// One device-day of aggregated telemetry (`PublicApiTelemetryDailyDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TelemetryDaily {
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The day (midnight UTC).
    #[serde(deserialize_with = "crate::timestamp::required")]
    pub date: DateTime<Utc>,
    /// Samples that day.
    #[serde(default)]
    pub samples: Option<u64>,
    /// Mean temperature that day.
    #[serde(default)]
    pub average_temperature: Option<f64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Reporting endpoints. Get one from [`Client::reporting`].
#[derive(Debug, Clone)]
pub struct Reporting {
    client: Client,
}

impl Reporting {
    pub(crate) fn new(client: Client) -> Self {
        Reporting { client }
    }

    /// `GET /api/v1/reporting/assets-summary`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let s = sepolo.reporting().assets_summary().await?;
    /// println!("{} of {} assets overdue", s.overdue_service, s.total_assets);
    /// # Ok(()) }
    /// ```
    pub fn assets_summary(&self) -> Call<AssetsSummary> {
        self.client.get(&["reporting", "assets-summary"])
    }

    /// `GET /api/v1/reporting/service-performance`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// let to = Utc::now();
    /// let perf = sepolo.reporting().service_performance().between(to - Duration::days(365), to).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn service_performance(&self) -> WindowedReport<ServicePerformance> {
        WindowedReport::new(&self.client, &["reporting", "service-performance"])
    }

    /// `GET /api/v1/reporting/telemetry-daily`: a bare JSON array.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// let to = Utc::now();
    /// let days = sepolo.reporting().telemetry_daily()
    ///     .between(to - Duration::days(30), to)
    ///     .device_id("SEP-DEVICE-001")
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn telemetry_daily(&self) -> WindowedReport<Vec<TelemetryDaily>> {
        WindowedReport::new(&self.client, &["reporting", "telemetry-daily"])
    }
}

/// A reporting call with an optional `[fromUtc, toUtc)` range of at most 366 days a request.
/// Longer ranges are sent window by window and combined ([`Combine`]).
#[derive(Debug, Clone)]
#[must_use = "a report does nothing until sent"]
pub struct WindowedReport<T> {
    client: Client,
    segments: Vec<String>,
    params: Vec<(&'static str, String)>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    opts: CallOptions,
    _t: std::marker::PhantomData<fn() -> T>,
}

/// How the results of several windows combine into one.
pub trait Combine: Sized {
    /// Folds the per-window results, in time order, into one.
    fn combine(parts: Vec<Self>) -> Self;
}

impl Combine for ServicePerformance {
    /// Sums the counts and costs of the windows.
    fn combine(parts: Vec<Self>) -> Self {
        let mut total = ServicePerformance::default();
        for p in &parts {
            total.add(p);
        }
        total
    }
}

impl Combine for Vec<TelemetryDaily> {
    /// Concatenates the days, in order.
    fn combine(parts: Vec<Self>) -> Self {
        parts.into_iter().flatten().collect()
    }
}

impl<T: DeserializeOwned + Combine + Send + 'static> WindowedReport<T> {
    fn new(client: &Client, segments: &[&str]) -> Self {
        WindowedReport {
            client: client.clone(),
            segments: api_path(segments),
            params: Vec::new(),
            range: None,
            opts: CallOptions::default(),
            _t: std::marker::PhantomData,
        }
    }

    /// Only `[from, to)`; over 366 days it is split into windows.
    pub fn between(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range = Some((from, to));
        self
    }

    /// Only this device (telemetry-daily).
    pub fn device_id(mut self, device_id: impl Into<DeviceId>) -> Self {
        self.params.retain(|(n, _)| *n != "deviceId");
        self.params.push(("deviceId", device_id.into().to_string()));
        self
    }

    call_options!();

    /// The result of each window, in order, with the window it covers (`None`: no range given).
    pub async fn per_window(self) -> Result<Vec<(Option<(DateTime<Utc>, DateTime<Utc>)>, T)>> {
        let ranges: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = match self.range {
            None => vec![None],
            Some((from, to)) => {
                check_range(from, to)?;
                windows(from, to, MAX_REPORTING_WINDOW).map(Some).collect()
            }
        };
        let mut out = Vec::with_capacity(ranges.len());
        for range in ranges {
            let mut params = self.params.clone();
            if let Some((from, to)) = range {
                params.push(("fromUtc", stamp(from)));
                params.push(("toUtc", stamp(to)));
            }
            let req = Request::new(Method::GET, self.segments.clone()).query(&params)?;
            let (value, _) =
                envelope::send_one::<T>(Wire::ONE, &self.client.transport, &self.opts.apply(req))
                    .await?;
            out.push((range, value));
        }
        Ok(out)
    }

    /// The whole range's result (windows combined).
    pub async fn send(self) -> Result<T> {
        let parts = self.per_window().await?;
        Ok(T::combine(parts.into_iter().map(|(_, v)| v).collect()))
    }
}

impl<T: DeserializeOwned + Combine + Send + 'static> std::future::IntoFuture for WindowedReport<T> {
    type Output = Result<T>;
    type IntoFuture = futures::future::BoxFuture<'static, Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
