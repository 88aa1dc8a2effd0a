//! Service reports, service visits and appointments.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AssetId, Client, DeviceId, ServiceReportId, UserId, Wire, api_path};
use crate::List;
use crate::call::Call;
use crate::envelope::Envelope;
use crate::transport::Request;

/// The longest window one visits or appointments request accepts.
pub const MAX_SERVICE_WINDOW: TimeDelta = TimeDelta::days(366);

/// A service report (`PublicApiServiceReportDto`). Fields the spec does not show are kept in
/// `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceReport {
    /// The report id.
    pub service_report_id: ServiceReportId,
    /// The asset serviced.
    #[serde(default)]
    pub asset_id: Option<AssetId>,
    /// The state as text (`Completed`).
    #[serde(default)]
    pub state_text: Option<String>,
    /// The device, when the report names one.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The numeric state (the `state` filter).
    #[serde(default)]
    pub state: Option<i64>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A service report to create. The spec does not document the request body: this models the
/// fields the report DTO shows (asset, device, state) and lets you add any other field the API
/// expects with [`NewServiceReport::field`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewServiceReport {
    asset_id: AssetId,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_text: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl NewServiceReport {
    /// A report for an asset.
    pub fn new(asset_id: impl Into<AssetId>) -> Self {
        NewServiceReport {
            asset_id: asset_id.into(),
            device_id: None,
            state_text: None,
            extra: Map::new(),
        }
    }

    /// The device concerned.
    #[must_use]
    pub fn device_id(mut self, device_id: impl Into<DeviceId>) -> Self {
        self.device_id = Some(device_id.into());
        self
    }

    /// The state as text.
    #[must_use]
    pub fn state_text(mut self, state: impl Into<String>) -> Self {
        self.state_text = Some(state.into());
        self
    }

    /// Any other body field, by its camelCase wire name (`notes`, `visitDateUtc`, …).
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

/// The answer to a create (`PublicApiCreatedServiceReportResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreatedServiceReport {
    /// The new report's id.
    pub service_report_id: ServiceReportId,
}

/// A service visit (`PublicApiServiceVisitDto`). The spec documents no fields: everything is
/// kept in `extra`, with the id typed when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceVisit {
    /// The visit id.
    #[serde(default)]
    pub service_visit_id: Option<String>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A planned appointment (`PublicApiAppointmentDto`). The spec documents no fields beyond the
/// `userId` filter: everything else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Appointment {
    /// The appointment id.
    #[serde(default)]
    pub appointment_id: Option<String>,
    /// The Sepolo user it is planned for.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Every other field the server sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The filters of [`Service::reports`]; set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceReportFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    asset_id: Option<AssetId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<i64>,
}

/// The filters of [`Service::appointments`]; set them with the list's methods.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppointmentFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<UserId>,
}

impl List<ServiceReport, ServiceReportFilter> {
    /// Only reports created in `[from, to)` (`fromUtc`, `toUtc`).
    pub fn between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range(from, to)
    }

    /// Only reports of this asset.
    pub fn asset_id(self, asset_id: impl Into<AssetId>) -> Self {
        self.filter(|q| q.asset_id = Some(asset_id.into()))
    }

    /// Only reports of this device.
    pub fn device_id(self, device_id: impl Into<DeviceId>) -> Self {
        self.filter(|q| q.device_id = Some(device_id.into()))
    }

    /// Only reports in this numeric state.
    pub fn state(self, state: i64) -> Self {
        self.filter(|q| q.state = Some(state))
    }
}

impl List<ServiceVisit, ()> {
    /// Only visits in `[from, to)`; ranges over 366 days are split and streamed in order.
    pub fn between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range(from, to)
    }
}

impl List<Appointment, AppointmentFilter> {
    /// Only appointments in `[from, to)`; ranges over 366 days are split and streamed in order.
    pub fn between(self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.range(from, to)
    }

    /// Only this user's appointments.
    pub fn user_id(self, user_id: impl Into<UserId>) -> Self {
        self.filter(|q| q.user_id = Some(user_id.into()))
    }
}

/// Service reports, visits and appointments. Get one from [`Client::service`].
#[derive(Debug, Clone)]
pub struct Service {
    client: Client,
}

impl Service {
    pub(crate) fn new(client: Client) -> Self {
        Service { client }
    }

    /// `GET /api/v1/service-reports`.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// let page = sepolo.service().reports().asset_id("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63").send().await?;
    /// # Ok(()) }
    /// ```
    pub fn reports(&self) -> List<ServiceReport, ServiceReportFilter> {
        self.client
            .list(&["service-reports"], ServiceReportFilter::default())
            .windowed("fromUtc", "toUtc", None)
    }

    /// `GET /api/v1/service-reports/{serviceReportId}`.
    pub fn report(&self, id: impl Into<ServiceReportId>) -> Call<ServiceReport> {
        let id = id.into();
        self.client.get(&["service-reports", id.as_str()])
    }

    /// `POST /api/v1/service-reports` (needs `service_reports.write`, which read-only keys do not
    /// have). Not retried after the request may have been received.
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use iot_sdk::sepolo::NewServiceReport;
    /// let created = sepolo.service()
    ///     .create_report(NewServiceReport::new("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63").field("notes", "Replaced filter"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn create_report(&self, report: NewServiceReport) -> Call<CreatedServiceReport> {
        let req = Request::new(Method::POST, api_path(&["service-reports"])).json(&report);
        Call::new(self.client.transport.clone(), req, Wire::call)
    }

    /// `GET /api/v1/service-visits` (paged like every list, though the spec lists no cursor).
    ///
    /// ```no_run
    /// # async fn demo(sepolo: iot_sdk::sepolo::Client) -> iot_sdk::Result<()> {
    /// use chrono::{Duration, Utc};
    /// use futures::TryStreamExt;
    /// let to = Utc::now();
    /// let year: Vec<_> = sepolo.service().visits().between(to - Duration::days(365), to).items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn visits(&self) -> List<ServiceVisit, ()> {
        self.client.list(&["service-visits"], ()).windowed(
            "fromUtc",
            "toUtc",
            Some(MAX_SERVICE_WINDOW),
        )
    }

    /// `GET /api/v1/appointments` (paged like every list, though the spec lists no cursor).
    pub fn appointments(&self) -> List<Appointment, AppointmentFilter> {
        self.client
            .list(&["appointments"], AppointmentFilter::default())
            .windowed("fromUtc", "toUtc", Some(MAX_SERVICE_WINDOW))
    }
}
