//! Incidents: `GET /api/v1/incidents`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DeviceId;
use crate::List;

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

/// The filters of [`Client::incidents`](super::Client::incidents); set them with the list's
/// methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct IncidentFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<i64>,
}

impl List<Incident, IncidentFilter> {
    /// Only incidents in `[from, to)` (`fromUtc`, `toUtc`).
    pub fn between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range(from, to)
    }

    /// Only incidents of this device.
    pub fn device_id(self, device_id: impl Into<DeviceId>) -> Self {
        self.filter(|q| q.device_id = Some(device_id.into()))
    }

    /// Only incidents in this numeric state.
    pub fn state(self, state: i64) -> Self {
        self.filter(|q| q.state = Some(state))
    }
}
