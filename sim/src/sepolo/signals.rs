//! Generated device time series, computed on the fly and never stored: environment samples,
//! PointGuard cycles (with their samples) and the movements calculated from them.
//!
//! Every value is a pure function of the seed, the device id and the instant, so any window,
//! page or cycle can be produced on its own and two requests always agree:
//!
//! - **Environment samples** (`telemetryType` 0): `temperature` and `humidity` every 5 minutes
//!   (288 a day) from [`ORIGIN_MS`] on, for every device.
//! - **PointGuard cycles** (PointGuard devices only): 2 to 5 a day, one in each equal slot of the
//!   day, starting on a whole second; 100 to 200 `current` samples (`telemetryType` 1) 10 ms
//!   apart. The cycle id is `cyc_<YYYYMMDD>_<HHMMSS>` of its start. A cycle exists once its last
//!   sample is in the past.
//! - **Movements**: one per cycle, with the cycle's average and peak current and a current
//!   signature computed from its samples.
//!
//! Currents are whole tenths of an ampere, so a cycle's `averageCurrent` is computed exactly
//! (the correctly rounded mean) and its `peakCurrent` is one of its samples.

use std::f64::consts::TAU;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::json;

use crate::fnv1a;

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;
/// The first instant with data: 2025-01-01T00:00:00Z.
pub(crate) const ORIGIN_MS: i64 = 1_735_689_600_000;
/// The end of 9999-12-31, the last day a cycle can be asked for (ids and movement ids decode to
/// any instant; beyond this the arithmetic could overflow).
const LAST_MS: i64 = 253_402_300_800_000;
/// Milliseconds between environment samples.
pub(crate) const ENV_STEP_MS: i64 = 300_000;
/// `telemetryType` of environment samples.
pub(crate) const TYPE_ENVIRONMENT: i64 = 0;
/// `telemetryType` of PointGuard movement/current samples (the spec's "1").
pub(crate) const TYPE_POINTGUARD: i64 = 1;
/// Milliseconds between the samples of a cycle.
const CYCLE_INTERVAL_MS: i64 = 10;

/// The device and day of the spec's example cycle.
const FIXTURE_DEVICE: &str = "SEP-DEVICE-001";
/// `cyc_20260527_120000` starts at 2026-05-27T12:00:00Z.
const FIXTURE_CYCLE_START_MS: i64 = 1_779_883_200_000;
const FIXTURE_CYCLE_ID: &str = "cyc_20260527_120000";

/// A timestamp from epoch milliseconds (the epoch for values out of range, which the generated
/// data never produces).
pub(crate) fn ts(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (value * f).round() / f
}

/// A number in `-1.0..=1.0` from a hash.
fn unit(h: u64) -> f64 {
    (h % 2001) as f64 / 1000.0 - 1.0
}

fn hash(parts: &[&[u8]]) -> u64 {
    let mut bytes = Vec::with_capacity(64);
    for p in parts {
        bytes.extend_from_slice(p);
        bytes.push(0x1f);
    }
    fnv1a(&bytes)
}

/// One telemetry sample.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    /// When, in epoch milliseconds.
    pub(crate) t_ms: i64,
    /// [`TYPE_ENVIRONMENT`] or [`TYPE_POINTGUARD`].
    pub(crate) kind: i64,
    pub(crate) temperature: Option<f64>,
    pub(crate) humidity: Option<f64>,
    pub(crate) current: Option<f64>,
    /// The cycle metadata of a PointGuard sample.
    pub(crate) cycle: Option<CycleMeta>,
}

/// Where a PointGuard sample sits in its cycle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CycleMeta {
    pub(crate) id: Arc<str>,
    pub(crate) index: usize,
    pub(crate) offset_ms: i64,
    pub(crate) duration_ms: i64,
    pub(crate) count: usize,
}

impl Sample {
    /// The order of a device's telemetry: time, then type. Unique per device (cycles of a device
    /// never overlap, and environment samples are 5 minutes apart).
    pub(crate) fn key(&self) -> (i64, i64) {
        (self.t_ms, self.kind)
    }

