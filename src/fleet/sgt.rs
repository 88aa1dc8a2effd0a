//! SGT Systems in the fleet's terms.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};

use super::model::unit_from_suffix;
use super::{
    FleetDevice, FleetReading, FleetSource, FleetStatus, MetricFilter, VendorDevice, VendorKind,
    VendorReading, failed,
};
use crate::error::{Error, Result};
use crate::sgt::{Client, Device, DeviceStatus, MAX_PAGE_SIZE, Reading};

pub(crate) fn device(d: Device) -> FleetDevice {
    let status = match &d.status {
        DeviceStatus::Online => FleetStatus::Online,
        DeviceStatus::Offline => FleetStatus::Offline,
        DeviceStatus::Provisioning => FleetStatus::Inactive,
        _ => FleetStatus::Unknown,
    };
    FleetDevice {
        vendor: VendorKind::Sgt,
        id: d.id.to_string(),
        name: Some(d.name.clone()),
        status,
        vendor_status: Some(d.status.as_str().to_owned()),
        last_seen: None,
        site: d.site.as_ref().map(ToString::to_string),
        original: VendorDevice::Sgt(d),
    }
}

pub(crate) fn reading(r: Reading) -> FleetReading {
    FleetReading {
        vendor: VendorKind::Sgt,
        device_id: r.device_id.to_string(),
        metric: r.metric.clone(),
        ts: r.ts,
        value: Some(r.value),
        unit: unit_from_suffix(&r.metric),
        raw: None,
        original: VendorReading::Sgt(Arc::new(r)),
    }
}

fn metric_names(metrics: &MetricFilter) -> Result<Vec<String>> {
    match metrics.names() {
        Some(names) => Ok(names.to_vec()),
        None => Err(Error::invalid_input(
            "SGT telemetry is read one metric at a time: name the metrics \
             (`MetricFilter::only`, or `Source::metrics` in a fleet)",
        )),
    }
}

impl FleetSource for Client {
    fn vendor_kind(&self) -> VendorKind {
        VendorKind::Sgt
    }

    fn fleet_devices(&self) -> BoxStream<'static, Result<FleetDevice>> {
        self.devices()
            .list()
            .limit(MAX_PAGE_SIZE)
            .items()
            .map_ok(device)
            .boxed()
    }

    fn fleet_latest(
        &self,
        device_id: &str,
        metrics: &MetricFilter,
    ) -> BoxFuture<'static, Result<Vec<FleetReading>>> {
        let (client, id, names) = (self.clone(), device_id.to_owned(), metric_names(metrics));
        async move {
            let mut out = Vec::new();
            for metric in names? {
                let latest = super::latest_by_lookback(|from, to| {
                    let mut items = client
                        .telemetry()
                        .query(id.as_str(), metric.as_str(), from, to)
                        .limit(MAX_PAGE_SIZE)
                        .items();
                    async move {
                        let mut last = None;
                        while let Some(r) = items.try_next().await? {
                            last = Some(r);
                        }
                        Ok(last.map(reading).into_iter().collect())
                    }
                })
                .await?;
                out.extend(latest);
            }
            Ok(out)
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
        let names = match metric_names(metrics) {
            Ok(names) => names,
            Err(e) => return failed(e),
        };
        let (client, id) = (self.clone(), device_id.to_owned());
        futures::stream::iter(names)
            .map(move |metric| {
                client
                    .telemetry()
                    .query(id.as_str(), metric, from, to)
                    .limit(MAX_PAGE_SIZE)
                    .items()
            })
            .flatten()
            .map_ok(reading)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_and_keep_the_vendor_value() {
        let mk = |status: &str| -> Device {
            serde_json::from_value(serde_json::json!({
                "id": "dev_1", "name": "Meter", "status": status, "site": "site_9"
            }))
            .unwrap()
        };
        let d = device(mk("online"));
        assert_eq!(
            (d.status, d.site.as_deref()),
            (FleetStatus::Online, Some("site_9"))
        );
        assert_eq!(device(mk("offline")).status, FleetStatus::Offline);
        assert_eq!(device(mk("provisioning")).status, FleetStatus::Inactive);
        let odd = device(mk("rebooting"));
        assert_eq!(odd.status, FleetStatus::Unknown);
        assert_eq!(odd.vendor_status.as_deref(), Some("rebooting"));
        assert!(matches!(odd.original, VendorDevice::Sgt(ref d) if d.id == "dev_1"));
    }

    #[test]
    fn an_sgt_query_needs_named_metrics() {
        assert!(matches!(
            metric_names(&MetricFilter::all()),
            Err(Error::InvalidInput(_))
        ));
        assert_eq!(
            metric_names(&MetricFilter::only(["power_kw"])).unwrap(),
            ["power_kw"]
        );
    }
}
