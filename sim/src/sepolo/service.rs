//! Service reports (list, get, create), service visits and appointments, and the commercial
//! directory: customers, vendors and inventory parts.

use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::data::{Report, now, report_state};
use super::input::{self, cursor, make_cursor, optional_window, page_size};
use super::{ApiErr, Res, SharedState, ok, page, take_page, time_page};
use crate::{Params, lock};

/// The longest visits or appointments window.
const MAX_SERVICE_DAYS: i64 = 366;

/// `GET /service-reports`: by creation time; `fromUtc`/`toUtc`, `assetId`, `deviceId`, `state`.
pub(crate) async fn reports(State(s): SharedState, params: Params) -> Res {
    let window = optional_window(&params, None)?;
    let asset_id = input::uuid(&params, "assetId")?;
    let device_id = params.one("deviceId")?.map(str::to_owned);
    let state = input::int(&params, "state")?;
    let data = lock(&s.data);
    time_page(
        &data.reports,
        &params,
        "r",
        window,
        |r| {
            asset_id.as_ref().is_none_or(|a| &r.asset_id == a)
                && device_id
                    .as_ref()
                    .is_none_or(|d| r.device_id.as_ref() == Some(d))
                && state.is_none_or(|st| r.state == st)
        },
        Report::to_json,
    )
}

/// `GET /service-reports/{serviceReportId}`.
pub(crate) async fn report(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let report = data
        .report(&id)
        .ok_or_else(|| ApiErr::not_found("service report", &id))?;
    Ok(ok(report.to_json()))
}

/// An optional string field of a body; another type is 400.
fn opt_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiErr::validation(format!("{field} must be a string."))),
    }
}

/// `POST /service-reports`: a JSON object with the UUID `assetId` of an asset of the
/// organization; `deviceId`, `stateText` (default `Draft`) and `state` are read, every other
/// field is kept and echoed back. 201 `{serviceReportId}`.
pub(crate) async fn create_report(State(s): SharedState, body: Bytes) -> Res {
    let mut obj = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(ApiErr::validation(
                "The request body must be a JSON object.",
            ));
        }
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(ApiErr::validation("A JSON request body is required."));
        }
        Err(e) => {
            return Err(ApiErr::validation(format!(
                "The request body is not valid JSON: {e}."
            )));
        }
    };
    let asset_id = opt_string(&obj, "assetId")?
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiErr::validation("The assetId field is required."))?;
    if !input::is_uuid(&asset_id) {
        return Err(ApiErr::validation(format!(
            "The value '{asset_id}' is not valid for assetId."
        )));
    }
    let device_id = opt_string(&obj, "deviceId")?;
    let state_text = opt_string(&obj, "stateText")?.unwrap_or_else(|| "Draft".to_owned());
    let state = match obj.get("state") {
        None | Some(Value::Null) => report_state(&state_text),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiErr::validation("state must be an integer."))?,
    };
    for field in [
        "serviceReportId",
        "assetId",
        "deviceId",
        "stateText",
        "state",
        "createdUtc",
    ] {
        obj.remove(field);
    }

    let id = s.new_uuid();
    let mut data = lock(&s.data);
    let Some(asset) = data.assets.get(&asset_id) else {
        return Err(ApiErr::validation(format!(
            "The asset '{asset_id}' was not found in this organization."
        )));
    };
    let device_id = device_id.or_else(|| asset.device_id.clone());
    data.insert_report(Report {
        id: id.clone(),
        asset_id,
        device_id,
        state,
        state_text,
        created: now(),
        extra: obj,
    });
    drop(data);
    let mut resp = (StatusCode::CREATED, ok(json!({ "serviceReportId": id }))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/service-reports/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /service-visits`: by start; `fromUtc`/`toUtc` at most 366 days apart.
pub(crate) async fn visits(State(s): SharedState, params: Params) -> Res {
    let window = optional_window(&params, Some(MAX_SERVICE_DAYS))?;
    let data = lock(&s.data);
    time_page(
        &data.visits,
        &params,
        "v",
        window,
        |_| true,
        |v| v.to_json(),
    )
}

/// `GET /appointments`: by start; `fromUtc`/`toUtc` at most 366 days apart, `userId`.
pub(crate) async fn appointments(State(s): SharedState, params: Params) -> Res {
    let window = optional_window(&params, Some(MAX_SERVICE_DAYS))?;
    let user_id = input::uuid(&params, "userId")?;
    let data = lock(&s.data);
    time_page(
        &data.appointments,
        &params,
        "ap",
        window,
        |a| user_id.as_ref().is_none_or(|u| &a.user_id == u),
        |a| a.to_json(),
    )
}

/// A page of an id-ordered map after the cursor, of the items that pass `keep`.
fn id_page<T>(
    map: &std::collections::BTreeMap<String, T>,
    params: &Params,
    kind: &str,
    keep: impl Fn(&T) -> bool,
    to_json: impl Fn(&T) -> Value,
) -> Res {
    let size = page_size(params)?;
    let start = cursor(params, kind)?.map_or(Bound::Unbounded, Bound::Excluded);
    let matching = map
        .range::<String, _>((start, Bound::Unbounded))
        .filter(|(_, v)| keep(v));
    let (items, next) = take_page(matching, size, |(id, _)| make_cursor(kind, id));
    Ok(page(
        items.into_iter().map(|(_, v)| to_json(v)).collect(),
        next,
    ))
}

/// `GET /customers`: by id; `externalSystem`.
pub(crate) async fn customers(State(s): SharedState, params: Params) -> Res {
    let system = params.one("externalSystem")?.map(str::to_owned);
    let data = lock(&s.data);
    id_page(
        &data.customers,
        &params,
        "cu",
        |c| system.as_ref().is_none_or(|x| &c.external_system == x),
        |c| c.to_json(),
    )
}

/// `GET /vendors`: by id.
pub(crate) async fn vendors(State(s): SharedState, params: Params) -> Res {
    let data = lock(&s.data);
    id_page(&data.vendors, &params, "ve", |_| true, |v| v.to_json())
}

/// `GET /inventory/parts`: by id; `vendorId`, `status`.
pub(crate) async fn parts(State(s): SharedState, params: Params) -> Res {
    let vendor_id = input::uuid(&params, "vendorId")?;
    let active = input::active_filter(&params)?;
    let data = lock(&s.data);
    id_page(
        &data.parts,
        &params,
        "pa",
        |p| {
            vendor_id.as_ref().is_none_or(|v| &p.vendor_id == v)
                && active.is_none_or(|a| p.is_active == a)
        },
        |p| p.to_json(),
    )
}