    /// Whether the sample carries `metric` (`temperature`, `humidity` or `current`).
    pub(crate) fn has_metric(&self, metric: &str) -> bool {
        match metric {
            "temperature" => self.temperature.is_some(),
            "humidity" => self.humidity.is_some(),
            "current" => self.current.is_some(),
            _ => false,
        }
    }

    /// The `PublicApiTelemetryDto`. With `metrics`, only the named metric fields are written;
    /// otherwise every metric field is, `null` when the sample has no such value.
    pub(crate) fn to_json(&self, device_id: &str, metrics: Option<&[String]>) -> serde_json::Value {
        let mut obj = serde_json::Map::with_capacity(12);
        obj.insert("deviceId".to_owned(), json!(device_id));
        obj.insert(
            "stamp".to_owned(),
            json!(super::data::fmt_ts(&ts(self.t_ms))),
        );
        for (name, value) in [
            ("current", self.current),
            ("temperature", self.temperature),
            ("humidity", self.humidity),
        ] {
            if metrics.is_none_or(|m| m.iter().any(|x| x == name)) {
                obj.insert(name.to_owned(), json!(value));
            }
        }
        obj.insert("telemetryType".to_owned(), json!(self.kind));
        let c = self.cycle.as_ref();
        obj.insert("cycleId".to_owned(), json!(c.map(|c| &*c.id)));
        obj.insert("cycleSampleIndex".to_owned(), json!(c.map(|c| c.index)));
        obj.insert(
            "cycleSampleOffsetMs".to_owned(),
            json!(c.map(|c| c.offset_ms)),
        );
        obj.insert(
            "cycleDurationMs".to_owned(),
            json!(c.map(|c| c.duration_ms)),
        );
        obj.insert("cycleSampleCount".to_owned(), json!(c.map(|c| c.count)));
        serde_json::Value::Object(obj)
    }
}

/// One PointGuard cycle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cycle {
    pub(crate) id: Arc<str>,
    pub(crate) start_ms: i64,
    pub(crate) duration_ms: i64,
    /// The samples' currents, in tenths of an ampere, by index.
    pub(crate) tenths: Vec<i64>,
    /// The spec's example cycle (its movement is the spec's example movement).
    pub(crate) fixture: bool,
    h: u64,
}

impl Cycle {
    /// Number of samples.
    pub(crate) fn count(&self) -> usize {
        self.tenths.len()
    }

    /// The last sample's instant.
    pub(crate) fn stop_ms(&self) -> i64 {
        self.start_ms + self.duration_ms
    }

    /// Sample `i`'s offset from the start: `i × 10 ms`, the last one at the cycle's duration.
    fn offset_ms(&self, i: usize) -> i64 {
        if i + 1 >= self.count() {
            self.duration_ms
        } else {
            i64::try_from(i).unwrap_or(i64::MAX / 2) * CYCLE_INTERVAL_MS
        }
    }

    /// Sample `i` (in `0..count`).
    pub(crate) fn sample(&self, i: usize) -> Option<Sample> {
        let tenths = *self.tenths.get(i)?;
        let offset_ms = self.offset_ms(i);
        Some(Sample {
            t_ms: self.start_ms + offset_ms,
            kind: TYPE_POINTGUARD,
            temperature: None,
            humidity: None,
            current: Some(tenths as f64 / 10.0),
            cycle: Some(CycleMeta {
                id: self.id.clone(),
                index: i,
                offset_ms,
                duration_ms: self.duration_ms,
                count: self.count(),
            }),
        })
    }

