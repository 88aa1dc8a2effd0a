//! `/devices`: list, get, telemetry, PointGuard cycles and their samples, movements and their
//! signatures. Telemetry, cycles and movements are computed from [`super::signals`] per request.

use std::ops::Bound;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::data::{Device, fmt_ts, now};
use super::input::{self, cursor, int_position, make_cursor, page_size, required_window};
use super::signals::{Cycle, ORIGIN_MS, Sample, Signal, day_of, ts};
use super::{ApiErr, Res, Shared, SharedState, ok, page, take_page};
use crate::{Params, lock};

/// The longest telemetry or cycles window.
const MAX_RAW_DAYS: i64 = 31;

/// The generated series of a device, or 404.
fn signal(s: &Shared, device_id: &str) -> Result<Signal, ApiErr> {
    lock(&s.data)
        .devices
        .get(device_id)
        .map(|d| d.signal(s.seed))
        .ok_or_else(|| ApiErr::not_found("device", device_id))
}

/// The days (since the epoch) that can hold data of `[from_ms, to_ms)`: none before the origin
/// or after `now_ms`.
fn days(from_ms: i64, to_ms: i64, now_ms: i64) -> std::ops::Range<i64> {
    let first = day_of(from_ms.max(ORIGIN_MS));
    let end = to_ms.min(now_ms);
    if end <= from_ms {
        return 0..0;
    }
    first..day_of(end - 1) + 1
}

/// `GET /devices`: filtered by `updatedSince`, `groupId`, `status`; ordered by id.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let size = page_size(&params)?;
    let updated_since = input::ts(&params, "updatedSince")?;
    let group_id = input::int(&params, "groupId")?;
    let status = input::int(&params, "status")?;
    let after = cursor(&params, "d")?;
    let keep = |d: &Device| {
        updated_since.is_none_or(|t| d.updated > t)
            && group_id.is_none_or(|g| d.group_id == g)
            && status.is_none_or(|st| d.status == st)
    };
    let data = lock(&s.data);
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let matching = data
        .devices
        .range::<String, _>((start, Bound::Unbounded))
        .map(|(_, d)| d)
        .filter(|d| keep(d));
    let (items, next) = take_page(matching, size, |d| make_cursor("d", &d.id));
    Ok(page(items.iter().map(|d| d.to_json()).collect(), next))
}

/// `GET /devices/{deviceId}`.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let device = data
        .devices
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("device", &id))?;
    Ok(ok(device.to_json()))
}

/// `GET /devices/{deviceId}/telemetry`: `from`/`to` (≤ 31 days), `metrics`, `telemetryType`,
/// `cycleId`; ordered by `stamp`, then `telemetryType`.
pub(crate) async fn telemetry(
    State(s): SharedState,
    Path(id): Path<String>,
    params: Params,
) -> Res {
    let (from, to) = required_window(&params, Some(MAX_RAW_DAYS))?;
    let size = page_size(&params)?;
    let metrics: Option<Vec<String>> = params.one("metrics")?.map(|m| {
        m.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let kind = input::int(&params, "telemetryType")?;
    let cycle_id = params.one("cycleId")?.map(str::to_owned);
    let after: Option<(i64, i64)> = cursor(&params, "t")?
        .map(|p| {
            p.split_once(':')
                .and_then(|(t, k)| Some((t.parse().ok()?, k.parse().ok()?)))
                .ok_or_else(input::bad_cursor)
        })
        .transpose()?;
    let signal = signal(&s, &id)?;

    let now_ms = now().timestamp_millis();
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    let start_ms = after.map_or(from_ms, |(t, _)| t.max(from_ms));
    // A cycle filter names its day: look there only.
    let range = match &cycle_id {
        Some(c) => match signal.cycle(c) {
            Some(cycle) => {
                let d = day_of(cycle.start_ms);
                d..d + 1
            }
            None => 0..0,
        },
        None => days(start_ms, to_ms, now_ms),
    };
    let keep = |x: &Sample| {
        x.t_ms >= from_ms
            && x.t_ms < to_ms
            && after.is_none_or(|a| x.key() > a)
            && kind.is_none_or(|k| x.kind == k)
            && cycle_id
                .as_deref()
                .is_none_or(|c| x.cycle.as_ref().is_some_and(|m| &*m.id == c))
            && metrics
                .as_ref()
                .is_none_or(|m| m.iter().any(|name| x.has_metric(name)))
    };
    let matching = range
        .flat_map(|d| signal.day_samples(d, now_ms))
        .filter(|x| keep(x));
    let (items, next) = take_page(matching, size, |x| {
        make_cursor("t", &format!("{}:{}", x.t_ms, x.kind))
    });
    Ok(page(
        items
            .iter()
            .map(|x| x.to_json(&id, metrics.as_deref()))
            .collect(),
        next,
    ))
}

fn cycle_json(device_id: &str, c: &Cycle) -> Value {
    json!({
        "deviceId": device_id,
        "cycleId": &*c.id,
        "start": fmt_ts(&ts(c.start_ms)),
        "stop": fmt_ts(&ts(c.stop_ms())),
        "samples": c.count(),
        "averageCurrent": c.average_current(),
        "peakCurrent": c.peak_current(),
    })
}

/// The finished cycles of a device starting in `[from, to)` and after `after_ms`, by start.
fn finished_cycles<'a>(
    signal: &'a Signal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after_ms: Option<i64>,
    now_ms: i64,
) -> impl Iterator<Item = Cycle> + 'a {
    let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
    let start_ms = after_ms.map_or(from_ms, |a| a.max(from_ms));
    days(start_ms, to_ms, now_ms)
        .flat_map(|d| signal.cycles_on(d))
        .filter(move |c| {
            c.start_ms >= from_ms
                && c.start_ms < to_ms
                && after_ms.is_none_or(|a| c.start_ms > a)
                && c.stop_ms() < now_ms
        })
}

