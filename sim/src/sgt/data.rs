//! The simulator's state: devices, events, reports, webhooks, stored telemetry and OAuth2
//! grants, seeded from the fixtures plus generated data.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, SubsecRound, TimeZone, Utc};
use serde_json::{Value, json};

use crate::{fnv1a, ulid_like};

const DEVICES_LIST: &str = include_str!("../../../fixtures/sgt/devices_list.json");
const DEVICES_GET: &str = include_str!("../../../fixtures/sgt/devices_get.json");
const EVENTS_LIST: &str = include_str!("../../../fixtures/sgt/events_list.json");
const REPORTS_LIST: &str = include_str!("../../../fixtures/sgt/reports_list.json");
const WEBHOOKS_LIST: &str = include_str!("../../../fixtures/sgt/webhooks_list.json");

const TYPES: [(&str, &str); 5] = [
    ("energy_meter", "Energy meter"),
    ("environmental_sensor", "Environment sensor"),
    ("gateway", "Gateway"),
    ("plc", "PLC"),
    ("flow_meter", "Flow meter"),
];
const SITES: [&str; 5] = [
    "site_dhaka_wh1",
    "site_dhaka_wh2",
    "site_chattogram_port",
    "site_gazipur_plant",
    "site_khulna_depot",
];
const TAGS: [&str; 8] = [
    "power",
    "building-a",
    "building-b",
    "cold-chain",
    "critical",
    "line-3",
    "plc",
    "hvac",
];
const EVENT_KINDS: [(&str, &str); 5] = [
    ("alarm", "Power draw above threshold for 5 minutes."),
    ("device.offline", "Device has not reported for 15 minutes."),
    ("device.online", "Device is reporting again."),
    (
        "threshold.exceeded",
        "Temperature above the configured limit.",
    ),
    ("maintenance.due", "Scheduled maintenance is due."),
];
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// Formats a timestamp the way every response does: RFC 3339, UTC, `Z`, with fractional
/// seconds only when there are some.
pub(crate) fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Now, to the millisecond (the precision of every timestamp the simulator writes).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// The start of generated telemetry and of the generated fleet's history: 2025-01-01T00:00:00Z.
pub(crate) fn origin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// A device id, ordered naturally: shorter ids first, then bytewise (`dev_2` < `dev_10`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DevKey(pub(crate) String);

impl Ord for DevKey {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.len(), self.0.as_bytes()).cmp(&(other.0.len(), other.0.as_bytes()))
    }
}

impl PartialOrd for DevKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) site: Option<String>,
    pub(crate) status: String,
    pub(crate) tags: Vec<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) etag: String,
    /// Soft-deleted: invisible to every endpoint.
    pub(crate) deleted: bool,
    /// Seeded (fixture or fleet): has generated telemetry.
    pub(crate) generated: bool,
    pub(crate) version: u64,
}

impl Device {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "site": self.site,
            "status": self.status,
            "tags": self.tags,
            "created_at": fmt_ts(&self.created_at),
            "updated_at": fmt_ts(&self.updated_at),
            "etag": self.etag,
        })
    }

    /// Recomputes the ETag from the content and the version (so two updates within the same
    /// millisecond still get different ETags).
    pub(crate) fn refresh_etag(&mut self) {
        let content = format!(
            "{}|{}|{}|{:?}|{}|{:?}|{}|{}",
            self.id,
            self.name,
            self.kind,
            self.site,
            self.status,
            self.tags,
            fmt_ts(&self.updated_at),
            self.version
        );
        self.etag = quoted_hash(&content);
    }
}

/// `"xxxxxxxx"`: the quoted HTTP form of a 32-bit content hash.
pub(crate) fn quoted_hash(content: &str) -> String {
    format!("\"{:08x}\"", fnv1a(content.as_bytes()) & 0xffff_ffff)
}

/// An event (alarm, state change…).
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) severity: String,
    pub(crate) device_id: String,
    pub(crate) acknowledged: bool,
    pub(crate) message: String,
    pub(crate) occurred_at: String,
    pub(crate) acknowledged_at: Option<DateTime<Utc>>,
    pub(crate) cleared_at: Option<DateTime<Utc>>,
    pub(crate) notes: Vec<(String, DateTime<Utc>)>,
}

