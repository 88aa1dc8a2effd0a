//! Reading requests: timestamps, time windows, page sizes, cursors, numbers and UUIDs, each
//! refused with Sepolo's 400 `validation` when malformed.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use super::ApiErr;
use crate::{Params, tagged_cursor};

/// The default `pageSize`.
pub(crate) const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest `pageSize`.
pub(crate) const MAX_PAGE_SIZE: usize = 500;

/// Parses a timestamp the way an ASP.NET `DateTime` query binding does for the forms an
/// integration sends: RFC 3339 (`2026-06-30T23:59:59Z`, with an offset, or with a `+` that
/// arrived unencoded and so decoded to a space), a date and time without a zone, or a bare date
/// (both read as UTC). Years outside 1 to 9999 (.NET's `DateTime` range) are refused, which also
/// keeps every later date arithmetic far from chrono's limits.
pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    parse_any(s).filter(|t| (1..=9999).contains(&t.year()))
}

fn parse_any(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replace(' ', "+")) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// An optional timestamp parameter.
pub(crate) fn ts(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiErr> {
    match params.one(name)? {
        None => Ok(None),
        Some(v) => parse_ts(v).map(Some).ok_or_else(|| {
            ApiErr::validation(format!(
                "The value '{v}' is not a valid date-time for {name}."
            ))
        }),
    }
}

/// The first of `names` that is present, as a timestamp (`from`, then its alias `fromUtc`).
fn first_ts(params: &Params, names: &[&str]) -> Result<Option<DateTime<Utc>>, ApiErr> {
    for name in names {
        if let Some(t) = ts(params, name)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Refuses `from >= to` and, with a cap, a window longer than `max_days`.
fn check_window(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    names: (&str, &str),
    max_days: Option<i64>,
) -> Result<(), ApiErr> {
    if from >= to {
        return Err(ApiErr::validation(format!(
            "{} must be earlier than {}.",
            names.0, names.1
        )));
    }
    if let Some(days) = max_days {
        if to - from > TimeDelta::days(days) {
            return Err(ApiErr::validation(format!(
                "The window from {} to {} must not exceed {days} days.",
                names.0, names.1
            )));
        }
    }
    Ok(())
}

/// A required `[from, to)` window (`from`/`to`, or their aliases `fromUtc`/`toUtc`), at most
/// `max_days` long when capped.
pub(crate) fn required_window(
    params: &Params,
    max_days: Option<i64>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiErr> {
    let from = first_ts(params, &["from", "fromUtc"])?
        .ok_or_else(|| ApiErr::validation("The from (or fromUtc) parameter is required."))?;
    let to = first_ts(params, &["to", "toUtc"])?
        .ok_or_else(|| ApiErr::validation("The to (or toUtc) parameter is required."))?;
    check_window(from, to, ("from", "to"), max_days)?;
    Ok((from, to))
}

/// A time window whose sides may be absent (unbounded).
pub(crate) type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// An optional `fromUtc`/`toUtc` window: each side may be absent (unbounded). With both sides
/// given, `fromUtc` must be before `toUtc` and, when capped, at most `max_days` before it.
pub(crate) fn optional_window(params: &Params, max_days: Option<i64>) -> Result<Window, ApiErr> {
    let from = ts(params, "fromUtc")?;
    let to = ts(params, "toUtc")?;
    if let (Some(f), Some(t)) = (from, to) {
        check_window(f, t, ("fromUtc", "toUtc"), max_days)?;
    }
    Ok((from, to))
}

/// Whether `t` lies in the half-open window `[from, to)` (an absent side is unbounded).
pub(crate) fn within(
    t: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> bool {
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

/// `pageSize`: 100 when absent, else 1 to 500.
pub(crate) fn page_size(params: &Params) -> Result<usize, ApiErr> {
    Ok(params.limit("pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?)
}

/// The position in the `cursor` parameter, for a list whose cursors are tagged `kind`.
pub(crate) fn cursor(params: &Params, kind: &str) -> Result<Option<String>, ApiErr> {
    Ok(params.tagged_cursor("cursor", kind)?)
}

/// A cursor of a list of `kind` at `position`.
pub(crate) fn make_cursor(kind: &str, position: &str) -> String {
    tagged_cursor(kind, position)
}

/// A position `<millis>:<id>` of a list ordered by time then id.
pub(crate) fn time_id_position(position: &str) -> Result<(i64, String), ApiErr> {
    position
        .split_once(':')
        .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
        .ok_or_else(bad_cursor)
}

/// A position that is one integer.
pub(crate) fn int_position(position: &str) -> Result<i64, ApiErr> {
    position.parse::<i64>().map_err(|_| bad_cursor())
}

/// 400 for a cursor that decodes but does not hold a position of its list.
pub(crate) fn bad_cursor() -> ApiErr {
    ApiErr::validation("The cursor is not valid for this list.")
}

/// An optional integer parameter.
pub(crate) fn int(params: &Params, name: &str) -> Result<Option<i64>, ApiErr> {
    match params.one(name)? {
        None => Ok(None),
        Some(v) => {
            v.trim().parse::<i64>().map(Some).map_err(|_| {
                ApiErr::validation(format!("The value '{v}' is not valid for {name}."))
            })
        }
    }
}

/// Whether `s` is a UUID in its 8-4-4-4-12 hex form.
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An optional UUID parameter, lower-cased; anything else is 400.
pub(crate) fn uuid(params: &Params, name: &str) -> Result<Option<String>, ApiErr> {
    match params.one(name)? {
        None => Ok(None),
        Some(v) if is_uuid(v.trim()) => Ok(Some(v.trim().to_ascii_lowercase())),
        Some(v) => Err(ApiErr::validation(format!(
            "The value '{v}' is not valid for {name}."
        ))),
    }
}

/// The `status` filter of assets and parts: `active`, `inactive` or `all` (the default), as
/// "must the item be active": `Some(true)`, `Some(false)` or `None`.
pub(crate) fn active_filter(params: &Params) -> Result<Option<bool>, ApiErr> {
    match params
        .one("status")?
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("all") => Ok(None),
        Some("active") => Ok(Some(true)),
        Some("inactive") => Ok(Some(false)),
        Some(_) => Err(ApiErr::validation(
            "The status parameter must be active, inactive or all.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_forms_integrations_send() {
        let stamp = |s: &str| parse_ts(s).map(|t| t.to_rfc3339());
        assert_eq!(
            stamp("2026-06-30T23:59:59Z").as_deref(),
            Some("2026-06-30T23:59:59+00:00")
        );
        assert_eq!(
            stamp("2026-06-30T23:59:59 02:00").as_deref(),
            Some("2026-06-30T21:59:59+00:00")
        );
        assert_eq!(
            stamp("2026-06-30T23:59:59").as_deref(),
            Some("2026-06-30T23:59:59+00:00")
        );
        assert_eq!(
            stamp("2026-06-30").as_deref(),
            Some("2026-06-30T00:00:00+00:00")
        );
        assert_eq!(stamp("yesterday"), None);
        assert_eq!(stamp("-262143-01-01"), None);
        assert_eq!(stamp("+12026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn windows_are_checked() {
        let p = |q: &str| Params::parse(Some(q)).unwrap_or_default();
        assert!(required_window(&p("from=2026-01-01T00:00:00Z"), Some(31)).is_err());
        assert!(
            required_window(
                &p("fromUtc=2026-01-01T00:00:00Z&toUtc=2026-02-01T00:00:00Z"),
                Some(31)
            )
            .is_ok()
        );
        assert!(
            required_window(
                &p("from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z"),
                Some(31)
            )
            .is_err()
        );
        assert!(
            required_window(
                &p("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"),
                None
            )
            .is_err()
        );
        assert!(optional_window(&p("fromUtc=2025-01-01T00:00:00Z"), Some(366)).is_ok());
        assert!(
            optional_window(
                &p("fromUtc=2025-01-01T00:00:00Z&toUtc=2026-01-03T00:00:00Z"),
                Some(366)
            )
            .is_err()
        );
    }

    #[test]
    fn uuids_and_status() {
        assert!(is_uuid("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e63"));
        assert!(!is_uuid("a33b"));
        assert!(!is_uuid("a33b5a5d-e55a-423d-9bdf-0bc2c61f7e6g"));
        let p = Params::parse(Some("status=Inactive")).unwrap_or_default();
        assert_eq!(active_filter(&p).ok(), Some(Some(false)));
        let p = Params::parse(Some("status=retired")).unwrap_or_default();
        assert!(active_filter(&p).is_err());
    }
}
