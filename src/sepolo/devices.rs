//! Devices and their data: telemetry, PointGuard cycles and samples, movements and signatures.
//!
//! | call | endpoint | window |
//! |---|---|---|
//! | [`Devices::list`] | `GET /api/v1/devices` | |
//! | [`Devices::get`] | `GET /api/v1/devices/{deviceId}` | |
//! | [`Devices::telemetry`] | `GET …/{deviceId}/telemetry` (`from`, `to`) | 31 days, split |
//! | [`Devices::cycles`] | `GET …/{deviceId}/pointguard/cycles` (`from`, `to`) | 31 days, split |
//! | [`Devices::cycle_samples`] | `GET …/pointguard/cycles/{cycleId}/samples` | |
//! | [`Devices::movements`] | `GET …/{deviceId}/movements` (`from`, `to`) | none stated |
//! | [`Devices::movement_signature`] | `GET …/movements/{movementId}/signature` | |

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::{Client, CycleId, DeviceId, MovementId};
use crate::List;
use crate::call::Call;

/// The longest window one telemetry or cycles request accepts.
pub const MAX_TELEMETRY_WINDOW: TimeDelta = TimeDelta::days(31);

/// A device (`PublicApiDeviceDto`). Fields the spec does not show are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Device {
    /// The device id.
    pub device_id: DeviceId,
    /// Display name.
    #[serde(default)]
    pub device_name: Option<String>,
    /// Its group.
    #[serde(default)]
    pub group_id: Option<i64>,
    /// Battery level, 0–100.
    #[serde(default)]
    pub battery_percentage: Option<f64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One raw telemetry sample (`PublicApiTelemetryDto`), with PointGuard cycle metadata when
/// present. Decoded without `serde(flatten)` (telemetry comes in bulk); fields the spec does not
/// show, such as other metrics, are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TelemetrySample {
    /// The device.
    pub device_id: Option<DeviceId>,
    /// When the sample was taken.
    #[serde(deserialize_with = "crate::timestamp::required")]
    pub stamp: DateTime<Utc>,
    /// Current draw (A), for PointGuard samples.
    pub current: Option<f64>,
    /// Telemetry type (1: PointGuard movement/current samples).
    pub telemetry_type: Option<i64>,
    /// The PointGuard cycle it belongs to.
    pub cycle_id: Option<CycleId>,
    /// Its index within the cycle.
    pub cycle_sample_index: Option<i64>,
    /// Milliseconds since the cycle's start.
    pub cycle_sample_offset_ms: Option<i64>,
    /// The cycle's duration in milliseconds.
    pub cycle_duration_ms: Option<i64>,
    /// Samples in the cycle.
    pub cycle_sample_count: Option<i64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TelemetrySample {
    /// A numeric field by its wire name: `current`, or any metric in `extra`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "current" => self.current,
            other => self.extra.get(other).and_then(Value::as_f64),
        }
    }
}

impl<'de> Deserialize<'de> for TelemetrySample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TelemetrySample;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a telemetry sample object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TelemetrySample, A::Error> {
                let mut s = TelemetrySample {
                    device_id: None,
                    stamp: DateTime::<Utc>::MIN_UTC,
                    current: None,
                    telemetry_type: None,
                    cycle_id: None,
                    cycle_sample_index: None,
                    cycle_sample_offset_ms: None,
                    cycle_duration_ms: None,
                    cycle_sample_count: None,
                    extra: Map::new(),
                };
                let mut stamp = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "deviceId" => s.device_id = map.next_value()?,
                        "stamp" => stamp = Some(map.next_value()?),
                        "current" => s.current = map.next_value()?,
                        "telemetryType" => s.telemetry_type = map.next_value()?,
                        "cycleId" => s.cycle_id = map.next_value()?,
                        "cycleSampleIndex" => s.cycle_sample_index = map.next_value()?,
                        "cycleSampleOffsetMs" => s.cycle_sample_offset_ms = map.next_value()?,
                        "cycleDurationMs" => s.cycle_duration_ms = map.next_value()?,
                        "cycleSampleCount" => s.cycle_sample_count = map.next_value()?,
                        _ => {
                            let v: Value = map.next_value()?;
                            s.extra.insert(key, v);
                        }
                    }
                }
                s.stamp = stamp.ok_or_else(|| serde::de::Error::missing_field("stamp"))?;
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