impl Event {
    /// The fixture's fields; `acknowledged_at`, `cleared` and `cleared_at` appear once set.
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "type": self.kind,
            "severity": self.severity,
            "device_id": self.device_id,
            "acknowledged": self.acknowledged,
            "message": self.message,
            "occurred_at": self.occurred_at,
        });
        if let Some(obj) = v.as_object_mut() {
            if let Some(at) = &self.acknowledged_at {
                obj.insert("acknowledged_at".to_owned(), json!(fmt_ts(at)));
            }
            if let Some(at) = &self.cleared_at {
                obj.insert("cleared".to_owned(), json!(true));
                obj.insert("cleared_at".to_owned(), json!(fmt_ts(at)));
            }
        }
        v
    }
}

/// Where a report is in its life.
#[derive(Debug, Clone)]
pub(crate) enum ReportState {
    /// From the fixtures: the status and URL never change.
    Fixed {
        status: String,
        download_url: Option<String>,
    },
    /// Created through the API: `running` until `ready_at`, then `ready`.
    Timed { ready_at: Instant },
}

/// A report run.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) id: String,
    pub(crate) kind: String,
    pub(crate) format: String,
    pub(crate) parameters: Value,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expected_completion_at: DateTime<Utc>,
    pub(crate) state: ReportState,
}

impl Report {
    /// The report as `GET` sees it at `at`.
    pub(crate) fn to_json(&self, tenant: &str, at: Instant) -> Value {
        let (status, url) = match &self.state {
            ReportState::Fixed {
                status,
                download_url,
            } => (status.clone(), download_url.clone()),
            ReportState::Timed { ready_at } if at >= *ready_at => {
                ("ready".to_owned(), Some(self.download_url(tenant)))
            }
            ReportState::Timed { .. } => ("running".to_owned(), None),
        };
        self.json_with(&status, url)
    }

    /// The report as the creating `POST` answers it: `queued`, no URL.
    pub(crate) fn to_json_queued(&self) -> Value {
        self.json_with("queued", None)
    }

    fn json_with(&self, status: &str, download_url: Option<String>) -> Value {
        json!({
            "id": self.id,
            "type": self.kind,
            "status": status,
            "format": self.format,
            "parameters": self.parameters,
            "expected_completion_at": fmt_ts(&self.expected_completion_at),
            "download_url": download_url,
            "created_at": fmt_ts(&self.created_at),
        })
    }

    fn download_url(&self, tenant: &str) -> String {
        let signature = fnv1a(format!("{}{tenant}", self.id).as_bytes());
        format!(
            "https://reports.sgt-sim.invalid/{tenant}/{}.{}?X-Amz-Expires=900&X-Amz-Signature={signature:016x}",
            self.id, self.format
        )
    }
}

/// A webhook endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) active: bool,
    pub(crate) created_at: String,
    pub(crate) secret: String,
    pub(crate) etag: String,
    pub(crate) version: u64,
}

impl Webhook {
    /// The webhook without its secret, with its `etag`.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "active": self.active,
            "created_at": self.created_at,
            "etag": self.etag,
        })
    }

    /// The webhook with its `secret` (on creation and rotation only).
    pub(crate) fn to_json_with_secret(&self) -> Value {
        let mut v = self.to_json();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("secret".to_owned(), json!(self.secret));
        }
        v
    }

    pub(crate) fn refresh_etag(&mut self) {
        let content = format!(
            "{}|{}|{:?}|{}|{}|{}",
            self.id, self.url, self.events, self.active, self.secret, self.version
        );
        self.etag = quoted_hash(&content);
    }
}

/// A reading stored by ingest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stored {
    pub(crate) ts: DateTime<Utc>,
    pub(crate) value: f64,
    /// Sent with `supersedes: true`: hides the generated reading at the same `ts`.
    pub(crate) supersedes: bool,
}

/// Everything the simulator holds.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub(crate) devices: BTreeMap<DevKey, Device>,
    /// The next number tried for `dev_<n>`.
    pub(crate) next_device: u64,
    pub(crate) events: BTreeMap<String, Event>,
    pub(crate) reports: BTreeMap<String, Report>,
    pub(crate) webhooks: BTreeMap<String, Webhook>,
    /// Ingested readings by (device id, metric), in arrival order.
    pub(crate) stored: HashMap<(String, String), Vec<Stored>>,
    /// Access token → valid until.
    pub(crate) access_tokens: HashMap<String, Instant>,
    /// Refresh token → the client it was issued to.
    pub(crate) refresh_tokens: HashMap<String, String>,
    /// Authorization code → PKCE code challenge.
    pub(crate) auth_codes: HashMap<String, String>,
}

