//! The simulator's state: devices and alerts (with their trigger history), seeded from the
//! fixtures plus generated ones, and telemetry computed on the fly from the seed and the clock.

use std::collections::HashSet;
use std::f64::consts::TAU;

use chrono::{DateTime, Datelike, Duration as ChronoDuration, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

use crate::fnv1a;

const DEVICES_GET: &str = include_str!("../../../fixtures/siliconwit/devices_get.json");
const ALERTS_GET: &str = include_str!("../../../fixtures/siliconwit/alerts_get.json");
const ALERTS_HISTORY: &str = include_str!("../../../fixtures/siliconwit/alerts_history.json");

/// Seconds between two readings of a device (readings fall on multiples of it since the epoch).
pub(crate) const INTERVAL_SECS: i64 = 900;
/// Trigger events of the fixture's alert (so that history's default limit of 50 truncates).
const FIXTURE_ALERT_EVENTS: usize = 60;

const PLACES: [&str; 8] = [
    "Office",
    "Warehouse",
    "Server room",
    "Lab",
    "Lobby",
    "Cold room",
    "Workshop",
    "Loading bay",
];

/// Formats a timestamp the way every response does: RFC 3339, UTC, whole seconds, `Z`.
pub(crate) fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Now, to the second.
pub(crate) fn now() -> DateTime<Utc> {
    let secs = Utc::now().timestamp();
    at_secs(secs)
}

fn at_secs(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The time of reading slot `k` (slot `k` is `k × 15 min` after the epoch).
fn slot_time(k: i64) -> DateTime<Utc> {
    at_secs(k.saturating_mul(INTERVAL_SECS))
}

/// The first slot at or after `t`.
fn slot_at_or_after(t: &DateTime<Utc>) -> i64 {
    let secs = t.timestamp();
    secs.div_euclid(INTERVAL_SECS) + i64::from(secs.rem_euclid(INTERVAL_SECS) != 0)
}

/// The last slot at or before `t`.
fn slot_at_or_before(t: &DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(INTERVAL_SECS)
}

/// A stable 64-bit hash of a few numbers and a label: the source of every generated value.
fn mix(seed: u64, label: &str, a: u64, b: i64) -> u64 {
    let mut bytes = Vec::with_capacity(label.len() + 24);
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes.extend_from_slice(label.as_bytes());
    bytes.extend_from_slice(&a.to_le_bytes());
    bytes.extend_from_slice(&b.to_le_bytes());
    // FNV-1a mixes its last bytes weakly; a final avalanche (from SplitMix64) spreads them.
    let mut z = fnv1a(&bytes);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `0.0..1.0` from a hash.
fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// What a device measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `sensor`: `temperature`, `humidity`.
    Climate,
    /// `door_sensor`: `door` (`"open"`/`"closed"`: not a number), `battery`, `temperature`.
    Door,
    /// `energy_meter`: `power_w`, `voltage`.
    Power,
}

impl Kind {
    fn of_index(i: u64) -> Kind {
        match i % 3 {
            0 => Kind::Climate,
            1 => Kind::Door,
            _ => Kind::Power,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Kind::Climate => "sensor",
            Kind::Door => "door_sensor",
            Kind::Power => "energy_meter",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Climate => "Temperature Sensor",
            Kind::Door => "Door Sensor",
            Kind::Power => "Energy Meter",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Climate => "temperature monitor",
            Kind::Door => "door monitor",
            Kind::Power => "power meter",
        }
    }

    /// The alerts a device of this kind may have: (name, field, operator, threshold).
    fn alert_defs(self) -> &'static [(&'static str, &'static str, &'static str, Threshold)] {
        match self {
            Kind::Climate => &[
                ("High Temperature", "temperature", ">", Threshold::Num(40.0)),
                ("Low Temperature", "temperature", "<", Threshold::Num(5.0)),
                ("High Humidity", "humidity", ">=", Threshold::Num(80.0)),
            ],
            Kind::Door => &[
                ("Door Open", "door", "==", Threshold::Text("open")),
                ("Low Battery", "battery", "<=", Threshold::Num(20.0)),
            ],
            Kind::Power => &[
                ("Power Spike", "power_w", ">", Threshold::Num(3000.0)),
                ("Voltage Deviation", "voltage", "!=", Threshold::Num(230.0)),
            ],
        }
    }
}

