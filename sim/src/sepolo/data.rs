//! The simulated organization: assets, devices, customers, vendors, parts, incidents, service
//! visits, appointments and service reports, seeded from the spec's examples
//! (`fixtures/sepolo/`) plus a generated organization. Telemetry, cycles and movements are not
//! stored: see [`super::signals`].

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, SubsecRound, Utc};
use serde_json::{Map, Value, json};

use super::signals::{ORIGIN_MS, Signal, ts};
use crate::fnv1a;

const ASSETS_LIST: &str = include_str!("../../../fixtures/sepolo/assets_list.json");
const ASSETS_CHILDREN: &str = include_str!("../../../fixtures/sepolo/assets_children.json");
const DEVICES_LIST: &str = include_str!("../../../fixtures/sepolo/devices_list.json");
const CUSTOMERS: &str = include_str!("../../../fixtures/sepolo/customers.json");
const VENDORS: &str = include_str!("../../../fixtures/sepolo/vendors.json");
const PARTS: &str = include_str!("../../../fixtures/sepolo/inventory_parts.json");
const INCIDENTS: &str = include_str!("../../../fixtures/sepolo/incidents.json");
const VISITS: &str = include_str!("../../../fixtures/sepolo/service_visits.json");
const APPOINTMENTS: &str = include_str!("../../../fixtures/sepolo/appointments.json");
const REPORTS: &str = include_str!("../../../fixtures/sepolo/service_reports_list.json");
const MOVEMENTS: &str = include_str!("../../../fixtures/sepolo/movements.json");
const SIGNATURE: &str = include_str!("../../../fixtures/sepolo/movement_signature.json");

/// The organization every key belongs to (the spec's `/me` example).
pub(crate) const ORGANIZATION_ID: &str = "7f2d3f0a-7c51-42cf-a06d-2c2df5f0c20b";

const ASSET_KINDS: [&str; 8] = [
    "Cooling line",
    "Packaging conveyor",
    "Compressor",
    "Freezer room",
    "Pump station",
    "Air handler",
    "Boiler",
    "Chiller",
];
const COMPONENTS: [&str; 5] = ["compressor", "motor", "pump", "fan", "valve"];
const COMPANIES: [&str; 8] = [
    "Nordic Dairy",
    "Baltic Logistics",
    "Fjord Seafood",
    "Lakeside Bakery",
    "Polar Pharma",
    "Harbor Brewing",
    "Granite Foods",
    "Aurora Retail",
];
const COMPANY_FORMS: [&str; 4] = ["AB", "Oy", "AS", "A/S"];
const ERP_SYSTEMS: [&str; 4] = ["SAP", "Dynamics365", "NetSuite", "Visma"];
const VENDOR_NAMES: [&str; 6] = [
    "Danfoss Service",
    "Grundfos Parts",
    "ABB Drives",
    "Bitzer Nordic",
    "Alfa Laval Spares",
    "Carel Controls",
];
const PART_NAMES: [(&str, &str); 6] = [
    ("FLT", "Air filter"),
    ("BLT", "Drive belt"),
    ("SNS", "Temperature sensor"),
    ("VLV", "Expansion valve"),
    ("BRG", "Ball bearing"),
    ("CTR", "Contactor"),
];
const INCIDENT_TITLES: [&str; 5] = [
    "Peak current above threshold",
    "Battery low",
    "Temperature out of range",
    "Device offline",
    "Movement time exceeded",
];
const APPOINTMENT_TITLES: [&str; 4] = [
    "Quarterly inspection",
    "Filter replacement",
    "Calibration",
    "Compressor service",
];

/// Formats a timestamp as every response does: RFC 3339, UTC, `Z`, with milliseconds only when
/// they are not zero (`2026-05-27T12:00:01.420Z`).
pub(crate) fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Now, to the millisecond.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// The text of a numeric incident state: 1 Open, 2 Acknowledged, 3 Resolved.
pub(crate) fn incident_state_text(state: i64) -> &'static str {
    match state {
        1 => "Open",
        2 => "Acknowledged",
        3 => "Resolved",
        _ => "Unknown",
    }
}

