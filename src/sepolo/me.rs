//! `GET /api/v1/me`: the key's identity, organization, scopes and data boundaries.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Error};

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

/// Which scope a `403` says the key lacks, read from Sepolo's message ("The API key does not
/// include the appointments.read scope.").
///
/// ```
/// use iot_sdk::sepolo::MissingScope;
///
/// fn advice(err: &iot_sdk::Error) -> Option<String> {
///     err.missing_scope().map(|s| format!("grant the key the {s} scope"))
/// }
/// ```
pub trait MissingScope {
    /// For a 403, the scope the server says the key lacks.
    fn missing_scope(&self) -> Option<&str>;
}

impl MissingScope for ApiError {
    fn missing_scope(&self) -> Option<&str> {
        if self.status() != 403 {
            return None;
        }
        let before = self
            .message()
            .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
            .strip_suffix(" scope")?;
        let scope = before.rsplit(char::is_whitespace).next()?;
        let scope = scope.trim_matches(|c: char| matches!(c, '\'' | '"' | '`'));
        (!scope.is_empty()).then_some(scope)
    }
}

impl MissingScope for Error {
    fn missing_scope(&self) -> Option<&str> {
        self.api()?.missing_scope()
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

    fn forbidden(message: &str) -> ApiError {
        ApiError {
            status: 403,
            code: crate::ErrorCode::Forbidden,
            vendor_code: Some("forbidden".into()),
            message: message.into(),
            details: None,
            request_id: None,
            retry_after: None,
            rate_limit: crate::RateLimit::default(),
            request: crate::error::RequestInfo::new("GET", "/api/v1/appointments"),
            body_snippet: None,
            attempts: 1,
        }
    }

    #[test]
    fn missing_scope_is_parsed_from_the_message() {
        let e = forbidden("The API key does not include the appointments.read scope.");
        assert_eq!(e.missing_scope(), Some("appointments.read"));
        assert_eq!(
            Error::from(e.clone()).missing_scope(),
            Some("appointments.read")
        );
        assert_eq!(
            forbidden("Missing the 'reporting.read' scope").missing_scope(),
            Some("reporting.read")
        );
        assert_eq!(forbidden("Account suspended").missing_scope(), None);
        assert_eq!(forbidden(" scope").missing_scope(), None);
        let mut other = forbidden("the x.read scope");
        other.status = 401;
        assert_eq!(other.missing_scope(), None);
        assert_eq!(
            Error::invalid_input("the x.read scope").missing_scope(),
            None
        );
    }

    /// Sepolo's description reads `{error, message}` and a lone `{error}`, for any text.
    #[test]
    fn the_description_reads_sepolo_error_bodies() {
        use crate::vendor::Vendor;
        use proptest::prelude::*;
        proptest!(|(code in "\\PC{0,40}", message in "\\PC{0,80}")| {
            let body = serde_json::json!({"error": code, "message": message});
            let parsed = super::super::Sepolo::error_body(body.as_object().unwrap()).unwrap();
            prop_assert_eq!(parsed.code.as_deref(), Some(code.as_str()));
            prop_assert_eq!(parsed.message.as_deref(), Some(message.as_str()));
            let lone = serde_json::json!({"error": message});
            let parsed = super::super::Sepolo::error_body(lone.as_object().unwrap()).unwrap();
            prop_assert_eq!(parsed.code, None);
            prop_assert_eq!(parsed.message.as_deref(), Some(message.as_str()));
            // SGT's nested shape is not Sepolo's.
            let nested = serde_json::json!({"error": {"code": code}});
            prop_assert_eq!(super::super::Sepolo::error_body(nested.as_object().unwrap()), None);
        });
    }
}