/// The value of an alert condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Threshold {
    Num(f64),
    Text(&'static str),
}

impl Threshold {
    fn to_json(self) -> Value {
        match self {
            // Whole thresholds are written as integers, like the spec's `"value": 40`.
            Threshold::Num(v) if v.fract() == 0.0 && v.abs() < 1e15 => json!(v as i64),
            Threshold::Num(v) => json!(v),
            Threshold::Text(t) => json!(t),
        }
    }

    /// A value that makes `field operator threshold` hold, varied by `hash`; a whole number
    /// when the metric is reported as one.
    fn crossing(self, operator: &str, hash: u64, whole: bool) -> Value {
        let Threshold::Num(v) = self else {
            return self.to_json();
        };
        let delta = if whole {
            1.0 + (hash % 5) as f64
        } else {
            round1(0.1 + unit(hash) * 5.0)
        };
        // `delta` is at least 0.1, so each of these makes the condition hold.
        let value = match operator {
            ">" => v + delta,
            ">=" => v + delta - if whole { 1.0 } else { 0.1 },
            "<" => v - delta,
            "<=" => v - delta + if whole { 1.0 } else { 0.1 },
            "==" => v,
            _ if hash % 2 == 0 => v + delta,
            _ => v - delta,
        };
        if whole {
            json!(value.round() as i64)
        } else {
            json!(round1(value))
        }
    }
}

/// A device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    /// The id without `dev_`, for reading ids.
    suffix: String,
    name: String,
    kind: Kind,
    description: Option<String>,
    pub(crate) paused: bool,
    settings: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The first reading slot; `None` for a device that never reported.
    reports_from: Option<i64>,
    /// The last reading slot of a paused device (`None`: it reports up to now).
    reports_until: Option<i64>,
    /// Per-device variation of the generated values.
    hash: u64,
}

