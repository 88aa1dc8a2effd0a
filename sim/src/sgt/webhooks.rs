//! `/webhooks`: list, register, update (with secret rotation), delete, test.

use std::ops::Bound;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::data::{Webhook, fmt_ts, now};
use super::input::{self, cursor, make_cursor};
use super::{ApiErr, Reply, Res, Shared, SharedState};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

fn not_found(id: &str) -> ApiErr {
    ApiErr::not_found("webhook", "webhook_id", id)
}

fn new_secret(s: &Shared) -> String {
    format!("whsec_{}", s.random_token(32))
}

/// An `https://` URL with a host, else 422.
fn check_url(url: &str) -> Result<(), ApiErr> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(ApiErr::validation(
            "url",
            "Field 'url' must be an absolute https:// URL.",
        )),
    }
}

/// A non-empty array of non-blank event names, else 422.
fn check_events(obj: &Map<String, Value>) -> Result<Option<Vec<String>>, ApiErr> {
    let events = input::opt_strings(obj, "events")?;
    if let Some(list) = &events {
        if list.is_empty() || list.iter().any(|e| e.trim().is_empty()) {
            return Err(ApiErr::validation(
                "events",
                "Field 'events' must list at least one event type.",
            ));
        }
    }
    Ok(events)
}

/// `GET /webhooks?limit&cursor`.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = cursor(&params, "w")?;
    let data = lock(&s.data);
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut hooks = data
        .webhooks
        .range::<String, _>((start, Bound::Unbounded))
        .map(|(_, w)| w);
    let page: Vec<&Webhook> = hooks.by_ref().take(limit).collect();
    let has_more = hooks.next().is_some();
    let next = match page.last() {
        Some(last) if has_more => Some(make_cursor("w", &last.id)),
        _ => None,
    };
    Ok(Reply::page(
        page.iter().map(|w| w.to_json()).collect(),
        limit,
        next,
    ))
}

/// `POST /webhooks`: `{url, events, active?}` → 201 with the `secret` (shown this once).
pub(crate) async fn create(State(s): SharedState, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    let url = input::req_string(&obj, "url")?;
    check_url(&url)?;
    let events = check_events(&obj)?
        .ok_or_else(|| ApiErr::validation("events", "Field 'events' is required."))?;
    let active = input::opt_bool(&obj, "active")?.unwrap_or(true);
    let mut webhook = Webhook {
        id: format!("wh_{}", s.new_id()),
        url,
        events,
        active,
        created_at: fmt_ts(&now()),
        secret: new_secret(&s),
        etag: String::new(),
        version: 0,
    };
    webhook.refresh_etag();
    let reply = Reply::created(webhook.to_json_with_secret())
        .etag(&webhook.etag)
        .location(format!("/v1/webhooks/{}", webhook.id));
    lock(&s.data).webhooks.insert(webhook.id.clone(), webhook);
    Ok(reply)
}

/// `PATCH /webhooks/{id}`: `url`, `events`, `active`, `rotate_secret: true` (the answer then
/// carries the new `secret`); `If-Match` must match, else 409.
pub(crate) async fn update(
    State(s): SharedState,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Res {
    let obj = input::object(&body)?;
    let url = input::opt_string(&obj, "url")?;
    if let Some(u) = &url {
        check_url(u)?;
    }
    let events = check_events(&obj)?;
    let active = input::opt_bool(&obj, "active")?;
    let rotate = input::opt_bool(&obj, "rotate_secret")?.unwrap_or(false);
    let secret = rotate.then(|| new_secret(&s));

    let mut data = lock(&s.data);
    let webhook = data.webhooks.get_mut(&id).ok_or_else(|| not_found(&id))?;
    if !input::if_match_ok(&headers, &webhook.etag) {
        return Err(ApiErr::stale(&webhook.etag));
    }
    if let Some(url) = url {
        webhook.url = url;
    }
    if let Some(events) = events {
        webhook.events = events;
    }
    if let Some(active) = active {
        webhook.active = active;
    }
    if let Some(secret) = secret {
        webhook.secret = secret;
    }
    webhook.version += 1;
    webhook.refresh_etag();
    let body = if rotate {
        webhook.to_json_with_secret()
    } else {
        webhook.to_json()
    };
    Ok(Reply::ok(body).etag(&webhook.etag))
}

/// `DELETE /webhooks/{id}` → 204; honours `If-Match`.
pub(crate) async fn delete(
    State(s): SharedState,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Res {
    let mut data = lock(&s.data);
    let webhook = data.webhooks.get(&id).ok_or_else(|| not_found(&id))?;
    if !input::if_match_ok(&headers, &webhook.etag) {
        return Err(ApiErr::stale(&webhook.etag));
    }
    data.webhooks.remove(&id);
    Ok(Reply::no_content())
}

/// `POST /webhooks/{id}/test`: `{webhook_id, delivered: true, response_status: 200, sent_at}`.
/// Nothing is actually sent.
pub(crate) async fn test(State(s): SharedState, Path(id): Path<String>) -> Res {
    if !lock(&s.data).webhooks.contains_key(&id) {
        return Err(not_found(&id));
    }
    Ok(Reply::ok(json!({
        "webhook_id": id,
        "delivered": true,
        "response_status": 200,
        "sent_at": fmt_ts(&now()),
    })))
}
