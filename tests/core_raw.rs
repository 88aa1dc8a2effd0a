//! Raw calls (`client.raw()`): the exact request against wiremock, every vendor's simulator
//! through its test-only `_sim/echo` route (success and the vendor's error normalization), raw
//! lists on the vendor's paging, and `ResponseMeta::headers` without credentials.

mod common;

use common::sgt::sgt_headers;
use common::*;
use futures::TryStreamExt;
use iot_sdk::{Error, ErrorCode};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::{body_json as body_is, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn sgt_raw_post_sends_the_exact_request_and_unwraps_the_envelope() {
    let (server, sgt) = common::sgt::setup().await;
    sgt_headers(Mock::given(method("POST")).and(path("/v1/sites/site%201/zones")))
        .and(query_param("dry_run", "true"))
        .and(header("content-type", "application/json"))
        .and(header("x-trace", "t-1"))
        .and(body_is(json!({"name": "Hall A"})))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"id": "zn_1"}, "meta": {"request_id": "req_9"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    catch_all(&server).await;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Zone {
        id: String,
    }
    let (zone, meta) = sgt
        .raw()
        .post(["sites", "site 1", "zones"])
        .query(&[("dry_run", "true")])
        .header("x-trace", "t-1")
        .json(&json!({"name": "Hall A"}))
        .data::<Zone>()
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(zone, Zone { id: "zn_1".into() });
    assert_eq!(meta.status, 201);
    assert_eq!(meta.request_id.as_deref(), Some("req_9"));
    assert_eq!(
        only_request(&server).await.url.query(),
        Some("dry_run=true")
    );
}

#[tokio::test]
async fn raw_refuses_credential_headers_and_dot_segments_before_sending() {
    let (server, sgt) = common::sgt::setup().await;
    catch_all(&server).await;
    let e = sgt
        .raw()
        .get(["devices"])
        .header("Authorization", "Bearer other")
        .decode::<Value>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    let e = sgt.raw().get([".."]).decode::<Value>().await.unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn sgt_simulator_echo_route_and_error_normalization() {
    let (sim, sgt) = common::sgt::simulator(iot_sdk_sim::sgt::SgtSimulator::builder()).await;
    let (body, meta) = sgt
        .raw()
        .put(["_sim", "echo"])
        .query_pair("a", "1 2")
        .json(&json!({"x": [1, 2]}))
        .decode::<Value>()
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/v1/_sim/echo");
    assert_eq!(body["query"], json!({"a": "1 2"}));
    assert_eq!(body["body"], json!({"x": [1, 2]}));
    assert_eq!(body["headers"]["x-sgt-tenant"], sim.tenant());
    assert!(body["headers"].get("authorization").is_none());
    // The rate-limit headers were parsed, and the raw headers are there without credentials.
    assert!(meta.rate_limit.limit.is_some(), "{meta:?}");
    assert!(meta.headers.contains_key("x-request-id"));
    assert_eq!(
        meta.request_id.as_deref(),
        meta.headers["x-request-id"].to_str().ok()
    );

    let e = sgt
        .raw()
        .get(["_sim", "echo"])
        .query_pair("status", "409")
        .decode::<Value>()
        .await
        .unwrap_err();
    let api = e.api().expect("an API error");
    assert_eq!(api.status(), 409);
    assert_eq!(api.code(), &ErrorCode::Conflict);
    assert_eq!(api.vendor_code(), Some("conflict"));
    assert_eq!(api.message(), "simulated 409 from the echo route");
    assert!(api.request_id().is_some_and(|id| id.starts_with("req_")));
    assert_eq!(e.request_id(), api.request_id());
}

#[tokio::test]
async fn sepolo_simulator_echo_route_and_error_normalization() {
    let sim = common::sepolo::simulator(
        iot_sdk_sim::sepolo::SepoloSimulator::builder().api_key("sep_test_key"),
    )
    .await;
    let sepolo = common::sepolo::simulator_client(&sim, "sep_test_key");
    let body: Value = sepolo.raw().get(["_sim", "echo"]).data().await.unwrap();
    // Sepolo sends objects bare: `data()` is the whole body.
    assert_eq!(body["path"], "/_sim/echo");
    assert!(body["headers"].get("x-sepolo-api-key").is_none());

    let e = sepolo
        .raw()
        .get(["_sim", "echo"])
        .query_pair("status", "404")
        .data::<Value>()
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.api().unwrap().vendor_code(), Some("not_found"));
    assert_eq!(
        e.api().unwrap().message(),
        "simulated 404 from the echo route"
    );
}

#[tokio::test]
async fn siliconwit_simulator_echo_route_and_error_normalization() {
    let sim =
        common::siliconwit::simulator(iot_sdk_sim::siliconwit::SiliconWitSimulator::builder())
            .await;
    let sw = common::siliconwit::simulator_client(&sim);
    let body: Value = sw.raw().delete(["_sim", "echo"]).decode().await.unwrap();
    assert_eq!(body["method"], "DELETE");
    assert_eq!(body["path"], "/v1/_sim/echo");

    let e = sw
        .raw()
        .get(["_sim", "echo"])
        .query_pair("status", "422")
        .decode::<Value>()
        .await
        .unwrap_err();
    let api = e.api().expect("an API error");
    assert_eq!(api.status(), 422);
    // SiliconWit's error body is `{error: "message"}`: no code, so the status decides it.
    assert_eq!(api.code(), &ErrorCode::ValidationFailed);
    assert_eq!(api.vendor_code(), None);
    assert_eq!(api.message(), "simulated 422 from the echo route");
}

#[tokio::test]
async fn raw_lists_page_with_each_vendors_envelope() {
    // SGT: cursor paging, typed items.
    let (_sim, sgt) =
        common::sgt::simulator(iot_sdk_sim::sgt::SgtSimulator::builder().fleet_size(7)).await;
    #[derive(Deserialize)]
    struct Dev {
        id: String,
    }
    let raw: Vec<Dev> = sgt
        .raw()
        .list(["devices"], &())
        .limit(2)
        .items()
        .try_collect()
        .await
        .unwrap();
    let modelled: Vec<_> = sgt
        .devices()
        .list()
        .limit(3)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(raw.len(), modelled.len());
    assert!(raw.len() > 2, "more than one page");
    for (r, m) in raw.iter().zip(&modelled) {
        assert_eq!(r.id, m.id.as_str());
    }

    // SiliconWit: offset paging, `Value` items.
    let sim =
        common::siliconwit::simulator(iot_sdk_sim::siliconwit::SiliconWitSimulator::builder())
            .await;
    let sw = common::siliconwit::simulator_client(&sim);
    let raw: Vec<Value> = sw
        .raw()
        .list(["devices"], &())
        .limit(3)
        .items()
        .try_collect()
        .await
        .unwrap();
    let modelled: Vec<_> = sw
        .devices()
        .list()
        .limit(100)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert!(raw.len() > 3, "more than one page");
    let ids: Vec<&str> = raw.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = modelled.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn raw_list_sends_the_query_then_the_page_size_and_reports_item_decode_errors() {
    let (server, sgt) = common::sgt::setup().await;
    sgt_headers(Mock::given(method("GET")).and(path("/v1/gateways")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": "gw_1"}, {"id": 7}],
            "meta": {"pagination": {"next": null, "has_more": false}, "request_id": "req_5"}
        })))
        .mount(&server)
        .await;
    catch_all(&server).await;
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Gw {
        id: String,
    }
    let e = sgt
        .raw()
        .list::<Gw, _, _, _>(["gateways"], &[("site", "s 1"), ("tag", "a&b")])
        .limit(5)
        .send()
        .await
        .unwrap_err();
    let Error::Decode(d) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(d.field_path(), "items[1].id");
    assert_eq!(d.request_id(), Some("req_5"));
    assert_eq!(
        only_request(&server).await.url.query(),
        Some("site=s+1&tag=a%26b&limit=5")
    );
}