/// The numeric state of a service report's text: 1 Draft, 2 Submitted, 3 Completed (0 for
/// anything else).
pub(crate) fn report_state(text: &str) -> i64 {
    match text.to_ascii_lowercase().as_str() {
        "draft" => 1,
        "submitted" => 2,
        "completed" => 3,
        _ => 0,
    }
}

/// The text of a numeric device status: 1 Online, 2 Offline, 3 Maintenance.
pub(crate) fn device_status_text(status: i64) -> &'static str {
    match status {
        1 => "Online",
        2 => "Offline",
        3 => "Maintenance",
        _ => "Unknown",
    }
}

/// An asset.
#[derive(Debug, Clone)]
pub(crate) struct Asset {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) device_id: Option<String>,
    pub(crate) is_active: bool,
    pub(crate) parent_id: Option<String>,
    pub(crate) group_id: i64,
    pub(crate) customer_id: Option<String>,
    pub(crate) updated: DateTime<Utc>,
}

impl Asset {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "assetId": self.id,
            "name": self.name,
            "deviceId": self.device_id,
            "isActive": self.is_active,
            "parentAssetId": self.parent_id,
            "groupId": self.group_id,
            "customerId": self.customer_id,
            "updatedUtc": fmt_ts(&self.updated),
        })
    }
}

/// A device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) group_id: i64,
    pub(crate) battery: i64,
    pub(crate) status: i64,
    pub(crate) asset_id: Option<String>,
    pub(crate) pointguard: bool,
    pub(crate) updated: DateTime<Utc>,
}

impl Device {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "deviceId": self.id,
            "deviceName": self.name,
            "groupId": self.group_id,
            "batteryPercentage": self.battery,
            "status": self.status,
            "statusText": device_status_text(self.status),
            "deviceType": if self.pointguard { "PointGuard" } else { "Environment" },
            "assetId": self.asset_id,
            "updatedUtc": fmt_ts(&self.updated),
        })
    }

    /// Its generated series.
    pub(crate) fn signal(&self, seed: u64) -> Signal {
        Signal::new(seed, &self.id, self.pointguard)
    }
}

/// A customer directory record.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) external_system: String,
    pub(crate) external_id: String,
}

impl Customer {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "customerId": self.id,
            "name": self.name,
            "externalSystem": self.external_system,
            "externalId": self.external_id,
        })
    }
}

/// A vendor.
#[derive(Debug, Clone)]
pub(crate) struct Vendor {
    pub(crate) id: String,
    pub(crate) name: String,
}

impl Vendor {
    pub(crate) fn to_json(&self) -> Value {
        json!({ "vendorId": self.id, "name": self.name })
    }
}

/// An inventory part.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub(crate) id: String,
    pub(crate) number: String,
    pub(crate) name: String,
    pub(crate) vendor_id: String,
    pub(crate) quantity: i64,
    pub(crate) is_active: bool,
}

impl Part {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "partId": self.id,
            "partNumber": self.number,
            "name": self.name,
            "vendorId": self.vendor_id,
            "quantityOnHand": self.quantity,
            "isActive": self.is_active,
        })
    }
}

/// An incident.
#[derive(Debug, Clone)]
pub(crate) struct Incident {
    pub(crate) id: String,
    pub(crate) device_id: String,
    pub(crate) state: i64,
    pub(crate) title: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) resolved: Option<DateTime<Utc>>,
}

impl Incident {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "incidentId": self.id,
            "deviceId": self.device_id,
            "state": self.state,
            "stateText": incident_state_text(self.state),
            "title": self.title,
            "createdUtc": fmt_ts(&self.created),
            "resolvedUtc": self.resolved.as_ref().map(fmt_ts),
        })
    }
}

/// A service visit: `Completed` (with its actual cost) or `Open`.
#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub(crate) id: String,
    pub(crate) asset_id: String,
    pub(crate) customer_id: Option<String>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: Option<DateTime<Utc>>,
    pub(crate) completed: bool,
    pub(crate) cost: Option<i64>,
    /// The planned cost; not shown by the spec's example, so absent on its visits.
    pub(crate) estimated_cost: Option<i64>,
}