impl Data {
    /// The fixtures' devices, events, reports and webhooks, plus `fleet_size` generated devices
    /// and events to go with them. Deterministic for a seed.
    pub(crate) fn seed(seed: u64, fleet_size: usize) -> Result<Data, String> {
        let mut data = Data {
            next_device: 1,
            ..Data::default()
        };
        for text in [DEVICES_LIST, DEVICES_GET] {
            for item in fixture_items(text)? {
                let device = device_from_fixture(&item)?;
                data.devices
                    .entry(DevKey(device.id.clone()))
                    .or_insert(device);
            }
        }
        for item in fixture_items(EVENTS_LIST)? {
            let event = event_from_fixture(&item)?;
            data.events.insert(event.id.clone(), event);
        }
        for item in fixture_items(REPORTS_LIST)? {
            let report = report_from_fixture(&item)?;
            data.reports.insert(report.id.clone(), report);
        }
        for item in fixture_items(WEBHOOKS_LIST)? {
            let webhook = webhook_from_fixture(&item, seed)?;
            data.webhooks.insert(webhook.id.clone(), webhook);
        }

        let mut rng = fastrand::Rng::with_seed(seed);
        let origin = origin();
        // The generated history spans 2025 (all in the past, whatever the clock says).
        let span_secs: i64 = 365 * 86_400;
        for _ in 0..fleet_size {
            let id = data.next_device_id();
            let (kind, label) = pick(&mut rng, &TYPES);
            let number = id.trim_start_matches("dev_");
            let created_at = origin + ChronoDuration::seconds(rng.i64(0..span_secs / 2));
            let updated_at = created_at + ChronoDuration::seconds(rng.i64(0..span_secs / 2));
            let status = match rng.u8(0..10) {
                0..=6 => "online",
                7..=8 => "offline",
                _ => "provisioning",
            };
            let mut tags: Vec<String> = Vec::new();
            for _ in 0..rng.usize(0..=3) {
                let tag = pick(&mut rng, &TAGS).to_owned();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            let mut device = Device {
                id: id.clone(),
                name: format!("{label} {number}"),
                kind: kind.to_owned(),
                site: Some(pick(&mut rng, &SITES).to_owned()),
                status: status.to_owned(),
                tags,
                created_at,
                updated_at,
                etag: String::new(),
                deleted: false,
                generated: true,
                version: 0,
            };
            device.refresh_etag();
            data.devices.insert(DevKey(id), device);
        }

        let device_ids: Vec<String> = data.devices.values().map(|d| d.id.clone()).collect();
        let event_count = (fleet_size / 5).max(20);
        for _ in 0..event_count {
            let Some(device_id) = device_ids.get(rng.usize(..device_ids.len().max(1))) else {
                break;
            };
            let occurred = origin + ChronoDuration::seconds(rng.i64(0..span_secs));
            let millis = u64::try_from(occurred.timestamp_millis()).unwrap_or(0);
            let (kind, message) = pick(&mut rng, &EVENT_KINDS);
            let severity = match kind {
                "alarm" => "critical",
                "device.online" => "info",
                _ => pick(&mut rng, &SEVERITIES),
            };
            let id = format!("evt_{}", ulid_like(millis, 4, &mut rng));
            let acknowledged = rng.bool();
            data.events.entry(id.clone()).or_insert(Event {
                id,
                kind: kind.to_owned(),
                severity: severity.to_owned(),
                device_id: device_id.clone(),
                acknowledged,
                message: message.to_owned(),
                occurred_at: fmt_ts(&occurred),
                acknowledged_at: acknowledged
                    .then(|| occurred + ChronoDuration::minutes(rng.i64(1..240))),
                cleared_at: None,
                notes: Vec::new(),
            });
        }
        Ok(data)
    }

    /// The next free `dev_<n>`.
    pub(crate) fn next_device_id(&mut self) -> String {
        loop {
            let id = format!("dev_{}", self.next_device);
            self.next_device = self.next_device.saturating_add(1);
            if !self.devices.contains_key(&DevKey(id.clone())) {
                return id;
            }
        }
    }

    /// A device that exists and is not deleted.
    pub(crate) fn device(&self, id: &str) -> Option<&Device> {
        self.devices
            .get(&DevKey(id.to_owned()))
            .filter(|d| !d.deleted)
    }

    /// The mutable form of [`Data::device`].
    pub(crate) fn device_mut(&mut self, id: &str) -> Option<&mut Device> {
        self.devices
            .get_mut(&DevKey(id.to_owned()))
            .filter(|d| !d.deleted)
    }

    pub(crate) fn stored_readings(
        &self,
        device_id: &str,
        metric: &str,
    ) -> Vec<(DateTime<Utc>, f64)> {
        self.stored
            .get(&(device_id.to_owned(), metric.to_owned()))
            .map(|v| v.iter().map(|s| (s.ts, s.value)).collect())
            .unwrap_or_default()
    }

    /// Whether `token` is an access token still valid at `at`. Forgets expired tokens.
    pub(crate) fn access_token_valid(&mut self, token: &str, at: Instant) -> bool {
        match self.access_tokens.get(token) {
            Some(until) if at < *until => true,
            Some(_) => {
                self.access_tokens.remove(token);
                false
            }
            None => false,
        }
    }
}

/// A random element of a (non-empty, constant) table.
fn pick<T: Copy + Default>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items
        .get(rng.usize(..items.len().max(1)))
        .copied()
        .unwrap_or_default()
}

