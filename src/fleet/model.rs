//! The common models: a fleet device and a fleet reading, each with a way back to the vendor's
//! typed model.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Which vendor a device or reading comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum VendorKind {
    /// SGT Systems ([`crate::sgt`]).
    Sgt,
    /// Sepolo ([`crate::sepolo`]).
    Sepolo,
    /// SiliconWit ([`crate::siliconwit`]).
    SiliconWit,
}

impl VendorKind {
    /// The vendor's name as written in exports: `sgt`, `sepolo`, `siliconwit`.
    pub fn as_str(&self) -> &'static str {
        match self {
            VendorKind::Sgt => "sgt",
            VendorKind::Sepolo => "sepolo",
            VendorKind::SiliconWit => "siliconwit",
        }
    }
}

impl fmt::Display for VendorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's state in common terms; the vendor's own value is kept in
/// [`FleetDevice::vendor_status`]. The module docs say how each vendor's value maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FleetStatus {
    /// Reporting.
    Online,
    /// Expected to report, and not reporting.
    Offline,
    /// Not expected to report: provisioning, paused, in maintenance.
    Inactive,
    /// The vendor's value says nothing this crate can map.
    Unknown,
}

impl FleetStatus {
    /// `online`, `offline`, `inactive` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FleetStatus::Online => "online",
            FleetStatus::Offline => "offline",
            FleetStatus::Inactive => "inactive",
            FleetStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FleetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vendor's typed device, for what the common model leaves out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VendorDevice {
    /// An SGT device.
    #[cfg(feature = "sgt")]
    Sgt(crate::sgt::Device),
    /// A Sepolo device.
    #[cfg(feature = "sepolo")]
    Sepolo(crate::sepolo::Device),
    /// A SiliconWit device.
    #[cfg(feature = "siliconwit")]
    SiliconWit(crate::siliconwit::Device),
}

/// A device of any vendor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetDevice {
    /// The vendor.
    pub vendor: VendorKind,
    /// The vendor's id of the device.
    pub id: String,
    /// Its display name, when the vendor gives one.
    pub name: Option<String>,
    /// Its state in common terms.
    pub status: FleetStatus,
    /// The vendor's own status value, as sent (`online`, `paused`, `Maintenance`, `3`).
    pub vendor_status: Option<String>,
    /// When it last reported, where the vendor says.
    pub last_seen: Option<DateTime<Utc>>,
    /// Its site (SGT) or asset (Sepolo), where the vendor has one.
    pub site: Option<String>,
    /// The vendor's typed model.
    pub original: VendorDevice,
}

/// The vendor's typed reading a [`FleetReading`] was made from. One Sepolo sample or SiliconWit
/// reading carries several metrics, so it is shared (an `Arc`) by the readings made from it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VendorReading {
    /// An SGT reading (one metric).
    #[cfg(feature = "sgt")]
    Sgt(Arc<crate::sgt::Reading>),
    /// A Sepolo telemetry sample.
    #[cfg(feature = "sepolo")]
    Sepolo(Arc<crate::sepolo::TelemetrySample>),
    /// A SiliconWit reading.
    #[cfg(feature = "siliconwit")]
    SiliconWit(Arc<crate::siliconwit::Reading>),
}

/// One value of one metric of one device at one instant, from any vendor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetReading {
    /// The vendor.
    pub vendor: VendorKind,
    /// The vendor's id of the device.
    pub device_id: String,
    /// The metric's name as the vendor sends it (`power_kw`, `current`, `temperature`).
    pub metric: String,
    /// When it was taken.
    pub ts: DateTime<Utc>,
    /// The value, when it is a number.
    pub value: Option<f64>,
    /// The unit, when it is known (from the vendor's docs, or a metric name's suffix).
    pub unit: Option<&'static str>,
    /// The value as sent, when it is not a number (`"open"`, `true`).
    pub raw: Option<Value>,
    /// The vendor's typed reading.
    pub original: VendorReading,
}

/// A unit from a metric name's suffix (`power_kw` → `kW`), the convention SGT's metric names
/// follow and SiliconWit's often do.
pub(crate) fn unit_from_suffix(metric: &str) -> Option<&'static str> {
    let (_, suffix) = metric.rsplit_once('_')?;
    Some(match suffix {
        "kw" => "kW",
        "w" => "W",
        "kwh" => "kWh",
        "wh" => "Wh",
        "v" => "V",
        "a" => "A",
        "c" => "°C",
        "pct" => "%",
        "hz" => "Hz",
        "ppm" => "ppm",
        _ => return None,
    })
}

/// Which metrics to read: all that the vendor offers, or only these names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MetricFilter(Option<Vec<String>>);

impl MetricFilter {
    /// Every metric (SGT has no such query: an SGT source needs named metrics).
    pub fn all() -> Self {
        MetricFilter(None)
    }

    /// Only these metrics, by the vendor's names.
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        MetricFilter(Some(names.into_iter().map(Into::into).collect()))
    }

    /// The names, or `None` for every metric.
    pub fn names(&self) -> Option<&[String]> {
        self.0.as_deref()
    }

    /// Whether a metric passes.
    pub fn keeps(&self, metric: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == metric))
    }

    /// This filter, or `fallback` when this one is [`MetricFilter::all`].
    pub(crate) fn or(&self, fallback: &MetricFilter) -> MetricFilter {
        if self.0.is_some() {
            self.clone()
        } else {
            fallback.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_known_suffixes_only() {
        assert_eq!(unit_from_suffix("power_kw"), Some("kW"));
        assert_eq!(unit_from_suffix("temperature_c"), Some("°C"));
        assert_eq!(unit_from_suffix("humidity_pct"), Some("%"));
        assert_eq!(unit_from_suffix("voltage_v"), Some("V"));
        assert_eq!(unit_from_suffix("power_w"), Some("W"));
        assert_eq!(unit_from_suffix("temperature"), None);
        assert_eq!(unit_from_suffix("door_state"), None);
    }

    #[test]
    fn metric_filters() {
        assert!(MetricFilter::all().keeps("x"));
        let only = MetricFilter::only(["a", "b"]);
        assert!(only.keeps("a") && !only.keeps("c"));
        assert_eq!(MetricFilter::all().or(&only), only);
        assert_eq!(only.or(&MetricFilter::all()), only);
    }
}
