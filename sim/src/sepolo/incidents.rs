//! `/incidents`: by creation time, with `fromUtc`/`toUtc`, `deviceId` and `state`.

use axum::extract::State;

use super::input::{self, optional_window};
use super::{Res, SharedState, time_page};
use crate::{Params, lock};

/// `GET /incidents`.
pub(crate) async fn list(State(s): SharedState, params: Params) -> Res {
    let window = optional_window(&params, None)?;
    let device_id = params.one("deviceId")?.map(str::to_owned);
    let state = input::int(&params, "state")?;
    let data = lock(&s.data);
    time_page(
        &data.incidents,
        &params,
        "i",
        window,
        |i| {
            device_id.as_ref().is_none_or(|d| &i.device_id == d)
                && state.is_none_or(|st| i.state == st)
        },
        |i| i.to_json(),
    )
}