impl Device {
    /// The device as the API shows it at `now`.
    pub(crate) fn to_json(&self, now: &DateTime<Utc>) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind.type_name(),
            "description": self.description,
            "status": if self.paused { "paused" } else { "active" },
            "settings": self.settings,
            "last_seen": self.last_slot(now).map(|k| fmt_ts(&slot_time(k))),
            "created_at": fmt_ts(&self.created_at),
            "updated_at": fmt_ts(&self.updated_at),
        })
    }

    /// The slots of the readings taken in `(since, now]`, newest first: `None` when there are
    /// none.
    fn slots(&self, since: &DateTime<Utc>, now: &DateTime<Utc>) -> Option<(i64, i64)> {
        let from = self.reports_from?;
        let newest = slot_at_or_before(now).min(self.reports_until.unwrap_or(i64::MAX));
        let oldest = (slot_at_or_before(since) + 1).max(from);
        (newest >= oldest).then_some((oldest, newest))
    }

    /// The slot of the latest reading at `now`.
    fn last_slot(&self, now: &DateTime<Utc>) -> Option<i64> {
        let from = self.reports_from?;
        let newest = slot_at_or_before(now).min(self.reports_until.unwrap_or(i64::MAX));
        (newest >= from).then_some(newest)
    }

    /// The number of readings taken in `(since, now]`.
    pub(crate) fn count_readings(&self, since: &DateTime<Utc>, now: &DateTime<Utc>) -> u64 {
        self.slots(since, now)
            .map_or(0, |(oldest, newest)| (newest - oldest + 1).unsigned_abs())
    }

    /// At most `limit` readings taken in `(since, now]`, newest first.
    pub(crate) fn readings(
        &self,
        seed: u64,
        since: &DateTime<Utc>,
        now: &DateTime<Utc>,
        limit: usize,
    ) -> Vec<Value> {
        let Some((oldest, newest)) = self.slots(since, now) else {
            return Vec::new();
        };
        (oldest..=newest)
            .rev()
            .take(limit)
            .map(|k| self.reading(seed, k))
            .collect()
    }

    /// The latest reading at `now`, if any.
    pub(crate) fn latest(&self, seed: u64, now: &DateTime<Utc>) -> Option<Value> {
        self.last_slot(now).map(|k| self.reading(seed, k))
    }

    /// The reading of slot `k`: `{id, time, data}`, the same every time it is asked for.
    fn reading(&self, seed: u64, k: i64) -> Value {
        let r = mix(seed, "reading", self.hash, k);
        // A daily cycle (96 slots a day) plus a little noise.
        let day_phase = TAU * (k.rem_euclid(96) as f64) / 96.0 + unit(self.hash) * TAU;
        let noise = unit(r) - 0.5;
        let mut data = Map::new();
        match self.kind {
            Kind::Climate => {
                let base = 18.0 + unit(self.hash >> 7) * 8.0;
                data.insert(
                    "temperature".into(),
                    json!(round1(base + 3.0 * day_phase.sin() + noise)),
                );
                let humidity = 55.0 - 10.0 * day_phase.sin() + noise * 6.0;
                data.insert("humidity".into(), json!(humidity.round() as i64));
            }
            Kind::Door => {
                let open = r % 10 < 2;
                data.insert("door".into(), json!(if open { "open" } else { "closed" }));
                let battery = 100 - (k.rem_euclid(96 * 60) / (96 * 3 / 2)).min(80);
                data.insert("battery".into(), json!(battery));
                data.insert(
                    "temperature".into(),
                    json!(round1(20.0 + 2.0 * day_phase.sin() + noise)),
                );
            }
            Kind::Power => {
                let load = 1200.0 + 800.0 * day_phase.sin() + noise * 150.0;
                data.insert("power_w".into(), json!(round1(load.max(0.0))));
                data.insert("voltage".into(), json!(round1(230.0 + noise * 4.0)));
            }
        }
        json!({
            "id": format!("tel_{}{k:08x}", self.suffix),
            "time": fmt_ts(&slot_time(k)),
            "data": data,
        })
    }
}

/// One time an alert fired.
#[derive(Debug, Clone)]
pub(crate) struct AlertEvent {
    id: String,
    condition_value: Value,
    acknowledged_at: Option<DateTime<Utc>>,
    triggered_at: DateTime<Utc>,
}

/// A configured alert and its trigger history.
#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub(crate) id: String,
    pub(crate) device_id: String,
    name: String,
    field: String,
    operator: String,
    value: Value,
    actions: Vec<String>,
    severity: String,
    pub(crate) enabled: bool,
    cooldown: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Newest first.
    events: Vec<AlertEvent>,
}

impl Alert {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "device_id": self.device_id,
            "name": self.name,
            "condition": {"field": self.field, "operator": self.operator, "value": self.value},
            "actions": self.actions,
            "severity": self.severity,
            "enabled": self.enabled,
            "cooldown": self.cooldown,
            "last_triggered": self.events.first().map(|e| fmt_ts(&e.triggered_at)),
            "created_at": fmt_ts(&self.created_at),
            "updated_at": fmt_ts(&self.updated_at),
        })
    }

    /// The latest `limit` trigger events, newest first.
    pub(crate) fn history(&self, limit: usize) -> Vec<Value> {
        self.events
            .iter()
            .take(limit)
            .map(|e| {
                json!({
                    "id": e.id,
                    "device_id": self.device_id,
                    "condition_value": e.condition_value,
                    "severity": self.severity,
                    "acknowledged": e.acknowledged_at.is_some(),
                    "acknowledged_at": e.acknowledged_at.as_ref().map(fmt_ts),
                    "triggered_at": fmt_ts(&e.triggered_at),
                })
            })
            .collect()
    }
}

