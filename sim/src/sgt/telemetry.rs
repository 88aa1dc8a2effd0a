//! `/telemetry`: query, ingest, aggregate, export.
//!
//! Generated readings are computed on the fly, never stored: every seeded device has each of
//! [`METRICS`] every 15 minutes from [`origin`] to now, a daily curve plus noise, deterministic
//! for the seed. Ingested readings are stored and merged in.

use std::collections::{BTreeMap, HashSet};
use std::f64::consts::TAU;

use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Map, Value, json};

use super::data::{Data, Device, Stored, fmt_ts, now, origin};
use super::devices::not_found;
use super::input::{self, make_cursor, required_ts};
use super::{ApiErr, Reply, Res, SharedState};
use crate::{Params, fnv1a, lock};

/// The metrics every seeded device reports.
pub(crate) const METRICS: [&str; 4] = ["power_kw", "temperature_c", "humidity_pct", "voltage_v"];
/// Seconds between generated readings.
const STEP_SECS: i64 = 900;
const MAX_RAW_DAYS: i64 = 31;
const MAX_AGGREGATE_DAYS: i64 = 366;
const MAX_INGEST: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
const FUNCTIONS: [&str; 6] = ["avg", "min", "max", "sum", "p95", "p99"];

/// One reading of a query.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    ts: DateTime<Utc>,
    metric: String,
    value: f64,
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (value * f).round() / f
}

/// The curve parameters of one device's metric: (base, daily amplitude, noise), or `None` for a
/// metric that is not generated.
fn curve(seed: u64, device: &str, metric: &str) -> Option<(u64, f64, f64, f64)> {
    let (base, amp, noise) = match metric {
        "power_kw" => (10.0, 3.0, 0.6),
        "temperature_c" => (22.0, 2.5, 0.3),
        "humidity_pct" => (50.0, 8.0, 1.5),
        "voltage_v" => (230.0, 1.5, 0.8),
        _ => return None,
    };
    let h = fnv1a(format!("{seed}:{device}:{metric}").as_bytes());
    // Each device sits within ±20 % of the base.
    let scale = 0.8 + (h % 400) as f64 / 1000.0;
    Some((h, base * scale, amp, noise))
}

fn generated_value(h: u64, base: f64, amp: f64, noise: f64, t: i64) -> f64 {
    let phase = ((h >> 20) % 1000) as f64 / 1000.0 * TAU;
    let day = t.rem_euclid(86_400) as f64 / 86_400.0;
    let n = fnv1a(&(h ^ t as u64).to_le_bytes());
    let unit = (n % 2001) as f64 / 1000.0 - 1.0;
    round_to(base + amp * (TAU * day + phase).sin() + noise * unit, 2)
}

/// The readings of one device's metric in `[from, to)`, ordered by `ts` (generated before stored
/// at the same instant, stored in arrival order).
fn metric_readings(
    data: &Data,
    seed: u64,
    device: &Device,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, f64)> {
    let stored: &[Stored] = data
        .stored
        .get(&(device.id.clone(), metric.to_owned()))
        .map_or(&[], Vec::as_slice);
    let mut out = Vec::new();
    if let (true, Some((h, base, amp, noise))) = (device.generated, curve(seed, &device.id, metric))
    {
        let origin = origin();
        let end = to.min(now());
        let first = if from <= origin {
            origin
        } else {
            let since = (from - origin).num_seconds();
            let steps = since.div_euclid(STEP_SECS) + i64::from(since.rem_euclid(STEP_SECS) != 0);
            origin + ChronoDuration::seconds(steps.saturating_mul(STEP_SECS))
        };
        let superseded: HashSet<DateTime<Utc>> = stored
            .iter()
            .filter(|s| s.supersedes)
            .map(|s| s.ts)
            .collect();
        let mut t = first;
        while t < end {
            if t >= from && !superseded.contains(&t) {
                out.push((t, generated_value(h, base, amp, noise, t.timestamp())));
            }
            t += ChronoDuration::seconds(STEP_SECS);
        }
    }
    out.extend(
        stored
            .iter()
            .filter(|s| s.ts >= from && s.ts < to)
            .map(|s| (s.ts, s.value)),
    );
    out.sort_by_key(|(ts, _)| *ts);
    out
}

