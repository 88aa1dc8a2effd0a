//! Promises about what a server sends back:
//! - a body over `max_response_bytes` is downloaded once, never again, and is not retryable;
//! - a `200` list answer without the envelope's documented fields (`{}`,
//!   `{"message": "maintenance"}`) is `Error::Decode` naming the field, never an empty last page;
//! - extreme numbers in headers and bodies never panic.

mod common;

use futures::TryStreamExt;
use iot_sdk::{Error, RetryPolicy, TransportErrorKind};
use proptest::prelude::*;
use serde_json::json;

use wiremock::{Mock, MockServer, ResponseTemplate};

/// Three attempts with no delay, so a wrong retry would show as three requests.
fn three_attempts() -> RetryPolicy {
    common::fast_retry().with_max_attempts(3)
}

fn sgt(server: &MockServer) -> iot_sdk::sgt::Client {
    iot_sdk::sgt::Client::builder()
        .api_key(common::sgt::KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(three_attempts())
        .max_response_bytes(1024)
        .build()
        .unwrap()
}

fn sepolo(server: &MockServer) -> iot_sdk::sepolo::Client {
    iot_sdk::sepolo::Client::builder()
        .api_key(common::sepolo::KEY)
        .base_url(server.uri())
        .retry_policy(three_attempts())
        .max_response_bytes(1024)
        .build()
        .unwrap()
}

fn siliconwit(server: &MockServer) -> iot_sdk::siliconwit::Client {
    iot_sdk::siliconwit::Client::builder()
        .api_key(common::siliconwit::KEY)
        .base_url(format!("{}/v1", server.uri()))
        .retry_policy(three_attempts())
        .max_response_bytes(1024)
        .build()
        .unwrap()
}

async fn answer(server: &MockServer, r: ResponseTemplate) {
    server.reset().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(r)
        .mount(server)
        .await;
}

/// A body over the cap: announced by Content-Length, or streamed without one (wiremock sends a
/// Content-Length; a `Transfer-Encoding: chunked` answer is made by the raw server below).
fn too_large() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(format!("\"{}\"", "x".repeat(4096)))
}

fn assert_too_large(err: &Error) {
    match err {
        Error::Transport(t) => {
            assert_eq!(t.kind(), TransportErrorKind::ResponseTooLarge, "{err}");
            assert_eq!(t.attempts(), 1, "{err}");
        }
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
    assert!(!err.is_retryable(), "over-size is final: {err}");
}

#[tokio::test]
async fn an_oversized_body_is_fetched_once_for_every_vendor() {
    let server = MockServer::start().await;
    let (s, p, w) = (sgt(&server), sepolo(&server), siliconwit(&server));
    for n in 0..3 {
        answer(&server, too_large()).await;
        let err = match n {
            0 => s.devices().get("dev_1").send().await.unwrap_err(),
            1 => p.devices().get("SEP-1").send().await.unwrap_err(),
            _ => w.devices().get("dev_1").send().await.unwrap_err(),
        };
        assert_too_large(&err);
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "vendor {n}"
        );
    }
}