    /// Every sample, by index.
    pub(crate) fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..self.count()).filter_map(|i| self.sample(i))
    }

    /// The mean current: the exact mean of the samples, correctly rounded.
    pub(crate) fn average_current(&self) -> f64 {
        let sum: i64 = self.tenths.iter().sum();
        let n = self.count().max(1) as f64;
        sum as f64 / (10.0 * n)
    }

    /// The largest sample current.
    pub(crate) fn peak_current(&self) -> f64 {
        self.tenths.iter().copied().max().unwrap_or(0) as f64 / 10.0
    }

    /// The root mean square of the currents, to 2 decimals.
    pub(crate) fn current_rms(&self) -> f64 {
        let n = self.count().max(1) as f64;
        let sq: f64 = self.tenths.iter().map(|t| (*t as f64 / 10.0).powi(2)).sum();
        round_to((sq / n).sqrt(), 2)
    }

    /// A nearest-rank percentile of the currents (`p` in 0..=100).
    pub(crate) fn current_percentile(&self, p: usize) -> f64 {
        let mut sorted = self.tenths.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        let rank = (p * n).div_ceil(100).clamp(1, n.max(1));
        sorted.get(rank - 1).copied().unwrap_or(0) as f64 / 10.0
    }

    /// The movement's id: a UUID whose last group is the start in epoch milliseconds, so the
    /// movement can be found from its id alone.
    pub(crate) fn movement_id(&self, device_id: &str) -> String {
        let h = hash(&[device_id.as_bytes(), self.id.as_bytes(), b"movement"]);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            8 + ((h >> 12) & 3),
            (h >> 40) & 0xfff,
            self.start_ms.rem_euclid(1 << 48)
        )
    }

    /// How long the movement lasted, in seconds: the sampled current plus the locking time.
    pub(crate) fn movement_duration(&self) -> f64 {
        let lock_ms = 500 + (self.h >> 7) % 6_000;
        round_to((self.duration_ms as f64 + lock_ms as f64) / 1000.0, 2)
    }

    /// The anomaly score, 0.0 to 4.4.
    pub(crate) fn anomaly_score(&self) -> f64 {
        ((self.h >> 23) % 45) as f64 / 10.0
    }

    /// `shapeJson`: about 20 `[offsetMs, current]` points, first and last included.
    pub(crate) fn shape_json(&self) -> String {
        let step = (self.count() / 20).max(1);
        let mut points: Vec<serde_json::Value> = (0..self.count())
            .step_by(step)
            .filter_map(|i| self.sample(i))
            .map(|s| json!([s.cycle.map_or(0, |c| c.offset_ms), s.current]))
            .collect();
        if (self.count().saturating_sub(1)) % step != 0 {
            if let Some(last) = self.sample(self.count().saturating_sub(1)) {
                points.push(json!([self.duration_ms, last.current]));
            }
        }
        json!({ "points": points }).to_string()
    }
}

/// The currents of a generated cycle of `n` samples: an inrush peak, a decay to a plateau with
/// some noise, and a fall at the end. The peak is the unique maximum; every value is at least 1.
fn cycle_shape(h: u64, n: usize, peak: i64) -> Vec<i64> {
    let n_i = i64::try_from(n).unwrap_or(200).max(20);
    let p = (n_i * (8 + ((h >> 8) % 12) as i64) / 100).max(2);
    let plateau = peak * (45 + ((h >> 16) % 15) as i64) / 100;
    let tail = n_i - n_i / 10;
    let tau = (n_i / 15).max(1) as f64;
    (0..n_i)
        .map(|i| {
            if i == p {
                return peak;
            }
            let base = if i < p {
                5 + (peak - 5) * i / p
            } else if i < tail {
                let decay = (-((i - p) as f64) / tau).exp();
                plateau + ((peak - plateau) as f64 * decay).round() as i64
            } else {
                3 + plateau * (n_i - 1 - i) / (n_i - tail).max(1)
            };
            let noise = (fnv1a(&(h ^ i as u64).to_le_bytes()) % 7) as i64 - 3;
            (base + noise).clamp(1, peak - 1)
        })
        .collect()
}

