//! SiliconWit in the fleet's terms.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};

use super::model::unit_from_suffix;
use super::{
    FleetDevice, FleetReading, FleetSource, FleetStatus, MetricFilter, OutOfReach,
    SILICONWIT_ONLINE_WITHIN, VendorDevice, VendorKind, VendorReading,
};
use crate::error::Result;
use crate::siliconwit::devices::MAX_TELEMETRY_LIMIT;
use crate::siliconwit::{
    Client, Device, DeviceStatus, MAX_PAGE_SIZE, Reading, TelemetryHistory, TelemetryRange,
};

/// The look-backs the API offers, shortest first.
const RANGES: [(TelemetryRange, TimeDelta); 5] = [
    (TelemetryRange::Hours1, TimeDelta::hours(1)),
    (TelemetryRange::Hours6, TimeDelta::hours(6)),
    (TelemetryRange::Hours24, TimeDelta::hours(24)),
    (TelemetryRange::Days7, TimeDelta::days(7)),
    (TelemetryRange::Days30, TimeDelta::days(30)),
];

/// Slack between this clock and the server's when choosing a look-back.
const CLOCK_SLACK: TimeDelta = TimeDelta::minutes(5);

pub(crate) fn device(d: Device, now: DateTime<Utc>) -> FleetDevice {
    let recent = d
        .last_seen
        .is_some_and(|seen| now.signed_duration_since(seen) <= SILICONWIT_ONLINE_WITHIN);
    let status = match &d.status {
        DeviceStatus::Paused => FleetStatus::Inactive,
        DeviceStatus::Active if recent => FleetStatus::Online,
        DeviceStatus::Active => FleetStatus::Offline,
        _ => FleetStatus::Unknown,
    };
    FleetDevice {
        vendor: VendorKind::SiliconWit,
        id: d.id.to_string(),
        name: Some(d.name.clone()),
        status,
        vendor_status: Some(d.status.as_str().to_owned()),
        last_seen: d.last_seen,
        site: None,
        original: VendorDevice::SiliconWit(d),
    }
}

/// The readings of one SiliconWit reading: one per non-null entry of `data`, in name order.
pub(crate) fn reading_readings(
    device_id: &str,
    r: Reading,
    metrics: &MetricFilter,
) -> Vec<FleetReading> {
    let r = Arc::new(r);
    let mut names: Vec<&String> = r
        .data
        .0
        .iter()
        .filter(|(k, v)| !v.is_null() && metrics.keeps(k))
        .map(|(k, _)| k)
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let value = r.data.f64(name);
            FleetReading {
                vendor: VendorKind::SiliconWit,
                device_id: device_id.to_owned(),
                metric: name.clone(),
                ts: r.time,
                value,
                unit: unit_from_suffix(name),
                raw: match value {
                    Some(_) => None,
                    None => r.data.get(name).cloned(),
                },
                original: VendorReading::SiliconWit(Arc::clone(&r)),
            }
        })
        .collect()
}

/// The shortest look-back reaching `from` from `now`, or the longest.
fn look_back(now: DateTime<Utc>, from: DateTime<Utc>) -> (TelemetryRange, TimeDelta) {
    let needed = now.signed_duration_since(from).checked_add(&CLOCK_SLACK);
    RANGES
        .iter()
        .find(|(_, span)| needed.is_some_and(|n| *span >= n))
        .unwrap_or(&RANGES[4])
        .clone()
}