impl Visit {
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "serviceVisitId": self.id,
            "assetId": self.asset_id,
            "customerId": self.customer_id,
            "startUtc": fmt_ts(&self.start),
            "endUtc": self.end.as_ref().map(fmt_ts),
            "stateText": if self.completed { "Completed" } else { "Open" },
            "cost": self.cost,
        });
        if let (Some(obj), Some(est)) = (v.as_object_mut(), self.estimated_cost) {
            obj.insert("estimatedCost".to_owned(), json!(est));
        }
        v
    }
}

/// A planned appointment.
#[derive(Debug, Clone)]
pub(crate) struct Appointment {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) asset_id: String,
    pub(crate) title: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

impl Appointment {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "appointmentId": self.id,
            "userId": self.user_id,
            "assetId": self.asset_id,
            "title": self.title,
            "startUtc": fmt_ts(&self.start),
            "endUtc": fmt_ts(&self.end),
        })
    }
}

/// A service report.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) id: String,
    pub(crate) asset_id: String,
    pub(crate) device_id: Option<String>,
    pub(crate) state: i64,
    pub(crate) state_text: String,
    pub(crate) created: DateTime<Utc>,
    /// The other fields of a report created through the API, echoed back as sent.
    pub(crate) extra: Map<String, Value>,
}

impl Report {
    pub(crate) fn to_json(&self) -> Value {
        let mut obj = self.extra.clone();
        for (k, v) in [
            ("serviceReportId", json!(self.id)),
            ("assetId", json!(self.asset_id)),
            ("stateText", json!(self.state_text)),
            ("deviceId", json!(self.device_id)),
            ("state", json!(self.state)),
            ("createdUtc", json!(fmt_ts(&self.created))),
        ] {
            obj.insert(k.to_owned(), v);
        }
        Value::Object(obj)
    }
}

/// A time-ordered list's key: (epoch milliseconds, id).
pub(crate) type TimeKey = (i64, String);

fn time_key(t: &DateTime<Utc>, id: &str) -> TimeKey {
    (t.timestamp_millis(), id.to_owned())
}

/// Everything the simulator holds.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub(crate) assets: BTreeMap<String, Asset>,
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) customers: BTreeMap<String, Customer>,
    pub(crate) vendors: BTreeMap<String, Vendor>,
    pub(crate) parts: BTreeMap<String, Part>,
    pub(crate) incidents: BTreeMap<TimeKey, Incident>,
    pub(crate) visits: BTreeMap<TimeKey, Visit>,
    pub(crate) appointments: BTreeMap<TimeKey, Appointment>,
    pub(crate) reports: BTreeMap<TimeKey, Report>,
    /// Report id → its key in `reports`.
    pub(crate) report_index: HashMap<String, TimeKey>,
    /// The spec's example movement and signature (of the example cycle).
    pub(crate) fixture_movement: Map<String, Value>,
    pub(crate) fixture_signature: Map<String, Value>,
}

/// A random UUID (version 4 form) from `rng`.
pub(crate) fn uuid(rng: &mut fastrand::Rng) -> String {
    let a = rng.u64(..);
    let b = rng.u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 + (b >> 62),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A random element of a (non-empty, constant) table.
fn pick<T: Copy + Default>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items
        .get(rng.usize(..items.len().max(1)))
        .copied()
        .unwrap_or_default()
}

/// A random element of a list, if it has any.
fn pick_from<'a>(rng: &mut fastrand::Rng, items: &'a [String]) -> Option<&'a String> {
    items.get(rng.usize(..items.len().max(1)))
}

fn at(ms: i64) -> DateTime<Utc> {
    ts(ms)
}

