//! `/reports`: asynchronous report runs.

use std::ops::Bound;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use chrono::Duration as ChronoDuration;
use serde_json::{Value, json};

use super::data::{Report, ReportState, now};
use super::input::{self, cursor, make_cursor};
use super::{ApiErr, Reply, Res, SharedState};
use crate::{Params, lock};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
const FORMATS: [&str; 2] = ["pdf", "csv"];

/// `POST /reports`: `{type, parameters?, format?}` → 202, `queued`.
pub(crate) async fn create(State(s): SharedState, body: Bytes) -> Res {
    let obj = input::object(&body)?;
    let kind = input::req_string(&obj, "type")?;
    let format = input::opt_string(&obj, "format")?.unwrap_or_else(|| "pdf".to_owned());
    if !FORMATS.contains(&format.as_str()) {
        return Err(ApiErr::validation(
            "format",
            "Field 'format' must be pdf or csv.",
        ));
    }
    let parameters = match obj.get("parameters") {
        None | Some(Value::Null) => json!({}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(ApiErr::validation(
                "parameters",
                "Field 'parameters' must be an object.",
            ));
        }
    };
    let created_at = now();
    let delay = ChronoDuration::from_std(s.report_delay).unwrap_or(ChronoDuration::MAX);
    let report = Report {
        id: format!("rpt_{}", s.new_id()),
        kind,
        format,
        parameters,
        created_at,
        expected_completion_at: created_at.checked_add_signed(delay).unwrap_or(created_at),
        state: ReportState::Timed {
            ready_at: Instant::now()
                .checked_add(s.report_delay)
                .unwrap_or_else(Instant::now),
        },
    };
    let reply =
        Reply::accepted(report.to_json_queued()).location(format!("/v1/reports/{}", report.id));
    lock(&s.data).reports.insert(report.id.clone(), report);
    Ok(reply)
}

/// `GET /reports/{id}`: `running` until the report delay has passed, then `ready` with a URL.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let report = data
        .reports
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("report", "report_id", &id))?;
    Ok(Reply::ok(report.to_json(&s.tenant, Instant::now())))
}

/// `GET /reports?limit&cursor`: runs in id (creation) order.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = cursor(&params, "r")?;
    let at = Instant::now();
    let data = lock(&s.data);
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut runs = data
        .reports
        .range::<String, _>((start, Bound::Unbounded))
        .map(|(_, r)| r);
    let page: Vec<&Report> = runs.by_ref().take(limit).collect();
    let has_more = runs.next().is_some();
    let next = match page.last() {
        Some(last) if has_more => Some(make_cursor("r", &last.id)),
        _ => None,
    };
    Ok(Reply::page(
        page.iter().map(|r| r.to_json(&s.tenant, at)).collect(),
        limit,
        next,
    ))
}