/// The readings of `[from, to)` in time order, or [`OutOfReach`] when the answer does not
/// cover all of it.
pub(crate) fn in_range(
    device_id: &str,
    history: TelemetryHistory,
    asked_at: DateTime<Utc>,
    asked_span: TimeDelta,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Reading>> {
    // The span the server used: the one asked for unless the plan capped it.
    let span = history
        .query
        .range
        .as_ref()
        .and_then(|used| RANGES.iter().find(|(r, _)| r == used))
        .map_or(asked_span, |(_, s)| *s);
    let mut reachable_from = asked_at.checked_sub_signed(span).unwrap_or(asked_at);
    let limit = history.query.limit.unwrap_or(MAX_TELEMETRY_LIMIT);
    let oldest = history.readings.iter().map(|r| r.time).min();
    if history.readings.len() >= limit as usize {
        // Capped by the limit: nothing older than the oldest reading returned is known.
        if let Some(oldest) = oldest {
            reachable_from = reachable_from.max(oldest);
        }
    }
    if from < reachable_from {
        return Err(OutOfReach {
            vendor: VendorKind::SiliconWit,
            device_id: device_id.to_owned(),
            from,
            reachable_from,
        }
        .into());
    }
    let mut kept: Vec<Reading> = history
        .readings
        .into_iter()
        .filter(|r| r.time >= from && r.time < to)
        .collect();
    kept.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    Ok(kept)
}

impl FleetSource for Client {
    fn vendor_kind(&self) -> VendorKind {
        VendorKind::SiliconWit
    }

    fn fleet_devices(&self) -> BoxStream<'static, Result<FleetDevice>> {
        self.devices()
            .list()
            .limit(MAX_PAGE_SIZE)
            .items()
            .map_ok(|d| device(d, Utc::now()))
            .boxed()
    }

    fn fleet_latest(
        &self,
        device_id: &str,
        metrics: &MetricFilter,
    ) -> BoxFuture<'static, Result<Vec<FleetReading>>> {
        let (client, id, metrics) = (self.clone(), device_id.to_owned(), metrics.clone());
        async move {
            let latest = client.devices().latest(id.as_str()).await?;
            Ok(latest.map_or_else(Vec::new, |r| reading_readings(&id, r, &metrics)))
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
        let (client, id, metrics) = (self.clone(), device_id.to_owned(), metrics.clone());
        async move {
            crate::window::check_range(from, to)?;
            let asked_at = Utc::now();
            let (range, span) = look_back(asked_at, from);
            let history = client
                .devices()
                .telemetry(id.as_str())
                .range(range)
                .limit(MAX_TELEMETRY_LIMIT)
                .send()
                .await?;
            let readings = in_range(&id, history, asked_at, span, from, to)?;
            let out: Vec<Result<FleetReading>> = readings
                .into_iter()
                .flat_map(|r| reading_readings(&id, r, &metrics))
                .map(Ok)
                .collect();
            Ok::<_, crate::Error>(futures::stream::iter(out))
        }
        .into_stream()
        .try_flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn online_means_active_and_recently_seen() {
        let now = t("2026-05-01T12:00:00Z");
        let mk = |status: &str, seen: &str| -> Device {
            serde_json::from_value(serde_json::json!({
                "id": "dev_a", "name": "Room", "status": status, "last_seen": seen
            }))
            .unwrap()
        };
        assert_eq!(
            device(mk("active", "2026-05-01T11:45:00Z"), now).status,
            FleetStatus::Online
        );
        assert_eq!(
            device(mk("active", "2026-05-01T11:29:59Z"), now).status,
            FleetStatus::Offline
        );
        assert_eq!(
            device(mk("paused", "2026-05-01T11:59:00Z"), now).status,
            FleetStatus::Inactive
        );
        let odd = device(mk("archived", "2026-05-01T11:59:00Z"), now);
        assert_eq!(
            (odd.status, odd.vendor_status.as_deref()),
            (FleetStatus::Unknown, Some("archived"))
        );
        assert_eq!(odd.last_seen, Some(t("2026-05-01T11:59:00Z")));
    }

    #[test]
    fn non_numbers_are_kept_raw() {
        let r: Reading = serde_json::from_value(serde_json::json!({
            "id": "tel_1", "time": "2026-05-01T00:00:00Z",
            "data": {"door": "open", "battery": 90, "power_w": "12.5", "gone": null}
        }))
        .unwrap();
        let got = reading_readings("dev_a", r, &MetricFilter::all());
        let view: Vec<_> = got
            .iter()
            .map(|x| (x.metric.as_str(), x.value, x.raw.clone(), x.unit))
            .collect();
        assert_eq!(
            view,
            [
                ("battery", Some(90.0), None, None),
                ("door", None, Some(Value::from("open")), None),
                ("power_w", Some(12.5), None, Some("W")),
            ]
        );
    }

    #[test]
    fn look_backs_cover_the_start_or_take_the_longest() {
        let now = t("2026-05-01T12:00:00Z");
        assert_eq!(
            look_back(now, t("2026-05-01T11:30:00Z")).0,
            TelemetryRange::Hours1
        );
        assert_eq!(
            look_back(now, t("2026-05-01T11:00:00Z")).0,
            TelemetryRange::Hours6
        );
        assert_eq!(
            look_back(now, t("2026-04-28T12:00:00Z")).0,
            TelemetryRange::Days7
        );
        assert_eq!(
            look_back(now, t("2025-01-01T00:00:00Z")).0,
            TelemetryRange::Days30
        );
    }

    fn history(times: &[&str], limit: u32, range: &str) -> TelemetryHistory {
        let data: Vec<_> = times
            .iter()
            .enumerate()
            .map(|(i, ts)| serde_json::json!({"id": format!("tel_{i}"), "time": ts, "data": {"x": 1}}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "data": data, "query": {"range": range, "limit": limit}
        }))
        .unwrap()
    }

    #[test]
    fn a_range_is_served_whole_or_out_of_reach() {
        let at = t("2026-05-01T12:00:00Z");
        let h = history(
            &[
                "2026-05-01T11:00:00Z",
                "2026-05-01T10:00:00Z",
                "2026-05-01T09:00:00Z",
            ],
            1000,
            "24h",
        );
        let got = in_range(
            "d",
            h.clone(),
            at,
            TimeDelta::hours(24),
            t("2026-05-01T09:30:00Z"),
            t("2026-05-01T11:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|r| r.time).collect::<Vec<_>>(),
            [t("2026-05-01T10:00:00Z")]
        );
        // Capped by the limit: the oldest returned is the edge of what is known.
        let err = in_range(
            "d",
            h,
            at,
            TimeDelta::hours(24),
            t("2026-04-30T20:00:00Z"),
            at,
        );
        assert!(err.is_ok(), "under the limit the whole look-back is known");
        let capped = history(&["2026-05-01T11:00:00Z", "2026-05-01T10:00:00Z"], 2, "24h");
        let err = in_range(
            "d",
            capped,
            at,
            TimeDelta::hours(24),
            t("2026-05-01T09:00:00Z"),
            at,
        )
        .unwrap_err();
        let oor = err.vendor::<OutOfReach>().unwrap();
        assert_eq!(oor.reachable_from, t("2026-05-01T10:00:00Z"));
        // Capped by the plan: 7d asked, 24h used.
        let short = history(&[], 1000, "24h");
        let err = in_range(
            "d",
            short,
            at,
            TimeDelta::days(7),
            t("2026-04-29T00:00:00Z"),
            at,
        )
        .unwrap_err();
        assert_eq!(
            err.vendor::<OutOfReach>().unwrap().reachable_from,
            t("2026-04-30T12:00:00Z")
        );
    }
}
