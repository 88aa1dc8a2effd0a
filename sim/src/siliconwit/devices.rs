//! `/devices`: list, get, latest telemetry, telemetry history.

use axum::extract::{Path, State};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use super::data::now;
use super::{ApiErr, Res, SharedState, ok};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
const DEFAULT_TELEMETRY_LIMIT: usize = 100;
const MAX_TELEMETRY_LIMIT: usize = 1_000;

/// The ranges of the spec, shortest first, with their length in hours.
const RANGES: [(&str, i64); 5] = [
    ("1h", 1),
    ("6h", 6),
    ("24h", 24),
    ("7d", 7 * 24),
    ("30d", 30 * 24),
];
const DEFAULT_RANGE: &str = "24h";

fn device_not_found() -> ApiErr {
    ApiErr::not_found("Device not found")
}

/// `offset`: absent is 0, else a non-negative integer.
pub(crate) fn offset_param(params: &Params) -> Result<usize, ApiErr> {
    match params.one("offset")? {
        None => Ok(0),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiErr::bad_request("Parameter 'offset' must be a non-negative integer.")),
    }
}

/// `{data, pagination{total, limit, offset}}` for the `limit` items at `offset` of `items`.
pub(crate) fn page(items: Vec<Value>, total: usize, limit: usize, offset: usize) -> Res {
    Ok(ok(json!({
        "data": items,
        "pagination": {"total": total, "limit": limit, "offset": offset},
    })))
}

/// `GET /devices`: `status`, `limit` (1 to 100, default 50), `offset`; in creation order.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = offset_param(&params)?;
    let paused = match params.one("status")? {
        None => None,
        Some("active") => Some(false),
        Some("paused") => Some(true),
        Some(_) => {
            return Err(ApiErr::bad_request(
                "Parameter 'status' must be 'active' or 'paused'.",
            ));
        }
    };
    let at = now();
    let data = lock(&s.data);
    let matching = || {
        data.devices
            .iter()
            .filter(|d| paused.is_none_or(|p| d.paused == p))
    };
    let total = matching().count();
    let items = matching()
        .skip(offset)
        .take(limit)
        .map(|d| d.to_json(&at))
        .collect();
    page(items, total, limit, offset)
}

/// `GET /devices/{id}`.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let device = data.device(&id).ok_or_else(device_not_found)?;
    Ok(ok(json!({ "data": device.to_json(&now()) })))
}

/// `GET /devices/{id}/telemetry/latest`: `{"data": null}` when the device has no readings.
pub(crate) async fn latest(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let device = data.device(&id).ok_or_else(device_not_found)?;
    Ok(ok(json!({ "data": device.latest(data.seed, &now()) })))
}

/// The longest range of the spec that fits in `retention_days` (at least `1h`).
fn capped(requested: (&'static str, i64), retention_days: u32) -> (&'static str, i64) {
    let max_hours = i64::from(retention_days).saturating_mul(24);
    if requested.1 <= max_hours {
        return requested;
    }
    RANGES
        .iter()
        .rev()
        .find(|(_, hours)| *hours <= max_hours)
        .copied()
        .unwrap_or(("1h", 1))
}

/// `GET /devices/{id}/telemetry`: `range` (default 24h), `limit` (1 to 1,000, default 100);
/// the readings newest first and the effective query.
pub(crate) async fn telemetry(
    State(s): SharedState,
    Path(id): Path<String>,
    params: Params,
) -> Res {
    let limit = params.limit("limit", DEFAULT_TELEMETRY_LIMIT, MAX_TELEMETRY_LIMIT)?;
    let asked = params.one("range")?.unwrap_or(DEFAULT_RANGE);
    let requested = RANGES
        .iter()
        .find(|(name, _)| *name == asked)
        .copied()
        .ok_or_else(|| {
            ApiErr::bad_request("Parameter 'range' must be one of 1h, 6h, 24h, 7d, 30d.")
        })?;
    let retention = s.plan.data_retention_days;
    let (range, hours) = capped(requested, retention);
    let at: DateTime<Utc> = now();
    let data = lock(&s.data);
    let device = data.device(&id).ok_or_else(device_not_found)?;
    let readings = device.readings(data.seed, &(at - ChronoDuration::hours(hours)), &at, limit);
    Ok(ok(json!({
        "data": readings,
        "query": {
            "device_id": device.id,
            "requested_range": requested.0,
            "range": range,
            "limit": limit,
            "data_retention_days": retention,
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_capped_to_the_longest_that_fits() {
        let r30 = RANGES[4];
        assert_eq!(capped(r30, 30).0, "30d");
        assert_eq!(capped(r30, 365).0, "30d");
        assert_eq!(capped(r30, 14).0, "7d");
        assert_eq!(capped(r30, 7).0, "7d");
        assert_eq!(capped(r30, 1).0, "24h");
        assert_eq!(capped(RANGES[3], 1).0, "24h");
        assert_eq!(capped(RANGES[0], 1).0, "1h");
    }
}