/// A raw HTTP/1.1 server that answers every request with a chunked body of `size` bytes and no
/// Content-Length, counting requests.
async fn chunked_server(size: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                transfer-encoding: chunked\r\n\r\n";
                    if sock.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..size / 512 {
                        let chunk = format!("200\r\n{}\r\n", "x".repeat(512));
                        if sock.write_all(chunk.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    let _ = sock.write_all(b"0\r\n\r\n").await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn an_oversized_chunked_body_is_fetched_once_for_every_vendor() {
    use std::sync::atomic::Ordering;
    for n in 0..3 {
        let (uri, count) = chunked_server(8192).await;
        let err = match n {
            0 => iot_sdk::sgt::Client::builder()
                .api_key("k")
                .base_url(format!("{uri}/v1"))
                .retry_policy(three_attempts())
                .max_response_bytes(1024)
                .build()
                .unwrap()
                .devices()
                .get("dev_1")
                .send()
                .await
                .unwrap_err(),
            1 => iot_sdk::sepolo::Client::builder()
                .api_key("k")
                .base_url(uri.clone())
                .retry_policy(three_attempts())
                .max_response_bytes(1024)
                .build()
                .unwrap()
                .devices()
                .get("SEP-1")
                .send()
                .await
                .unwrap_err(),
            _ => iot_sdk::siliconwit::Client::builder()
                .api_key("swk_k")
                .base_url(format!("{uri}/v1"))
                .retry_policy(three_attempts())
                .max_response_bytes(1024)
                .build()
                .unwrap()
                .devices()
                .get("dev_1")
                .send()
                .await
                .unwrap_err(),
        };
        assert_too_large(&err);
        assert_eq!(count.load(Ordering::SeqCst), 1, "vendor {n}");
    }
}

/// Bodies a server in maintenance (or a misconfigured gateway) answers `200` with.
fn not_a_list() -> Vec<serde_json::Value> {
    vec![
        json!({}),
        json!({"message": "maintenance"}),
        json!({"data": null}),
        json!([]),
        json!(null),
        json!("ok"),
    ]
}

fn assert_decode_naming(err: &Error, field: &str, body: &serde_json::Value) {
    match err {
        Error::Decode(d) => assert!(
            d.message().contains(field) || d.field_path().contains(field),
            "{body}: the error should name `{field}`: {err}"
        ),
        other => panic!("{body}: expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_answer_without_its_envelope_is_a_decode_error_for_every_vendor() {
    let server = MockServer::start().await;
    let (s, p, w) = (sgt(&server), sepolo(&server), siliconwit(&server));
    for body in not_a_list() {
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        let e = s
            .devices()
            .list()
            .items()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        if body.is_object() {
            assert_decode_naming(&e, "data", &body);
        } else {
            assert!(matches!(e, Error::Decode(_)), "{body}: {e:?}");
        }
        let e = p
            .devices()
            .list()
            .items()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "{body}: {e:?}");
        let e = w
            .devices()
            .list()
            .items()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Decode(_)), "{body}: {e:?}");
    }
    // The fields after `data` are required too.
    let cases: [(serde_json::Value, &str); 4] = [
        (json!({"data": []}), "meta"),
        (json!({"data": [], "meta": {}}), "pagination"),
        (
            json!({"data": [], "meta": {"pagination": {"next": null}}}),
            "has_more",
        ),
        (
            json!({"data": [], "meta": {"request_id": "r"}}),
            "pagination",
        ),
    ];
    for (body, field) in cases {
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        let e = s.devices().list().send().await.unwrap_err();
        assert_decode_naming(&e, field, &body);
    }
    for (body, field) in [
        (json!({"data": []}), "hasMore"),
        (json!({"hasMore": false}), "data"),
        (json!({"message": "maintenance", "hasMore": false}), "data"),
    ] {
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        let e = p.assets().list().send().await.unwrap_err();
        assert_decode_naming(&e, field, &body);
    }
    for (body, field) in [
        (json!({"data": []}), "pagination"),
        (json!({"data": [], "pagination": {}}), "total"),
        (json!({"pagination": {"total": 0}}), "data"),
    ] {
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        let e = w.alerts().list().send().await.unwrap_err();
        assert_decode_naming(&e, field, &body);
    }
    // SiliconWit's single objects and telemetry always carry `data`; `{"data": null}` is "none".
    for body in [json!({}), json!({"message": "maintenance"})] {
        answer(
            &server,
            ResponseTemplate::new(200).set_body_json(body.clone()),
        )
        .await;
        let e = w.devices().latest("dev_1").send().await.unwrap_err();
        assert_decode_naming(&e, "data", &body);
        let e = w.devices().telemetry("dev_1").send().await.unwrap_err();
        assert_decode_naming(&e, "data", &body);
    }
    answer(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({"data": null})),
    )
    .await;
    assert_eq!(w.devices().latest("dev_1").send().await.unwrap(), None);
}

/// Offsets and totals at the end of `u64` end the list instead of overflowing (this panicked
/// with "attempt to add with overflow").
#[tokio::test]
async fn offsets_at_the_end_of_u64_do_not_overflow() {
    let server = MockServer::start().await;
    let w = siliconwit(&server);
    let page = |total: u64| {
        ResponseTemplate::new(200).set_body_json(json!({
            "data": [common::fixture("siliconwit", "devices_get")["data"].clone()],
            "pagination": {"total": total, "limit": 1, "offset": u64::MAX},
        }))
    };
    for total in [u64::MAX, u64::MAX - 1, 0, 1] {
        answer(&server, page(total)).await;
        for offset in [u64::MAX, u64::MAX - 1] {
            let p = w.devices().list().offset(offset).send().await.unwrap();
            assert_eq!(p.items().len(), 1);
            let all = w
                .devices()
                .list()
                .offset(offset)
                .items()
                .try_collect::<Vec<_>>()
                .await;
            assert!(
                all.is_ok() || matches!(all, Err(Error::Protocol(_))),
                "{all:?}"
            );
            let all = w
                .devices()
                .list()
                .offset(offset)
                .concurrent(4)
                .items()
                .try_collect::<Vec<_>>()
                .await;
            assert!(
                all.is_ok() || matches!(all, Err(Error::Protocol(_))),
                "{all:?}"
            );
        }
    }
}

/// Extreme values in every header the SDK parses.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("1".to_owned()),
        Just(u32::MAX.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
        Just("-1".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("1.5".to_owned()),
        Just("1e308".to_owned()),
        Just("NaN".to_owned()),
        Just("999999999999999999999999999999.5".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
        Just("Sun, 06 Nov 1994 08:49:37 GMT".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "[ -~]{0,24}",
    ]
}

const PARSED_HEADERS: [&str; 9] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-daily-limit",
    "x-ratelimit-daily-remaining",
    "retry-after",
    "date",
    "sunset",
    "deprecation",
];

/// The vendor's buckets at a million a minute: pacing still reads the server's remaining count
/// (a `0` empties the bucket), but refilling one token takes microseconds, not a second.
fn fast<K: iot_sdk::BucketKind>(buckets: &[iot_sdk::Bucket<K>]) -> Vec<iot_sdk::Bucket<K>> {
    buckets
        .iter()
        .map(|b| {
            iot_sdk::Bucket::new(
                b.kind,
                1_000_000,
                std::time::Duration::from_secs(60),
                1_000_000,
            )
        })
        .collect()
}

/// Every parsed header with an extreme value, on success and on 429/503 answers (which the retry
/// loop reads `Retry-After` from), through every vendor, with pacing on (which reads the
/// remaining count): no panic, and no sleep longer than the retry cap.
#[test]
fn extreme_header_values_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let policy = common::fast_retry()
        .with_max_attempts(2)
        .with_retry_after_cap(std::time::Duration::from_millis(5));
    let (s, p, w) = {
        let _g = rt.enter();
        let uri = server.uri();
        (
            iot_sdk::sgt::Client::builder()
                .api_key("k")
                .base_url(format!("{uri}/v1"))
                .retry_policy(policy.clone())
                .pacing_buckets(fast(iot_sdk::sgt::BUCKETS))
                .build()
                .unwrap(),
            iot_sdk::sepolo::Client::builder()
                .api_key("k")
                .base_url(uri.clone())
                .retry_policy(policy.clone())
                .pacing(true)
                .build()
                .unwrap(),
            iot_sdk::siliconwit::Client::builder()
                .api_key("swk_k")
                .base_url(format!("{uri}/v1"))
                .retry_policy(policy)
                .pacing_buckets(fast(iot_sdk::siliconwit::BUCKETS))
                .build()
                .unwrap(),
        )
    };
    let values = prop::collection::vec(header_value(), PARSED_HEADERS.len());
    proptest!(common::proptest_config(), |(values in values, status in prop::sample::select(vec![200u16, 429, 503]))| {
        rt.block_on(async {
            let mut r = ResponseTemplate::new(status)
                .set_body_json(json!({"data": {"count": 1}, "error": "x"}));
            for (name, value) in PARSED_HEADERS.iter().zip(&values) {
                r = r.insert_header(*name, value.as_str());
            }
            answer(&server, r).await;
            let started = std::time::Instant::now();
            let _ = s.devices().count().send_with_meta().await.map(|(_, m)| (m.sunset_at(), m.is_deprecated()));
            let _ = p.devices().get("d").send().await;
            let _ = w.devices().get("d").send().await;
            let _ = (s.last_rate_limit(), p.last_rate_limit(), w.last_rate_limit());
            // Three calls of at most two attempts: a Retry-After over the 5 ms cap is not slept.
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        });
    });
}

/// Extreme numbers in bodies: counts, totals, offsets and durations from the server.
#[test]
fn extreme_body_numbers_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let (s, w) = {
        let _g = rt.enter();
        (sgt(&server), siliconwit(&server))
    };
    let number = prop_oneof![
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(1e300)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
    ];
    proptest!(common::proptest_config(), |(a in number.clone(), b in number.clone(), c in number)| {
        rt.block_on(async {
            // SGT ingest: the server's accepted/rejected counts and error indices.
            answer(&server, ResponseTemplate::new(200).set_body_json(json!({
                "data": {"accepted": a, "rejected": b, "errors": [{"index": c, "code": "x"}]}
            }))).await;
            let reading = iot_sdk::sgt::Reading::new("dev_1", "power_kw", chrono::Utc::now(), 1.0);
            let _ = s.telemetry().ingest(vec![reading; 3]).send().await;
            // SiliconWit paging: totals, offsets and limits.
            answer(&server, ResponseTemplate::new(200).set_body_json(json!({
                "data": [], "pagination": {"total": a, "limit": b, "offset": c}
            }))).await;
            let _ = w.devices().list().items().try_collect::<Vec<_>>().await;
            // Report polling: an expected completion far in the future or past.
            answer(&server, ResponseTemplate::new(200).set_body_json(json!({
                "data": {"id": "rep_1", "status": "failed", "expected_completion_at": "+262142-12-31T23:59:59Z"}
            }))).await;
            let _ = s.reports().get("rep_1").send().await;
        });
    });
}