/// All readings of `metric` (or of every metric) of a device, ordered by `ts`, then metric.
fn readings(
    data: &Data,
    seed: u64,
    device: &Device,
    metric: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Reading> {
    let metrics: Vec<String> = match metric {
        Some(m) => vec![m.to_owned()],
        None => {
            let mut all: Vec<String> = METRICS.iter().map(|m| (*m).to_owned()).collect();
            let mut extra: Vec<String> = data
                .stored
                .keys()
                .filter(|(d, m)| d == &device.id && !all.contains(m))
                .map(|(_, m)| m.clone())
                .collect();
            extra.sort();
            all.extend(extra);
            all
        }
    };
    let mut out: Vec<Reading> = metrics
        .iter()
        .flat_map(|m| {
            metric_readings(data, seed, device, m, from, to)
                .into_iter()
                .map(|(ts, value)| Reading {
                    ts,
                    metric: m.clone(),
                    value,
                })
        })
        .collect();
    out.sort_by_key(|r| r.ts);
    out
}

/// The checked `from`/`to` of a request: both required, `from < to`, at most `max_days` apart.
fn window(
    params: &Params,
    max_days: Option<i64>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    let from = required_ts(params, "from")?;
    let to = required_ts(params, "to")?;
    if from >= to {
        return Err(ApiErr::invalid(
            "'from' must be earlier than 'to'.",
            json!({ "parameter": "to" }),
        ));
    }
    if let Some(days) = max_days {
        if to - from > ChronoDuration::days(days) {
            return Err(ApiErr::invalid(
                format!(
                    "The window from 'from' to 'to' is over {days} days; split it, or use /telemetry/export."
                ),
                json!({ "parameter": "to", "max_days": days }),
            ));
        }
    }
    Ok((from, to))
}

/// `GET /telemetry?device_id&metric?&from&to&limit&cursor`.
pub(crate) async fn query(State(s): SharedState, params: Params) -> Res {
    let device_id = params.required("device_id")?;
    let metric = params.one("metric")?;
    let (from, to) = window(&params, Some(MAX_RAW_DAYS))?;
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let position = input::cursor(&params, "t")?
        .map(|c| {
            c.split_once(':')
                .and_then(|(ms, n)| Some((ms.parse::<i64>().ok()?, n.parse::<usize>().ok()?)))
                .ok_or_else(|| {
                    ApiErr::invalid(
                        "Parameter 'cursor' is not a cursor this list issued.",
                        json!({ "parameter": "cursor" }),
                    )
                })
        })
        .transpose()?;

    let data = lock(&s.data);
    let device = data
        .device(device_id)
        .ok_or_else(|| not_found(device_id, &s.tenant))?;
    let items = readings(&data, s.seed, device, metric, from, to);
    drop(data);

    // A position is (ts in ms, n): after every reading before ts and the first n at ts.
    let start = match position {
        None => 0,
        Some((ms, n)) => {
            let before = items.partition_point(|r| r.ts.timestamp_millis() < ms);
            let through = items.partition_point(|r| r.ts.timestamp_millis() <= ms);
            before + n.min(through - before)
        }
    };
    let page: Vec<&Reading> = items.iter().skip(start).take(limit).collect();
    let end = start + page.len();
    let next = match page.last() {
        Some(last) if end < items.len() => {
            let ms = last.ts.timestamp_millis();
            let first_at = items.partition_point(|r| r.ts.timestamp_millis() < ms);
            Some(make_cursor("t", &format!("{ms}:{}", end - first_at)))
        }
        _ => None,
    };
    let data = page
        .iter()
        .map(|r| {
            json!({
                "device_id": device_id,
                "metric": r.metric,
                "ts": fmt_ts(&r.ts),
                "value": r.value,
            })
        })
        .collect();
    Ok(Reply::page(data, limit, next))
}

/// One checked reading of an ingest body, or why it was rejected.
fn check_reading(v: &Value) -> Result<(String, String, DateTime<Utc>, f64, bool), String> {
    let obj: &Map<String, Value> = v.as_object().ok_or("A reading must be a JSON object.")?;
    let text = |field: &str| -> Result<String, String> {
        obj.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("Field '{field}' is required and must be a string."))
    };
    let device_id = text("device_id")?;
    let metric = text("metric")?;
    let ts = input::parse_ts(&text("ts")?).ok_or("Field 'ts' must be an RFC 3339 timestamp.")?;
    let value = obj
        .get("value")
        .and_then(Value::as_f64)
        .ok_or("Field 'value' is required and must be a number.")?;
    let supersedes = match obj.get("supersedes") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("Field 'supersedes' must be true or false.".to_owned()),
    };
    Ok((device_id, metric, ts, value, supersedes))
}