fn random_between(
    rng: &mut fastrand::Rng,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DateTime<Utc> {
    let (a, b) = (from.timestamp(), to.timestamp());
    if b <= a {
        return from;
    }
    DateTime::from_timestamp(rng.i64(a..b), 0).unwrap_or(from)
}

impl Data {
    /// The spec's examples plus an organization of `size` generated assets (and devices,
    /// customers, vendors, parts, users, incidents, visits, appointments and reports in
    /// proportion), with history from 2025-01-01 up to `now` (appointments 120 days beyond).
    /// Deterministic for a seed and a day.
    pub(crate) fn seed(seed: u64, size: usize, now: DateTime<Utc>) -> Result<Data, String> {
        let mut data = Data::default();
        data.load_fixtures()?;
        data.generate(seed, size, now);
        Ok(data)
    }

    fn load_fixtures(&mut self) -> Result<(), String> {
        let fixed = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("simulator timestamp {s}: {e}"))
        };
        let updated = fixed("2026-05-02T09:14:00Z")?;
        // Assets: the list's two, and the two children of "Cooling line 4".
        for item in list_items(ASSETS_LIST)? {
            let id = str_field(&item, "assetId")?;
            let cooling = id.starts_with("a33b5a5d");
            let asset = Asset {
                name: str_field(&item, "name")?,
                device_id: opt_str(&item, "deviceId"),
                is_active: item
                    .get("isActive")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                parent_id: None,
                group_id: if cooling { 12 } else { 14 },
                customer_id: Some(if cooling { "CUST-10042" } else { "CUST-10077" }.to_owned()),
                updated,
                id,
            };
            self.assets.insert(asset.id.clone(), asset);
        }
        let parent = "a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63".to_owned();
        for item in list_items(ASSETS_CHILDREN)? {
            let asset = Asset {
                id: str_field(&item, "assetId")?,
                name: str_field(&item, "name")?,
                device_id: opt_str(&item, "deviceId"),
                is_active: item
                    .get("isActive")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                parent_id: Some(parent.clone()),
                group_id: 12,
                customer_id: Some("CUST-10042".to_owned()),
                updated,
            };
            self.assets.insert(asset.id.clone(), asset);
        }
        // Devices: the list's two, and SEP-DEVICE-003 of the children example. All three are
        // PointGuard devices (the telemetry example shows current samples of SEP-DEVICE-001).
        let mut devices = list_items(DEVICES_LIST)?;
        devices.push(json!({
            "deviceId": "SEP-DEVICE-003",
            "deviceName": "Compressor B current clamp",
            "groupId": 12,
            "batteryPercentage": 81
        }));
        for item in devices {
            let id = str_field(&item, "deviceId")?;
            let asset_id = self
                .assets
                .values()
                .find(|a| a.device_id.as_deref() == Some(id.as_str()))
                .map(|a| a.id.clone());
            let device = Device {
                name: str_field(&item, "deviceName")?,
                group_id: item.get("groupId").and_then(Value::as_i64).unwrap_or(12),
                battery: item
                    .get("batteryPercentage")
                    .and_then(Value::as_i64)
                    .unwrap_or(100),
                status: 1,
                asset_id,
                pointguard: true,
                updated,
                id,
            };
            self.devices.insert(device.id.clone(), device);
        }
        for item in list_items(CUSTOMERS)? {
            let c = Customer {
                id: str_field(&item, "customerId")?,
                name: str_field(&item, "name")?,
                external_system: str_field(&item, "externalSystem")?,
                external_id: str_field(&item, "externalId")?,
            };
            self.customers.insert(c.id.clone(), c);
        }
        for item in list_items(VENDORS)? {
            let v = Vendor {
                id: str_field(&item, "vendorId")?,
                name: str_field(&item, "name")?,
            };
            self.vendors.insert(v.id.clone(), v);
        }
        for item in list_items(PARTS)? {
            let p = Part {
                id: str_field(&item, "partId")?,
                number: str_field(&item, "partNumber")?,
                name: str_field(&item, "name")?,
                vendor_id: str_field(&item, "vendorId")?,
                quantity: item
                    .get("quantityOnHand")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                is_active: item
                    .get("isActive")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            };
            self.parts.insert(p.id.clone(), p);
        }
        for item in list_items(INCIDENTS)? {
            let i = Incident {
                id: str_field(&item, "incidentId")?,
                device_id: str_field(&item, "deviceId")?,
                state: item.get("state").and_then(Value::as_i64).unwrap_or(1),
                title: str_field(&item, "title")?,
                created: fixed(&str_field(&item, "createdUtc")?)?,
                resolved: opt_str(&item, "resolvedUtc")
                    .map(|s| fixed(&s))
                    .transpose()?,
            };
            self.incidents.insert(time_key(&i.created, &i.id), i);
        }
        for item in list_items(VISITS)? {
            let state = str_field(&item, "stateText")?;
            let v = Visit {
                id: str_field(&item, "serviceVisitId")?,
                asset_id: str_field(&item, "assetId")?,
                customer_id: opt_str(&item, "customerId"),
                start: fixed(&str_field(&item, "startUtc")?)?,
                end: opt_str(&item, "endUtc").map(|s| fixed(&s)).transpose()?,
                completed: state == "Completed",
                cost: item.get("cost").and_then(Value::as_i64),
                estimated_cost: None,
            };
            self.visits.insert(time_key(&v.start, &v.id), v);
        }
        for item in list_items(APPOINTMENTS)? {
            let a = Appointment {
                id: str_field(&item, "appointmentId")?,
                user_id: str_field(&item, "userId")?,
                asset_id: str_field(&item, "assetId")?,
                title: str_field(&item, "title")?,
                start: fixed(&str_field(&item, "startUtc")?)?,
                end: fixed(&str_field(&item, "endUtc")?)?,
            };
            self.appointments.insert(time_key(&a.start, &a.id), a);
        }
        // The example reports show no creation time: the completed one was written after its
        // visit, the draft after the open visit began.
        for (item, created) in list_items(REPORTS)?
            .into_iter()
            .zip(["2026-06-03T11:05:00Z", "2026-06-11T15:20:00Z"])
        {
            let asset_id = str_field(&item, "assetId")?;
            let state_text = str_field(&item, "stateText")?;
            let r = Report {
                id: str_field(&item, "serviceReportId")?,
                device_id: self.assets.get(&asset_id).and_then(|a| a.device_id.clone()),
                asset_id,
                state: report_state(&state_text),
                state_text,
                created: fixed(created)?,
                extra: Map::new(),
            };
            self.insert_report(r);
        }
        self.fixture_movement = list_items(MOVEMENTS)?
            .into_iter()
            .next()
            .and_then(|v| v.as_object().cloned())
            .ok_or("simulator fixture movements.json has no item")?;
        self.fixture_signature = serde_json::from_str::<Value>(SIGNATURE)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .ok_or("simulator fixture movement_signature.json is not an object")?;
        Ok(())
    }

    fn generate(&mut self, seed: u64, size: usize, now: DateTime<Utc>) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let origin = at(ORIGIN_MS);

        // Customers, vendors, users and parts scale with the organization.
        let mut customer_ids: Vec<String> = self.customers.keys().cloned().collect();
        for i in 0..(size / 10).max(3) {
            let number = 10_100 + i;
            let id = format!("CUST-{number}");
            if self.customers.contains_key(&id) {
                continue;
            }
            let system = pick(&mut rng, &ERP_SYSTEMS);
            let customer = Customer {
                name: format!(
                    "{} {}",
                    pick(&mut rng, &COMPANIES),
                    pick(&mut rng, &COMPANY_FORMS)
                ),
                external_system: system.to_owned(),
                external_id: format!("{:010}", 400_000 + number),
                id: id.clone(),
            };
            self.customers.insert(id.clone(), customer);
            customer_ids.push(id);
        }
        let mut vendor_ids: Vec<String> = self.vendors.keys().cloned().collect();
        for i in 0..(size / 25).max(3) {
            let id = uuid(&mut rng);
            let base = pick(&mut rng, &VENDOR_NAMES);
            self.vendors.insert(
                id.clone(),
                Vendor {
                    id: id.clone(),
                    name: format!("{base} {}", i + 1),
                },
            );
            vendor_ids.push(id);
        }
        for i in 0..(size / 2).max(5) {
            let id = uuid(&mut rng);
            let (code, name) = pick(&mut rng, &PART_NAMES);
            let part = Part {
                id: id.clone(),
                number: format!("{code}-{:05}", 1000 + i),
                name: name.to_owned(),
                vendor_id: pick_from(&mut rng, &vendor_ids)
                    .cloned()
                    .unwrap_or_default(),
                quantity: rng.i64(0..120),
                is_active: rng.u8(0..10) < 9,
            };
            self.parts.insert(id, part);
        }
        let mut users: Vec<String> = vec!["d2a8f5c1-6e3b-4f70-a9d4-1c7e5b8a2f63".to_owned()];
        for _ in 0..(size / 20).max(3) {
            users.push(uuid(&mut rng));
        }

        // Assets: a fifth are components of an earlier root asset; most have a device.
        let mut roots: Vec<String> = Vec::new();
        let mut next_device = 4;
        let mut new_assets: Vec<String> = Vec::with_capacity(size);
        for i in 0..size {
            let id = uuid(&mut rng);
            let parent = if i >= 5 && rng.u8(0..5) == 0 {
                pick_from(&mut rng, &roots).cloned()
            } else {
                None
            };
            let parent_asset = parent.as_ref().and_then(|p| self.assets.get(p));
            let name = match parent_asset {
                Some(p) => format!(
                    "{} - {} {}",
                    p.name,
                    pick(&mut rng, &COMPONENTS),
                    char::from(b'A' + rng.u8(0..4))
                ),
                None => format!("{} {}", pick(&mut rng, &ASSET_KINDS), i + 1),
            };
            let customer_id = match parent_asset {
                Some(p) => p.customer_id.clone(),
                None => pick_from(&mut rng, &customer_ids).cloned(),
            };
            let group_id = parent_asset.map_or_else(|| rng.i64(10..20), |p| p.group_id);
            let updated = random_between(&mut rng, origin, now);
            let device_id = (rng.u8(0..10) < 8).then(|| {
                let id = format!("SEP-DEVICE-{next_device:03}");
                next_device += 1;
                id
            });
            if let Some(dev) = &device_id {
                let device = Device {
                    id: dev.clone(),
                    name: format!("{name} sensor"),
                    group_id,
                    battery: rng.i64(5..=100),
                    status: match rng.u8(0..20) {
                        0..=16 => 1,
                        17..=18 => 2,
                        _ => 3,
                    },
                    asset_id: Some(id.clone()),
                    pointguard: rng.u8(0..10) < 3,
                    updated: random_between(&mut rng, origin, now),
                };
                self.devices.insert(dev.clone(), device);
            }
            if parent.is_none() {
                roots.push(id.clone());
            }
            let asset = Asset {
                id: id.clone(),
                name,
                device_id,
                is_active: rng.u8(0..20) < 18,
                parent_id: parent,
                group_id,
                customer_id,
                updated,
            };
            self.assets.insert(id.clone(), asset);
            new_assets.push(id);
        }

        // Per asset history, each from its own random source so the clock only moves the end.
        let now_ms = now.timestamp_millis();
        for asset_id in &new_assets {
            let Some(asset) = self.assets.get(asset_id).cloned() else {
                continue;
            };
            let mut rng = fastrand::Rng::with_seed(seed ^ fnv1a(asset_id.as_bytes()));
            self.generate_visits(&mut rng, &asset, now_ms);
            for _ in 0..rng.usize(0..=3) {
                let start = random_between(&mut rng, origin, now + ChronoDuration::days(120));
                let start =
                    DateTime::from_timestamp(start.timestamp() / 1800 * 1800, 0).unwrap_or(start);
                let a = Appointment {
                    id: uuid(&mut rng),
                    user_id: pick_from(&mut rng, &users).cloned().unwrap_or_default(),
                    asset_id: asset_id.clone(),
                    title: pick(&mut rng, &APPOINTMENT_TITLES).to_owned(),
                    start,
                    end: start + ChronoDuration::minutes(30 * rng.i64(2..=8)),
                };
                self.appointments.insert(time_key(&a.start, &a.id), a);
            }
            if let Some(device_id) = &asset.device_id {
                for _ in 0..rng.usize(0..=3) {
                    let created = random_between(&mut rng, origin, now);
                    let mut state = if (now - created).num_days() > 7 {
                        3
                    } else {
                        rng.i64(1..=3)
                    };
                    let resolved = (state == 3)
                        .then(|| created + ChronoDuration::minutes(rng.i64(20..4_000)))
                        .filter(|t| *t < now);
                    if state == 3 && resolved.is_none() {
                        state = 2;
                    }
                    let i = Incident {
                        id: uuid(&mut rng),
                        device_id: device_id.clone(),
                        state,
                        title: pick(&mut rng, &INCIDENT_TITLES).to_owned(),
                        created,
                        resolved,
                    };
                    self.incidents.insert(time_key(&i.created, &i.id), i);
                }
            }
        }
    }

    /// An asset's visits every 60 to 150 days from the origin up to now; those of the last two
    /// weeks are still open. A third of the completed ones got a service report.
    fn generate_visits(&mut self, rng: &mut fastrand::Rng, asset: &Asset, now_ms: i64) {
        // Visits start in working hours, on the quarter hour.
        let mut day_ms = ORIGIN_MS + rng.i64(0..120) * 86_400_000;
        let open_after = now_ms - 14 * 86_400_000;
        loop {
            let t = day_ms + rng.i64(7..16) * 3_600_000 + rng.i64(0..4) * 900_000;
            if t >= now_ms {
                break;
            }
            let start = at(t);
            let hours = rng.i64(1..=6);
            let estimated = 400 + 50 * rng.i64(0..60);
            let completed = t < open_after && start + ChronoDuration::hours(hours) < at(now_ms);
            let visit = Visit {
                id: uuid(rng),
                asset_id: asset.id.clone(),
                customer_id: asset.customer_id.clone(),
                start,
                end: completed.then(|| start + ChronoDuration::hours(hours)),
                completed,
                cost: completed.then(|| (estimated * rng.i64(80..=130) / 100) / 10 * 10),
                estimated_cost: Some(estimated),
            };
            if let (true, Some(end)) = (completed && rng.u8(0..3) == 0, visit.end) {
                let created = end + ChronoDuration::minutes(rng.i64(10..2_880));
                if created.timestamp_millis() < now_ms {
                    let state_text = if rng.u8(0..10) < 9 {
                        "Completed"
                    } else {
                        "Submitted"
                    };
                    self.insert_report(Report {
                        id: uuid(rng),
                        asset_id: asset.id.clone(),
                        device_id: asset.device_id.clone(),
                        state: report_state(state_text),
                        state_text: state_text.to_owned(),
                        created,
                        extra: Map::new(),
                    });
                }
            }
            self.visits.insert(time_key(&visit.start, &visit.id), visit);
            day_ms += rng.i64(60..=150) * 86_400_000;
        }
    }

    /// Stores a report and indexes its id.
    pub(crate) fn insert_report(&mut self, report: Report) {
        let key = time_key(&report.created, &report.id);
        self.report_index.insert(report.id.clone(), key.clone());
        self.reports.insert(key, report);
    }

    /// A report by id.
    pub(crate) fn report(&self, id: &str) -> Option<&Report> {
        self.report_index.get(id).and_then(|k| self.reports.get(k))
    }
}