/// Any bytes a `200` list answer can carry: a page, or `Error::Decode`; never a panic, never
/// another kind of error, never a page the body did not hold.
#[test]
fn list_envelopes_from_arbitrary_bytes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let (s, p, w) = {
        let _g = rt.enter();
        (sgt(&server), sepolo(&server), siliconwit(&server))
    };
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "\\PC{0,200}".prop_map(String::into_bytes),
        Just(b"{\"data\": [], \"meta\": {\"pagination\": {\"has_more\": false}}".to_vec()),
        Just(b"{\"data\": [], \"hasMore\": false}  \x00".to_vec()),
    ];
    proptest!(common::proptest_config(), |(body in body)| {
        rt.block_on(async {
            answer(&server, ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json")).await;
            let shown = String::from_utf8_lossy(&body).into_owned();
            let check = |r: Result<usize, Error>| match r {
                Ok(n) => assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok(), "a page of {n} from {shown:?}"),
                Err(Error::Decode(_)) => {}
                Err(other) => panic!("{shown:?}: {other:?}"),
            };
            check(s.devices().list().send().await.map(|pg| pg.items().len()));
            check(p.assets().list().send().await.map(|pg| pg.items().len()));
            check(w.alerts().list().send().await.map(|pg| pg.items().len()));
            check(w.devices().latest("dev_1").send().await.map(|r| usize::from(r.is_some())));
        });
    });
}