/// `POST /telemetry/ingest`: `{"readings": [...]}`, at most 1,000; per-reading rejections.
pub(crate) async fn ingest(State(s): SharedState, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    let Some(Value::Array(items)) = obj.get("readings") else {
        return Err(ApiErr::invalid(
            "Field 'readings' is required and must be an array.",
            json!({ "field": "readings" }),
        ));
    };
    if items.len() > MAX_INGEST {
        return Err(ApiErr::invalid(
            format!(
                "At most {MAX_INGEST} readings per request; this one has {}.",
                items.len()
            ),
            json!({ "field": "readings", "max": MAX_INGEST, "received": items.len() }),
        ));
    }
    let mut accepted: u64 = 0;
    let mut errors = Vec::new();
    {
        let mut data = lock(&s.data);
        for (index, item) in items.iter().enumerate() {
            let (device_id, metric, ts, value, supersedes) = match check_reading(item) {
                Ok(r) => r,
                Err(message) => {
                    errors.push(json!({
                        "index": index,
                        "code": "validation_failed",
                        "message": message,
                    }));
                    continue;
                }
            };
            if data.device(&device_id).is_none() {
                errors.push(json!({
                    "index": index,
                    "code": "device_not_found",
                    "message": format!(
                        "No device with id '{device_id}' exists in tenant '{}'.",
                        s.tenant
                    ),
                }));
                continue;
            }
            let series = data.stored.entry((device_id, metric)).or_default();
            if supersedes {
                series.retain(|r| r.ts != ts);
            }
            series.push(Stored {
                ts,
                value,
                supersedes,
            });
            accepted += 1;
        }
    }
    s.stat(|st| {
        st.ingest_requests += 1;
        st.readings_stored += accepted;
    });
    Ok(Reply::ok(json!({
        "accepted": accepted,
        "rejected": errors.len(),
        "errors": errors,
    })))
}