fn list_items(text: &str) -> Result<Vec<Value>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("simulator fixture does not parse: {e}"))?;
    match v.get("data") {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err("simulator fixture has no `data` array".to_owned()),
    }
}

fn str_field(v: &Value, field: &str) -> Result<String, String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("simulator fixture item lacks string `{field}`"))
}

fn opt_str(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_now() -> DateTime<Utc> {
        at(1_790_000_000_000) // 2026-09-21
    }

    #[test]
    fn seeding_is_deterministic_and_keeps_the_examples() {
        let a = Data::seed(7, 100, fixed_now()).unwrap_or_default();
        let b = Data::seed(7, 100, fixed_now()).unwrap_or_default();
        assert_eq!(a.assets.len(), 104);
        assert!(a.devices.len() > 60);
        let ids_a: Vec<_> = a.visits.values().map(|v| v.id.clone()).collect();
        let ids_b: Vec<_> = b.visits.values().map(|v| v.id.clone()).collect();
        assert_eq!(ids_a, ids_b);
        assert!(a.visits.len() > 400, "{}", a.visits.len());
        let cooling = a
            .assets
            .get("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63")
            .map(Asset::to_json);
        assert_eq!(
            cooling.as_ref().and_then(|c| c.get("deviceId")),
            Some(&json!("SEP-DEVICE-001"))
        );
        assert_eq!(
            a.devices.get("SEP-DEVICE-001").map(|d| d.pointguard),
            Some(true)
        );
        assert!(a.report("5c722f76-5f0b-4c1b-875d-05a1d8cd47b5").is_some());
        assert_eq!(
            a.fixture_movement.get("duration").and_then(Value::as_f64),
            Some(6.42)
        );
        // Every visit is either completed with a cost or open without one.
        assert!(
            a.visits
                .values()
                .all(|v| v.completed == v.cost.is_some() || v.estimated_cost.is_none())
        );
        for v in a.visits.values() {
            assert!(crate::sepolo::input::is_uuid(&v.id));
        }
    }
}
