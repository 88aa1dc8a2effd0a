//! `/assets`: list, get, children.

use std::ops::Bound;

use axum::extract::{Path, State};
use chrono::{DateTime, Utc};

use super::data::Asset;
use super::input::{self, cursor, make_cursor, page_size};
use super::{ApiErr, Res, SharedState, ok, page, take_page};
use crate::{Params, lock};

/// The list filters, AND-combined.
struct Filter {
    updated_since: Option<DateTime<Utc>>,
    group_id: Option<i64>,
    customer_id: Option<String>,
    active: Option<bool>,
}

impl Filter {
    fn parse(params: &Params) -> Result<Filter, ApiErr> {
        Ok(Filter {
            updated_since: input::ts(params, "updatedSince")?,
            group_id: input::int(params, "groupId")?,
            customer_id: params.one("customerId")?.map(str::to_owned),
            active: input::active_filter(params)?,
        })
    }

    fn matches(&self, a: &Asset) -> bool {
        self.updated_since.is_none_or(|t| a.updated > t)
            && self.group_id.is_none_or(|g| a.group_id == g)
            && self
                .customer_id
                .as_ref()
                .is_none_or(|c| a.customer_id.as_ref() == Some(c))
            && self.active.is_none_or(|act| a.is_active == act)
    }
}

/// A page of assets ordered by id, after the cursor, that pass `keep`.
fn asset_page(
    s: &super::Shared,
    params: &Params,
    kind: &str,
    keep: impl Fn(&Asset) -> bool,
) -> Res {
    let size = page_size(params)?;
    let after = cursor(params, kind)?;
    let data = lock(&s.data);
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let matching = data
        .assets
        .range::<String, _>((start, Bound::Unbounded))
        .map(|(_, a)| a)
        .filter(|a| keep(a));
    let (items, next) = take_page(matching, size, |a| make_cursor(kind, &a.id));
    Ok(page(items.iter().map(|a| a.to_json()).collect(), next))
}

/// `GET /assets`: filtered, ordered by id, cursor-paged.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let filter = Filter::parse(&params)?;
    asset_page(&s, &params, "a", |a| filter.matches(a))
}

/// `GET /assets/{assetId}`.
pub(crate) async fn get(State(s): SharedState, Path(id): Path<String>) -> Res {
    let data = lock(&s.data);
    let asset = data
        .assets
        .get(&id)
        .ok_or_else(|| ApiErr::not_found("asset", &id))?;
    Ok(ok(asset.to_json()))
}

/// `GET /assets/{assetId}/children`: the assets whose parent it is.
pub(crate) async fn children(State(s): SharedState, Path(id): Path<String>, params: Params) -> Res {
    if !lock(&s.data).assets.contains_key(&id) {
        return Err(ApiErr::not_found("asset", &id));
    }
    asset_page(&s, &params, "c", |a| a.parent_id.as_ref() == Some(&id))
}
