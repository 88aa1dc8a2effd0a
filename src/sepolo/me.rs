//! `GET /api/v1/me`: the key's identity, organization, scopes and data boundaries.

use serde::{Deserialize, Serialize};

open_enum!(
    /// A permission an organization key can be granted.
    Scope {
        /// `GET /me`.
        PublicApiRead => "public_api.read",
        /// Assets and their children.
        AssetsRead => "assets.read",
        /// Devices.
        DevicesRead => "devices.read",
        /// Device telemetry and PointGuard cycles.
        TelemetryRead => "telemetry.read",
        /// Movements and their signatures.
        MovementsRead => "movements.read",
        /// Incidents.
        IncidentsRead => "incidents.read",
        /// Reading service reports.
        ServiceReportsRead => "service_reports.read",
        /// Creating service reports (trusted integrations only).
        ServiceReportsWrite => "service_reports.write",
        /// Service visits.
        ServiceVisitsRead => "service_visits.read",
        /// Appointments.
        AppointmentsRead => "appointments.read",
        /// The reporting endpoints.
        ReportingRead => "reporting.read",
        /// Customers.
        CustomersRead => "customers.read",
        /// Vendors.
        VendorsRead => "vendors.read",
        /// Inventory parts.
        InventoryRead => "inventory.read",
    }
);

/// The key's rate limits as the organization configured them (`null`: not limited by a fixed
/// number).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KeyRateLimit {
    /// Requests per minute.
    #[serde(default)]
    pub requests_per_minute: Option<u64>,
    /// Requests per day.
    #[serde(default)]
    pub requests_per_day: Option<u64>,
}

/// Who the key is (`PublicApiMeResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Me {
    /// The organization every request is scoped to.
    pub organization_id: String,
    /// The key's client id (a key prefix, not the key).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The integration's name.
    #[serde(default)]
    pub client_name: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// API version (`v1`).
    #[serde(default)]
    pub version: Option<String>,
    /// Configured rate limits.
    #[serde(default)]
    pub rate_limit: Option<KeyRateLimit>,
    /// Asset groups the key may see (empty: all).
    #[serde(default)]
    pub allowed_group_ids: Vec<serde_json::Value>,
    /// Customers the key may see (empty: all).
    #[serde(default)]
    pub allowed_customer_ids: Vec<serde_json::Value>,
}

impl Me {
    /// Whether the key was granted `scope`.
    pub fn has_scope(&self, scope: &Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// The scopes of `needed` the key lacks, in the order given.
    pub fn missing_scopes(&self, needed: &[Scope]) -> Vec<Scope> {
        needed
            .iter()
            .filter(|s| !self.has_scope(s))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_kept() {
        let me: Me = serde_json::from_value(serde_json::json!({
            "organizationId": "o",
            "scopes": ["assets.read", "fleet.admin"]
        }))
        .unwrap();
        assert_eq!(
            me.scopes,
            [Scope::AssetsRead, Scope::Other("fleet.admin".into())]
        );
        assert!(me.has_scope(&Scope::AssetsRead));
        assert_eq!(
            me.missing_scopes(&[Scope::AssetsRead, Scope::ReportingRead, Scope::VendorsRead]),
            [Scope::ReportingRead, Scope::VendorsRead]
        );
    }
}