/// The spec's example cycle: 142 samples over 1,420 ms, samples 0, 1 and 42 as the examples show
/// them (0.6, 1.9 and 8.4 A), a peak of 15.7 A and a mean of exactly 8.1 A.
fn fixture_cycle() -> Cycle {
    const N: usize = 142;
    const PEAK_AT: usize = 20;
    const PEAK: i64 = 157;
    const SUM: i64 = 81 * N as i64; // mean 8.1 A
    let h = fnv1a(FIXTURE_CYCLE_ID.as_bytes());
    let mut tenths = cycle_shape(h, N, PEAK);
    let fixed = [(0, 6), (1, 19), (42, 84), (PEAK_AT, PEAK)];
    for (i, v) in fixed {
        if let Some(slot) = tenths.get_mut(i) {
            *slot = v;
        }
    }
    // Nudge the free samples by a tenth at a time until the sum is right.
    let mut diff = SUM - tenths.iter().sum::<i64>();
    let free: Vec<usize> = (2..N).filter(|i| *i != 42 && *i != PEAK_AT).collect();
    let mut guard = 0;
    while diff != 0 && guard < 100_000 {
        for i in &free {
            if diff == 0 {
                break;
            }
            if let Some(v) = tenths.get_mut(*i) {
                if diff > 0 && *v < PEAK - 1 {
                    *v += 1;
                    diff -= 1;
                } else if diff < 0 && *v > 1 {
                    *v -= 1;
                    diff += 1;
                }
            }
        }
        guard += 1;
    }
    Cycle {
        id: Arc::from(FIXTURE_CYCLE_ID),
        start_ms: FIXTURE_CYCLE_START_MS,
        duration_ms: 1_420,
        tenths,
        fixture: true,
        h,
    }
}

/// `cyc_YYYYMMDD_HHMMSS` of an instant.
fn cycle_id(start_ms: i64) -> String {
    ts(start_ms).format("cyc_%Y%m%d_%H%M%S").to_string()
}

/// The start of a cycle id, in epoch milliseconds.
fn parse_cycle_id(id: &str) -> Option<i64> {
    let rest = id.strip_prefix("cyc_")?;
    let t = NaiveDateTime::parse_from_str(rest, "%Y%m%d_%H%M%S").ok()?;
    Some(t.and_utc().timestamp_millis())
}

/// The generated series of one device.
#[derive(Debug, Clone)]
pub(crate) struct Signal {
    h: u64,
    pointguard: bool,
    fixture_device: bool,
    temp_base: f64,
    temp_amp: f64,
    hum_base: f64,
    hum_amp: f64,
    phase: f64,
}

impl Signal {
    /// The series of `device_id`; `pointguard` devices also have cycles.
    pub(crate) fn new(seed: u64, device_id: &str, pointguard: bool) -> Signal {
        let fixture_device = device_id == FIXTURE_DEVICE;
        let h = hash(&[&seed.to_le_bytes(), device_id.as_bytes()]);
        // The example device keeps the spec's daily mean of 18.4 °C.
        let temp_base = if fixture_device {
            18.4
        } else {
            4.0 + ((h >> 3) % 200) as f64 / 10.0
        };
        Signal {
            h,
            pointguard,
            fixture_device,
            temp_base,
            temp_amp: 0.5 + ((h >> 13) % 20) as f64 / 10.0,
            hum_base: 35.0 + ((h >> 21) % 300) as f64 / 10.0,
            hum_amp: 2.0 + ((h >> 31) % 40) as f64 / 10.0,
            phase: ((h >> 41) % 1000) as f64 / 1000.0 * TAU,
        }
    }

    /// The environment sample at `t_ms` (a multiple of [`ENV_STEP_MS`] at or after the origin).
    pub(crate) fn environment(&self, t_ms: i64) -> Sample {
        let day = t_ms.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
        let wave = (TAU * day + self.phase).sin();
        let n = fnv1a(&(self.h ^ t_ms as u64).to_le_bytes());
        Sample {
            t_ms,
            kind: TYPE_ENVIRONMENT,
            temperature: Some(round_to(
                self.temp_base + self.temp_amp * wave + 0.2 * unit(n),
                2,
            )),
            humidity: Some(round_to(
                self.hum_base - self.hum_amp * wave + unit(n >> 17),
                1,
            )),
            current: None,
            cycle: None,
        }
    }