fn fixture_items(text: &str) -> Result<Vec<Value>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("simulator fixture does not parse: {e}"))?;
    match v.get("data") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(item @ Value::Object(_)) => Ok(vec![item.clone()]),
        _ => Err("simulator fixture has no `data`".to_owned()),
    }
}

fn str_field(v: &Value, field: &str) -> Result<String, String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("simulator fixture item lacks string `{field}`"))
}

fn ts_field(v: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    let s = str_field(v, field)?;
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("simulator fixture `{field}` is not RFC 3339: {e}"))
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn device_from_fixture(v: &Value) -> Result<Device, String> {
    Ok(Device {
        id: str_field(v, "id")?,
        name: str_field(v, "name")?,
        kind: str_field(v, "type")?,
        site: v.get("site").and_then(Value::as_str).map(str::to_owned),
        status: str_field(v, "status")?,
        tags: strings(v, "tags"),
        created_at: ts_field(v, "created_at")?,
        updated_at: ts_field(v, "updated_at")?,
        etag: str_field(v, "etag")?,
        deleted: false,
        generated: true,
        version: 0,
    })
}

fn event_from_fixture(v: &Value) -> Result<Event, String> {
    Ok(Event {
        id: str_field(v, "id")?,
        kind: str_field(v, "type")?,
        severity: str_field(v, "severity")?,
        device_id: str_field(v, "device_id")?,
        acknowledged: v
            .get("acknowledged")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        message: str_field(v, "message")?,
        occurred_at: str_field(v, "occurred_at")?,
        acknowledged_at: None,
        cleared_at: None,
        notes: Vec::new(),
    })
}

fn report_from_fixture(v: &Value) -> Result<Report, String> {
    let download_url = v
        .get("download_url")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let format = if download_url.as_deref().is_some_and(|u| u.contains(".csv")) {
        "csv"
    } else {
        "pdf"
    };
    Ok(Report {
        id: str_field(v, "id")?,
        kind: str_field(v, "type")?,
        format: format.to_owned(),
        parameters: json!({}),
        created_at: ts_field(v, "created_at")?,
        expected_completion_at: ts_field(v, "expected_completion_at")?,
        state: ReportState::Fixed {
            status: str_field(v, "status")?,
            download_url,
        },
    })
}

fn webhook_from_fixture(v: &Value, seed: u64) -> Result<Webhook, String> {
    let id = str_field(v, "id")?;
    let secret = format!("whsec_{:016x}{:016x}", fnv1a(id.as_bytes()), seed);
    let mut webhook = Webhook {
        url: str_field(v, "url")?,
        events: strings(v, "events"),
        active: v.get("active").and_then(Value::as_bool).unwrap_or(true),
        created_at: str_field(v, "created_at")?,
        secret,
        etag: String::new(),
        version: 0,
        id,
    };
    webhook.refresh_etag();
    Ok(webhook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_deterministic_and_keeps_the_fixtures() {
        let a = Data::seed(7, 100).unwrap_or_default();
        let b = Data::seed(7, 100).unwrap_or_default();
        assert_eq!(a.devices.len(), 102);
        let ids_a: Vec<_> = a.devices.values().map(|d| d.etag.clone()).collect();
        let ids_b: Vec<_> = b.devices.values().map(|d| d.etag.clone()).collect();
        assert_eq!(ids_a, ids_b);
        let dev42 = a.device("dev_42").map(Device::to_json);
        assert_eq!(
            dev42
                .as_ref()
                .and_then(|d| d.get("etag"))
                .and_then(Value::as_str),
            Some("\"7c1e5b02\"")
        );
        // Natural order: dev_1, dev_2, …, dev_41, dev_42 (fixture), dev_43 (fixture), dev_44, …
        let first: Vec<_> = a.devices.keys().take(3).map(|k| k.0.as_str()).collect();
        assert_eq!(first, ["dev_1", "dev_2", "dev_3"]);
        assert_eq!(a.events.len(), 22);
        assert_eq!(a.reports.len(), 2);
        assert_eq!(a.webhooks.len(), 2);
    }
}
