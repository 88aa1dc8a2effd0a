//! Error bodies into `ApiError`s, success bodies into values.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::{Response, ResponseMeta};
use crate::auth::Redactor;
use crate::error::{ApiError, DecodeError, ErrorCode, RequestInfo, Result, snippet};
use crate::vendor::{ErrorBody, Profile};

/// The longest server text (a field path, serde's message, a body) shown in an error.
const SNIPPET_LEN: usize = 240;

/// The longest vendor message kept in an [`ApiError`]; a longer one is cut.
const MAX_MESSAGE_LEN: usize = 2048;

/// Turns an error response into an [`ApiError`]. Everything taken from the response (code,
/// message, details, request id, body snippet, redirect target) is redacted of the request's
/// credentials first, and cut to length only after that.
pub(super) fn api_error(
    vendor: &Profile,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    meta: ResponseMeta,
    redactor: &Redactor,
) -> ApiError {
    let parsed = parse_error_body(body, vendor);
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let status_code = || ErrorCode::from_status(status.as_u16());
    let (vendor_code, message, details, body_request_id, body_snippet) = match parsed {
        Some(p) => (
            p.code.and_then(|c| redactor.untrusted_id(&c)),
            p.message
                .map(|m| snippet(&redactor.text(&m), MAX_MESSAGE_LEN))
                .unwrap_or(reason),
            p.details.map(|d| redactor.value(d)),
            p.request_id.and_then(|id| redactor.untrusted_id(&id)),
            None,
        ),
        None => {
            let snip = body_snippet(body, redactor);
            let message = if status.is_redirection() {
                let to = headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| Url::parse(l).ok())
                    .map(|u| redactor.text(&u.origin().ascii_serialization()))
                    .unwrap_or_else(|| "another location".to_owned());
                format!(
                    "redirect to {to} not followed: credentials are never sent to another origin"
                )
            } else {
                reason
            };
            (None, message, None, None, snip)
        }
    };
    ApiError {
        status: status.as_u16(),
        code: vendor_code
            .as_deref()
            .map_or_else(status_code, vendor.error_code),
        vendor_code,
        message,
        details,
        request_id: meta.request_id.or(body_request_id),
        retry_after: meta.rate_limit.retry_after,
        rate_limit: meta.rate_limit,
        request: meta.request.unwrap_or_else(|| RequestInfo::new("?", "?")),
        body_snippet,
        attempts: meta.attempts,
    }
}

/// The start of a body as text for an error, redacted *before* it is cut, so that a credential
/// crossing the cut cannot survive in part. `None` for an empty body.
fn body_snippet(body: &[u8], redactor: &Redactor) -> Option<String> {
    // Only the start is shown; what lies far beyond the cut cannot reach the snippet.
    const SCAN: usize = 64 * 1024;
    let head = body.get(..body.len().min(SCAN)).unwrap_or(body);
    let text = redactor.text(&String::from_utf8_lossy(head));
    let snip = snippet(&text, SNIPPET_LEN);
    (!snip.is_empty()).then_some(snip)
}

/// The error body, read by the vendor's description; `None` when the body is not a JSON object
/// of the vendor's shape nor of a gateway's (`{message, code}`).
fn parse_error_body(body: &[u8], vendor: &Profile) -> Option<ErrorBody> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    (vendor.error_body)(obj).or_else(|| ErrorBody::gateway(obj))
}

/// `serde_json::from_slice`, with the same result, but a UTF-8 body is checked in one pass and
/// decoded as text (see [`decode_body`]).
fn decode_fast<T: DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<T>(text),
        Err(_) => serde_json::from_slice::<T>(body),
    }
}

