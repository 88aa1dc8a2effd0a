//! `/devices`: list, count, register, get, update, soft-delete, commands.

use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::data::{DevKey, Device, fmt_ts, now};
use super::input::{self, cursor, make_cursor, ts_param};
use super::{ApiErr, Res, SharedState};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;
const STATUSES: [&str; 3] = ["online", "offline", "provisioning"];
const COMMANDS: [&str; 2] = ["reboot", "refresh_config"];

/// 404 `device_not_found`, with the spec's message and details.
pub(crate) fn not_found(id: &str, tenant: &str) -> ApiErr {
    ApiErr::new(
        StatusCode::NOT_FOUND,
        "device_not_found",
        format!("No device with id '{id}' exists in tenant '{tenant}'."),
        json!({ "device_id": id }),
    )
}

/// The list filters, AND-combined.
struct Filter {
    site: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    tags: Vec<String>,
    updated_since: Option<DateTime<Utc>>,
}

impl Filter {
    fn parse(params: &Params) -> Result<Filter, ApiErr> {
        let status = params.one("status")?.map(str::to_owned);
        if let Some(s) = &status {
            if !STATUSES.contains(&s.as_str()) {
                return Err(ApiErr::invalid(
                    format!("Parameter 'status' must be one of {}.", STATUSES.join(", ")),
                    json!({ "parameter": "status" }),
                ));
            }
        }
        Ok(Filter {
            site: params.one("site")?.map(str::to_owned),
            kind: params.one("type")?.map(str::to_owned),
            status,
            tags: params.all("tag").into_iter().map(str::to_owned).collect(),
            updated_since: ts_param(params, "updated_since")?,
        })
    }

    fn matches(&self, d: &Device) -> bool {
        !d.deleted
            && self
                .site
                .as_ref()
                .is_none_or(|s| d.site.as_ref() == Some(s))
            && self.kind.as_ref().is_none_or(|k| &d.kind == k)
            && self.status.as_ref().is_none_or(|s| &d.status == s)
            && self.tags.iter().all(|t| d.tags.contains(t))
            && self.updated_since.is_none_or(|since| d.updated_at > since)
    }
}

/// `GET /devices`: filtered, in natural id order, cursor-paged.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let filter = Filter::parse(&params)?;
    let after = cursor(&params, "d")?;
    let data = lock(&s.data);
    let start = match after {
        Some(id) => Bound::Excluded(DevKey(id)),
        None => Bound::Unbounded,
    };
    let mut matching = data
        .devices
        .range((start, Bound::Unbounded))
        .map(|(_, d)| d)
        .filter(|d| filter.matches(d));
    let page: Vec<&Device> = matching.by_ref().take(limit).collect();
    let has_more = matching.next().is_some();
    let next = match page.last() {
        Some(last) if has_more => Some(make_cursor("d", &last.id)),
        _ => None,
    };
    Ok(super::Reply::page(
        page.iter().map(|d| d.to_json()).collect(),
        limit,
        next,
    ))
}

/// `GET /devices/count`: `{count, approximate: true}`, with the list's filters.
pub(crate) async fn count(State(s): SharedState, params: Params) -> Res {
    let filter = Filter::parse(&params)?;
    let count = lock(&s.data)
        .devices
        .values()
        .filter(|d| filter.matches(d))
        .count();
    Ok(super::Reply::ok(
        json!({ "count": count, "approximate": true }),
    ))
}

/// `POST /devices`: `{name, type, site?, tags?}` → 201, status `provisioning`.
pub(crate) async fn create(State(s): SharedState, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    let name = input::req_string(&obj, "name")?;
    let kind = input::req_string(&obj, "type")?;
    let site = input::opt_string(&obj, "site")?;
    let tags = input::opt_strings(&obj, "tags")?.unwrap_or_default();
    let at = now();
    let mut data = lock(&s.data);
    let id = data.next_device_id();
    let mut device = Device {
        id: id.clone(),
        name,
        kind,
        site,
        status: "provisioning".to_owned(),
        tags,
        created_at: at,
        updated_at: at,
        etag: String::new(),
        deleted: false,
        generated: false,
        version: 0,
    };
    device.refresh_etag();
    let reply = super::Reply::created(device.to_json())
        .etag(&device.etag)
        .location(format!("/v1/devices/{id}"));
    data.devices.insert(DevKey(id), device);
    Ok(reply)
}

/// `GET /devices/{id}`: the device, and its `ETag` header.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let device = data.device(&id).ok_or_else(|| not_found(&id, &s.tenant))?;
    Ok(super::Reply::ok(device.to_json()).etag(&device.etag))
}

/// `PATCH /devices/{id}`: `name`, `tags`, `site`; `If-Match` must match, else 409.
pub(crate) async fn update(
    State(s): SharedState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let obj = input::object(&body)?;
    let name = input::opt_string(&obj, "name")?;
    if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiErr::validation(
            "name",
            "Field 'name' must not be empty.",
        ));
    }
    let tags = input::opt_strings(&obj, "tags")?;
    let site = input::opt_string(&obj, "site")?;
    let clear_site = matches!(obj.get("site"), Some(Value::Null));

    let mut data = lock(&s.data);
    let device = data
        .device_mut(&id)
        .ok_or_else(|| not_found(&id, &s.tenant))?;
    if !input::if_match_ok(&headers, &device.etag) {
        return Err(ApiErr::stale(&device.etag));
    }
    if let Some(name) = name {
        device.name = name;
    }
    if let Some(tags) = tags {
        device.tags = tags;
    }
    if site.is_some() || clear_site {
        device.site = site;
    }
    device.updated_at = now();
    device.version += 1;
    device.refresh_etag();
    Ok(super::Reply::ok(device.to_json()).etag(&device.etag))
}

/// `DELETE /devices/{id}`: soft delete (204); honours `If-Match`.
pub(crate) async fn delete(
    State(s): SharedState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Res {
    let mut data = lock(&s.data);
    let device = data
        .device_mut(&id)
        .ok_or_else(|| not_found(&id, &s.tenant))?;
    if !input::if_match_ok(&headers, &device.etag) {
        return Err(ApiErr::stale(&device.etag));
    }
    device.deleted = true;
    device.updated_at = now();
    Ok(super::Reply::no_content())
}

/// `POST /devices/{id}/commands`: `{"command": "reboot" | "refresh_config"}` → 202.
pub(crate) async fn command(State(s): SharedState, Path(id): Path<String>, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    if lock(&s.data).device(&id).is_none() {
        return Err(not_found(&id, &s.tenant));
    }
    let command = input::req_string(&obj, "command")?;
    if !COMMANDS.contains(&command.as_str()) {
        return Err(ApiErr::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!(
                "Unknown command '{command}'; expected one of {}.",
                COMMANDS.join(", ")
            ),
            json!({ "field": "command", "allowed": COMMANDS }),
        ));
    }
    Ok(super::Reply::accepted(json!({
        "device_id": id,
        "command": command,
        "status": "queued",
        "issued_at": fmt_ts(&now()),
    })))
}