/// A PointGuard cycle summary (`PublicApiPointGuardCycleDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Cycle {
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The cycle id.
    pub cycle_id: CycleId,
    /// First sample.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub start: Option<DateTime<Utc>>,
    /// Last sample.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub stop: Option<DateTime<Utc>>,
    /// Number of samples.
    #[serde(default)]
    pub samples: Option<u64>,
    /// Mean current (A).
    #[serde(default)]
    pub average_current: Option<f64>,
    /// Peak current (A).
    #[serde(default)]
    pub peak_current: Option<f64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The current signature summary inside a movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CurrentSignature {
    /// Samples in the movement.
    #[serde(default)]
    pub sample_count: Option<u64>,
    /// RMS current (A).
    #[serde(default)]
    pub current_rms: Option<f64>,
    /// 90th percentile current (A).
    #[serde(default)]
    pub current_p90: Option<f64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A calculated movement window (`PublicApiMovementDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Movement {
    /// The movement id.
    pub id: MovementId,
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// Duration in seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    /// Mean current (A).
    #[serde(default)]
    pub average_current: Option<f64>,
    /// Peak current (A).
    #[serde(default)]
    pub peak_current: Option<f64>,
    /// Whether the platform suggests it is an anomaly.
    #[serde(default)]
    pub is_anomaly_suggested: Option<bool>,
    /// The anomaly score.
    #[serde(default)]
    pub anomaly_score: Option<f64>,
    /// The anomaly decision (`Classify`, …).
    #[serde(default)]
    pub anomaly_decision_action: Option<String>,
    /// The current signature summary.
    #[serde(default)]
    pub current_signature: Option<CurrentSignature>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The current signature and shape of one movement (`PublicApiMovementSignatureDto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MovementSignature {
    /// The movement.
    pub movement_id: MovementId,
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// Samples.
    #[serde(default)]
    pub sample_count: Option<u64>,
    /// RMS current (A).
    #[serde(default)]
    pub current_rms: Option<f64>,
    /// Median current (A).
    #[serde(default)]
    pub current_p50: Option<f64>,
    /// 90th percentile current (A).
    #[serde(default)]
    pub current_p90: Option<f64>,
    /// The shape, as the JSON text the API sends (see [`MovementSignature::shape`]).
    #[serde(default)]
    pub shape_json: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MovementSignature {
    /// `shapeJson` parsed as JSON (`None` when absent; an error when it is not valid JSON).
    pub fn shape(&self) -> Option<serde_json::Result<Value>> {
        self.shape_json.as_deref().map(serde_json::from_str)
    }
}

/// The filters of [`Devices::list`] (`GET /api/v1/devices`); set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeviceFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<i64>,
}

impl List<Device, DeviceFilter> {
    /// Only devices updated after this instant.
    pub fn updated_since(self, since: DateTime<Utc>) -> Self {
        self.filter(|q| q.updated_since = Some(since))
    }

    /// Only devices of this group.
    pub fn group_id(self, group_id: i64) -> Self {
        self.filter(|q| q.group_id = Some(group_id))
    }

    /// Only devices with this numeric status.
    pub fn status(self, status: i64) -> Self {
        self.filter(|q| q.status = Some(status))
    }
}

/// The filters of [`Devices::telemetry`]; set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TelemetryFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    telemetry_type: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_id: Option<CycleId>,
}

impl List<TelemetrySample, TelemetryFilter> {
    /// A comma-separated metric hint (`current,temperature`).
    pub fn metrics<I: IntoIterator<Item = S>, S: AsRef<str>>(self, metrics: I) -> Self {
        let joined: Vec<String> = metrics.into_iter().map(|m| m.as_ref().to_owned()).collect();
        self.filter(|q| q.metrics = Some(joined.join(",")))
    }

    /// Only this telemetry type (1: PointGuard movement/current samples).
    pub fn telemetry_type(self, telemetry_type: i64) -> Self {
        self.filter(|q| q.telemetry_type = Some(telemetry_type))
    }

    /// Only the samples of this PointGuard cycle.
    pub fn cycle_id(self, cycle_id: impl Into<CycleId>) -> Self {
        self.filter(|q| q.cycle_id = Some(cycle_id.into()))
    }
}

/// The filters of [`Devices::movements`]; set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MovementFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    min_duration_seconds: Option<u32>,
}

impl List<Movement, MovementFilter> {
    /// Only movements lasting at least this many seconds.
    pub fn min_duration_seconds(self, seconds: u32) -> Self {
        self.filter(|q| q.min_duration_seconds = Some(seconds))
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

    /// `GET /api/v1/devices`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let page = sepolo.devices().list().group_id(12).page_size(100).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Device, DeviceFilter> {
        self.client.list(&["devices"], DeviceFilter::default())
    }

    /// `GET /api/v1/devices/{deviceId}`.
    pub fn get(&self, device_id: impl Into<DeviceId>) -> Call<Device> {
        let id = device_id.into();
        self.client.get(&["devices", id.as_str()])
    }

