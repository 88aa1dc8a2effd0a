//! Devices and telemetry: `GET /v1/devices`, `/devices/{id}`, `/devices/{id}/telemetry/latest`,
//! `/devices/{id}/telemetry`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Client, DeviceId, Identified};
use crate::List;
use crate::call::{Call, CallOptions};
use crate::error::Result;
use crate::list::check_page_size;
use crate::transport::Request;

/// The largest `limit` of a historical telemetry query.
pub const MAX_TELEMETRY_LIMIT: u32 = 1_000;

open_enum!(
    /// Whether a device is collecting.
    DeviceStatus {
        /// Collecting.
        Active => "active",
        /// Paused.
        Paused => "paused",
    }
);

/// A device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Device {
    /// `dev_…`.
    pub id: DeviceId,
    /// Display name.
    pub name: String,
    /// Device type (`sensor`).
    #[serde(rename = "type", default)]
    pub device_type: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Active or paused.
    pub status: DeviceStatus,
    /// Free-form settings.
    #[serde(default)]
    pub settings: Map<String, Value>,
    /// When it last reported.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub last_seen: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Identified for Device {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

/// The free-form metrics of a reading (`{"temperature": 25.5, "humidity": 60}`): numeric access
/// without losing values of other types.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metrics(pub Map<String, Value>);

impl Metrics {
    /// A metric as a number, when it is one (JSON numbers, and numeric strings such as `"21.5"`).
    pub fn f64(&self, name: &str) -> Option<f64> {
        match self.0.get(name)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok().filter(|v: &f64| v.is_finite()),
            _ => None,
        }
    }

    /// Every numeric metric, by name.
    pub fn numeric(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0
            .keys()
            .filter_map(|k| self.f64(k).map(|v| (k.as_str(), v)))
    }

    /// A metric as sent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Metric names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// One telemetry reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reading {
    /// `tel_…`.
    pub id: String,
    /// When it was taken.
    #[serde(deserialize_with = "crate::timestamp::required")]
    pub time: DateTime<Utc>,
    /// Its metrics.
    #[serde(default)]
    pub data: Metrics,
}

open_enum!(
    /// How far back a historical telemetry query reaches.
    TelemetryRange {
        /// One hour.
        Hours1 => "1h",
        /// Six hours.
        Hours6 => "6h",
        /// 24 hours (the server's default).
        Hours24 => "24h",
        /// Seven days.
        Days7 => "7d",
        /// 30 days.
        Days30 => "30d",
    }
);

/// The query the server actually ran, echoed back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EffectiveQuery {
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The range asked for.
    #[serde(default)]
    pub requested_range: Option<TelemetryRange>,
    /// The range used, after the plan's retention capped it.
    #[serde(default)]
    pub range: Option<TelemetryRange>,
    /// The result cap used.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The plan's retention, in days.
    #[serde(default)]
    pub data_retention_days: Option<u32>,
}

/// Historical readings and the query that produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TelemetryHistory {
    /// The readings, newest first as the API sends them (`data`, required).
    #[serde(rename = "data")]
    pub readings: Vec<Reading>,
    /// The effective query.
    pub query: EffectiveQuery,
}

impl TelemetryHistory {
    /// Whether the plan's retention window shortened the requested range.
    pub fn was_capped(&self) -> bool {
        match (&self.query.requested_range, &self.query.range) {
            (Some(asked), Some(used)) => asked != used,
            _ => false,
        }
    }
}

/// The filters of [`Devices::list`] (`GET /v1/devices`); set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct DeviceFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeviceStatus>,
}

impl List<Device, DeviceFilter> {
    /// Only active or only paused devices.
    pub fn status(self, status: DeviceStatus) -> Self {
        self.filter(|q| q.status = Some(status))
    }
}

/// The devices of a client. Get one from [`Client::devices`].
#[derive(Debug, Clone)]
pub struct Devices {
    client: Client,
}

impl Devices {
    pub(crate) fn new(client: Client) -> Self {
        Devices { client }
    }

    /// `GET /v1/devices`, offset-paged to `total`.
    ///
    /// ```no_run
    /// # async fn demo(sw: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// use iot_sdk::siliconwit::DeviceStatus;
    /// let all: Vec<_> = sw.devices().list().status(DeviceStatus::Active).limit(100).concurrent(4).items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Device, DeviceFilter> {
        self.client.list(&["devices"], DeviceFilter::default())
    }

    /// `GET /v1/devices/{id}`.
    pub fn get(&self, id: impl Into<DeviceId>) -> Call<Device> {
        let id = id.into();
        self.client.get(segments!["devices", id])
    }

    /// `GET /v1/devices/{id}/telemetry/latest`: `None` when the device has no readings yet.
    ///
    /// ```no_run
    /// # async fn demo(sw: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
    /// if let Some(r) = sw.devices().latest("dev_a1b2c3d4").await? {
    ///     println!("{:?}", r.data.f64("temperature"));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn latest(&self, id: impl Into<DeviceId>) -> Call<Option<Reading>> {
        let id = id.into();
        self.client
            .get(segments!["devices", id, "telemetry", "latest"])
    }

    /// `GET /v1/devices/{id}/telemetry`: readings over a range, with the effective query.
    pub fn telemetry(&self, id: impl Into<DeviceId>) -> TelemetryQuery {
        TelemetryQuery {
            client: self.client.clone(),
            id: id.into(),
            range: None,
            limit: None,
            opts: CallOptions::default(),
        }
    }
}

/// `GET /v1/devices/{id}/telemetry`.
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until sent"]
pub struct TelemetryQuery {
    client: Client,
    id: DeviceId,
    range: Option<TelemetryRange>,
    limit: Option<u32>,
    opts: CallOptions,
}

impl TelemetryQuery {
    /// How far back (server default: 24 h). The plan's retention may shorten it; see
    /// [`TelemetryHistory::was_capped`].
    pub fn range(mut self, range: TelemetryRange) -> Self {
        self.range = Some(range);
        self
    }

    /// At most this many readings, 1 to 1,000 (server default 100).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    call_options!();

    /// Sends the query.
    pub async fn send(self) -> Result<TelemetryHistory> {
        check_page_size("limit", self.limit, MAX_TELEMETRY_LIMIT)?;
        #[derive(Serialize)]
        struct Q {
            #[serde(skip_serializing_if = "Option::is_none")]
            range: Option<TelemetryRange>,
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        let req = Request::new(
            Method::GET,
            segments!["devices", self.id.clone(), "telemetry"],
        )
        .query(&Q {
            range: self.range,
            limit: self.limit,
        })?;
        let (history, _) = self
            .client
            .transport
            .send_json::<TelemetryHistory>(&self.opts.apply(req))
            .await?;
        Ok(history)
    }
}

impl std::future::IntoFuture for TelemetryQuery {
    type Output = Result<TelemetryHistory>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_numeric_without_losing_the_rest() {
        let m: Metrics = serde_json::from_str(
            r#"{"temperature":25.5,"humidity":60,"door":"open","raw":"21.5","ok":true}"#,
        )
        .unwrap();
        assert_eq!(m.f64("temperature"), Some(25.5));
        assert_eq!(m.f64("humidity"), Some(60.0));
        assert_eq!(m.f64("raw"), Some(21.5));
        assert_eq!(m.f64("door"), None);
        assert_eq!(m.get("door").unwrap(), "open");
        let mut numeric: Vec<_> = m.numeric().collect();
        numeric.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(
            numeric,
            [("humidity", 60.0), ("raw", 21.5), ("temperature", 25.5)]
        );
        assert_eq!(m.names().count(), 5);
    }
}
