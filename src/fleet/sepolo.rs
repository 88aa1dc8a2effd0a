//! Sepolo in the fleet's terms.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::Value;

use super::model::unit_from_suffix;
use super::{
    FleetDevice, FleetReading, FleetSource, FleetStatus, MetricFilter, VendorDevice, VendorKind,
    VendorReading,
};
use crate::error::Result;
use crate::sepolo::{Client, Device, MAX_PAGE_SIZE, TelemetrySample};

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn device(d: Device) -> FleetDevice {
    let status_text = text(d.extra.get("statusText"));
    let status = match status_text
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("online") => FleetStatus::Online,
        Some("offline") => FleetStatus::Offline,
        Some("maintenance" | "inactive" | "disabled") => FleetStatus::Inactive,
        _ => FleetStatus::Unknown,
    };
    let last_seen = d
        .extra
        .get("lastSeenUtc")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<DateTime<Utc>>().ok());
    FleetDevice {
        vendor: VendorKind::Sepolo,
        id: d.device_id.to_string(),
        name: d.device_name.clone(),
        status,
        vendor_status: status_text.or_else(|| text(d.extra.get("status"))),
        last_seen,
        site: text(d.extra.get("assetId")),
        original: VendorDevice::Sepolo(d),
    }
}

/// The readings of one sample: `current`, then every other numeric field in name order.
pub(crate) fn sample_readings(
    device_id: &str,
    sample: TelemetrySample,
    metrics: &MetricFilter,
) -> Vec<FleetReading> {
    let sample = Arc::new(sample);
    let mut fields: Vec<(&str, f64)> = Vec::new();
    if let Some(c) = sample.current {
        fields.push(("current", c));
    }
    let mut extra: Vec<(&str, f64)> = sample
        .extra
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|x| (k.as_str(), x)))
        .collect();
    extra.sort_by(|a, b| a.0.cmp(b.0));
    fields.extend(extra);
    let device = sample
        .device_id
        .as_ref()
        .map_or(device_id, |d| d.as_str())
        .to_owned();
    fields
        .into_iter()
        .filter(|(name, _)| metrics.keeps(name))
        .map(|(name, value)| FleetReading {
            vendor: VendorKind::Sepolo,
            device_id: device.clone(),
            metric: name.to_owned(),
            ts: sample.stamp,
            value: Some(value),
            unit: if name == "current" {
                Some("A")
            } else {
                unit_from_suffix(name)
            },
            raw: None,
            original: VendorReading::Sepolo(Arc::clone(&sample)),
        })
        .collect()
}

fn telemetry(
    client: &Client,
    device_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    metrics: &MetricFilter,
) -> BoxStream<'static, Result<FleetReading>> {
    let mut list = client
        .devices()
        .telemetry(device_id, from, to)
        .page_size(MAX_PAGE_SIZE);
    if let Some(names) = metrics.names() {
        list = list.metrics(names);
    }
    let (id, metrics) = (device_id.to_owned(), metrics.clone());
    list.items()
        .map_ok(move |s| {
            futures::stream::iter(sample_readings(&id, s, &metrics).into_iter().map(Ok))
        })
        .try_flatten()
        .boxed()
}

impl FleetSource for Client {
    fn vendor_kind(&self) -> VendorKind {
        VendorKind::Sepolo
    }

    fn fleet_devices(&self) -> BoxStream<'static, Result<FleetDevice>> {
        self.devices()
            .list()
            .page_size(MAX_PAGE_SIZE)
            .items()
            .map_ok(device)
            .boxed()
    }

    fn fleet_latest(
        &self,
        device_id: &str,
        metrics: &MetricFilter,
    ) -> BoxFuture<'static, Result<Vec<FleetReading>>> {
        let (client, id, metrics) = (self.clone(), device_id.to_owned(), metrics.clone());
        async move {
            super::latest_by_lookback(|from, to| {
                let mut readings = telemetry(&client, &id, from, to, &metrics);
                async move {
                    let mut last: BTreeMap<String, FleetReading> = BTreeMap::new();
                    while let Some(r) = readings.try_next().await? {
                        last.insert(r.metric.clone(), r);
                    }
                    Ok(last.into_values().collect())
                }
            })
            .await
        }
        .boxed()
    }

    fn fleet_readings(
        &self,
        device_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        metrics: &MetricFilter,
    ) -> BoxStream<'static, Result<FleetReading>> {
        telemetry(self, device_id, from, to, metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sites_and_last_seen() {
        let mk = |extra: Value| -> Device {
            let mut v = serde_json::json!({"deviceId": "SEP-1", "deviceName": "Line"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(v).unwrap()
        };
        let d = device(mk(serde_json::json!({
            "status": 1, "statusText": "Online", "assetId": "a-1",
            "lastSeenUtc": "2026-05-01T00:00:00Z"
        })));
        assert_eq!(d.status, FleetStatus::Online);
        assert_eq!(d.vendor_status.as_deref(), Some("Online"));
        assert_eq!(d.site.as_deref(), Some("a-1"));
        assert_eq!(d.last_seen, Some("2026-05-01T00:00:00Z".parse().unwrap()));
        let m = device(mk(serde_json::json!({"statusText": "Maintenance"})));
        assert_eq!(m.status, FleetStatus::Inactive);
        let bare = device(mk(serde_json::json!({"status": 7})));
        assert_eq!(bare.status, FleetStatus::Unknown);
        assert_eq!(bare.vendor_status.as_deref(), Some("7"));
    }

    #[test]
    fn a_sample_becomes_one_reading_per_numeric_metric() {
        let s: TelemetrySample = serde_json::from_value(serde_json::json!({
            "deviceId": "SEP-1", "stamp": "2026-05-27T12:00:00Z", "current": 8.4,
            "telemetryType": 1, "cycleId": "cyc_1", "cycleSampleIndex": 4,
            "temperature": 21.5, "humidity": null, "label": "x", "battery_pct": 90
        }))
        .unwrap();
        let all = sample_readings("SEP-1", s.clone(), &MetricFilter::all());
        let got: Vec<_> = all
            .iter()
            .map(|r| (r.metric.as_str(), r.value, r.unit))
            .collect();
        assert_eq!(
            got,
            [
                ("current", Some(8.4), Some("A")),
                ("battery_pct", Some(90.0), Some("%")),
                ("temperature", Some(21.5), None),
            ]
        );
        assert!(
            all.iter()
                .all(|r| r.ts == s.stamp && r.device_id == "SEP-1")
        );
        let only = sample_readings("SEP-1", s, &MetricFilter::only(["temperature"]));
        assert_eq!(only.len(), 1);
        assert!(matches!(&only[0].original, VendorReading::Sepolo(x) if x.cycle_id.is_some()));
    }
}