/// Envelopes with each documented field present, absent, `null` or of the wrong type: the page
/// decodes exactly when every required field is there with its type.
#[test]
fn list_envelopes_decode_only_with_their_required_fields() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(MockServer::start());
    let (s, p, w) = {
        let _g = rt.enter();
        (sgt(&server), sepolo(&server), siliconwit(&server))
    };
    // A field: absent (None), or one of a valid value and wrong ones.
    let field = |valid: serde_json::Value| {
        prop::option::of(prop_oneof![
            3 => Just(valid),
            1 => Just(serde_json::Value::Null),
            1 => Just(json!("x")),
            1 => Just(json!({})),
        ])
    };
    let set = |obj: &mut serde_json::Map<String, serde_json::Value>,
               k: &str,
               v: &Option<serde_json::Value>| {
        if let Some(v) = v {
            obj.insert(k.to_owned(), v.clone());
        }
    };
    let strategy = (
        field(json!([])),
        field(json!(false)),
        field(json!({})),
        field(json!(0)),
        prop::option::of(Just(json!({"next": null}))),
    );
    proptest!(common::proptest_config(), |((data, flag, meta, total, extra) in strategy)| {
        rt.block_on(async {
            let ok = |v: &Option<serde_json::Value>, valid: serde_json::Value| v.as_ref() == Some(&valid);
            // SGT: {data, meta: {pagination: {has_more}}}
            let mut pagination = serde_json::Map::new();
            set(&mut pagination, "has_more", &flag);
            let mut m = serde_json::Map::new();
            if meta.is_some() {
                m.insert("pagination".into(), pagination.into());
            }
            set(&mut m, "extra", &extra);
            let mut body = serde_json::Map::new();
            set(&mut body, "data", &data);
            body.insert("meta".into(), m.into());
            answer(&server, ResponseTemplate::new(200).set_body_json(&body)).await;
            let got = s.devices().list().send().await;
            let want = ok(&data, json!([])) && meta.is_some() && ok(&flag, json!(false));
            assert_eq!(got.is_ok(), want, "{body:?}: {got:?}");
            if !want {
                assert!(matches!(got, Err(Error::Decode(_))), "{body:?}: {got:?}");
            }
            // Sepolo: {data, hasMore}
            let mut body = serde_json::Map::new();
            set(&mut body, "data", &data);
            set(&mut body, "hasMore", &flag);
            answer(&server, ResponseTemplate::new(200).set_body_json(&body)).await;
            let got = p.assets().list().send().await;
            let want = ok(&data, json!([])) && ok(&flag, json!(false));
            assert_eq!(got.is_ok(), want, "{body:?}: {got:?}");
            // SiliconWit: {data, pagination: {total}}
            let mut pagination = serde_json::Map::new();
            set(&mut pagination, "total", &total);
            let mut body = serde_json::Map::new();
            set(&mut body, "data", &data);
            if meta.is_some() {
                body.insert("pagination".into(), pagination.into());
            }
            answer(&server, ResponseTemplate::new(200).set_body_json(&body)).await;
            let got = w.alerts().list().send().await;
            let want = ok(&data, json!([])) && meta.is_some() && ok(&total, json!(0));
            assert_eq!(got.is_ok(), want, "{body:?}: {got:?}");
            // SiliconWit single objects: {data} with `null` meaning none.
            let mut body = serde_json::Map::new();
            set(&mut body, "data", &data.as_ref().map(|_| serde_json::Value::Null));
            answer(&server, ResponseTemplate::new(200).set_body_json(&body)).await;
            let got = w.devices().latest("dev_1").send().await;
            assert_eq!(got.is_ok(), data.is_some(), "{body:?}: {got:?}");
        });
    });
}