#[tokio::test]
async fn response_headers_never_carry_the_credential() {
    let server = MockServer::start().await;
    let key = "sep_secret_key_0123456789";
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true}))
                .insert_header("x-sepolo-api-key", key)
                .insert_header("set-cookie", "session=abc")
                .insert_header("x-echo", format!("you sent {key}").as_str())
                .insert_header("x-echo-prefix", &key[..10])
                .insert_header("x-kept", "fine"),
        )
        .mount(&server)
        .await;
    let sepolo = iot_sdk::sepolo::Client::builder()
        .api_key(key)
        .base_url(server.uri())
        .build()
        .unwrap();
    let (_, meta) = sepolo
        .raw()
        .get(["api", "v1", "anything"])
        .decode::<Value>()
        .send_with_meta()
        .await
        .unwrap();
    for gone in ["x-sepolo-api-key", "set-cookie", "x-echo", "x-echo-prefix"] {
        assert!(!meta.headers.contains_key(gone), "{gone} is exposed");
    }
    assert_eq!(meta.headers["x-kept"], "fine");
    assert!(!format!("{meta:?}").contains(&key[..10]));
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Any segment and query pair the caller gives is sent as exactly one percent-encoded
    /// segment and one query pair that decode back to it.
    #[test]
    fn raw_segments_and_query_round_trip(
        seg in "[^\\x00-\\x1f\\x7f]{1,12}".prop_filter("not a dot segment", |s| s != "." && s != ".."),
        k in "[a-z]{1,6}",
        v in "\\PC{0,12}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (server, sgt) = common::sgt::setup().await;
            Mock::given(method("GET"))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": 1})))
                .mount(&server)
                .await;
            let n: u32 = sgt.raw().get(["x", seg.as_str()]).query_pair(&k, &v).data().await.unwrap();
            assert_eq!(n, 1);
            let req = only_request(&server).await;
            let segs: Vec<String> = req
                .url
                .path_segments()
                .unwrap()
                .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned())
                .collect();
            assert_eq!(segs, vec!["v1".to_owned(), "x".to_owned(), seg.clone()]);
            let pairs: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
            assert_eq!(pairs, vec![(k.clone(), v.clone())]);
        });
    }
}
