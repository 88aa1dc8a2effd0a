//! Property tests of every parser of server input: the rate-limit headers, `Retry-After`, `Date`,
//! and the error bodies of the three vendors (and OAuth2) from arbitrary JSON and arbitrary bytes.
//! No input panics, and each parser keeps its documented meaning on the inputs it accepts.
//!
//! 64 cases per property by default so `cargo test` stays fast; `PROPTEST_CASES=N` runs more.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::{
    Just, Strategy, any, prop, prop_assert, prop_assert_eq, prop_oneof, proptest,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;
use crate::error::{Error, ErrorCode};
use crate::rate_limit::{RateLimit, parse_retry_after};

/// Header text a server could send: numbers at and past every edge, dates, and printable junk.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (0u64..1_000_000_000).prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("1e308".to_owned()),
        Just("-0".to_owned()),
        Just(" 42 ".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        any::<u32>()
            .prop_map(|s| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::from(s)))),
        "[ -~]{0,40}",
    ]
}

/// A clock anywhere from 1970 to far past 2100.
fn clock() -> impl Strategy<Value = SystemTime> {
    (0u64..=8_000_000_000).prop_map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

const RATE_HEADERS: [&str; 7] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-daily-limit",
    "x-ratelimit-daily-remaining",
    "retry-after",
    "date",
];

fn headers(values: &[Option<String>]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in RATE_HEADERS.iter().zip(values) {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    h
}

fn as_u64(v: &Option<String>) -> Option<u64> {
    v.as_deref()?.trim().parse().ok()
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Every rate-limit field is the header's `u64` or `None`; a small reset is a delay from the
    /// server's clock, a large one an epoch time; nothing panics for any value or any clock.
    #[test]
    fn rate_limit_headers(values in prop::collection::vec(prop::option::of(header_text()), RATE_HEADERS.len()), received in clock()) {
        let h = headers(&values);
        let rl = RateLimit::from_headers(&h, received);
        prop_assert_eq!(rl.limit, as_u64(&values[0]));
        prop_assert_eq!(rl.remaining, as_u64(&values[1]));
        prop_assert_eq!(rl.daily_limit, as_u64(&values[3]));
        prop_assert_eq!(rl.daily_remaining, as_u64(&values[4]));
        match as_u64(&values[2]) {
            Some(v) if v < 1_000_000_000 => prop_assert_eq!(rl.reset_after, Some(Duration::from_secs(v))),
            Some(_) => {}
            None => {
                prop_assert_eq!(rl.reset_after, None);
                prop_assert_eq!(rl.reset_at, None);
            }
        }
        prop_assert_eq!(rl.is_exhausted(), rl.remaining == Some(0) || rl.daily_remaining == Some(0));
        if values.iter().all(Option::is_none) {
            prop_assert!(rl.is_empty());
        }
    }

    /// An epoch reset in the future is that many seconds after the server's `Date`; one in the past
    /// is a zero delay.
    #[test]
    fn epoch_reset_is_measured_from_the_servers_date(date in 1_000_000_000u64..4_000_000_000, ahead in -100_000i64..100_000) {
        let reset = date.saturating_add_signed(ahead).max(1_000_000_000);
        let h = headers(&[None, None, Some(reset.to_string()), None, None, None,
            Some(httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(date)))]);
        let rl = RateLimit::from_headers(&h, SystemTime::now());
        prop_assert_eq!(rl.reset_after, Some(Duration::from_secs(reset.saturating_sub(date))));
        prop_assert_eq!(rl.reset_at.map(|t| t.timestamp()), i64::try_from(reset).ok());
    }

    /// `Retry-After` as delta-seconds is exactly that many seconds (saturating past `u64`).
    #[test]
    fn retry_after_seconds(secs in any::<u64>(), pad in "[ ]{0,2}", now in clock()) {
        let v = format!("{pad}{secs}{pad}");
        prop_assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(secs)));
    }

    /// `Retry-After` as an HTTP-date is the time from `now` to it, zero when it is past.
    #[test]
    fn retry_after_date(at in 0u64..=253_402_300_799, now in clock()) {
        let v = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(at));
        let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        prop_assert_eq!(parse_retry_after(&v, now), Some(Duration::from_secs(at.saturating_sub(now_secs))));
    }

    /// Any other text: no panic; a negative number is never a delay.
    #[test]
    fn retry_after_any_text(v in prop_oneof![header_text(), any::<String>()], now in clock()) {
        let got = parse_retry_after(&v, now);
        if v.trim().starts_with('-') {
            prop_assert_eq!(got, None);
        }
    }

    /// `Date` is the clock used for delays: any header text parses to a time or to nothing.
    #[test]
    fn server_date(v in prop_oneof![header_text(), any::<String>()]) {
        let mut h = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&v) {
            h.insert(reqwest::header::DATE, value);
        }
        let parsed = h.get(reqwest::header::DATE).and_then(crate::rate_limit::http_date);
        if let Ok(t) = httpdate::parse_http_date(v.trim()) {
            prop_assert_eq!(parsed, Some(t));
        }
    }
}

