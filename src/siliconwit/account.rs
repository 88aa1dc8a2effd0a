//! Account: `GET /v1/account/usage` and `/account/keys`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// `starter`, `business`, `scale`, `enterprise`, …
    pub plan: String,
    /// `active`, `suspended`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Devices allowed.
    #[serde(default)]
    pub device_limit: Option<u64>,
    /// Days of telemetry kept (telemetry ranges are capped to it).
    #[serde(default)]
    pub data_retention_days: Option<u32>,
    /// Billing period start.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub current_period_start: Option<DateTime<Utc>>,
    /// Billing period end.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub current_period_end: Option<DateTime<Utc>>,
}

/// Device counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceCounts {
    /// All devices.
    pub total: u64,
    /// Active devices.
    #[serde(default)]
    pub active: u64,
    /// Paused devices.
    #[serde(default)]
    pub paused: u64,
    /// The plan's limit.
    #[serde(default)]
    pub limit: u64,
}

/// Telemetry volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TelemetryUsage {
    /// Data points in the last 24 hours.
    #[serde(default)]
    pub data_points_24h: u64,
}

/// Alert counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertCounts {
    /// All alerts.
    #[serde(default)]
    pub total: u64,
    /// Enabled alerts.
    #[serde(default)]
    pub active: u64,
}

/// Plan, device counts and usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountUsage {
    /// The subscription.
    pub plan: Plan,
    /// Device counts.
    pub devices: DeviceCounts,
    /// Telemetry volume.
    pub telemetry: TelemetryUsage,
    /// Alert counts.
    pub alerts: AlertCounts,
}

/// Metadata of an API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyInfo {
    /// `key_…`.
    pub id: String,
    /// The first characters of the key (`swk_AbCd`), to recognise it.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// When it was last used.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: still valid).
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub revoked_at: Option<DateTime<Utc>>,
}