/// Decodes a success body; an empty body decodes as JSON `null` (so `()` and `Option` work).
pub(super) fn decode_body<T: DeserializeOwned>(resp: &Response, sensitive: bool) -> Result<T> {
    let body: &[u8] = if resp.body.iter().all(u8::is_ascii_whitespace) {
        b"null"
    } else {
        &resp.body
    };
    // Fast path: plain serde_json. Only when that fails is the body decoded again with
    // serde_path_to_error, which tracks the field path at a cost on every value. A body that is
    // UTF-8 (as JSON must be) is checked so once, in one pass over it, and decoded as text:
    // serde_json then does not check every string and key again, one short run at a time.
    if let Ok(v) = decode_fast::<T>(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = serde_path_to_error::deserialize::<_, T>(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
        .and_then(|v| {
            de.end()
                .map(|()| v)
                .map_err(|e| (".".to_owned(), e.to_string()))
        });
    let redactor = &resp.redactor;
    result.map_err(|(field_path, message)| {
        DecodeError {
            status: resp.meta.status,
            request_id: resp.meta.request_id.clone(),
            request: resp
                .meta
                .request
                .clone()
                .unwrap_or_else(|| RequestInfo::new("?", "?")),
            // A path can name a map key and serde's message can quote a value: both are server text.
            field_path: snippet(&redactor.text(&field_path), SNIPPET_LEN),
            message: snippet(&redactor.text(&message), SNIPPET_LEN),
            body_snippet: if sensitive {
                None
            } else {
                body_snippet(&resp.body, redactor)
            },
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TestVendor;

    fn parse(body: &[u8]) -> Option<ErrorBody> {
        parse_error_body(body, &Profile::of::<TestVendor>())
    }

    #[test]
    fn oauth_error_bodies_keep_the_code_and_the_description() {
        let p = parse(
            br#"{"error":"invalid_grant","error_description":"The refresh token has expired."}"#,
        )
        .unwrap();
        assert_eq!(p.code.as_deref(), Some("invalid_grant"));
        assert_eq!(p.message.as_deref(), Some("The refresh token has expired."));
        assert!(p.details.is_none() && p.request_id.is_none());
        assert_eq!(
            ErrorCode::parse(p.code.as_deref().unwrap()),
            ErrorCode::Other("invalid_grant".into())
        );

        // Sepolo's `message` still wins; SiliconWit's lone `error` is still the message.
        let p = parse(br#"{"error":"forbidden","message":"m","error_description":"d"}"#).unwrap();
        assert_eq!(p.message.as_deref(), Some("m"));
        let p = parse(br#"{"error":"Device not found"}"#).unwrap();
        assert_eq!(p.code, None);
        assert_eq!(p.message.as_deref(), Some("Device not found"));
    }

    proptest::proptest! {
        /// Decoding a body as text when it is UTF-8 gives what decoding its bytes gives: on
        /// arbitrary bytes, and on JSON objects whose strings hold any text (or a bad byte).
        #[test]
        fn decoding_as_text_is_decoding_bytes(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            key in "\\PC{0,8}",
            value in "\\PC{0,16}",
            bad in proptest::option::of(0x80u8..=0xff),
        ) {
            let same = |b: &[u8]| {
                let fast = decode_fast::<Value>(b).map_err(|e| e.to_string());
                let slow = serde_json::from_slice::<Value>(b).map_err(|e| e.to_string());
                (fast.ok(), slow.ok())
            };
            let (fast, slow) = same(&bytes);
            proptest::prop_assert_eq!(fast, slow);
            let mut body = serde_json::to_vec(&serde_json::json!({ key: [value, 1.5, null] }))
                .expect("a JSON value serializes");
            if let Some(b) = bad {
                body.insert(2, b);
            }
            let (fast, slow) = same(&body);
            proptest::prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn a_gateway_body_is_read_whatever_the_vendor() {
        let p = parse(br#"{"message":"Internal server error","code":"E1"}"#).unwrap();
        assert_eq!(p.message.as_deref(), Some("Internal server error"));
        assert_eq!(p.code.as_deref(), Some("E1"));
        assert_eq!(parse(br#"{"detail":"x"}"#), None);
        assert_eq!(parse(b"<html>"), None);
        assert_eq!(parse(b"[1]"), None);
    }
}