    /// The environment samples in `[from_ms, to_ms)`, in order (none before the origin).
    pub(crate) fn environment_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = Sample> + '_ {
        let from = from_ms.max(ORIGIN_MS);
        let first = from + (ENV_STEP_MS - (from - ORIGIN_MS).rem_euclid(ENV_STEP_MS)) % ENV_STEP_MS;
        let steps = if to_ms > first {
            (to_ms - first + ENV_STEP_MS - 1) / ENV_STEP_MS
        } else {
            0
        };
        (0..steps).map(move |k| self.environment(first + k * ENV_STEP_MS))
    }

    /// The device's cycles that start on `day` (days since the epoch), by start, including
    /// those not finished yet.
    pub(crate) fn cycles_on(&self, day: i64) -> Vec<Cycle> {
        let day_ms = day.saturating_mul(DAY_MS);
        if !self.pointguard || !(ORIGIN_MS..LAST_MS).contains(&day_ms) {
            return Vec::new();
        }
        let dh = hash(&[&self.h.to_le_bytes(), &day.to_le_bytes()]);
        let k = 2 + (dh % 4) as i64;
        let slot_s = 86_400 / k;
        let fixture_slot = (self.fixture_device
            && (FIXTURE_CYCLE_START_MS - day_ms) >= 0
            && (FIXTURE_CYCLE_START_MS - day_ms) < DAY_MS)
            .then(|| (FIXTURE_CYCLE_START_MS - day_ms) / 1000 / slot_s);
        (0..k)
            .map(|i| {
                if fixture_slot == Some(i) {
                    return fixture_cycle();
                }
                let ch = hash(&[&dh.to_le_bytes(), &i.to_le_bytes()]);
                let offset_s = 60 + (ch % (slot_s as u64 - 300)) as i64;
                let start_ms = day_ms + (i * slot_s + offset_s) * 1000;
                let n = 100 + (ch >> 11) as usize % 101;
                let peak = 120 + ((ch >> 19) % 80) as i64;
                let duration_ms = (n as i64 - 1) * CYCLE_INTERVAL_MS;
                Cycle {
                    id: Arc::from(cycle_id(start_ms)),
                    start_ms,
                    duration_ms,
                    tenths: cycle_shape(ch, n, peak),
                    fixture: false,
                    h: ch,
                }
            })
            .collect()
    }

    /// The cycle with this id, finished or not.
    pub(crate) fn cycle(&self, id: &str) -> Option<Cycle> {
        let start = parse_cycle_id(id)?;
        self.cycles_on(start.div_euclid(DAY_MS))
            .into_iter()
            .find(|c| &*c.id == id)
    }

    /// The cycle whose movement has this id.
    pub(crate) fn cycle_of_movement(&self, device_id: &str, movement_id: &str) -> Option<Cycle> {
        let start = i64::from_str_radix(movement_id.rsplit('-').next()?, 16).ok()?;
        self.cycles_on(start.div_euclid(DAY_MS))
            .into_iter()
            .find(|c| c.start_ms == start && c.movement_id(device_id) == movement_id)
    }

    /// Every sample of `day` (days since the epoch) before `now_ms`, ordered by
    /// [`Sample::key`]: environment samples, and the samples of the cycles finished by then.
    pub(crate) fn day_samples(&self, day: i64, now_ms: i64) -> Vec<Sample> {
        let day_ms = day.saturating_mul(DAY_MS);
        let mut out: Vec<Sample> = self
            .environment_between(day_ms, (day_ms + DAY_MS).min(now_ms))
            .collect();
        for c in self.cycles_on(day) {
            if c.stop_ms() < now_ms {
                out.extend(c.samples());
            }
        }
        out.sort_by_key(Sample::key);
        out
    }
}