/// Arbitrary JSON, nested up to a few levels: objects with the error bodies' own keys appear often.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just("error".to_owned()),
        Just("code".to_owned()),
        Just("message".to_owned()),
        Just("details".to_owned()),
        Just("request_id".to_owned()),
        Just("error_description".to_owned()),
        Just("meta".to_owned()),
        Just("requestId".to_owned()),
        Just("a/b~c".to_owned()),
        any::<String>(),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What the transport makes of one error answer.
fn error_for(
    rt: &tokio::runtime::Runtime,
    server: &MockServer,
    t: &Transport,
    status: u16,
    body: Vec<u8>,
) -> Error {
    rt.block_on(async {
        server.reset().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
            .mount(server)
            .await;
        match t.send_json::<Value>(&get(&["r"])).await {
            Ok((v, _)) => panic!("a {status} answer decoded as success: {v}"),
            Err(e) => e,
        }
    })
}

/// One runtime, one server and one client for every case of an error-body property.
fn error_rig() -> (tokio::runtime::Runtime, MockServer, Transport) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let t = {
        let _g = rt.enter();
        let mut b = builder(&server);
        b.retry_policy(RetryPolicy::none());
        b.build().unwrap()
    };
    (rt, server, t)
}

fn error_status() -> impl Strategy<Value = u16> {
    prop_oneof![400u16..=451, 500u16..=511]
}

/// The code the SDK shows for a code string the server sent: printable only, at most 128
/// characters, the status's own code when nothing printable is left.
fn shown_code(raw: &str, status: u16) -> ErrorCode {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    match cleaned.trim() {
        "" => ErrorCode::from_status(status),
        c => ErrorCode::parse(c),
    }
}

#[test]
fn error_bodies_from_arbitrary_bytes() {
    let (rt, server, t) = error_rig();
    proptest!(proptest_config(), |(status in error_status(), body in prop::collection::vec(any::<u8>(), 0..2048))| {
        let err = error_for(&rt, &server, &t, status, body);
        let api = err.api().expect("an error status is an API error whatever its body");
        prop_assert_eq!(api.status(), status);
        prop_assert!(api.message().len() <= 2048 + 3);
        let _ = (err.to_string(), format!("{err:?}"));
    });
}

#[test]
fn error_bodies_from_arbitrary_json() {
    let (rt, server, t) = error_rig();
    proptest!(proptest_config(), |(status in error_status(), body in json_value())| {
        let err = error_for(&rt, &server, &t, status, serde_json::to_vec(&body).unwrap());
        let api = err.api().expect("an error status is an API error whatever its body");
        prop_assert_eq!(api.status(), status);
        if let Some(id) = api.request_id() {
            prop_assert!(id.len() <= 128 && !id.chars().any(char::is_control), "{id:?}");
        }
        let _ = (err.to_string(), format!("{err:?}"));
    });
}

/// The documented shapes keep their fields: SGT `{error:{code,message,details,request_id}}`,
/// Sepolo `{error, message}`, SiliconWit `{error}` and OAuth2 `{error, error_description}`.
#[test]
fn vendor_error_shapes_keep_their_fields() {
    let (rt, server, t) = error_rig();
    let text = "[ -~]{1,64}|\\PC{1,32}";
    proptest!(proptest_config(), |(status in error_status(), code in text, message in text, id in "[A-Za-z0-9_-]{1,40}", shape in 0..4u8)| {
        let body = match shape {
            0 => json!({"error": {"code": code, "message": message, "details": {"field": code}, "request_id": id}}),
            1 => json!({"error": code, "message": message}),
            2 => json!({"error": message}),
            _ => json!({"error": code, "error_description": message}),
        };
        let err = error_for(&rt, &server, &t, status, serde_json::to_vec(&body).unwrap());
        let api = err.api().expect("an API error");
        prop_assert_eq!(api.message(), message.trim());
        match shape {
            2 => prop_assert_eq!(api.code(), &ErrorCode::from_status(status)),
            _ => prop_assert_eq!(api.code(), &shown_code(&code, status)),
        }
        if shape == 0 {
            prop_assert_eq!(api.request_id(), Some(id.as_str()));
            prop_assert_eq!(api.details(), Some(&json!({"field": code})));
        }
    });
}

fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("/meta/request_id".to_owned()),
        Just("/error/request_id".to_owned()),
        Just("/request_id".to_owned()),
        Just("/requestId".to_owned()),
        Just("/a~1b~0c".to_owned()),
        Just("/0".to_owned()),
        Just("/1/0".to_owned()),
        Just("/00".to_owned()),
        "(/[a-z_~01]{0,8}){1,4}",
    ]
}

proptest! {
    #![proptest_config(proptest_config())]

    /// The one-pass reader finds exactly what `Value::pointer` finds, in any JSON, at any
    /// pointer (duplicate keys, arrays, escapes, strings at the root included).
    #[test]
    fn string_at_is_value_pointer(v in json_value(), p in pointer()) {
        let body = serde_json::to_vec(&v).unwrap();
        let expected = v.pointer(&p).and_then(Value::as_str).map(str::to_owned);
        prop_assert_eq!(crate::transport::string_at(&body, &p), expected);
    }

    /// A request id in an envelope is found whatever the rest of the body holds; bytes that are
    /// not JSON give none and never panic.
    #[test]
    fn string_at_finds_the_request_id_among_anything(data in json_value(), id in "\\PC{0,40}", junk in prop::collection::vec(any::<u8>(), 0..256)) {
        let body = serde_json::to_vec(&json!({"data": data, "meta": {"request_id": id}})).unwrap();
        prop_assert_eq!(crate::transport::string_at(&body, "/meta/request_id"), Some(id));
        let _ = crate::transport::string_at(&junk, "/meta/request_id");
    }
}

/// Response headers as a server could send them: credential headers, ordinary ones, repeats,
/// and values that may hold (a prefix of) the key.
fn response_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("authorization".to_owned()),
        Just("proxy-authorization".to_owned()),
        Just("x-sepolo-api-key".to_owned()),
        Just("set-cookie".to_owned()),
        Just("x-request-id".to_owned()),
        Just("content-type".to_owned()),
        Just("x-echo".to_owned()),
        "x-[a-z]{1,8}",
    ];
    let value = prop_oneof![
        "[ -~]{0,24}",
        Just("sgt_live_TOPSECRET".to_owned()),
        "[a-z]{0,4}".prop_map(|p| format!("{p}sgt_live_TOPSECRET{p}")),
        Just("sgt_live_TOP".to_owned()),
    ];
    prop::collection::vec((name, value), 0..10)
}

proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// `strip_credentials` (with its one-pass shortcut) leaves exactly what the plain rule
    /// does: every header, all of its values, whose name is a credential header or one of
    /// whose values holds the key, removed; the rest kept.
    #[test]
    fn stripped_headers_are_the_plain_rules(pairs in response_headers()) {
        let key = crate::auth::ApiKey::new("sgt_live_TOPSECRET");
        let redactor = crate::auth::Redactor::new([&key]);
        let mut headers = HeaderMap::new();
        for (n, v) in &pairs {
            headers.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let credential = ["authorization", "proxy-authorization", "x-sepolo-api-key", "set-cookie"];
        let leaking: Vec<&str> = pairs
            .iter()
            .filter(|(n, v)| credential.contains(&n.as_str()) || redactor.finds_in(v.as_bytes()))
            .map(|(n, _)| n.as_str())
            .collect();
        let expected: Vec<(String, String)> = pairs
            .iter()
            .filter(|(n, _)| !leaking.contains(&n.as_str()))
            .cloned()
            .collect();
        crate::intercept::strip_credentials(&mut headers, &redactor);
        let mut got: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        // A HeaderMap groups the values of one name: compare as multisets.
        let mut want = expected;
        got.sort();
        want.sort();
        prop_assert_eq!(got, want);
    }
}
