//! Alerts: `GET /v1/alerts`, `/alerts/{id}`, `/alerts/{id}/history`.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{AlertId, Client, DeviceId, Identified, MAX_PAGE_SIZE, Wire};
use crate::List;
use crate::call::Call;
use crate::envelope::Envelope;
use crate::list::check_page_size;
use crate::transport::Request;

open_enum!(
    /// A comparison in an alert condition.
    Operator {
        /// `>`
        Gt => ">",
        /// `>=`
        Ge => ">=",
        /// `<`
        Lt => "<",
        /// `<=`
        Le => "<=",
        /// `==`
        Eq => "==",
        /// `!=`
        Ne => "!=",
    }
);

open_enum!(
    /// How serious an alert is.
    Severity {
        /// Informational.
        Info => "info",
        /// Needs attention.
        Warning => "warning",
        /// Needs action now.
        Critical => "critical",
    }
);

/// The threshold of a condition: a number usually, but the API does not promise it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlertValue {
    /// A number.
    Number(f64),
    /// A flag.
    Bool(bool),
    /// Text.
    Text(String),
    /// Anything else, as sent.
    Other(serde_json::Value),
}

impl AlertValue {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AlertValue::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// `{field, operator, value}`: the alert fires when `field operator value` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertCondition {
    /// The metric (`temperature`).
    pub field: String,
    /// The comparison.
    pub operator: Operator,
    /// The threshold.
    pub value: AlertValue,
}

/// A configured alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alert {
    /// `alert_…`.
    pub id: AlertId,
    /// The device it watches.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// When it fires.
    pub condition: AlertCondition,
    /// What it does (`email`, …).
    #[serde(default)]
    pub actions: Vec<String>,
    /// How serious it is.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Whether it is on.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Seconds between two firings.
    #[serde(default)]
    pub cooldown: Option<u64>,
    /// When it last fired.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub last_triggered: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl Identified for Alert {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

/// One time an alert fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertEvent {
    /// `evt_…`.
    pub id: String,
    /// The device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// The value that crossed the threshold.
    #[serde(default)]
    pub condition_value: Option<AlertValue>,
    /// Severity at the time.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Whether someone acknowledged it.
    #[serde(default)]
    pub acknowledged: bool,
    /// When it was acknowledged.
    #[serde(default, deserialize_with = "crate::timestamp::option")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When it fired.
    #[serde(deserialize_with = "crate::timestamp::required")]
    pub triggered_at: DateTime<Utc>,
}

/// The alerts of a client. Get one from [`Client::alerts`].
#[derive(Debug, Clone)]
pub struct Alerts {
    client: Client,
}

impl Alerts {
    pub(crate) fn new(client: Client) -> Self {
        Alerts { client }
    }

    /// `GET /v1/alerts`, offset-paged to `total`.
    ///
    /// ```no_run
    /// # async fn demo(sw: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
    /// use futures::TryStreamExt;
    /// let alerts: Vec<_> = sw.alerts().list().items().try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self) -> List<Alert, ()> {
        self.client.list(&["alerts"], ())
    }

    /// `GET /v1/alerts/{id}`.
    pub fn get(&self, id: impl Into<AlertId>) -> Call<Alert> {
        let id = id.into();
        self.client.get(segments!["alerts", id])
    }

    /// `GET /v1/alerts/{id}/history`: the latest firings, at most `limit` (1 to 100; `None`:
    /// the server's default of 50).
    ///
    /// ```no_run
    /// # async fn demo(sw: iot_sdk::siliconwit::Client) -> iot_sdk::Result<()> {
    /// for e in sw.alerts().history("alert_abc123", Some(20)).await? {
    ///     println!("{} {:?}", e.triggered_at, e.condition_value);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn history(&self, id: impl Into<AlertId>, limit: Option<u32>) -> Call<Vec<AlertEvent>> {
        let id = id.into();
        #[derive(Serialize)]
        struct Q {
            #[serde(skip_serializing_if = "Option::is_none")]
            limit: Option<u32>,
        }
        let req = check_page_size("limit", limit, MAX_PAGE_SIZE).and_then(|()| {
            Request::new(Method::GET, segments!["alerts", id, "history"]).query(&Q { limit })
        });
        Call::new(self.client.transport.clone(), req, Wire::call)
    }
}