/// Days since the epoch of an instant.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Midnight UTC of a day (days since the epoch).
pub(crate) fn day_start(day: i64) -> DateTime<Utc> {
    ts(day.saturating_mul(DAY_MS))
}

/// The spec example's cycle start, for tests.
#[cfg(test)]
pub(crate) fn fixture_day() -> i64 {
    day_of(FIXTURE_CYCLE_START_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_cycle_matches_the_spec() {
        assert_eq!(
            ts(FIXTURE_CYCLE_START_MS).to_rfc3339(),
            "2026-05-27T12:00:00+00:00"
        );
        let s = Signal::new(1, FIXTURE_DEVICE, true);
        let c = s.cycle(FIXTURE_CYCLE_ID).expect("the example cycle");
        assert!(c.fixture);
        assert_eq!(c.count(), 142);
        assert_eq!(c.average_current(), 8.1);
        assert_eq!(c.peak_current(), 15.7);
        assert_eq!(c.stop_ms() - c.start_ms, 1_420);
        let s42 = c.sample(42).expect("sample 42");
        assert_eq!(s42.current, Some(8.4));
        assert_eq!(s42.cycle.as_ref().map(|m| m.offset_ms), Some(420));
        assert_eq!(c.sample(0).and_then(|s| s.current), Some(0.6));
        assert_eq!(c.sample(1).and_then(|s| s.current), Some(1.9));
        let last = c.sample(141).expect("last");
        assert_eq!(last.t_ms, c.stop_ms());
        // Other cycles of that day do not overlap it.
        let day = s.cycles_on(fixture_day());
        assert!(day.len() >= 2);
        for w in day.windows(2) {
            if let [a, b] = w {
                assert!(a.stop_ms() < b.start_ms);
            }
        }
    }

    #[test]
    fn generated_cycles_are_consistent_and_findable() {
        let s = Signal::new(7, "SEP-DEVICE-042", true);
        let day = day_of(ORIGIN_MS) + 100;
        let cycles = s.cycles_on(day);
        assert!((2..=5).contains(&cycles.len()));
        for c in &cycles {
            let samples: Vec<Sample> = c.samples().collect();
            assert_eq!(samples.len(), c.count());
            let max = samples.iter().filter_map(|x| x.current).fold(0.0, f64::max);
            assert_eq!(max, c.peak_current());
            let mean = samples.iter().filter_map(|x| x.current).sum::<f64>() / samples.len() as f64;
            assert!((mean - c.average_current()).abs() < 1e-9);
            assert!(samples.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
            assert_eq!(s.cycle(&c.id).as_ref(), Some(c));
            let mid = c.movement_id("SEP-DEVICE-042");
            assert_eq!(
                s.cycle_of_movement("SEP-DEVICE-042", &mid).as_ref(),
                Some(c)
            );
            assert!(crate::sepolo::input::is_uuid(&mid), "{mid}");
            assert!(serde_json::from_str::<serde_json::Value>(&c.shape_json()).is_ok());
        }
        assert!(
            Signal::new(7, "SEP-DEVICE-042", false)
                .cycles_on(day)
                .is_empty()
        );
    }

    #[test]
    fn environment_samples_every_five_minutes() {
        let s = Signal::new(1, FIXTURE_DEVICE, true);
        let day = day_of(ORIGIN_MS) + 10;
        let env: Vec<Sample> = s
            .environment_between(day * DAY_MS, (day + 1) * DAY_MS)
            .collect();
        assert_eq!(env.len(), 288);
        let mean = env.iter().filter_map(|x| x.temperature).sum::<f64>() / 288.0;
        assert_eq!(round_to(mean, 1), 18.4);
        assert_eq!(
            s.environment_between(day * DAY_MS + 1, day * DAY_MS + ENV_STEP_MS + 1)
                .count(),
            1
        );
        assert_eq!(s.environment_between(0, ORIGIN_MS).count(), 0);
        let all = s.day_samples(day, i64::MAX);
        assert!(all.windows(2).all(|w| w[0].key() < w[1].key()));
    }
}
