//! `/alerts`: list, get, trigger history.

use axum::extract::{Path, State};
use serde_json::json;

use super::devices::{offset_param, page};
use super::{ApiErr, Res, SharedState, ok};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;

fn alert_not_found() -> ApiErr {
    ApiErr::not_found("Alert not found")
}

/// `GET /alerts`: `limit` (1 to 100, default 50), `offset`; in creation order.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = offset_param(&params)?;
    let data = lock(&s.data);
    let items = data
        .alerts
        .iter()
        .skip(offset)
        .take(limit)
        .map(|a| a.to_json())
        .collect();
    page(items, data.alerts.len(), limit, offset)
}

/// `GET /alerts/{id}`.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let alert = data.alert(&id).ok_or_else(alert_not_found)?;
    Ok(ok(json!({ "data": alert.to_json() })))
}

/// `GET /alerts/{id}/history`: `limit` (1 to 100, default 50); newest first.
pub(crate) async fn history(State(s): SharedState, Path(id): Path<String>, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let data = lock(&s.data);
    let alert = data.alert(&id).ok_or_else(alert_not_found)?;
    Ok(ok(json!({ "data": alert.history(limit) })))
}