/// Everything the simulator holds.
#[derive(Debug)]
pub(crate) struct Data {
    pub(crate) seed: u64,
    /// In creation order: the order of `GET /devices`.
    pub(crate) devices: Vec<Device>,
    /// In creation order: the order of `GET /alerts`.
    pub(crate) alerts: Vec<Alert>,
    /// Every device id ever issued (a removed device's id is never reused).
    issued: HashSet<String>,
    /// The index the next added device is generated from.
    next_index: u64,
}

fn fixture_data(text: &str, name: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("fixture {name}: {e}"))?;
    v.get("data")
        .cloned()
        .ok_or_else(|| format!("fixture {name}: no data"))
}

fn str_field(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_owned)
}

fn ts_field(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    v.get(field)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl Data {
    /// `device_count` devices (the first is the spec's `dev_a1b2c3d4`, when there is one) and
    /// their alerts, as of `now`. Deterministic for a seed and a clock.
    pub(crate) fn seed(seed: u64, device_count: usize, now: DateTime<Utc>) -> Result<Data, String> {
        let fixture_device = fixture_data(DEVICES_GET, "devices_get")?;
        let fixture_alert = fixture_data(ALERTS_GET, "alerts_get")?;
        let fixture_history = fixture_data(ALERTS_HISTORY, "alerts_history")?;

        let mut data = Data {
            seed,
            devices: Vec::with_capacity(device_count),
            alerts: Vec::new(),
            issued: HashSet::new(),
            next_index: 0,
        };
        let first_created = ts_field(&fixture_device, "created_at").unwrap_or(now);
        let span = (now - first_created).max(ChronoDuration::days(1));
        let count = i32::try_from(device_count.max(1)).unwrap_or(i32::MAX);
        for i in 0..device_count {
            let index = u64::try_from(i).unwrap_or(u64::MAX);
            let created = if i == 0 {
                first_created
            } else {
                let at = i32::try_from(i).unwrap_or(i32::MAX);
                first_created + span / count * at
            };
            let mut device = data.generate_device(index, created, now);
            if i == 0 {
                device.id = str_field(&fixture_device, "id").unwrap_or(device.id);
                device.suffix = device.id.trim_start_matches("dev_").to_owned();
                device.name = str_field(&fixture_device, "name").unwrap_or(device.name);
                device.description = str_field(&fixture_device, "description");
                device.settings = fixture_device
                    .get("settings")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                device.updated_at = ts_field(&fixture_device, "updated_at").unwrap_or(created);
            }
            data.issued.insert(device.id.clone());
            data.devices.push(device);
        }
        data.next_index = u64::try_from(device_count).unwrap_or(u64::MAX);

        // Alerts on devices 0, 1 and 3 of every 5; those on 3 are disabled (the spec's example:
        // 5 devices, 3 alerts, 2 of them active).
        let mut alert_ids: HashSet<String> = HashSet::new();
        let mut alerts = Vec::new();
        for (i, device) in data.devices.iter().enumerate() {
            let index = u64::try_from(i).unwrap_or(u64::MAX);
            if !matches!(index % 5, 0 | 1 | 3) {
                continue;
            }
            let mut alert = generate_alert(seed, index, device, now, &mut alert_ids);
            if i == 0 {
                apply_fixture_alert(&mut alert, &fixture_alert, &fixture_history, now);
            }
            alerts.push(alert);
        }
        data.alerts = alerts;
        Ok(data)
    }

    /// A new device id from `index` (eight hex digits, never one issued before).
    fn new_id(&self, index: u64) -> String {
        (0..)
            .map(|attempt| format!("dev_{:08x}", mix(self.seed, "device", index, attempt) >> 32))
            .find(|id| !self.issued.contains(id) && id != "dev_a1b2c3d4")
            .unwrap_or_default()
    }

    /// Generates device number `index`, created at `created`.
    fn generate_device(&self, index: u64, created: DateTime<Utc>, now: DateTime<Utc>) -> Device {
        let id = self.new_id(index);
        let hash = mix(self.seed, "variation", index, 0);
        let kind = Kind::of_index(index);
        let place = PLACES
            .get(usize::try_from(hash % PLACES.len() as u64).unwrap_or(0))
            .copied()
            .unwrap_or("Office");
        let paused = index % 5 == 4;
        let reports = index % 7 != 3;
        let paused_at = now - ChronoDuration::hours(24 + i64::try_from(hash % 480).unwrap_or(0));
        let paused_at = paused_at.max(created);
        let settings = if index % 2 == 0 {
            json!({})
        } else {
            json!({ "report_interval": INTERVAL_SECS })
        };
        Device {
            suffix: id.trim_start_matches("dev_").to_owned(),
            id,
            name: format!("{} {}", kind.label(), index + 1),
            kind,
            description: Some(format!("{place} {}", kind.what())),
            paused,
            settings,
            created_at: created,
            updated_at: if paused { paused_at } else { created },
            reports_from: reports.then(|| slot_at_or_after(&created)),
            reports_until: (paused && reports).then(|| slot_at_or_before(&paused_at)),
            hash,
        }
    }

    /// The device `id`.
    pub(crate) fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The alert `id`.
    pub(crate) fn alert(&self, id: &str) -> Option<&Alert> {
        self.alerts.iter().find(|a| a.id == id)
    }

    /// Adds an active device at the end of the list, created `now`, whose first reading comes at
    /// the next 15-minute boundary. Returns its id.
    pub(crate) fn add_device(&mut self, name: String, now: DateTime<Utc>) -> String {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        let mut device = self.generate_device(index, now, now);
        device.kind = Kind::Climate;
        device.name = name;
        device.description = None;
        device.paused = false;
        device.updated_at = now;
        device.reports_from = Some(slot_at_or_before(&now) + 1);
        device.reports_until = None;
        let id = device.id.clone();
        self.issued.insert(id.clone());
        self.devices.push(device);
        id
    }

    /// Removes device `id` and its alerts; `false` when there is no such device.
    pub(crate) fn remove_device(&mut self, id: &str) -> bool {
        let before = self.devices.len();
        self.devices.retain(|d| d.id != id);
        self.alerts.retain(|a| a.device_id != id);
        self.devices.len() != before
    }
}

/// An alert on device number `index`, with its history.
fn generate_alert(
    seed: u64,
    index: u64,
    device: &Device,
    now: DateTime<Utc>,
    taken: &mut HashSet<String>,
) -> Alert {
    let id = (0..)
        .map(|attempt| format!("alert_{:06x}", mix(seed, "alert", index, attempt) >> 40))
        .find(|id| !taken.contains(id) && id != "alert_abc123")
        .unwrap_or_default();
    taken.insert(id.clone());
    let hash = mix(seed, "alert-variation", index, 0);
    let defs = device.kind.alert_defs();
    let which = usize::try_from(index / 3).unwrap_or(0) % defs.len().max(1);
    let (name, field, operator, threshold) = defs.get(which).copied().unwrap_or((
        "High Temperature",
        "temperature",
        ">",
        Threshold::Num(40.0),
    ));
    let severity = ["info", "warning", "critical"]
        .get(usize::try_from(hash % 3).unwrap_or(0))
        .copied()
        .unwrap_or("warning");
    let actions: Vec<String> = match hash % 4 {
        0 => vec!["email".into()],
        1 => vec!["email".into(), "sms".into()],
        2 => vec!["webhook".into()],
        _ => vec!["email".into(), "webhook".into()],
    };
    let created_at = device.created_at + ChronoDuration::hours(1);
    let updated_at = created_at + ChronoDuration::days(i64::try_from(hash % 10).unwrap_or(0));
    // A device that never reported never triggered anything; others fired 0 to 11 times.
    let count = if device.reports_from.is_none() {
        0
    } else {
        usize::try_from(hash % 12).unwrap_or(0)
    };
    let last_reading = device.last_slot(&now).map_or(now, slot_time);
    let suffix = id.trim_start_matches("alert_").to_owned();
    let whole = matches!(field, "humidity" | "battery");
    let events = history(
        seed,
        &suffix,
        index,
        (threshold, operator, whole),
        last_reading,
        count,
    );
    Alert {
        id,
        device_id: device.id.clone(),
        name: name.to_owned(),
        field: field.to_owned(),
        operator: operator.to_owned(),
        value: threshold.to_json(),
        actions,
        severity: severity.to_owned(),
        enabled: index % 5 != 3,
        cooldown: [300, 600, 900]
            .get(usize::try_from(hash % 3).unwrap_or(0))
            .copied()
            .unwrap_or(300),
        created_at,
        updated_at: updated_at.min(now),
        events,
    }
}

/// `count` trigger events of the condition `(threshold, operator, whole numbers?)`, newest first,
/// the newest at `newest`, hours apart; all but the two newest acknowledged.
fn history(
    seed: u64,
    suffix: &str,
    index: u64,
    (threshold, operator, whole): (Threshold, &str, bool),
    newest: DateTime<Utc>,
    count: usize,
) -> Vec<AlertEvent> {
    let mut at = newest;
    (0..count)
        .map(|j| {
            let n = i64::try_from(j).unwrap_or(i64::MAX);
            let r = mix(seed, "event", index, n);
            let triggered_at = at;
            at -= ChronoDuration::minutes(30 + i64::try_from(r % (36 * 60)).unwrap_or(0));
            AlertEvent {
                id: format!("evt_{suffix}{j:04}"),
                condition_value: threshold.crossing(operator, r, whole),
                acknowledged_at: (j >= 2).then(|| {
                    triggered_at + ChronoDuration::minutes(5 + i64::try_from(r % 55).unwrap_or(0))
                }),
                triggered_at,
            }
        })
        .collect()
}

/// Makes the first alert the spec's `alert_abc123`, whose history ends with the spec's `evt_001`.
fn apply_fixture_alert(
    alert: &mut Alert,
    fixture: &Value,
    history_fixture: &Value,
    now: DateTime<Utc>,
) {
    alert.id = str_field(fixture, "id").unwrap_or_else(|| alert.id.clone());
    if let Some(name) = str_field(fixture, "name") {
        alert.name = name;
    }
    if let Some(c) = fixture.get("condition") {
        alert.field = str_field(c, "field").unwrap_or_else(|| alert.field.clone());
        alert.operator = str_field(c, "operator").unwrap_or_else(|| alert.operator.clone());
        alert.value = c
            .get("value")
            .cloned()
            .unwrap_or_else(|| alert.value.clone());
    }
    if let Some(actions) = fixture.get("actions").and_then(Value::as_array) {
        alert.actions = actions
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    alert.severity = str_field(fixture, "severity").unwrap_or_else(|| alert.severity.clone());
    alert.enabled = fixture
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    alert.cooldown = fixture
        .get("cooldown")
        .and_then(Value::as_u64)
        .unwrap_or(300);
    alert.created_at = ts_field(fixture, "created_at").unwrap_or(alert.created_at);
    alert.updated_at = ts_field(fixture, "updated_at").unwrap_or(alert.updated_at);

    let first = history_fixture.as_array().and_then(|a| a.first());
    let first_at = first
        .and_then(|e| ts_field(e, "triggered_at"))
        .unwrap_or(alert.created_at);
    // Spread the generated events between the fixture's event and now.
    let generated = FIXTURE_ALERT_EVENTS.saturating_sub(1);
    let step = (now - first_at) / i32::try_from(FIXTURE_ALERT_EVENTS).unwrap_or(1);
    let suffix = alert.id.trim_start_matches("alert_").to_owned();
    let mut events: Vec<AlertEvent> = (0..generated)
        .map(|j| {
            let n = i32::try_from(generated - j).unwrap_or(0);
            let r = mix(0, "fixture-event", 0, i64::from(n));
            let triggered_at = first_at + step * n;
            AlertEvent {
                id: format!("evt_{suffix}{:04}", generated - j),
                condition_value: json!(round1(40.1 + unit(r) * 6.0)),
                acknowledged_at: (j >= 2).then(|| triggered_at + ChronoDuration::minutes(12)),
                triggered_at,
            }
        })
        .collect();
    if let Some(e) = first {
        events.push(AlertEvent {
            id: str_field(e, "id").unwrap_or_else(|| "evt_001".to_owned()),
            condition_value: e.get("condition_value").cloned().unwrap_or(Value::Null),
            acknowledged_at: ts_field(e, "acknowledged_at"),
            triggered_at: first_at,
        });
    }
    alert.events = events;
}

/// The first instant of the month of `t`, and of the next month (the billing period).
pub(crate) fn month_bounds(t: &DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(*t);
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let end = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(*t);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_default_fleet_matches_the_specs_example() {
        let now = instant("2026-03-10T12:07:00Z");
        let data = Data::seed(7, 5, now).unwrap();
        assert_eq!(data.devices.len(), 5);
        assert_eq!(data.devices[0].id, "dev_a1b2c3d4");
        assert_eq!(data.devices.iter().filter(|d| d.paused).count(), 1);
        assert_eq!(data.alerts.len(), 3);
        assert_eq!(data.alerts.iter().filter(|a| a.enabled).count(), 2);
        assert_eq!(data.alerts[0].id, "alert_abc123");
        let history = data.alerts[0].history(100);
        assert_eq!(history.len(), FIXTURE_ALERT_EVENTS);
        assert_eq!(history.last().unwrap()["id"], "evt_001");
        // Device 3 never reported.
        assert!(data.devices[3].latest(7, &now).is_none());
        let ids: HashSet<_> = data.devices.iter().map(|d| d.id.clone()).collect();
        assert_eq!(ids.len(), 5);
    }

    #[test]
    fn readings_are_deterministic_newest_first_and_on_the_grid() {
        let now = instant("2026-03-10T12:07:00Z");
        let a = Data::seed(7, 3, now).unwrap();
        let b = Data::seed(7, 3, now).unwrap();
        let d = &a.devices[0];
        let r = d.readings(7, &(now - ChronoDuration::hours(1)), &now, 100);
        assert_eq!(
            r,
            b.devices[0].readings(7, &(now - ChronoDuration::hours(1)), &now, 100)
        );
        assert_eq!(r.len(), 4);
        assert_eq!(r[0]["time"], "2026-03-10T12:00:00Z");
        assert_eq!(r[3]["time"], "2026-03-10T11:15:00Z");
        assert_eq!(
            d.count_readings(&(now - ChronoDuration::hours(24)), &now),
            96
        );
        assert_eq!(d.latest(7, &now).unwrap(), r[0]);
        // The door sensor reports text.
        let door = a.devices[1].latest(7, &now).unwrap();
        assert!(door["data"]["door"].is_string());
    }

    #[test]
    fn added_devices_come_last_and_removed_ids_are_not_reused() {
        let now = instant("2026-03-10T12:07:00Z");
        let mut data = Data::seed(1, 10, now).unwrap();
        let gone = data.devices[2].id.clone();
        assert!(data.remove_device(&gone));
        assert!(!data.remove_device(&gone));
        let id = data.add_device("New".into(), now);
        assert_eq!(data.devices.last().unwrap().id, id);
        assert_ne!(id, gone);
        assert!(data.device(&id).unwrap().latest(1, &now).is_none());
        assert_eq!(
            month_bounds(&instant("2026-12-31T23:00:00Z")).1,
            instant("2027-01-01T00:00:00Z")
        );
    }
}
