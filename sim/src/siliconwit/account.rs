//! `/account`: usage and API key metadata.

use axum::extract::State;
use chrono::Duration as ChronoDuration;
use serde_json::json;

use super::data::{fmt_ts, month_bounds, now};
use super::{Res, SharedState, ok};
use crate::{fnv1a, lock};

/// `GET /account/usage`: the plan, device and alert counts, readings of the last 24 hours.
pub(crate) async fn usage(State(s): SharedState) -> Res {
    let at = now();
    let (period_start, period_end) = month_bounds(&at);
    let data = lock(&s.data);
    let total = data.devices.len();
    let paused = data.devices.iter().filter(|d| d.paused).count();
    let since = at - ChronoDuration::hours(24);
    let points: u64 = data
        .devices
        .iter()
        .map(|d| d.count_readings(&since, &at))
        .sum();
    let alerts_active = data.alerts.iter().filter(|a| a.enabled).count();
    Ok(ok(json!({
        "data": {
            "plan": {
                "plan": s.plan.name,
                "status": "active",
                "device_limit": s.plan.device_limit,
                "data_retention_days": s.plan.data_retention_days,
                "current_period_start": fmt_ts(&period_start),
                "current_period_end": fmt_ts(&period_end),
            },
            "devices": {
                "total": total,
                "active": total - paused,
                "paused": paused,
                "limit": s.plan.device_limit,
            },
            "telemetry": {"data_points_24h": points},
            "alerts": {"total": data.alerts.len(), "active": alerts_active},
        }
    })))
}

/// `GET /account/keys`: the simulator's key (a prefix only) and a revoked one.
pub(crate) async fn keys(State(s): SharedState) -> Res {
    let prefix = key_prefix(&s.key);
    let last_used = *lock(&s.key_last_used);
    let created = s.started - ChronoDuration::days(90);
    Ok(ok(json!({
        "data": [
            {
                "id": format!("key_{:06x}", fnv1a(s.key.as_bytes()) >> 40),
                "key_prefix": prefix,
                "name": "Simulator key",
                "last_used_at": last_used.as_ref().map(fmt_ts),
                "created_at": fmt_ts(&created),
                "revoked_at": null,
            },
            {
                "id": "key_0ld001",
                "key_prefix": "swk_Rv0k",
                "name": "Old integration",
                "last_used_at": fmt_ts(&(created - ChronoDuration::days(3))),
                "created_at": fmt_ts(&(created - ChronoDuration::days(200))),
                "revoked_at": fmt_ts(&(created - ChronoDuration::days(1))),
            },
        ]
    })))
}

/// The part of a key that metadata may show: its first eight characters, but never more than
/// half of it, so a short key is not given away whole.
fn key_prefix(key: &str) -> String {
    let n = key.chars().count();
    key.chars().take(8.min(n / 2)).collect()
}

#[cfg(test)]
mod key_prefix_tests {
    use super::key_prefix;

    #[test]
    fn prefixes_never_reveal_the_key() {
        assert_eq!(key_prefix("swk_AbCdEfGhIjKl"), "swk_AbCd");
        assert_eq!(key_prefix("swk_demo"), "swk_");
        assert_eq!(key_prefix("swk_d"), "sw");
        assert_eq!(key_prefix(""), "");
    }
}
