//! Reading requests: JSON bodies, typed body fields, timestamps, `If-Match`, cursors.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::ApiErr;
use crate::{Params, tagged_cursor};

/// A JSON object body. Empty, malformed or non-object bodies are 400 `invalid_request`.
pub(crate) fn object(body: &Bytes) -> Result<Map<String, Value>, ApiErr> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiErr::invalid(
            "A JSON object body is required.",
            json!({}),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiErr::invalid(
            "The request body must be a JSON object.",
            json!({}),
        )),
        Err(e) => Err(ApiErr::invalid(
            format!("Malformed JSON: {e}."),
            json!({ "line": e.line(), "column": e.column() }),
        )),
    }
}

/// An optional string field; another type is 422.
pub(crate) fn opt_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiErr::validation(
            field,
            format!("Field '{field}' must be a string."),
        )),
    }
}

/// A required, non-blank string field; missing, blank or another type is 422.
pub(crate) fn req_string(obj: &Map<String, Value>, field: &str) -> Result<String, ApiErr> {
    match opt_string(obj, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiErr::validation(
            field,
            format!("Field '{field}' is required and must not be empty."),
        )),
    }
}

/// An optional array of strings; another type is 422.
pub(crate) fn opt_strings(
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, ApiErr> {
    let invalid = || {
        ApiErr::validation(
            field,
            format!("Field '{field}' must be an array of strings."),
        )
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// An optional boolean; another type is 422.
pub(crate) fn opt_bool(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiErr> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiErr::validation(
            field,
            format!("Field '{field}' must be true or false."),
        )),
    }
}

/// Parses an RFC 3339 timestamp. A `+` offset that arrived unencoded in a query string (and so
/// decoded to a space) is accepted too.
pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_rfc3339(&s.replace(' ', "+")))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A query parameter holding an RFC 3339 timestamp; malformed is 400.
pub(crate) fn ts_param(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiErr> {
    match params.one(name)? {
        None => Ok(None),
        Some(v) => parse_ts(v).map(Some).ok_or_else(|| {
            ApiErr::invalid(
                format!("Parameter '{name}' must be an RFC 3339 timestamp."),
                json!({ "parameter": name }),
            )
        }),
    }
}

/// A required timestamp parameter.
pub(crate) fn required_ts(params: &Params, name: &str) -> Result<DateTime<Utc>, ApiErr> {
    params.required(name)?;
    ts_param(params, name)?.ok_or_else(|| {
        ApiErr::invalid(
            format!("Parameter '{name}' is required."),
            json!({ "parameter": name }),
        )
    })
}

/// Whether the request's `If-Match` allows a change to a resource whose ETag is `current`:
/// absent, `*`, or one of its (comma-separated) tags equal to `current`. Weak tags (`W/"…"`) and
/// unquoted tags are compared by their opaque part.
pub(crate) fn if_match_ok(headers: &HeaderMap, current: &str) -> bool {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let opaque = |tag: &str| {
        tag.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    };
    let current = opaque(current);
    value
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == current)
}

/// Decodes the `cursor` parameter of a list whose cursors start with `kind:`; anything else is
/// 400.
pub(crate) fn cursor(params: &Params, kind: &str) -> Result<Option<String>, ApiErr> {
    Ok(params.tagged_cursor("cursor", kind)?)
}

/// Encodes a position of a list of `kind`.
pub(crate) fn make_cursor(kind: &str, position: &str) -> String {
    tagged_cursor(kind, position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn if_match_variants() {
        let mut h = HeaderMap::new();
        assert!(if_match_ok(&h, "\"abc\""));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        assert!(if_match_ok(&h, "\"abc\""));
        assert!(!if_match_ok(&h, "\"abd\""));
        h.insert(
            header::IF_MATCH,
            HeaderValue::from_static("W/\"x\", \"abc\""),
        );
        assert!(if_match_ok(&h, "\"abc\""));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(if_match_ok(&h, "\"zzz\""));
    }

    #[test]
    fn timestamps_accept_a_decoded_plus() {
        assert!(parse_ts("2026-05-24T10:00:00Z").is_some());
        assert!(parse_ts("2026-05-24T10:00:00 00:00").is_some());
        assert!(parse_ts("yesterday").is_none());
    }
}