/// Parses an interval such as `30s`, `5m`, `15m`, `1h`, `1d`.
fn parse_interval(s: &str) -> Option<ChronoDuration> {
    let unit = s.chars().last()?;
    let n: i64 = s.get(..s.len() - unit.len_utf8())?.parse().ok()?;
    if n <= 0 {
        return None;
    }
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3_600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    ChronoDuration::try_seconds(secs)
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

fn aggregate_values(values: &mut [f64], function: &str) -> f64 {
    values.sort_by(f64::total_cmp);
    let sum: f64 = values.iter().sum();
    let v = match function {
        "min" => values.first().copied().unwrap_or(0.0),
        "max" => values.last().copied().unwrap_or(0.0),
        "sum" => sum,
        "p95" => percentile(values, 0.95),
        "p99" => percentile(values, 0.99),
        _ => sum / values.len().max(1) as f64,
    };
    round_to(v, 3)
}

/// `GET /telemetry/aggregate?device_id&metric&from&to&interval&fn`: `[{ts, value}]`, buckets
/// aligned to `from`, empty buckets left out, no pagination.
pub(crate) async fn aggregate(State(s): SharedState, params: Params) -> Res {
    let device_id = params.required("device_id")?;
    let metric = params.required("metric")?;
    let (from, to) = window(&params, Some(MAX_AGGREGATE_DAYS))?;
    let interval = parse_interval(params.required("interval")?).ok_or_else(|| {
        ApiErr::invalid(
            "Parameter 'interval' must be a positive number followed by s, m, h or d (e.g. 15m).",
            json!({ "parameter": "interval" }),
        )
    })?;
    let function = params.required("fn")?;
    if !FUNCTIONS.contains(&function) {
        return Err(ApiErr::invalid(
            format!("Parameter 'fn' must be one of {}.", FUNCTIONS.join(", ")),
            json!({ "parameter": "fn" }),
        ));
    }
    let data = lock(&s.data);
    let device = data
        .device(device_id)
        .ok_or_else(|| not_found(device_id, &s.tenant))?;
    let series = metric_readings(&data, s.seed, device, metric, from, to);
    drop(data);

    let step = interval.num_milliseconds().max(1);
    let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (ts, value) in series {
        let index = (ts - from).num_milliseconds() / step;
        buckets.entry(index).or_default().push(value);
    }
    let points = buckets
        .into_iter()
        .map(|(index, mut values)| {
            let ts = from + ChronoDuration::milliseconds(index.saturating_mul(step));
            json!({ "ts": fmt_ts(&ts), "value": aggregate_values(&mut values, function) })
        })
        .collect();
    Ok(Reply::ok(Value::Array(points)))
}

/// `GET /telemetry/export?device_id&metric?&from&to&format?`: a signed-looking URL.
pub(crate) async fn export(State(s): SharedState, params: Params) -> Res {
    let device_id = params.required("device_id")?;
    let metric = params.one("metric")?;
    let (from, to) = window(&params, None)?;
    let format = params.one("format")?.unwrap_or("csv");
    if format != "csv" && format != "parquet" {
        return Err(ApiErr::invalid(
            "Parameter 'format' must be csv or parquet.",
            json!({ "parameter": "format" }),
        ));
    }
    if lock(&s.data).device(device_id).is_none() {
        return Err(not_found(device_id, &s.tenant));
    }
    let id = format!("exp_{}", s.new_id());
    let signature = fnv1a(
        format!(
            "{id}{device_id}{}{}{}",
            metric.unwrap_or("*"),
            from.timestamp(),
            to.timestamp()
        )
        .as_bytes(),
    );
    let expires_at = now() + ChronoDuration::hours(1);
    Ok(Reply::ok(json!({
        "url": format!(
            "https://exports.sgt-sim.invalid/{}/{id}.{format}?X-Amz-Expires=3600&X-Amz-Signature={signature:016x}",
            s.tenant
        ),
        "expires_at": fmt_ts(&expires_at),
        "format": format,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("15m"), Some(ChronoDuration::minutes(15)));
        assert_eq!(parse_interval("1d"), Some(ChronoDuration::days(1)));
        for bad in ["", "m", "0m", "-5m", "5w", "1.5h", "5"] {
            assert_eq!(parse_interval(bad), None, "{bad}");
        }
    }

    #[test]
    fn aggregate_functions() {
        let v = [3.0, 1.0, 2.0, 4.0];
        assert_eq!(aggregate_values(&mut v.clone(), "avg"), 2.5);
        assert_eq!(aggregate_values(&mut v.clone(), "min"), 1.0);
        assert_eq!(aggregate_values(&mut v.clone(), "max"), 4.0);
        assert_eq!(aggregate_values(&mut v.clone(), "sum"), 10.0);
        assert_eq!(aggregate_values(&mut v.clone(), "p95"), 4.0);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(aggregate_values(&mut hundred.clone(), "p95"), 95.0);
        assert_eq!(aggregate_values(&mut hundred.clone(), "p99"), 99.0);
    }

    #[test]
    fn generated_values_are_deterministic_and_plausible() {
        let (h, base, amp, noise) = curve(1, "dev_42", "temperature_c").unwrap_or_default();
        let a = generated_value(h, base, amp, noise, 1_735_689_600);
        let b = generated_value(h, base, amp, noise, 1_735_689_600);
        assert_eq!(a, b);
        assert!((10.0..35.0).contains(&a), "{a}");
        assert!(curve(1, "dev_42", "unknown").is_none());
    }
}