    /// Raw telemetry samples in `[from, to)`. Ranges over 31 days are split into windows and
    /// streamed as one ordered sequence.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use futures::TryStreamExt;
    /// let to = Utc::now();
    /// let samples: Vec<_> = sepolo.devices()
    ///     .telemetry("SEP-DEVICE-001", to - Duration::days(90), to)
    ///     .telemetry_type(1)
    ///     .items()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn telemetry(
        &self,
        device_id: impl Into<DeviceId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> List<TelemetrySample, TelemetryFilter> {
        let id = device_id.into();
        let path = ["devices", id.as_str(), "telemetry"];
        self.client
            .list(&path, TelemetryFilter::default())
            .windowed("from", "to", Some(MAX_TELEMETRY_WINDOW))
            .range(from, to)
    }

    /// PointGuard cycle summaries in `[from, to)`, split like [`Devices::telemetry`].
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// let to = Utc::now();
    /// let first = sepolo.devices().cycles("SEP-DEVICE-001", to - Duration::days(7), to).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn cycles(
        &self,
        device_id: impl Into<DeviceId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> List<Cycle, ()> {
        let id = device_id.into();
        let path = ["devices", id.as_str(), "pointguard", "cycles"];
        self.client
            .list(&path, ())
            .windowed("from", "to", Some(MAX_TELEMETRY_WINDOW))
            .range(from, to)
    }

    /// Every raw sample of one PointGuard cycle, ordered by sample index.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// let samples: Vec<_> = sepolo.devices()
    ///     .cycle_samples("SEP-DEVICE-001", "cyc_20260527_120000")
    ///     .items()
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn cycle_samples(
        &self,
        device_id: impl Into<DeviceId>,
        cycle_id: impl Into<CycleId>,
    ) -> List<TelemetrySample, ()> {
        let (d, c) = (device_id.into(), cycle_id.into());
        self.client.list(
            &[
                "devices",
                d.as_str(),
                "pointguard",
                "cycles",
                c.as_str(),
                "samples",
            ],
            (),
        )
    }

    /// Movement windows in `[from, to)` (the spec states no window cap, so none is applied).
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// let to = Utc::now();
    /// let page = sepolo.devices().movements("SEP-DEVICE-001", to - Duration::days(1), to)
    ///     .min_duration_seconds(5)
    ///     .send()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn movements(
        &self,
        device_id: impl Into<DeviceId>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> List<Movement, MovementFilter> {
        let id = device_id.into();
        let path = ["devices", id.as_str(), "movements"];
        self.client
            .list(&path, MovementFilter::default())
            .windowed("from", "to", None)
            .range(from, to)
    }

    /// The current signature and shape of one movement.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let sig = sepolo.devices()
    ///     .movement_signature("SEP-DEVICE-001", "5c722f76-5f0b-4c1b-875d-05a1d8cd47b5")
    ///     .await?;
    /// if let Some(Ok(shape)) = sig.shape() { println!("{shape}"); }
    /// # Ok(()) }
    /// ```
    pub fn movement_signature(
        &self,
        device_id: impl Into<DeviceId>,
        movement_id: impl Into<MovementId>,
    ) -> Call<MovementSignature> {
        let (d, m) = (device_id.into(), movement_id.into());
        self.client
            .get(&["devices", d.as_str(), "movements", m.as_str(), "signature"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_keep_unknown_fields_and_need_a_stamp() {
        let s: TelemetrySample = serde_json::from_str(
            r#"{"deviceId":"D","stamp":"2026-05-27T12:00:00Z","current":8.4,"temperature":21.5,"cycleId":null,"note":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.device_id.as_ref().unwrap(), "D");
        assert_eq!(s.metric("current"), Some(8.4));
        assert_eq!(s.metric("temperature"), Some(21.5));
        assert_eq!(s.metric("note"), None);
        assert_eq!(s.extra["note"], "x");
        assert!(s.cycle_id.is_none());
        let err = serde_json::from_str::<TelemetrySample>(r#"{"current":1}"#).unwrap_err();
        assert!(err.to_string().contains("stamp"));
        // Serializes back with the extra fields inline.
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["temperature"], 21.5);
        assert_eq!(back["cycleSampleIndex"], Value::Null);
    }

    #[test]
    fn shape_json_parses() {
        let sig: MovementSignature =
            serde_json::from_str(r#"{"movementId":"m","shapeJson":"{\"points\":[[0,1.2]]}"}"#)
                .unwrap();
        assert_eq!(sig.shape().unwrap().unwrap()["points"][0][1], 1.2);
        let bad: MovementSignature =
            serde_json::from_str(r#"{"movementId":"m","shapeJson":"{..."}"#).unwrap();
        assert!(bad.shape().unwrap().is_err());
    }
}