/// `GET /devices/{deviceId}/pointguard/cycles`: `from`/`to` (≤ 31 days); by start.
pub(crate) async fn cycles(State(s): SharedState, Path(id): Path<String>, params: Params) -> Res {
    let (from, to) = required_window(&params, Some(MAX_RAW_DAYS))?;
    let size = page_size(&params)?;
    let after = cursor(&params, "cy")?
        .map(|p| int_position(&p))
        .transpose()?;
    let signal = signal(&s, &id)?;
    let now_ms = now().timestamp_millis();
    let (items, next) = take_page(
        finished_cycles(&signal, from, to, after, now_ms),
        size,
        |c| make_cursor("cy", &c.start_ms.to_string()),
    );
    Ok(page(
        items.iter().map(|c| cycle_json(&id, c)).collect(),
        next,
    ))
}

/// `GET /devices/{deviceId}/pointguard/cycles/{cycleId}/samples`: every sample of a finished
/// cycle, by index.
pub(crate) async fn cycle_samples(
    State(s): SharedState,
    Path((id, cycle_id)): Path<(String, String)>,
    params: Params,
) -> Res {
    let size = page_size(&params)?;
    let after = cursor(&params, "s")?
        .map(|p| int_position(&p))
        .transpose()?;
    let signal = signal(&s, &id)?;
    let now_ms = now().timestamp_millis();
    let cycle = signal
        .cycle(&cycle_id)
        .filter(|c| c.stop_ms() < now_ms)
        .ok_or_else(|| ApiErr::not_found("PointGuard cycle", &cycle_id))?;
    let first = after.map_or(0, |a| usize::try_from(a.saturating_add(1)).unwrap_or(0));
    let samples = (first..cycle.count()).filter_map(|i| cycle.sample(i));
    let (items, next) = take_page(samples, size, |x| {
        let index = x.cycle.as_ref().map_or(0, |m| m.index);
        make_cursor("s", &index.to_string())
    });
    Ok(page(
        items.iter().map(|x| x.to_json(&id, None)).collect(),
        next,
    ))
}

/// The movement of a cycle: the spec's example for its example cycle, else computed.
fn movement_json(s: &Shared, device_id: &str, c: &Cycle) -> Value {
    let mut obj = if c.fixture {
        lock(&s.data).fixture_movement.clone()
    } else {
        let score = c.anomaly_score();
        let suggested = score >= 3.0;
        let v = json!({
            "id": c.movement_id(device_id),
            "deviceId": device_id,
            "duration": c.movement_duration(),
            "averageCurrent": c.average_current(),
            "peakCurrent": c.peak_current(),
            "isAnomalySuggested": suggested,
            "anomalyScore": score,
            "anomalyDecisionAction": if suggested { "Classify" } else { "None" },
            "currentSignature": {
                "sampleCount": c.count(),
                "currentRms": c.current_rms(),
                "currentP90": c.current_percentile(90),
            },
        });
        match v {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    };
    obj.insert("cycleId".to_owned(), json!(&*c.id));
    obj.insert("start".to_owned(), json!(fmt_ts(&ts(c.start_ms))));
    obj.insert("stop".to_owned(), json!(fmt_ts(&ts(c.stop_ms()))));
    Value::Object(obj)
}

/// `GET /devices/{deviceId}/movements`: `from`/`to` (required, no cap stated),
/// `minDurationSeconds`; by start.
pub(crate) async fn movements(
    State(s): SharedState,
    Path(id): Path<String>,
    params: Params,
) -> Res {
    let (from, to) = required_window(&params, None)?;
    let size = page_size(&params)?;
    let min_duration = input::int(&params, "minDurationSeconds")?;
    let after = cursor(&params, "m")?
        .map(|p| int_position(&p))
        .transpose()?;
    let signal = signal(&s, &id)?;
    let now_ms = now().timestamp_millis();
    let matching = finished_cycles(&signal, from, to, after, now_ms)
        .map(|c| {
            let json = movement_json(&s, &id, &c);
            (c.start_ms, json)
        })
        .filter(|(_, m)| {
            min_duration.is_none_or(|min| {
                m.get("duration")
                    .and_then(Value::as_f64)
                    .is_some_and(|d| d >= min as f64)
            })
        });
    let (items, next) = take_page(matching, size, |(start, _)| {
        make_cursor("m", &start.to_string())
    });
    Ok(page(items.into_iter().map(|(_, m)| m).collect(), next))
}

/// `GET /devices/{deviceId}/movements/{movementId}/signature`.
pub(crate) async fn signature(
    State(s): SharedState,
    Path((id, movement_id)): Path<(String, String)>,
) -> Res {
    let signal = signal(&s, &id)?;
    let fixture = {
        let data = lock(&s.data);
        let is_fixture = data.fixture_signature.get("movementId") == Some(&json!(movement_id))
            && data.fixture_signature.get("deviceId") == Some(&json!(id));
        is_fixture.then(|| Value::Object(data.fixture_signature.clone()))
    };
    if let Some(sig) = fixture {
        return Ok(ok(sig));
    }
    let now_ms = now().timestamp_millis();
    let c = signal
        .cycle_of_movement(&id, &movement_id)
        .filter(|c| c.stop_ms() < now_ms && !c.fixture)
        .ok_or_else(|| ApiErr::not_found("movement", &movement_id))?;
    Ok(ok(json!({
        "movementId": movement_id,
        "deviceId": id,
        "sampleCount": c.count(),
        "currentRms": c.current_rms(),
        "currentP50": c.current_percentile(50),
        "currentP90": c.current_percentile(90),
        "shapeJson": c.shape_json(),
    })))
}
