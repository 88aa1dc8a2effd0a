//! `/events`: list, acknowledge, clear, comment.

use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::json;

use super::data::{Event, fmt_ts, now};
use super::input::{self, cursor, make_cursor};
use super::{ApiErr, Reply, Res, SharedState};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
const MAX_NOTE: usize = 4_000;

fn not_found(id: &str) -> ApiErr {
    ApiErr::not_found("event", "event_id", id)
}

/// `GET /events?type&severity&acknowledged&device_id&limit&cursor`, in id order (ids are
/// time-ordered).
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let kind = params.one("type")?;
    let severity = params.one("severity")?;
    let device_id = params.one("device_id")?;
    let acknowledged = match params.one("acknowledged")? {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiErr::invalid(
                "Parameter 'acknowledged' must be true or false.",
                json!({ "parameter": "acknowledged" }),
            ));
        }
    };
    let after = cursor(&params, "e")?;
    let matches = |e: &Event| {
        kind.is_none_or(|k| e.kind == k)
            && severity.is_none_or(|v| e.severity == v)
            && device_id.is_none_or(|d| e.device_id == d)
            && acknowledged.is_none_or(|a| e.acknowledged == a)
    };
    let data = lock(&s.data);
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut matching = data
        .events
        .range::<String, _>((start, Bound::Unbounded))
        .map(|(_, e)| e)
        .filter(|e| matches(e));
    let page: Vec<&Event> = matching.by_ref().take(limit).collect();
    let has_more = matching.next().is_some();
    let next = match page.last() {
        Some(last) if has_more => Some(make_cursor("e", &last.id)),
        _ => None,
    };
    Ok(Reply::page(
        page.iter().map(|e| e.to_json()).collect(),
        limit,
        next,
    ))
}

/// `POST /events/{id}/ack`: `acknowledged: true`, `acknowledged_at` (kept from the first ack).
pub(crate) async fn ack(State(s): SharedState, Path(id): Path<String>) -> Res {
    let mut data = lock(&s.data);
    let event = data.events.get_mut(&id).ok_or_else(|| not_found(&id))?;
    if !event.acknowledged || event.acknowledged_at.is_none() {
        event.acknowledged = true;
        event.acknowledged_at = Some(now());
    }
    Ok(Reply::ok(event.to_json()))
}

/// `POST /events/{id}/clear`: `cleared: true`, `cleared_at` (kept from the first clear).
pub(crate) async fn clear(State(s): SharedState, Path(id): Path<String>) -> Res {
    let mut data = lock(&s.data);
    let event = data.events.get_mut(&id).ok_or_else(|| not_found(&id))?;
    if event.cleared_at.is_none() {
        event.cleared_at = Some(now());
    }
    Ok(Reply::ok(event.to_json()))
}

/// `POST /events/{id}/comment`: `{"note": "…"}` (not blank, at most 4,000 characters) → 201.
pub(crate) async fn comment(State(s): SharedState, Path(id): Path<String>, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    let mut data = lock(&s.data);
    let event = data.events.get_mut(&id).ok_or_else(|| not_found(&id))?;
    let note = input::req_string(&obj, "note")?;
    if note.chars().count() > MAX_NOTE {
        return Err(ApiErr::validation(
            "note",
            format!("Field 'note' must be at most {MAX_NOTE} characters."),
        ));
    }
    let at = now();
    event.notes.push((note.clone(), at));
    Ok(Reply::created(json!({
        "event_id": id,
        "note": note,
        "created_at": fmt_ts(&at),
    })))
}
