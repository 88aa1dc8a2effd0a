//! Incidents: `GET /api/v1/incidents`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DeviceId, List};

/// An incident (`PublicApiIncidentDto`). The spec documents no fields of this DTO: the ones its
/// filters imply are typed, everything else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Incident {
    /// The incident id.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// The device it concerns.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// Numeric state (the `state` filter).
    #[serde(default)]
    pub state: Option<i64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Marker for `GET /api/v1/incidents`.
#[derive(Debug)]
pub enum IncidentsList {}

impl List<Incident, IncidentsList> {
    /// Only incidents in `[from, to)` (`fromUtc`, `toUtc`).
    pub fn between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range(from, to)
    }

    /// Only incidents of this device.
    pub fn device_id(self, device_id: impl Into<DeviceId>) -> Self {
        self.param("deviceId", device_id.into())
    }

    /// Only incidents in this numeric state.
    pub fn state(self, state: i64) -> Self {
        self.param("state", state)
    }
}
