//! `/reporting`: the assets summary, service performance and daily telemetry, computed from the
//! organization's data for the window asked.

use std::collections::HashMap;

use axum::extract::State;
use chrono::TimeDelta;
use serde_json::{Value, json};

use super::data::{fmt_ts, now};
use super::input::optional_window;
use super::signals::{DAY_MS, ORIGIN_MS, Signal, day_of, day_start};
use super::{ApiErr, Res, SharedState, ok};
use crate::{Params, lock};

/// The longest reporting window.
const MAX_REPORTING_DAYS: i64 = 366;
/// The telemetry-daily window when `fromUtc` is not given: this many days before `toUtc`.
const DEFAULT_DAILY_DAYS: i64 = 30;
/// An active asset without a visit in this many days is overdue for service.
const SERVICE_INTERVAL_DAYS: i64 = 150;

/// `GET /reporting/assets-summary`: counts of assets, and the cost of every completed visit.
pub(crate) async fn assets_summary(State(s): SharedState) -> Res {
    let data = lock(&s.data);
    let mut last_visit: HashMap<&str, i64> = HashMap::new();
    let mut cost: i64 = 0;
    for ((ms, _), v) in &data.visits {
        let last = last_visit.entry(v.asset_id.as_str()).or_insert(*ms);
        *last = (*last).max(*ms);
        if v.completed {
            cost = cost.saturating_add(v.cost.unwrap_or(0));
        }
    }
    let overdue_before = (now() - TimeDelta::days(SERVICE_INTERVAL_DAYS)).timestamp_millis();
    let total = data.assets.len();
    let active = data.assets.values().filter(|a| a.is_active).count();
    let with_devices = data
        .assets
        .values()
        .filter(|a| a.device_id.is_some())
        .count();
    let overdue = data
        .assets
        .values()
        .filter(|a| {
            a.is_active
                && last_visit
                    .get(a.id.as_str())
                    .is_none_or(|last| *last < overdue_before)
        })
        .count();
    Ok(ok(json!({
        "totalAssets": total,
        "activeAssets": active,
        "inactiveAssets": total - active,
        "withDevices": with_devices,
        "overdueService": overdue,
        "totalMaintenanceCost": cost,
    })))
}

/// `GET /reporting/service-performance`: the visits starting in `[fromUtc, toUtc)` (at most 366
/// days; an absent side is unbounded). A visit without an estimate counts its actual cost as
/// estimated.
pub(crate) async fn service_performance(State(s): SharedState, params: Params) -> Res {
    let (from, to) = optional_window(&params, Some(MAX_REPORTING_DAYS))?;
    let data = lock(&s.data);
    let (mut total, mut completed) = (0u64, 0u64);
    let (mut estimated, mut actual) = (0i64, 0i64);
    for v in data
        .visits
        .values()
        .filter(|v| super::input::within(v.start, from, to))
    {
        total += 1;
        estimated = estimated.saturating_add(v.estimated_cost.or(v.cost).unwrap_or(0));
        if v.completed {
            completed += 1;
            actual = actual.saturating_add(v.cost.unwrap_or(0));
        }
    }
    Ok(ok(json!({
        "totalVisits": total,
        "completedVisits": completed,
        "openVisits": total - completed,
        "estimatedCost": estimated,
        "actualCost": actual,
    })))
}

/// `GET /reporting/telemetry-daily`: a bare array of one row per device and UTC day with
/// environment samples in `[fromUtc, toUtc)` (default: the 30 days before `toUtc`, which
/// defaults to now; at most 366 days), ordered by day, then device; `deviceId` narrows it to
/// one device. `samples` counts the environment samples, `averageTemperature` is their mean to
/// one decimal.
pub(crate) async fn telemetry_daily(State(s): SharedState, params: Params) -> Res {
    let (from, to) = optional_window(&params, Some(MAX_REPORTING_DAYS))?;
    let now = now();
    let to = to.unwrap_or(now);
    let from = match from {
        Some(f) => f,
        None => to
            .checked_sub_signed(TimeDelta::days(DEFAULT_DAILY_DAYS))
            .unwrap_or(to),
    };
    if from >= to {
        return Err(ApiErr::validation("fromUtc must be earlier than toUtc."));
    }
    if to - from > TimeDelta::days(MAX_REPORTING_DAYS) {
        return Err(ApiErr::validation(format!(
            "The window from fromUtc to toUtc must not exceed {MAX_REPORTING_DAYS} days."
        )));
    }
    let device_id = params.one("deviceId")?;
    let devices: Vec<(String, Signal)> = {
        let data = lock(&s.data);
        data.devices
            .values()
            .filter(|d| device_id.is_none_or(|id| d.id == id))
            .map(|d| (d.id.clone(), d.signal(s.seed)))
            .collect()
    };
    let (from_ms, to_ms) = (
        from.timestamp_millis(),
        to.min(now.max(from)).timestamp_millis(),
    );
    let mut rows: Vec<Value> = Vec::new();
    if to_ms > from_ms.max(ORIGIN_MS) {
        for day in day_of(from_ms.max(ORIGIN_MS))..=day_of(to_ms - 1) {
            let lo = (day * DAY_MS).max(from_ms);
            let hi = ((day + 1) * DAY_MS).min(to_ms);
            for (id, signal) in &devices {
                let (count, sum) = signal
                    .environment_between(lo, hi)
                    .filter_map(|x| x.temperature)
                    .fold((0u64, 0.0f64), |(n, sum), t| (n + 1, sum + t));
                if count == 0 {
                    continue;
                }
                let mean = sum / count as f64;
                rows.push(json!({
                    "deviceId": id,
                    "date": fmt_ts(&day_start(day)),
                    "samples": count,
                    "averageTemperature": (mean * 10.0).round() / 10.0,
                }));
            }
        }
    }
    Ok(ok(Value::Array(rows)))
}
